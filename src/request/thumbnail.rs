//! `/thumbnail?frame=N[&x=&y=&w=&h=][&width=&height=][&quality=][&mode=debug]`: one exact
//! frame as JPEG, optionally cropped and scaled, with `mode=debug` its detections drawn as
//! the bbox stream with `mode=debug` draws that frame.

use super::query::{Mode, QueryParams};
use super::stream::{Detections, Overlay};
use super::{Limits, PlanError};
use crate::catalog::FileRecord;

/// A crop rectangle in source pixels, inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// A validated thumbnail request.
#[derive(Debug, Clone)]
pub struct ThumbnailJob {
    pub file: FileRecord,
    /// What the pipeline reads: the file's path, or its URL for this request (for s3://,
    /// pre-signed by [`super::Planner::plan`], which also checked the object).
    pub source: String,
    pub frame: u32,
    pub crop: Option<Crop>,
    /// Output size after cropping; `None` keeps the (cropped) size.
    pub size: Option<(u32, u32)>,
    /// JPEG quality override; `None` uses the pipeline file's.
    pub quality: Option<i32>,
    /// What is drawn on the frame before cropping (mode=debug).
    pub overlay: Option<Overlay>,
    /// With an overlay, a digest of the frame's detections as the catalog has them: part of
    /// the ETag, so re-imported detections are never served from a cache.
    pub detections_digest: Option<String>,
}

impl ThumbnailJob {
    /// A frame's JPEG depends on the file alone (and the request, which the ETag names).
    pub const CACHE_CONTROL: &'static str = "public, max-age=86400";
}

/// Largest output side accepted for width/height: 8K.
const MAX_SIDE: i64 = 7680;

/// Validates the query against `file`; every refusal says what is valid.
pub fn plan(
    file: FileRecord,
    query: &QueryParams,
    limits: &Limits,
) -> Result<ThumbnailJob, PlanError> {
    let last = file.frame_count().saturating_sub(1) as i64;
    let frame_rule = format!("a zero-based frame number from 0 to {last} (the last frame)");
    let frame = query
        .integer("frame", 0..=last, &frame_rule)?
        .ok_or_else(|| PlanError::bad_parameter(format!("frame is required: {frame_rule}")))?
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
                return Err(PlanError::bad_parameter(format!(
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
            return Err(PlanError::bad_parameter(
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
        ((given as f64 * to as f64 / from as f64).round() as i64).max(1)
    };
    let size = match (width, height) {
        (None, None) => None,
        (Some(w), Some(h)) => Some((w, h)),
        (Some(w), None) => Some((w, scaled(w, source_w, source_h))),
        (None, Some(h)) => Some((scaled(h, source_h, source_w), h)),
    };
    // The output's size bounds the pipeline's memory: refuse before decoding anything.
    let (out_w, out_h) = size.unwrap_or((source_w.into(), source_h.into()));
    let pixels = out_w.saturating_mul(out_h) as u64;
    if pixels > limits.max_thumbnail_pixels || out_w.max(out_h) > MAX_SIDE {
        return Err(PlanError::bad_parameter(format!(
            "the thumbnail would be {out_w}x{out_h} ({pixels} pixels): a thumbnail may have at \
             most {} pixels (max_thumbnail_pixels) and {MAX_SIDE} on a side; ask for a smaller \
             width or height (one of them keeps the aspect ratio)",
            limits.max_thumbnail_pixels
        )));
    }
    let size = size.map(|(w, h)| (w as u32, h as u32));
    let quality = query
        .integer("quality", 1..=100, "an integer from 1 to 100")?
        .map(|q| q as i32);
    let mode = query.choice(
        "mode",
        &[("normal", Mode::Normal), ("debug", Mode::Debug)],
        Mode::Normal,
    )?;
    // As /video/bbox?mode=debug draws the frame: every detection, labels and the panel.
    let overlay = (mode == Mode::Debug).then_some(Overlay {
        detections: Detections::All,
        debug: true,
        title: None,
    });
    Ok(ThumbnailJob {
        source: file.location.stored(),
        file,
        frame,
        crop,
        size,
        quality,
        overlay,
        detections_digest: None,
    })
}
