//! The re-encoded MPEG-TS streams: parsing each route's query into a [`Render`], and
//! streaming any [`Render`] the same way.
//!
//! - `/video/bbox`: the video from `start` with every detection drawn;
//! - `/video?mode=debug`: the same with the debug panel, and `/video?audio=off`: the video
//!   alone, re-encoded;
//! - `/trace/:trace_id/video`: a trace's span with `padding` seconds around it, the trace
//!   highlighted;
//! - `/clip` (its parsing is in [`super::clip`]).

use std::sync::Arc;

use poem::http::header;
use poem::web::{Data, Path};
use poem::{handler, Request, Response};

use super::error::ApiError;
use super::params::{Audio, Mode, QueryParams, StreamParams};
use super::AppState;
use crate::admission::PipelineKind;
use crate::auth::Grant;
use crate::catalog::{FileRecord, TraceSpan};
use crate::pipeline::{stream, PipelineError};
use crate::render::{Detections, Overlay, Plan, Render};

/// Seconds of video around a trace, by default.
const DEFAULT_TRACE_PADDING_SECONDS: f64 = 2.0;

/// `start`: the first frame to stream, within `first..=last`.
fn start_frame(query: &QueryParams, first: u32, last: u32) -> Result<u32, ApiError> {
    let rule = format!("a frame number from {first} to {last}");
    Ok(query
        .integer("start", first.into()..=last.into(), &rule)?
        .map_or(first, |start| start as u32))
}

fn audio(params: &StreamParams, file: &FileRecord) -> bool {
    params.audio == Audio::On && file.media.has_audio
}

/// `/video/bbox` (`debug` false unless mode=debug) and `/video?mode=debug` (`debug` true):
/// the video from `start` to its end with every detection drawn.
pub fn parse_bbox(query: &QueryParams, file: &FileRecord, debug: bool) -> Result<Render, ApiError> {
    let params = StreamParams::parse(query)?;
    let last = file.frame_count().saturating_sub(1) as u32;
    Ok(Render {
        first: start_frame(query, 0, last)?,
        last,
        audio: audio(&params, file),
        overlay: Some(Overlay {
            detections: Detections::All,
            debug: debug || params.mode == Mode::Debug,
            title: None,
        }),
    })
}

/// `/video`: `None` for the original file (mode=normal, audio=on: served with ranges); with
/// mode=debug as `/video/bbox` with the panel; with audio=off alone the video re-encoded
/// without its audio, from `start`.
pub fn parse_video(query: &QueryParams, file: &FileRecord) -> Result<Option<Render>, ApiError> {
    let params = StreamParams::parse(query)?;
    match (params.mode, params.audio) {
        (Mode::Debug, _) => parse_bbox(query, file, true).map(Some),
        (Mode::Normal, Audio::Off) => {
            let last = file.frame_count().saturating_sub(1) as u32;
            Ok(Some(Render {
                first: start_frame(query, 0, last)?,
                last,
                audio: false,
                overlay: None,
            }))
        }
        (Mode::Normal, Audio::On) if query.has("start") => Err(ApiError::bad_parameter(
            "start applies to re-encoded streams (mode=debug or audio=off); the original \
             file is served as is: seek in it with a Range header",
        )),
        (Mode::Normal, Audio::On) => Ok(None),
    }
}

/// `/trace/:trace_id/video`'s query, checked before the trace is looked up.
pub struct TraceQuery {
    params: StreamParams,
    padding_ns: u64,
}

impl TraceQuery {
    pub fn parse(query: &QueryParams) -> Result<Self, ApiError> {
        let padding = query
            .number(
                "padding",
                |v| v >= 0.0,
                "seconds of video before and after the trace, 0 or more (default 2.0)",
            )?
            .unwrap_or(DEFAULT_TRACE_PADDING_SECONDS);
        Ok(TraceQuery {
            params: StreamParams::parse(query)?,
            // Saturating: a huge padding is the whole file.
            padding_ns: (padding * 1e9) as u64,
        })
    }

