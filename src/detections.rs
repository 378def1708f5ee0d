//! Reading a detections file at import: a JSON array, or JSON lines, of objects like
//! `{"frame": 12, "x": 10, "y": 20, "w": 64, "h": 64, "label": "face", "confidence": 0.93,
//!   "trace_id": 4, "identity": "alice"}`.
//!
//! The whole file is checked before anything is imported: the first bad row is reported by
//! its line (JSON lines) or index (array), and nothing is written.

use serde::Deserialize;

use crate::catalog::Detection;

#[derive(Debug, Deserialize)]
struct Row {
    #[serde(alias = "frame_number")]
    frame: u32,
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    #[serde(default = "default_label")]
    label: String,
    confidence: Option<f64>,
    trace_id: Option<i64>,
    identity: Option<String>,
}

fn default_label() -> String {
    "face".to_owned()
}

#[derive(Debug, thiserror::Error)]
#[error("detections file, {location}: {reason}")]
pub struct DetectionsError {
    location: String,
    reason: String,
}

/// Parses `text` and checks each row against a video of `frame_count` frames.
pub fn parse(text: &str, frame_count: usize) -> Result<Vec<Detection>, DetectionsError> {
    let trimmed = text.trim_start();
    let rows: Vec<(String, serde_json::Value)> = if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| DetectionsError {
                location: format!("line {}", e.line()),
                reason: format!("not a valid JSON array: {e}"),
            })?;
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("index {i}"), v))
            .collect()
    } else {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line).map_err(|e| DetectionsError {
                location: format!("line {}", i + 1),
                reason: format!("not valid JSON: {e}"),
            })?;
            rows.push((format!("line {}", i + 1), value));
        }
        rows
    };
    rows.into_iter()
        .map(|(location, value)| {
            check(value, frame_count).map_err(|reason| DetectionsError { location, reason })
        })
        .collect()
}

fn check(value: serde_json::Value, frame_count: usize) -> Result<Detection, String> {
    let row: Row = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if row.frame as usize >= frame_count {
        return Err(format!(
            "frame {} is beyond the video's last frame {} (frames are zero-based)",
            row.frame,
            frame_count.saturating_sub(1)
        ));
    }
    if row.w == 0 || row.h == 0 {
        return Err(format!(
            "w and h must be at least 1, got {}x{}",
            row.w, row.h
        ));
    }
    if let Some(c) = row.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(format!("confidence must be between 0 and 1, got {c}"));
        }
    }
    Ok(Detection {
        frame: row.frame,
        x: row.x,
        y: row.y,
        w: row.w,
        h: row.h,
        label: row.label,
        confidence: row.confidence,
        trace_id: row.trace_id,
        identity: row.identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_lines_give_the_same_rows() {
        let array = r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5},
                        {"frame_number": 2, "x": -1, "y": 0, "w": 9, "h": 9, "label": "car",
                         "confidence": 0.5, "trace_id": 3, "identity": "bob"}]"#;
        let lines = "{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n\n\
                     {\"frame_number\": 2, \"x\": -1, \"y\": 0, \"w\": 9, \"h\": 9, \"label\": \"car\", \
                      \"confidence\": 0.5, \"trace_id\": 3, \"identity\": \"bob\"}\n";
        let a = parse(array, 10).unwrap();
        assert_eq!(a, parse(lines, 10).unwrap());
        assert_eq!(a[0].label, "face");
        assert_eq!(a[1].trace_id, Some(3));
        assert_eq!(a[1].identity.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_rows_are_named_by_line_or_index() {
        let lines =
            "{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n{\"frame\": 1, \"x\": 2}\n";
        let e = parse(lines, 10).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing field"), "{e}");

        let array = r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5}, {"frame": 10, "x": 2, "y": 3, "w": 4, "h": 5}]"#;
        let e = parse(array, 10).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains("last frame 9"), "{e}");

        let e = parse(r#"[{"frame": 0, "x": 0, "y": 0, "w": 0, "h": 5}]"#, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse(
            r#"[{"frame": 0, "x": 0, "y": 0, "w": 1, "h": 5, "confidence": 1.5}]"#,
            10,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
        let e = parse(
            "{\"frame\": -1, \"x\": 0, \"y\": 0, \"w\": 1, \"h\": 1}",
            10,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
