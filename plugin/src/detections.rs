//! Detections: the row type, the JSON / JSON-lines file format and the catalog queries.
//!
//! Public so that the server (which links this crate as `gstframecast`) and the
//! `detectionoverlay` element read detections the same way.
//!
//! A detections file is a JSON array, or JSON lines, of objects like
//! `{"frame": 12, "x": 10, "y": 20, "w": 64, "h": 64, "label": "face", "confidence": 0.93,
//!   "trace_id": 4, "identity": "alice"}` (`frame_number` is accepted for `frame`, and
//! `identity_id`, the catalog's column name, for `identity`; `label` defaults to `face`;
//! `confidence`, `trace_id` and `identity` are optional).

use std::fmt;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// One detected box, in source pixels; x/y is the top-left corner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    #[serde(alias = "frame_number")]
    pub frame: u32,
    pub x: i32,
    pub y: i32,
    pub w: u32,
    pub h: u32,
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub trace_id: Option<i64>,
    /// Column `identity_id` in the catalog, as in the analytics platform's table.
    #[serde(default, alias = "identity_id")]
    pub identity: Option<String>,
}

fn default_label() -> String {
    "face".to_owned()
}

impl Detection {
    /// The text drawn with the box: `#<trace> <identity>` (or `#<trace>`) for a detection in
    /// a trace, else `<label> <confidence>` (or `<label>`).
    pub fn caption(&self) -> String {
        match (self.trace_id, &self.identity, self.confidence) {
            (Some(trace), Some(identity), _) => format!("#{trace} {identity}"),
            (Some(trace), None, _) => format!("#{trace}"),
            (None, _, Some(confidence)) => format!("{} {confidence:.2}", self.label),
            (None, _, None) => self.label.clone(),
        }
    }
}

/// A bad detections file: where (`line N` or `index N`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub location: String,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "detections file, {}: {}", self.location, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses a detections file and checks every row; with `frame_count`, frames must be below
/// it. The first bad row is reported by its line (JSON lines) or index (array).
pub fn parse(text: &str, frame_count: Option<usize>) -> Result<Vec<Detection>, ParseError> {
    let rows: Vec<(String, serde_json::Value)> = if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| ParseError {
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
            let value = serde_json::from_str(line).map_err(|e| ParseError {
                location: format!("line {}", i + 1),
                reason: format!("not valid JSON: {e}"),
            })?;
            rows.push((format!("line {}", i + 1), value));
        }
        rows
    };
    rows.into_iter()
        .map(|(location, value)| {
            check(value, frame_count).map_err(|reason| ParseError { location, reason })
        })
        .collect()
}

fn check(value: serde_json::Value, frame_count: Option<usize>) -> Result<Detection, String> {
    let row: Detection = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if let Some(frame_count) = frame_count.filter(|&n| row.frame as usize >= n) {
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
    if let Some(c) = row.confidence.filter(|c| !(0.0..=1.0).contains(c)) {
        return Err(format!("confidence must be between 0 and 1, got {c}"));
    }
    Ok(row)
}

/// The catalog's detections table; its columns follow the analytics platform's
/// `face_detections` (plus `label`, and framecast's own `id`), so that a platform can write
/// rows there directly or expose its table under this name through a view.
pub const TABLE: &str = "face_detections";

/// The detection columns every catalog query reads and writes, in the order of
/// [`Detection`]'s fields as [`from_row`] and the catalogs' inserts bind them. With
/// `file_uuid` (and `id`, generated), this is the whole table: one list for SQLite here and
/// in the server, and for PostgreSQL.
pub const COLUMNS: &str = "frame_number, x, y, w, h, label, confidence, trace_id, identity_id";

/// A row of [`COLUMNS`] read from SQLite.
pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Detection> {
    Ok(Detection {
        frame: row.get(0)?,
        x: row.get(1)?,
        y: row.get(2)?,
        w: row.get(3)?,
        h: row.get(4)?,
        label: row.get(5)?,
        confidence: row.get(6)?,
        trace_id: row.get(7)?,
        identity: row.get(8)?,
    })
}

/// The detections of `file_uuid` on frames `first..=last` of framecast's SQLite catalog,
/// ordered by frame (then row id), through the (file_uuid, frame_number) index.
pub fn query_frames(
    connection: &Connection,
    file_uuid: &str,
    first: u64,
    last: u64,
) -> rusqlite::Result<Vec<Detection>> {
    // SQLite integers are i64: frame numbers past that are past any video.
    let clamp = |frame: u64| i64::try_from(frame).unwrap_or(i64::MAX);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {TABLE}
         WHERE file_uuid = ?1 AND frame_number BETWEEN ?2 AND ?3
         ORDER BY frame_number, id"
    ))?;
    let rows = statement.query_map(params![file_uuid, clamp(first), clamp(last)], from_row)?;
    rows.collect()
}

