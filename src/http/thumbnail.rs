//! GET /api/v1/file/:file_uuid/thumbnail?frame=N[&x=&y=&w=&h=][&width=&height=][&quality=]

use std::sync::Arc;

use headers::{ETag, HeaderMapExt, IfNoneMatch};
use poem::http::{header, StatusCode};
use poem::web::{Data, Path};
use poem::{handler, Request, Response};

use super::error::ApiError;
use super::params::QueryParams;
use super::AppState;
use crate::admission::PipelineKind;
use crate::auth::Grant;
use crate::catalog::FileRecord;
use crate::metrics::{metrics, CacheOutcome, PipelineFailure};
use crate::thumbnail::{self as render, Crop, Thumbnail, ThumbnailError};

/// Largest output side accepted for width/height: 8K.
const MAX_SIDE: i64 = 7680;

/// Validates the query against `file`; every refusal says what is valid.
pub fn parse(query: &QueryParams, file: &FileRecord) -> Result<Thumbnail, ApiError> {
    let last = file.frame_count().saturating_sub(1) as i64;
    let frame_rule = format!("a zero-based frame number from 0 to {last} (the last frame)");
    let frame = query
        .integer("frame", 0..=last, &frame_rule)?
        .ok_or_else(|| ApiError::bad_parameter(format!("frame is required: {frame_rule}")))?
        as u32;

    let crop_names = ["x", "y", "w", "h"];
    let given = crop_names.iter().filter(|n| query.has(n)).count();
    let crop = match given {
        0 => None,
        4 => {
            let (width, height) = (file.media.width as i64, file.media.height as i64);
            let x = query.integer("x", 0..=width - 1, &format!("0 to {}", width - 1))?;
            let y = query.integer("y", 0..=height - 1, &format!("0 to {}", height - 1))?;
            let w = query.integer("w", 1..=width, &format!("1 to {width}"))?;
            let h = query.integer("h", 1..=height, &format!("1 to {height}"))?;
            let (x, y, w, h) = (x.unwrap(), y.unwrap(), w.unwrap(), h.unwrap());
            if x + w > width || y + h > height {
                return Err(ApiError::bad_parameter(format!(
                    "the crop x={x}, y={y}, w={w}, h={h} reaches outside the {width}x{height} frame: \
                     x + w must be at most {width} and y + h at most {height}"
                )));
            }
            Some(Crop {
                x: x as u32,
                y: y as u32,
                w: w as u32,
                h: h as u32,
            })
        }
        _ => {
            return Err(ApiError::bad_parameter(
                "crop needs all four of x, y, w, h (or none of them)",
            ))
        }
    };

    let side_rule = format!("an integer from 1 to {MAX_SIDE}");
    let width = query.integer("width", 1..=MAX_SIDE, &side_rule)?;
    let height = query.integer("height", 1..=MAX_SIDE, &side_rule)?;
    let (source_w, source_h) = crop.map_or((file.media.width, file.media.height), |c| (c.w, c.h));
    // One side given: the other keeps the aspect ratio.
    let scaled = |given: i64, from: u32, to: u32| {
        ((given as f64 * to as f64 / from as f64).round() as u32).clamp(1, MAX_SIDE as u32)
    };
    let size = match (width, height) {
        (None, None) => None,
        (Some(w), Some(h)) => Some((w as u32, h as u32)),
        (Some(w), None) => Some((w as u32, scaled(w, source_w, source_h))),
        (None, Some(h)) => Some((scaled(h, source_h, source_w), h as u32)),
    };
    let quality = query
        .integer("quality", 1..=100, "an integer from 1 to 100")?
        .map(|q| q as i32);
    Ok(Thumbnail {
        frame,
        crop,
        size,
        quality,
    })
}

#[handler]
pub async fn thumbnail(
    req: &Request,
    Path(file_uuid): Path<String>,
    Data(state): Data<&Arc<AppState>>,
    Data(grant): Data<&Grant>,
) -> Result<Response, ApiError> {
    let file = state.authorized_file(grant, &file_uuid).await?;
    let request = parse(&QueryParams::from_request(req), &file)?;
    let etag = render::etag(&file, &request, &state.pipelines);
    let typed_etag: ETag = etag.parse().expect("hex etag is valid");
    let response = || {
        Response::builder()
            .header(header::CACHE_CONTROL, "public, max-age=86400")
            .typed_header(typed_etag.clone())
    };
    if let Some(if_none_match) = req.headers().typed_get::<IfNoneMatch>() {
        if !if_none_match.precondition_passes(&typed_etag) {
            return Ok(response().status(StatusCode::NOT_MODIFIED).finish());
        }
    }
    let jpeg = match state.thumbnails.get(&etag) {
        Some(jpeg) => {
            metrics().thumbnail_cache_lookup(CacheOutcome::Hit);
            jpeg
        }
        None => {
            metrics().thumbnail_cache_lookup(CacheOutcome::Miss);
            let composition = render::composition(&file, &request, &state.pipelines);
            tracing::debug!(
                launch = %crate::explain::launch_line(&composition, "frame.jpg"),
                "thumbnail pipeline"
            );
            let timeout = state.thumbnail_timeout;
            let permit = state.admission.admit(PipelineKind::Thumbnail).await?;
            let span = tracing::Span::current();
            // The permit moves into the blocking task: if the client goes away, the
            // pipeline still runs to its end or timeout, and keeps its slot until then.
            let jpeg = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                span.in_scope(|| render::render(&file, &request, &composition, timeout))
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| match e {
                ThumbnailError::Pipeline(crate::pipeline::PipelineError::Timeout(_)) => {
                    metrics().pipeline_failed(PipelineKind::Thumbnail, PipelineFailure::Timeout);
                    ApiError::Timeout(e.to_string())
                }
                e => {
                    metrics().pipeline_failed(PipelineKind::Thumbnail, PipelineFailure::Start);
                    ApiError::internal(e)
                }
            })?;
            let jpeg = bytes::Bytes::from(jpeg);
            state.thumbnails.insert(etag, jpeg.clone());
            jpeg
        }
    };
    Ok(response().content_type("image/jpeg").body(jpeg))
}
