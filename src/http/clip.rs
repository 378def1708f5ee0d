//! GET /api/v1/file/:file_uuid/clip?start_frame=A&end_frame=B | start_time=S&end_time=E[&fps=F]
//! [&mode=normal|debug][&audio=on|off]

use std::sync::Arc;

use poem::http::header;
use poem::web::{Data, Path};
use poem::{handler, Request, Response};

use super::error::ApiError;
use super::params::{Audio, Mode, QueryParams, StreamParams};
use super::AppState;
use crate::admission::PipelineKind;
use crate::auth::Grant;
use crate::catalog::FileRecord;
use crate::clip::{self as render, Clip};
use crate::pipeline::{stream, PipelineError};

/// Slack when turning times into frames: `1.2 * 25` is 30.000000000000004 in binary
/// floating point, which must still be frame 30.
const FRAME_EPSILON: f64 = 1e-6;

/// Validates the query against `file`; every refusal says what is valid.
pub fn parse(
    query: &QueryParams,
    file: &FileRecord,
    max_clip_seconds: u64,
) -> Result<Clip, ApiError> {
    let params = StreamParams::parse(query)?;
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
                return Err(ApiError::bad_parameter(format!(
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
            return Err(ApiError::bad_parameter(format!(
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
            return Err(ApiError::bad_parameter(format!(
                "start_time={start_time} and end_time={end_time} hold no frame at {fps} fps \
                 (frames {start} to {end}): end_time must be after start_time"
            )));
        }
        if end > last_frame {
            return Err(ApiError::bad_parameter(format!(
                "end_time={end_time} ends at frame {end} at {fps} fps, past the last frame \
                 {last_frame}: end_time must be at most {:.3}",
                (last_frame + 1) as f64 / fps
            )));
        }
        (start, end)
    } else {
        return Err(ApiError::bad_parameter(
            "give start_frame and end_frame (zero-based, inclusive), or start_time and end_time \
             (seconds)",
        ));
    };
    if first > last {
        return Err(ApiError::bad_parameter(format!(
            "start_frame {first} is after end_frame {last}: the clip runs from start_frame to \
             end_frame inclusive"
        )));
    }
    let request = Clip {
        first: first as u32,
        last: last as u32,
        audio: params.audio == Audio::On && file.media.has_audio,
    };
    let seconds = request.duration_ns(file) as f64 / 1e9;
    if seconds > max_clip_seconds as f64 {
        return Err(ApiError::bad_parameter(format!(
            "frames {first} to {last} last {seconds:.3} s, longer than the {max_clip_seconds} s \
             a clip may last; ask for a shorter span"
        )));
    }
    if params.mode == Mode::Debug {
        return Err(ApiError::NotImplemented(
            "mode=debug is not served for clips yet (it needs the overlay element); use \
             mode=normal"
                .into(),
        ));
    }
    Ok(request)
}

/// `floor(start × fps)` and `ceil(end × fps) - 1`: the frames whose slots at `fps` overlap
/// `[start, end)`.
fn frames_of_times(start: f64, end: f64, fps: f64) -> (i64, i64) {
    let first = (start * fps + FRAME_EPSILON).floor();
    let last = (end * fps - FRAME_EPSILON).ceil() - 1.0;
    // Saturating casts: a huge end is past the last frame anyway.
    (first as i64, last as i64)
}

#[handler]
pub async fn clip(
    req: &Request,
    Path(file_uuid): Path<String>,
    Data(state): Data<&Arc<AppState>>,
    Data(grant): Data<&Grant>,
) -> Result<Response, ApiError> {
    let http1 = req.version() < poem::http::Version::HTTP_2;
    let file = state.authorized_file(grant, &file_uuid).await?;
    let request = parse(
        &QueryParams::from_request(req),
        &file,
        state.max_clip_seconds,
    )?;
    let composition = render::composition(&file, &request, &state.pipelines);
    tracing::debug!(
        launch = %crate::explain::launch_line(&composition, "clip.ts"),
        "clip pipeline"
    );
    let file_name = request.file_name(&file);
    let what = format!("clip {file_name}");
    let timeouts = stream::StreamTimeouts {
        first_output: state.clip_start_timeout,
        stall: state.stall_timeout,
    };
    // A file that ends early (truncated since import) must not pass for a complete clip.
    let expected = stream::Expected {
        element: render::SOURCE_NAME,
        pad: "video",
        buffers: request.frames() as u64,
    };
    let permit = state.admission.admit(PipelineKind::Encoding).await?;
    let span = tracing::Span::current();
    let body = tokio::task::spawn_blocking(move || {
        span.in_scope(|| stream::start(&composition, timeouts, what, Some(expected), permit))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        PipelineError::Timeout(_) => ApiError::Unavailable {
            message: format!("{e} (no output yet); try again"),
            retry_after_seconds: 5,
        },
        e => ApiError::internal(e),
    })?;
    Ok(Response::builder()
        .content_type("video/mp2t")
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{file_name}\""),
        )
        .body(body.into_body(http1)))
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
