//! The HTTP surface: routes, token checks, access log, and the answer to each kind of job.
//! Every job route runs the same [`JobEndpoint`]: authorized file, planned query, then the
//! job's answer (the original file, a thumbnail, or a stream); planning itself is in
//! [`crate::request`].

mod access_log;
mod auth;
pub mod error;
mod stream;
mod thumbnail;
mod video;

use std::sync::Arc;
use std::time::Duration;

use poem::http::{header, Method};
use poem::{get, handler, Endpoint, EndpointExt, IntoResponse, Request, Response};

use crate::auth::{Grant, Verifier};
use crate::catalog::{FileRecord, FileUuid, OverlaySource};
use crate::pipeline::overlay::{DetectionsFrom, Drawing};
use crate::pipeline::PipelineFiles;
use crate::pipeline::SourceHandle;
use crate::request::{Job, PathParams, Planner, QueryParams, Route, API_PREFIX};
use error::ApiError;

pub use thumbnail::{thumbnail_cache, ThumbnailCache};

/// What every handler may use; shared by all requests.
pub struct AppState {
    pub planner: Planner,
    pub verifier: Verifier,
    pub pipelines: Arc<PipelineFiles>,
    pub thumbnails: ThumbnailCache,
    pub thumbnail_timeout: Duration,
    /// `label_font` from the settings, for `detectionoverlay`.
    pub label_font: Option<String>,
    /// A stream whose pipeline gives no output within this is abandoned with 503.
    pub clip_start_timeout: Duration,
    /// A stream without progress for this long is cut and its pipeline freed.
    pub stall_timeout: Duration,
    /// Pipeline slots: every route running a pipeline takes one first.
    pub admission: Arc<crate::admission::Admission>,
    /// Warm thumbnail decoders (disabled with size 0).
    pub decoders: Arc<crate::pipeline::warm::DecoderPool>,
}

impl AppState {
    /// How the server's overlays get `file`'s detections: from the catalog, in-process.
    fn drawing(&self, file: FileUuid) -> Drawing {
        let source = OverlaySource::new(
            self.planner.catalog.clone(),
            tokio::runtime::Handle::current(),
            file,
        );
        Drawing {
            detections: DetectionsFrom::Source(SourceHandle(Arc::new(source))),
            label_font: self.label_font.clone(),
        }
    }

    /// Checks the token's scope, then looks the uuid up in the catalog (never on disk).
    async fn authorized_file(&self, grant: &Grant, uuid: &str) -> Result<FileRecord, ApiError> {
        let uuid: FileUuid = uuid.parse().map_err(ApiError::BadParameter)?;
        if !grant.allows(uuid) {
            return Err(ApiError::Forbidden(uuid.to_string()));
        }
        self.planner
            .catalog
            .file(uuid)
            .await?
            .ok_or_else(|| ApiError::FileNotFound(uuid.to_string()))
    }
}

/// One job route: the file (after the token's scope), the job planned from the query, and
/// the job's answer. The token itself is checked around it by [`auth::require_token`].
struct JobEndpoint(Route);

impl Endpoint for JobEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let state = req
            .data::<Arc<AppState>>()
            .cloned()
            .expect("AppState is attached to the app");
        let grant = req
            .extensions()
            .get::<Grant>()
            .expect("require_token runs first");
        let path = PathParams {
            file_uuid: req
                .raw_path_param("file_uuid")
                .unwrap_or_default()
                .to_owned(),
            trace_id: req.raw_path_param("trace_id").map(str::to_owned),
        };
        let file = state.authorized_file(grant, &path.file_uuid).await?;
        let query = QueryParams::parse(req.uri().query().unwrap_or(""));
        let job = state
            .planner
            .plan(self.0, &path, file, &query)
            .await
            .map_err(ApiError::from)?;
        let response = match job {
            Job::Original(file) => video::original(&req, &file, state.stall_timeout).await,
            Job::Thumbnail(job) => thumbnail::respond(&req, &state, job).await,
            Job::Stream(job) => stream::respond(&req, &state, job).await,
        };
        Ok(response?)
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

/// Whether the client asked with HEAD: the response's headers are all it will read.
fn is_head(req: &Request) -> bool {
    req.extensions().get::<HeadRequest>().is_some()
}

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
    let api = Route::ALL
        .into_iter()
        .fold(poem::Route::new(), |api, route| {
            api.at(
                route.template(),
                get(JobEndpoint(route)).around(auth::require_token),
            )
        });
    let mut routes = poem::Route::new().at("/health", get(health));
    if with_metrics {
        routes = routes.at("/metrics", get(metrics));
    }
    routes
        .nest(API_PREFIX, api)
        .data(state)
        .catch_all_error(|error| async move { error::render(error) })
        .around(mark_head)
        .around(access_log::log)
}