    /// Frames from `padding` seconds before the trace's first detection to `padding`
    /// seconds after its last ends (clamped to the file), from `start` if given.
    pub fn render(
        &self,
        query: &QueryParams,
        file: &FileRecord,
        trace_id: i64,
        span: &TraceSpan,
    ) -> Result<Render, ApiError> {
        let index = &file.media.frame_index;
        let last_frame = file.frame_count().saturating_sub(1) as u32;
        let first_ts = index.timestamp(span.first).unwrap_or(0);
        let first = index
            .frame_at(first_ts.saturating_sub(self.padding_ns))
            .unwrap_or(0);
        // The last frame that starts within `padding` of the end of the trace's last.
        let end = index.timestamp(span.last + 1).unwrap_or(index.end_ns());
        let last = index
            .frame_at(end.saturating_add(self.padding_ns).saturating_sub(1))
            .unwrap_or(span.last)
            .max(span.last)
            .min(last_frame);
        let identity = span
            .identity
            .as_deref()
            .map(|identity| format!(" {identity}"))
            .unwrap_or_default();
        Ok(Render {
            first: start_frame(query, first, last)?,
            last,
            audio: audio(&self.params, file),
            overlay: Some(Overlay {
                detections: Detections::Trace(trace_id),
                debug: self.params.mode == Mode::Debug,
                title: Some(format!("TRACE {trace_id} start={}{identity}", span.first)),
            }),
        })
    }
}

/// The trace id in the path.
pub fn parse_trace_id(given: &str) -> Result<i64, ApiError> {
    given.parse().map_err(|_| {
        ApiError::bad_parameter(format!(
            "trace id {given:?} is not valid: it must be an integer"
        ))
    })
}

/// Looks the trace up: 404 when the file has no such trace.
pub async fn trace_span(
    state: &AppState,
    file: &FileRecord,
    trace_id: i64,
) -> Result<TraceSpan, ApiError> {
    let uuid = file.uuid;
    state
        .catalog
        .trace_span(uuid, trace_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("file {uuid} has no trace {trace_id}")))
}

/// Streams `plan` as MPEG-TS, starting the pipeline first so that a failure to start is
/// still a JSON error.
pub async fn respond(
    req: &Request,
    state: &AppState,
    plan: Plan,
    cache_control: &'static str,
) -> Result<Response, ApiError> {
    let http1 = req.version() < poem::http::Version::HTTP_2;
    let Plan {
        composition,
        file_name,
        expected,
    } = plan;
    tracing::debug!(
        launch = %crate::explain::launch_line(&composition, &file_name),
        "stream pipeline"
    );
    let headers = Response::builder()
        .content_type("video/mp2t")
        .header(header::CACHE_CONTROL, cache_control)
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{file_name}\""),
        );
    // A HEAD gets the headers without a pipeline: it would read no body.
    if req.extensions().get::<super::HeadRequest>().is_some() {
        return Ok(headers.finish());
    }
    let what = format!("stream {file_name}");
    let timeouts = stream::StreamTimeouts {
        first_output: state.clip_start_timeout,
        stall: state.stall_timeout,
    };
    // The slot is held by the stream until its pipeline stops.
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
    Ok(headers.body(body.into_body(http1)))
}

impl AppState {
    /// The plan for `render` of `file`; `remux` as in [`Plan::new`].
    pub fn plan(&self, file: &FileRecord, render: &Render, remux: bool) -> Plan {
        Plan::new(file, render, &self.pipelines, &self.catalog_path, remux)
    }
}

/// Detections may be re-imported: caches revalidate (and, without validators, refetch).
pub const DETECTIONS_CACHE_CONTROL: &str = "no-cache";

#[handler]
pub async fn bbox(
    req: &Request,
    Path(file_uuid): Path<String>,
    Data(state): Data<&Arc<AppState>>,
    Data(grant): Data<&Grant>,
) -> Result<Response, ApiError> {
    let file = state.authorized_file(grant, &file_uuid).await?;
    let render = parse_bbox(&QueryParams::from_request(req), &file, false)?;
    respond(
        req,
        state,
        state.plan(&file, &render, false),
        DETECTIONS_CACHE_CONTROL,
    )
    .await
}

#[handler]
pub async fn trace_video(
    req: &Request,
    Path((file_uuid, trace_id)): Path<(String, String)>,
    Data(state): Data<&Arc<AppState>>,
    Data(grant): Data<&Grant>,
) -> Result<Response, ApiError> {
    let file = state.authorized_file(grant, &file_uuid).await?;
    let trace_id = parse_trace_id(&trace_id)?;
    let query = QueryParams::from_request(req);
    // Parameters first: a bad one is a 400 whether or not the trace exists.
    let trace_query = TraceQuery::parse(&query)?;
    let span = trace_span(state, &file, trace_id).await?;
    let render = trace_query.render(&query, &file, trace_id, &span)?;
    respond(
        req,
        state,
        state.plan(&file, &render, false),
        DETECTIONS_CACHE_CONTROL,
    )
    .await
}
