//! GET /api/v1/file/:file_uuid/clip?start_frame=A&end_frame=B | start_time=S&end_time=E[&fps=F]
//! [&mode=normal|debug][&audio=on|off][&format=ts|mp4][&cut=smart|reencode]
//!
//! Planned re-encoded here; [`super::smart`] then makes it a smart cut where it can.

use super::query::{Mode, QueryParams, StreamParams};
use super::stream::{self, Coding, Detections, Overlay, StreamJob, FILE_CACHE_CONTROL};
use super::{Limits, PlanError};
use crate::catalog::FileRecord;
use crate::client_text::number;

/// Slack when turning times into frames: `1.2 * 25` is 30.000000000000004 in binary
/// floating point, which must still be frame 30.
const FRAME_EPSILON: f64 = 1e-6;

/// Validates the query against `file`; every refusal says what is valid.
pub fn plan(
    file: FileRecord,
    query: &QueryParams,
    limits: &Limits,
) -> Result<StreamJob, PlanError> {
    let params = StreamParams::parse(query)?;
    // Checked with the others; applied once the job is known (see `super::smart`).
    super::smart::parse(query)?;
    let last_frame = file.frame_count().saturating_sub(1) as i64;
    let fps = query
        .number("fps", |v| v > 0.0, "a frame rate above 0, e.g. 25 or 29.97")?
        .unwrap_or(file.media.fps);

    let frame_names = ["start_frame", "end_frame"];
    let time_names = ["start_time", "end_time"];
    let (first, last) = if frame_names.iter().any(|n| query.has(n)) {
        let rule = format!("a zero-based frame number from 0 to {last_frame} (the last frame)");
        let start = query.integer("start_frame", 0..=last_frame, &rule)?;
        let end = query.integer("end_frame", 0..=last_frame, &rule)?;
        match (start, end) {
            (Some(start), Some(end)) => (start, end),
            _ => {
                return Err(PlanError::bad_parameter(format!(
                    "{} is missing: give both start_frame and end_frame (inclusive)",
                    if start.is_none() {
                        "start_frame"
                    } else {
                        "end_frame"
                    }
                )))
            }
        }
    } else if time_names.iter().any(|n| query.has(n)) {
        let rule = "a time in seconds, 0 or more (e.g. 12.5)";
        let start = query.number("start_time", |v| v >= 0.0, rule)?;
        let end = query.number("end_time", |v| v >= 0.0, rule)?;
        let (Some(start_time), Some(end_time)) = (start, end) else {
            return Err(PlanError::bad_parameter(format!(
                "{} is missing: give both start_time and end_time (seconds)",
                if start.is_none() {
                    "start_time"
                } else {
                    "end_time"
                }
            )));
        };
        let (start, end) = frames_of_times(start_time, end_time, fps);
        if start > end {
            return Err(PlanError::bad_parameter(format!(
                "start_time={} and end_time={} hold no frame at {} fps \
                 (frames {start} to {end}): end_time must be after start_time",
                number(start_time),
                number(end_time),
                number(fps)
            )));
        }
        if end > last_frame {
            return Err(PlanError::bad_parameter(format!(
                "end_time={} ends at frame {end} at {} fps, past the last frame \
                 {last_frame}: end_time must be at most {}",
                number(end_time),
                number(fps),
                number(((last_frame + 1) as f64 / fps * 1e3).floor() / 1e3)
            )));
        }
        (start, end)
    } else {
        return Err(PlanError::bad_parameter(
            "give start_frame and end_frame (zero-based, inclusive), or start_time and end_time \
             (seconds)",
        ));
    };
    if first > last {
        return Err(PlanError::bad_parameter(format!(
            "start_frame {first} is after end_frame {last}: the clip runs from start_frame to \
             end_frame inclusive"
        )));
    }
    let job = StreamJob {
        first: first as u32,
        last: last as u32,
        audio: stream::audio(&params, &file),
        // Debug: "CLIP" and the frame number on every frame.
        overlay: (params.mode == Mode::Debug).then(|| Overlay {
            detections: Detections::None,
            debug: true,
            title: Some("CLIP".into()),
        }),
        coding: Coding::Reencode,
        container: params.container,
        cache_control: FILE_CACHE_CONTROL,
        source: file.location.stored(),
        file,
    };
    let max_clip_seconds = limits.max_clip_seconds;
    let seconds = job.duration_ns() as f64 / 1e9;
    if seconds > max_clip_seconds as f64 {
        return Err(PlanError::bad_parameter(format!(
            "frames {first} to {last} last {seconds:.3} s, longer than the {max_clip_seconds} s \
             a clip may last; ask for a shorter span"
        )));
    }
    Ok(job)
}

/// `floor(start × fps)` and `ceil(end × fps) - 1`: the frames whose slots at `fps` overlap
/// `[start, end)`.
fn frames_of_times(start: f64, end: f64, fps: f64) -> (i64, i64) {
    let first = (start * fps + FRAME_EPSILON).floor();
    let last = (end * fps - FRAME_EPSILON).ceil() - 1.0;
    // Saturating casts: a huge end is past the last frame anyway.
    (first as i64, last as i64)
}

#[cfg(test)]
mod tests {
    use super::frames_of_times;

    #[test]
    fn times_become_the_frames_they_overlap() {
        assert_eq!(frames_of_times(0.4, 1.2, 25.0), (10, 29));
        assert_eq!(frames_of_times(0.0, 0.04, 25.0), (0, 0));
        assert_eq!(frames_of_times(0.01, 0.05, 25.0), (0, 1));
        assert_eq!(frames_of_times(1.0, 2.0, 30000.0 / 1001.0), (29, 59));
        assert_eq!(frames_of_times(1.0, 1.0, 25.0), (25, 24));
    }
}
