//! Storyboards: the WebVTT thumbnail track and its sprite sheets (planned in
//! [`crate::request::storyboard`], rendered in [`crate::pipeline::storyboard`]). Sheets are
//! cached in memory (bounded), keyed by the file as imported and the tiles.

use std::time::Duration;

use once_cell::sync::Lazy;
use poem::http::header;
use poem::{Endpoint, Request, Response};

use super::error::ApiError;
use super::thumbnail::{thumbnail_cache, ThumbnailCache};
use super::AppState;
use crate::admission::PipelineKind;
use crate::client_text::number;
use crate::pipeline::storyboard;
use crate::request::storyboard::{self as plan, Storyboard};
use crate::request::QueryParams;

/// Memory for rendered sheets (a 10x10 sheet of 160x90 tiles is about 100 KB).
const SHEET_CACHE_BYTES: u64 = 32 << 20;
/// The longest a sheet may take to render (100 keyframe decodes of a long-GOP 4K file).
const SHEET_TIMEOUT: Duration = Duration::from_secs(60);

static SHEETS: Lazy<ThumbnailCache> = Lazy::new(|| thumbnail_cache(SHEET_CACHE_BYTES));

/// The storyboard routes under `/api/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryboardRoute {
    Track,
    Sheet,
}

impl StoryboardRoute {
    pub const ALL: [StoryboardRoute; 2] = [StoryboardRoute::Track, StoryboardRoute::Sheet];

    pub fn template(self) -> &'static str {
        match self {
            StoryboardRoute::Track => "/file/:file_uuid/storyboard.vtt",
            StoryboardRoute::Sheet => "/file/:file_uuid/storyboard.jpg",
        }
    }
}

pub struct StoryboardEndpoint(pub StoryboardRoute);

impl Endpoint for StoryboardEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let (state, grant) = super::state_and_grant(&req);
        let uuid = req.raw_path_param("file_uuid").unwrap_or_default();
        let file = state.authorized_file(grant, uuid).await?;
        let query = QueryParams::parse(req.uri().query().unwrap_or(""));
        let mut storyboard = plan::plan(file, &query).map_err(ApiError::from)?;
        Ok(match self.0 {
            StoryboardRoute::Track => track(&storyboard, &query),
            StoryboardRoute::Sheet => {
                let sheet = plan::sheet(&storyboard, &query).map_err(ApiError::from)?;
                let (storage, file) = (&state.planner.storage, &storyboard.file);
                if file.location.is_remote() {
                    let failed = |e| ApiError::storage(file.uuid, e);
                    storage.check(&file.imported()).await.map_err(failed)?;
                    storyboard.source = storage.source(&file.location).map_err(failed)?;
                }
                sheet_response(&req, &state, storyboard, sheet).await?
            }
        })
    }
}

/// The VTT; its sheet URLs are relative to it and carry the request's `access_token`, if it
/// came as a parameter (a player's `<track>` cannot send headers).
fn track(storyboard: &Storyboard, query: &QueryParams) -> Response {
    let mut common = form_urlencoded::Serializer::new(String::new());
    common.append_pair("width", &storyboard.width.to_string());
    common.append_pair("interval", &number(storyboard.interval_ns as f64 / 1e9));
    if let Some(token) = query.text("access_token") {
        common.append_pair("access_token", token);
    }
    let common = common.finish();
    let vtt = storyboard.vtt(|sheet| format!("storyboard.jpg?{common}&sheet={sheet}"));
    Response::builder()
        .content_type("text/vtt; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, max-age=3600")
        .body(vtt)
}

async fn sheet_response(
    req: &Request,
    state: &AppState,
    storyboard: Storyboard,
    sheet: u32,
) -> Result<Response, ApiError> {
    let response = || {
        Response::builder()
            .content_type("image/jpeg")
            .header(header::CACHE_CONTROL, "private, max-age=86400")
    };
    let key = storyboard.cache_key(sheet);
    if let Some(jpeg) = SHEETS.get(&key) {
        return Ok(response().body(jpeg));
    }
    if super::is_head(req) {
        return Ok(response().finish());
    }
    let permit = state
        .admission
        .admit(
            PipelineKind::Thumbnail,
            storyboard::memory_cost(&storyboard, sheet),
        )
        .await?;
    let span = tracing::Span::current();
    let jpeg = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        span.in_scope(|| storyboard::render(&storyboard, sheet, SHEET_TIMEOUT))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let jpeg = bytes::Bytes::from(jpeg);
    SHEETS.insert(key, jpeg.clone());
    Ok(response().body(jpeg))
}
