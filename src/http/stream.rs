//! A [`StreamJob`]'s answer: MPEG-TS or fragmented MP4 streamed as the pipeline produces it.

use poem::http::header;
use poem::{Request, Response};

use super::error::ApiError;
use super::AppState;
use crate::admission::PipelineKind;
use crate::pipeline::{body, launch, stream, PipelineError};
use crate::request::StreamJob;

/// Streams `job`, starting the pipeline first so that a failure to start is still a JSON
/// error.
pub async fn respond(
    req: &Request,
    state: &AppState,
    job: StreamJob,
) -> Result<Response, ApiError> {
    let http1 = req.version() < poem::http::Version::HTTP_2;
    let file_name = job.file_name();
    let headers = Response::builder()
        .content_type(job.container.content_type())
        .header(header::CACHE_CONTROL, job.cache_control)
        // How the video was made: `smart` (edges re-encoded, GOPs copied) or `reencode`.
        .header("x-framecast-cut", job.coding.cut_name())
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{file_name}\""),
        );
    // A HEAD gets the headers without a pipeline: it would read no body.
    if super::is_head(req) {
        return Ok(headers.finish());
    }
    let composition =
        stream::composition(&job, &state.pipelines.load(), &state.drawing(job.file.uuid));
    let expected = stream::expected(&job);
    tracing::debug!(
        launch = %launch::launch_line(&composition, &file_name),
        "stream pipeline"
    );
    let what = format!("stream {file_name}");
    let timeouts = body::StreamTimeouts {
        first_output: state.clip_start_timeout,
        stall: state.stall_timeout,
    };
    // The slot is held by the stream until its pipeline stops.
    let permit = state
        .admission
        .admit(PipelineKind::Encoding, stream::memory_cost(&job))
        .await?;
    let span = tracing::Span::current();
    let uuid = job.file.uuid;
    let output = tokio::task::spawn_blocking(move || {
        span.in_scope(|| body::start(&composition, timeouts, what, Some(expected), permit))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        PipelineError::Timeout(_) => ApiError::Unavailable {
            message: format!("{e} (no output yet); try again"),
            retry_after_seconds: 5,
        },
        e if e.is_remote_read() => ApiError::OriginFailed(uuid.to_string(), e.to_string()),
        e => ApiError::internal(e),
    })?;
    Ok(headers.body(output.into_body(http1)))
}
