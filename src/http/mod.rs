//! The HTTP surface: routes, token checks, access log. Handlers stay thin: they parse and
//! validate into typed values and call plain functions.

mod access_log;
mod auth;
pub mod error;
mod params;
mod video;

use std::sync::Arc;

use poem::{get, handler, Endpoint, EndpointExt, Route};

use crate::auth::Verifier;
use crate::catalog::{Catalog, FileRecord, FileUuid};
use error::ApiError;

/// What every handler may use; shared by all requests.
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub verifier: Verifier,
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
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.file(uuid))
            .await
            .map_err(ApiError::internal)??
            .ok_or_else(|| ApiError::FileNotFound(uuid.to_string()))
    }
}

#[handler]
fn health() -> poem::web::Json<serde_json::Value> {
    poem::web::Json(serde_json::json!({"success": true, "status": "ok"}))
}

pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let api = Route::new()
        .at("/file/:file_uuid/video", get(video::video))
        .around(auth::require_token);
    Route::new()
        .at("/health", get(health))
        .nest("/api/v1", api)
        .data(state)
        .catch_all_error(|error| async move { error::render(error) })
        .around(access_log::log)
}
