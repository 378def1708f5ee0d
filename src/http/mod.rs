//! The HTTP surface: routes, token checks, access log. Handlers stay thin: they parse and
//! validate into typed values and call plain functions.

mod access_log;
mod auth;
pub mod clip;
pub mod error;
pub mod params;
pub mod rendered;
pub mod thumbnail;
mod video;

use std::sync::Arc;
use std::time::Duration;

use poem::http::{header, Method};
use poem::{get, handler, Endpoint, EndpointExt, IntoResponse, Request, Response, Route};

use crate::auth::Verifier;
use crate::catalog::{Catalog, FileRecord, FileUuid};
use crate::pipeline::PipelineFiles;
use error::ApiError;

/// Encoded thumbnails by ETag, bounded by their total size in bytes.
pub type ThumbnailCache = quick_cache::sync::Cache<String, bytes::Bytes, BytesWeighter>;

#[derive(Clone)]
pub struct BytesWeighter;

impl quick_cache::Weighter<String, bytes::Bytes> for BytesWeighter {
    fn weight(&self, key: &String, value: &bytes::Bytes) -> u64 {
        (key.len() + value.len()) as u64
    }
}

pub fn thumbnail_cache(max_bytes: u64) -> ThumbnailCache {
    // The item estimate only sizes internal tables: assume ~50 KB JPEGs.
    let estimated_items = (max_bytes / 50_000).max(16) as usize;
    ThumbnailCache::with_weighter(estimated_items, max_bytes, BytesWeighter)
}

/// What every handler may use; shared by all requests.
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub verifier: Verifier,
    pub pipelines: Arc<PipelineFiles>,
    pub thumbnails: ThumbnailCache,
    pub thumbnail_timeout: Duration,
    /// Longest clip served, in seconds of video.
    pub max_clip_seconds: u64,
    /// The SQLite catalog's path, which `detectionoverlay` reads detections from.
    pub catalog_path: std::path::PathBuf,
    /// A stream whose pipeline gives no output within this is abandoned with 503.
    pub clip_start_timeout: Duration,
    /// A stream without progress for this long is cut and its pipeline freed.
    pub stall_timeout: Duration,
    /// Pipeline slots: every route running a pipeline takes one first.
    pub admission: crate::admission::Admission,
}

impl AppState {
    /// Checks the token's scope, then looks the uuid up in the catalog (never on disk).
    async fn authorized_file(
        &self,
        grant: &crate::auth::Grant,
        uuid: &str,
    ) -> Result<FileRecord, ApiError> {
        let uuid: FileUuid = uuid.parse().map_err(ApiError::BadParameter)?;
        if !grant.allows(uuid) {
            return Err(ApiError::Forbidden(uuid.to_string()));
        }
        self.catalog
            .file(uuid)
            .await?
            .ok_or_else(|| ApiError::FileNotFound(uuid.to_string()))
    }
}

#[handler]
fn health() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({
        "success": true,
        "status": "ok",
        "active_pipelines": crate::pipeline::live_pipelines(),
    }))
}

/// Prometheus text format; see [`crate::metrics`].
#[handler]
fn metrics() -> Response {
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(crate::metrics::metrics().encode())
}

/// Left in a HEAD request's extensions before routing: poem answers a HEAD with the GET
/// handler (method rewritten to GET, body dropped), and the streaming handlers use this to
/// skip a pipeline whose output nobody would read.
#[derive(Clone, Copy)]
pub struct HeadRequest;

async fn mark_head<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if req.method() == Method::HEAD {
        req.extensions_mut().insert(HeadRequest);
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The routes. `with_metrics`: serve `GET /metrics` (it needs no token).
pub fn app(state: Arc<AppState>, with_metrics: bool) -> impl Endpoint {
    // The token is checked inside each route, not around them all, so that a 401 is counted
    // under its route's template.
    let api = Route::new()
        .at(
            "/file/:file_uuid/video",
            get(video::video).around(auth::require_token),
        )
        .at(
            "/file/:file_uuid/video/bbox",
            get(rendered::bbox).around(auth::require_token),
        )
        .at(
            "/file/:file_uuid/trace/:trace_id/video",
            get(rendered::trace_video).around(auth::require_token),
        )
        .at(
            "/file/:file_uuid/thumbnail",
            get(thumbnail::thumbnail).around(auth::require_token),
        )
        .at(
            "/file/:file_uuid/clip",
            get(clip::clip).around(auth::require_token),
        );
    let mut routes = Route::new().at("/health", get(health));
    if with_metrics {
        routes = routes.at("/metrics", get(metrics));
    }
    routes
        .nest("/api/v1", api)
        .data(state)
        .catch_all_error(|error| async move { error::render(error) })
        .around(mark_head)
        .around(access_log::log)
}
