//! The HTTP surface: routes, token checks, access log, and the answer to each kind of job.
//! Every job route runs the same [`JobEndpoint`]: authorized file, planned query, then the
//! job's answer (the original file, a thumbnail, or a stream); planning itself is in
//! [`crate::request`].

mod access_log;
pub mod api;
mod auth;
pub mod error;
mod files;
mod storyboard;
mod stream;
mod thumbnail;
mod ui;
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

pub use files::ImportSettings;
pub use thumbnail::{thumbnail_cache, ThumbnailCache};

/// What every handler may use; shared by all requests.
pub struct AppState {
    pub planner: Planner,
    pub verifier: Verifier,
    /// Swapped whole by a reload (SIGHUP, [`crate::reload`]); a request keeps the files it
    /// started with.
    pub pipelines: arc_swap::ArcSwap<PipelineFiles>,
    pub thumbnails: ThumbnailCache,
    pub thumbnail_timeout: Duration,
    /// `label_font` from the settings, for `detectionoverlay`.
    pub label_font: Option<String>,
    /// A stream whose pipeline gives no output within this is abandoned with 503.
    pub clip_start_timeout: Duration,
    /// A stream without progress for this long is cut and its pipeline freed.
    pub stall_timeout: Duration,
    /// Pipeline slots: every route running a pipeline takes one first.
    /// The import API's allow-lists and limits.
    pub import: ImportSettings,
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

/// What every route behind the token check starts from: the shared state and the token's
/// grant (left in the request by [`auth::require_token`]).
fn state_and_grant(req: &Request) -> (Arc<AppState>, &Grant) {
    let state = req
        .data::<Arc<AppState>>()
        .cloned()
        .expect("AppState is attached to the app");
    let grant = req
        .extensions()
        .get::<Grant>()
        .expect("require_token runs first");
    (state, grant)
}

/// One job route: the file (after the token's scope), the job planned from the query, and
/// the job's answer. The token itself is checked around it by [`auth::require_token`].
struct JobEndpoint(Route);

impl Endpoint for JobEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let (state, grant) = state_and_grant(&req);
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
            Job::Original(file) => {
                video::original(&req, &file, state.stall_timeout, &state.planner.storage).await
            }
            Job::Thumbnail(job) => thumbnail::respond(&req, &state, job).await,
            Job::Stream(job) => stream::respond(&req, &state, job).await,
        };
        Ok(response?)
    }
}

/// Where the OpenAPI document is served, under `/api/v1`.
pub const OPENAPI_TEMPLATE: &str = "/openapi.json";

#[handler]
fn openapi() -> Response {
    Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(api::OPENAPI)
}

/// Every route template under `/api/v1` the router serves (for the OpenAPI check).
pub fn api_templates() -> Vec<&'static str> {
    Route::ALL
        .iter()
        .map(|r| r.template())
        .chain(api::JsonRoute::ALL.iter().map(|r| r.template()))
        .chain(
            storyboard::StoryboardRoute::ALL
                .iter()
                .map(|r| r.template()),
        )
        .chain([OPENAPI_TEMPLATE])
        .collect()
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
    // The import API shares its paths with JSON routes: other methods on them.
    let api = api::JsonRoute::ALL.into_iter().fold(api, |api, route| {
        let methods = get(api::JsonEndpoint(route));
        let methods = match route {
            api::JsonRoute::Files => methods.post(files::import_file),
            api::JsonRoute::File => methods.delete(files::delete_file),
            api::JsonRoute::Detections => methods.put(files::put_detections),
            _ => methods,
        };
        api.at(route.template(), methods.around(auth::require_token))
    });
    let api = storyboard::StoryboardRoute::ALL
        .into_iter()
        .fold(api, |api, route| {
            api.at(
                route.template(),
                get(storyboard::StoryboardEndpoint(route)).around(auth::require_token),
            )
        });
    // The API's description holds no data: no token needed.
    let api = api.at(OPENAPI_TEMPLATE, get(openapi));
    let mut routes = poem::Route::new()
        .at("/health", get(health))
        .at("/ui", get(ui::redirect))
        .at("/ui/", get(ui::index))
        .at("/ui/:name", get(ui::asset));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in OpenAPI document names exactly the routes the router serves.
    #[test]
    fn openapi_names_every_route() {
        let spec: serde_json::Value = serde_json::from_str(api::OPENAPI).unwrap();
        assert_eq!(spec["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        assert_eq!(spec["servers"][0]["url"], API_PREFIX);
        let documented: std::collections::BTreeSet<String> =
            spec["paths"].as_object().unwrap().keys().cloned().collect();
        let served: std::collections::BTreeSet<String> = api_templates()
            .iter()
            .map(|template| {
                template
                    .split('/')
                    .map(|part| match part.strip_prefix(':') {
                        Some(name) => format!("{{{name}}}"),
                        None => part.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        assert_eq!(served, documented);
        for (path, item) in spec["paths"].as_object().unwrap() {
            assert!(item["get"]["responses"]["200"].is_object(), "{path}");
            // Every path parameter of the template is described.
            for name in path.split('/').filter_map(|p| p.strip_prefix('{')) {
                let name = name.trim_end_matches('}');
                let parameters = item["get"]["parameters"].as_array().unwrap();
                assert!(
                    parameters
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{path}: {name}"
                );
            }
        }
    }
}
