//! A [`ThumbnailJob`]'s answer: the JPEG, from the cache or a pipeline, with a strong ETag.

use headers::{ETag, HeaderMapExt, IfNoneMatch};
use poem::http::{header, StatusCode};
use poem::{Request, Response};

use super::error::ApiError;
use super::AppState;
use crate::admission::PipelineKind;
use crate::metrics::{metrics, CacheOutcome};
use crate::pipeline::overlay::Drawing;
use crate::pipeline::thumbnail::{self, ThumbnailError};
use crate::pipeline::{launch, PipelineError};
use crate::request::ThumbnailJob;

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

pub async fn respond(
    req: &Request,
    state: &AppState,
    job: ThumbnailJob,
) -> Result<Response, ApiError> {
    let drawing = state.drawing(job.file.uuid);
    // One snapshot for the ETag and the pipeline, even if a reload swaps the files between.
    let pipelines = state.pipelines.load_full();
    let etag = thumbnail::etag(&job, &pipelines, &drawing);
    let typed_etag: ETag = etag.parse().expect("hex etag is valid");
    let response = || {
        Response::builder()
            .header(header::CACHE_CONTROL, ThumbnailJob::CACHE_CONTROL)
            .typed_header(typed_etag.clone())
    };
    if let Some(if_none_match) = req.headers().typed_get::<IfNoneMatch>() {
        if !if_none_match.precondition_passes(&typed_etag) {
            return Ok(response().status(StatusCode::NOT_MODIFIED).finish());
        }
    }
    let cached = state.thumbnails.get(&etag);
    // A HEAD runs no pipeline: Content-Length only when the JPEG is at hand.
    if super::is_head(req) {
        let response = response().content_type("image/jpeg");
        return Ok(match cached {
            Some(jpeg) => response.header(header::CONTENT_LENGTH, jpeg.len()).finish(),
            None => response.finish(),
        });
    }
    let jpeg = match cached {
        Some(jpeg) => {
            metrics().thumbnail_cache_lookup(CacheOutcome::Hit);
            jpeg
        }
        None => {
            metrics().thumbnail_cache_lookup(CacheOutcome::Miss);
            let jpeg = bytes::Bytes::from(run(state, job, &pipelines, &drawing).await?);
            state.thumbnails.insert(etag, jpeg.clone());
            jpeg
        }
    };
    Ok(response().content_type("image/jpeg").body(jpeg))
}

/// Runs the job's pipeline in an admission slot.
async fn run(
    state: &AppState,
    job: ThumbnailJob,
    pipelines: &crate::pipeline::PipelineFiles,
    drawing: &Drawing,
) -> Result<Vec<u8>, ApiError> {
    let composition = thumbnail::composition(&job, pipelines, drawing);
    tracing::debug!(
        launch = %launch::launch_line(&composition, "frame.jpg"),
        "thumbnail pipeline"
    );
    let timeout = state.thumbnail_timeout;
    let uuid = job.file.uuid;
    let permit = state
        .admission
        .admit(PipelineKind::Thumbnail, thumbnail::memory_cost(&job))
        .await?;
    let span = tracing::Span::current();
    let decoders = state.decoders.clone();
    // The permit moves into the blocking task: if the client goes away, the pipeline still
    // runs to its end or timeout, and keeps its slot until then.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        span.in_scope(|| thumbnail::run(&job, &composition, timeout, Some(&decoders)))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        ThumbnailError::Pipeline(PipelineError::Timeout(_)) => ApiError::Timeout(e.to_string()),
        ThumbnailError::Pipeline(ref failed) if failed.is_remote_read() => {
            ApiError::OriginFailed(uuid.to_string(), e.to_string())
        }
        e => ApiError::internal(e),
    })
}
