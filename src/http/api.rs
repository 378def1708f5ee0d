//! The JSON API (what the viewer page reads): the files a token may see, one file's record,
//! its detections and traces, and every frame's presentation time. Same token and scopes as
//! the media routes; every list is bounded and paged (see [`crate::request::listing`]).
//! The routes are listed once, in [`JsonRoute`], for the router and for the OpenAPI check.

use poem::http::header;
use poem::{Endpoint, Request, Response};
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;
use crate::auth::Grant;
use crate::catalog::{FileRecord, FileSummary, FilesPage};
use crate::request::listing::{self, MAX_DETECTION_FRAMES, MAX_FRAME_TIMES};
use crate::request::QueryParams;

/// The OpenAPI 3 document of every route, checked in beside this file; a test checks that
/// it names every route of the router.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The JSON routes under `/api/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonRoute {
    Files,
    File,
    Detections,
    Traces,
    Frames,
}

impl JsonRoute {
    pub const ALL: [JsonRoute; 5] = [
        JsonRoute::Files,
        JsonRoute::File,
        JsonRoute::Detections,
        JsonRoute::Traces,
        JsonRoute::Frames,
    ];

    /// The path template under `/api/v1`, in poem's syntax.
    pub fn template(self) -> &'static str {
        match self {
            JsonRoute::Files => "/files",
            JsonRoute::File => "/file/:file_uuid",
            JsonRoute::Detections => "/file/:file_uuid/detections",
            JsonRoute::Traces => "/file/:file_uuid/traces",
            JsonRoute::Frames => "/file/:file_uuid/frames",
        }
    }
}

/// One JSON route; the token is checked around it by `auth::require_token`.
pub struct JsonEndpoint(pub JsonRoute);

impl Endpoint for JsonEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let (state, grant) = super::state_and_grant(&req);
        let query = QueryParams::parse(req.uri().query().unwrap_or(""));
        let body = match self.0 {
            JsonRoute::Files => files(&state, grant, &query).await?,
            route => {
                let uuid = req.raw_path_param("file_uuid").unwrap_or_default();
                let file = state.authorized_file(grant, uuid).await?;
                match route {
                    JsonRoute::File => file_record(&state, file).await?,
                    JsonRoute::Detections => detections(&state, &file, &query).await?,
                    JsonRoute::Traces => traces(&state, &file, &query).await?,
                    JsonRoute::Frames => frames(&file, &query)?,
                    JsonRoute::Files => unreachable!("matched above"),
                }
            }
        };
        Ok(json_response(&body))
    }
}

/// The JSON body with the API's headers: never cached by shared caches (tokens differ),
/// revalidated by the browser (detections may be re-imported).
pub fn json_response(body: &Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "private, no-cache")
        .body(body.to_string())
}

/// A file in a list: what the viewer shows, without the server's path (only its name).
fn summary_json(f: &FileSummary) -> Value {
    json!({
        "uuid": f.uuid,
        "name": f.path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "duration_seconds": f.duration_seconds,
        "fps": f.fps,
        "frames": f.frames,
        "width": f.width,
        "height": f.height,
        "audio": f.has_audio,
        "detections": f.detections,
    })
}

/// Seconds, from the frame index's nanoseconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

async fn files(state: &AppState, grant: &Grant, query: &QueryParams) -> Result<Value, ApiError> {
    let page = listing::files_page(query)?;
    let files = state
        .planner
        .catalog
        .files_page(&FilesPage {
            after: page.after,
            only: grant.files(),
            limit: page.limit,
        })
        .await?;
    // A full page may have a next one.
    let next_after = (files.len() == page.limit as usize)
        .then(|| files.last().map(|f| f.uuid.clone()))
        .flatten();
    Ok(json!({
        "files": files.iter().map(summary_json).collect::<Vec<_>>(),
        "next_after": next_after,
    }))
}

async fn file_record(state: &AppState, file: FileRecord) -> Result<Value, ApiError> {
    let summary = state
        .planner
        .catalog
        .files_page(&FilesPage {
            after: None,
            only: Some(vec![file.uuid]),
            limit: 1,
        })
        .await?
        .pop()
        .ok_or_else(|| ApiError::FileNotFound(file.uuid.to_string()))?;
    let mut body = summary_json(&summary);
    let media = &file.media;
    body["video_codec"] = json!(media.video_codec);
    body["audio_codec"] = json!(media.audio_codec);
    body["size_bytes"] = json!(file.size);
    body["keyframes"] = json!(media.frame_index.keyframes().len());
    body["end_time"] = json!(seconds(media.frame_index.end_ns()));
    Ok(body)
}

async fn detections(
    state: &AppState,
    file: &FileRecord,
    query: &QueryParams,
) -> Result<Value, ApiError> {
    let (first, last) = listing::frame_span(query, file, MAX_DETECTION_FRAMES)?;
    let rows = state
        .planner
        .catalog
        .detections(file.uuid, first, last)
        .await?;
    let index = &file.media.frame_index;
    let detections: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({
                "frame": d.frame,
                "time": index.timestamp(d.frame).map(seconds),
                "x": d.x, "y": d.y, "w": d.w, "h": d.h,
                "label": d.label,
                "confidence": d.confidence,
                "trace_id": d.trace_id,
                "identity": d.identity,
            })
        })
        .collect();
    Ok(json!({
        "start_frame": first,
        "end_frame": last,
        "detections": detections,
    }))
}

async fn traces(
    state: &AppState,
    file: &FileRecord,
    query: &QueryParams,
) -> Result<Value, ApiError> {
    let page = listing::traces_page(query)?;
    let traces = state
        .planner
        .catalog
        .traces(file.uuid, page.after, page.limit)
        .await?;
    let index = &file.media.frame_index;
    let next_after = (traces.len() == page.limit as usize)
        .then(|| traces.last().map(|t| t.trace_id))
        .flatten();
    let traces: Vec<Value> = traces
        .iter()
        .map(|t| {
            json!({
                "trace_id": t.trace_id,
                "first_frame": t.first_frame,
                "last_frame": t.last_frame,
                "first_time": index.timestamp(t.first_frame).map(seconds),
                "last_time": index.timestamp(t.last_frame).map(seconds),
                "identity": t.identity,
                "detections": t.detections,
            })
        })
        .collect();
    Ok(json!({ "traces": traces, "next_after": next_after }))
}

/// Every frame's presentation time in the original file, as a browser's `<video>` reports
/// it (`currentTime`, `requestVideoFrameCallback`'s `mediaTime`): the frame index's stream
/// time, after the container's edit list.
fn frames(file: &FileRecord, query: &QueryParams) -> Result<Value, ApiError> {
    let (first, last) = listing::frame_span(query, file, MAX_FRAME_TIMES)?;
    let index = &file.media.frame_index;
    let frames: Vec<Value> = (first..=last)
        .filter_map(|n| {
            let time = index.timestamp(n)?;
            Some(json!({ "frame": n, "time": seconds(time), "keyframe": index.is_keyframe(n) }))
        })
        .collect();
    Ok(json!({
        "start_frame": first,
        "end_frame": last,
        "frames": frames,
        "end_time": seconds(index.end_ns()),
    }))
}