/// The detections of one trace, ordered by frame, through the (file_uuid, trace_id,
/// frame_number) index.
pub fn query_trace(
    connection: &Connection,
    file_uuid: &str,
    trace_id: i64,
) -> rusqlite::Result<Vec<Detection>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {TABLE}
         WHERE file_uuid = ?1 AND trace_id = ?2
         ORDER BY frame_number, id"
    ))?;
    let rows = statement.query_map(params![file_uuid, trace_id], from_row)?;
    rows.collect()
}

/// Where `detectionoverlay` reads one file's detections from, handed to the element with
/// `DetectionOverlay::set_source` by a program that runs it in-process (the server gives it
/// its catalog, whichever store that is). Called from the element's streaming thread, so an
/// implementation may block; errors are posted on the bus as read errors.
pub trait DetectionSource: Send + Sync {
    /// The detections on frames `first..=last`, ordered by frame. The element asks for
    /// windows of a few hundred frames as the stream advances.
    fn frames(&self, first: u64, last: u64) -> Result<Vec<Detection>, String>;

    /// Every detection of trace `trace_id`, ordered by frame; read once, at start.
    fn trace(&self, trace_id: i64) -> Result<Vec<Detection>, String>;
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
        let a = parse(array, Some(10)).unwrap();
        assert_eq!(a, parse(lines, None).unwrap());
        assert_eq!(a[0].label, "face");
        assert_eq!(a[1].trace_id, Some(3));
        assert_eq!(a[1].identity.as_deref(), Some("bob"));
        // The catalog's column name is accepted too.
        let b = parse(
            r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5, "identity_id": "bob"}]"#,
            None,
        )
        .unwrap();
        assert_eq!(b[0].identity.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_rows_are_named_by_line_or_index() {
        let lines =
            "{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n{\"frame\": 1, \"x\": 2}\n";
        let e = parse(lines, None).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing field"), "{e}");
        let e = parse("{\"frame\": 1,\n", None).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");

        let array = r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5}, {"frame": 10, "x": 2, "y": 3, "w": 4, "h": 5}]"#;
        let e = parse(array, Some(10)).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains("last frame 9"), "{e}");
        assert!(parse(array, None).is_ok());

        let e = parse(r#"[{"frame": 0, "x": 0, "y": 0, "w": 0, "h": 5}]"#, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse(
            r#"[{"frame": 0, "x": 0, "y": 0, "w": 1, "h": 5, "confidence": 1.5}]"#,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }

    #[test]
    fn captions() {
        let mut d = parse(r#"[{"frame": 0, "x": 0, "y": 0, "w": 1, "h": 1}]"#, None).unwrap();
        let d = &mut d[0];
        assert_eq!(d.caption(), "face");
        d.confidence = Some(0.934);
        assert_eq!(d.caption(), "face 0.93");
        d.trace_id = Some(7);
        assert_eq!(d.caption(), "#7");
        d.identity = Some("alice".into());
        assert_eq!(d.caption(), "#7 alice");
    }
}
