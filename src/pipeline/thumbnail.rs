//! One exact frame as JPEG: the pipeline, its identity (ETag), and running it.

use std::time::{Duration, Instant};

use gst::prelude::*;
use sha2::{Digest, Sha256};

use super::overlay::Drawing;
use super::warm::{DecodeError, Decoder, DecoderPool};
use super::{files, ChainUse, Composition, ElementSpec, PipelineError, PipelineFiles, Prop, Stage};
use crate::admission::PipelineKind;
use crate::catalog::FileRecord;
use crate::metrics::{metrics, CacheOutcome, PipelineFailure};
use crate::request::ThumbnailJob;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("the pipeline produced no image for frame {0}")]
    NoImage(u32),
    #[error("the decoder produced frame {got:?} where frame {want} was expected")]
    WrongFrame { want: u32, got: Option<u32> },
}

/// The pipeline for `thumbnail`: framesrc (exactly that frame) ! [videoconvert ! videoflip,
/// for sideways files] ! [videoconvert ! detectionoverlay, reading from `drawing`] !
/// [videoconvert ! RGB] ! [videocrop] ! [videoscale ! capsfilter] ! pipelines/thumbnail.gst
/// ! jpegsize. The overlay draws on the upright picture before the crop, so boxes are
/// cropped with the picture.
pub fn composition(
    thumbnail: &ThumbnailJob,
    files: &PipelineFiles,
    drawing: &Drawing,
) -> Composition {
    let (file, frame) = (&thumbnail.file, thumbnail.frame);
    let mut stages = vec![Stage::Element(super::source::frame_range(
        file,
        &thumbnail.source,
        frame,
        frame,
        false,
    ))];
    // Upright first: the crop is in the upright picture's pixels.
    stages.extend(super::source::upright(file));
    if let Some(overlay) = &thumbnail.overlay {
        // As in the streams: formats the overlay cannot draw on are converted first.
        stages.push(Stage::Element(ElementSpec::new("videoconvert")));
        stages.push(Stage::Element(drawing.element(file, frame, overlay)));
    }
    if thumbnail.crop.is_some() || thumbnail.size.is_some() {
        // Cut and scaled in RGB, where every pixel has its own colour. videocrop on 4:2:0
        // at an odd x or y keeps the chroma of the pixel pair the edge splits, half a pixel
        // off (16-20 dB against the frame's own pixels on sharp colour edges); videoscale
        // (GStreamer 1.22) to a 4:2:0 frame one pixel wide gets its colour wrong (red for
        // grey). The chain's videoconvert then passes RGB through.
        // Chroma repeated, not interpolated, as in pipelines/thumbnail.gst.
        stages.push(Stage::Element(
            ElementSpec::new("videoconvert").prop("chroma-mode", Prop::Enum("none")),
        ));
        stages.push(Stage::Element(
            ElementSpec::new("capsfilter").prop(
                "caps",
                Prop::Caps(
                    gst::Caps::builder("video/x-raw")
                        .field("format", "RGB")
                        .build(),
                ),
            ),
        ));
    }
    if let Some(crop) = thumbnail.crop {
        let px = |v: u32| Prop::I32(v as i32);
        stages.push(Stage::Element(
            ElementSpec::new("videocrop")
                .prop("left", px(crop.x))
                .prop("top", px(crop.y))
                .prop("right", px(file.media.width - crop.x - crop.w))
                .prop("bottom", px(file.media.height - crop.y - crop.h)),
        ));
    }
    if let Some((width, height)) = thumbnail.size {
        let caps = gst::Caps::builder("video/x-raw")
            .field("width", width as i32)
            .field("height", height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        // Stretched to exactly that size, as ffmpeg's scale=W:H does. videoscale's default
        // (add-borders) letterboxes a different aspect ratio instead, and where the picture
        // would be less than a row high (width=1&height=7 of a 4:3 frame) it leaves the
        // frame unwritten: uninitialised memory, other bytes from run to run.
        stages.push(Stage::Element(
            ElementSpec::new("videoscale").prop("add-borders", Prop::Bool(false)),
        ));
        stages.push(Stage::Element(
            ElementSpec::new("capsfilter").prop("caps", Prop::Caps(caps)),
        ));
    }
    let overrides = thumbnail
        .quality
        .map(|q| ("encoder", "quality", Prop::I32(q)))
        .into_iter()
        .collect();
    stages.push(Stage::Chain(ChainUse {
        chain: files.get(files::THUMBNAIL).clone(),
        overrides,
    }));
    // The chain pads the frame to whole MCUs for jpegenc (edgepad, see
    // pipelines/thumbnail.gst); the JPEG header gets the picture's own width back.
    let (width, _) = output_size(thumbnail);
    stages.push(Stage::Element(
        ElementSpec::new("jpegsize").prop("width", Prop::U32(width)),
    ));
    Composition { stages }
}

/// The JPEG's width and height: the requested size, else the crop's, else the upright
/// frame's.
fn output_size(thumbnail: &ThumbnailJob) -> (u32, u32) {
    let media = &thumbnail.file.media;
    thumbnail.size.unwrap_or_else(|| {
        thumbnail
            .crop
            .map_or((media.width, media.height), |crop| (crop.w, crop.h))
    })
}

/// About what the pipeline of `thumbnail` holds at its peak, in bytes, for admission:
/// the decoder's frames (references and threads: about 20 frames of the source's size),
/// about 5 bytes per output pixel (scaled frame, RGB, the encoder's buffers), and the
/// elements themselves. Measured peaks on 2026-12-01 (gst-launch RSS less the 61 MB an
/// idle process with libav loaded takes): 720p frame 27 MB, scaled to 3840x2160 62 MB, to
/// 7680x4320 172 MB.
pub fn memory_cost(thumbnail: &ThumbnailJob) -> u64 {
    let media = &thumbnail.file.media;
    let source = media.width as u64 * media.height as u64;
    let (width, height) = output_size(thumbnail);
    let output = width as u64 * height as u64;
    20 * source * 3 / 2 + 5 * output + (4 << 20)
}

/// A strong ETag naming exactly these bytes: the file as imported, the request, the
/// pipeline file that encodes it and, for a drawn frame, its detections and label font.
pub fn etag(thumbnail: &ThumbnailJob, files: &PipelineFiles, drawing: &Drawing) -> String {
    let file = &thumbnail.file;
    // The record's identity (where, which object) as well as the request: a re-import that
    // changes the file changes the key, on every instance alike.
    let identity = format!(
        "{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        file.uuid,
        file.location,
        file.size,
        file.mtime_ns,
        file.etag,
        thumbnail.frame,
        thumbnail.crop,
        thumbnail.size,
        thumbnail.quality,
        files.get(files::THUMBNAIL).digest
    );
    // Only drawn thumbnails add to it: the ETags of plain ones stay as they were.
    let identity = match (&thumbnail.overlay, &thumbnail.detections_digest) {
        (Some(overlay), digest) => {
            format!("{identity}|{overlay:?}|{digest:?}|{:?}", drawing.label_font)
        }
        (None, _) => identity,
    };
    format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(identity.as_bytes()))[..32]
    )
}

/// Runs `composition` (from [`composition`]) and returns the JPEG, after checking the
/// decoder gave the frame the index names; a failure is counted in the metrics. Blocking.
///
/// With `pool` (enabled), the frame comes from a warm decoder when one is positioned just
/// before it, else from a new one, which is parked afterwards; the JPEG is encoded from the
/// decoded frame by the rest of `composition` (the same bytes, see [`encode`]).
pub fn run(
    thumbnail: &ThumbnailJob,
    composition: &Composition,
    timeout: Duration,
    pool: Option<&DecoderPool>,
) -> Result<Vec<u8>, ThumbnailError> {
    let jpeg = match pool.filter(|p| p.enabled()) {
        Some(pool) => jpeg_warm(thumbnail, composition, timeout, pool),
        None => jpeg(thumbnail, composition, timeout),
    };
    if let Err(e) = &jpeg {
        let failure = match e {
            ThumbnailError::Pipeline(PipelineError::Timeout(_)) => PipelineFailure::Timeout,
            ThumbnailError::Pipeline(_) => PipelineFailure::Start,
            ThumbnailError::NoImage(_) | ThumbnailError::WrongFrame { .. } => {
                PipelineFailure::Output
            }
        };
        metrics().pipeline_failed(PipelineKind::Thumbnail, failure);
    }
    jpeg
}

fn jpeg(
    thumbnail: &ThumbnailJob,
    composition: &Composition,
    timeout: Duration,
) -> Result<Vec<u8>, ThumbnailError> {
    let file = &thumbnail.file;
    let samples = super::collect_samples(composition, timeout)?;
    // framesrc passes only the requested frame; checking its timestamp against the index
    // guards the promise that this is frame N, not a neighbour.
    let sample = samples
        .first()
        .ok_or(ThumbnailError::NoImage(thumbnail.frame))?;
    let got = frame_of(file, sample);
    if got != Some(thumbnail.frame) {
        return Err(ThumbnailError::WrongFrame {
            want: thumbnail.frame,
            got,
        });
    }
    bytes(thumbnail, sample)
}

fn bytes(thumbnail: &ThumbnailJob, sample: &gst::Sample) -> Result<Vec<u8>, ThumbnailError> {
    let buffer = sample
        .buffer()
        .ok_or(ThumbnailError::NoImage(thumbnail.frame))?;
    let map = buffer
        .map_readable()
        .map_err(|_| ThumbnailError::NoImage(thumbnail.frame))?;
    Ok(map.as_slice().to_vec())
}

/// The frame number the index gives a decoded sample's stream time.
pub(crate) fn frame_of(file: &FileRecord, sample: &gst::Sample) -> Option<u32> {
    let buffer = sample.buffer()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let stream_time = segment.to_stream_time(buffer.pts()?)?;
    file.media.frame_index.decoded_frame(stream_time.nseconds())
}

impl From<DecodeError> for ThumbnailError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Pipeline(e) => ThumbnailError::Pipeline(e),
            DecodeError::Ended(frame) => ThumbnailError::NoImage(frame),
            DecodeError::WrongFrame { want, got } => ThumbnailError::WrongFrame { want, got },
        }
    }
}

fn jpeg_warm(
    thumbnail: &ThumbnailJob,
    composition: &Composition,
    timeout: Duration,
    pool: &DecoderPool,
) -> Result<Vec<u8>, ThumbnailError> {
    let (file, frame) = (&thumbnail.file, thumbnail.frame);
    let deadline = Instant::now() + timeout;
    let warm = pool.take(file, frame).and_then(|mut decoder| {
        match decoder.frame(file, frame, deadline, timeout) {
            Ok(sample) => Some((decoder, sample)),
            Err(e) => {
                // The cold path below still answers exactly; the decoder is dropped.
                tracing::warn!(frame, error = %e, "warm decoder failed; seeking instead");
                None
            }
        }
    });
    let (decoder, sample) = match warm {
        Some(found) => {
            metrics().warm_decoder_lookup(CacheOutcome::Hit);
            found
        }
        None => {
            metrics().warm_decoder_lookup(CacheOutcome::Miss);
            let mut decoder = Decoder::start(file, &thumbnail.source, frame)?;
            let sample = decoder.frame(file, frame, deadline, timeout)?;
            (decoder, sample)
        }
    };
    // Parked before encoding: the next request for this file can step on meanwhile (the
    // sample keeps its own buffer).
    pool.put(file, decoder);
    let remaining = deadline.saturating_duration_since(Instant::now());
    encode(thumbnail, composition, &sample, remaining)
}

/// The name of the encoder pipeline's appsrc.
const FEED: &str = "feed";

/// Encodes the decoded `sample` with `composition` after its framesrc: `appsrc` (the
/// sample's caps and segment) ! the same elements. The elements see the same frame, caps and
/// timestamps as in the single pipeline, so the JPEG is the same bytes (tests/warm.rs
/// checks this against `framecast explain`'s line).
fn encode(
    thumbnail: &ThumbnailJob,
    composition: &Composition,
    sample: &gst::Sample,
    timeout: Duration,
) -> Result<Vec<u8>, ThumbnailError> {
    let feed = ElementSpec::new("appsrc")
        .named(FEED)
        .prop("format", Prop::Enum("time"))
        // The sample's segment (stream times of the file) goes downstream with it.
        .prop("handle-segment-change", Prop::Bool(true));
    let encoder = Composition {
        stages: std::iter::once(Stage::Element(feed))
            .chain(composition.stages.iter().skip(1).cloned())
            .collect(),
    };
    let (pipeline, appsink) = encoder.build().map_err(PipelineError::Build)?;
    let appsrc = pipeline
        .by_name(FEED)
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| PipelineError::Build("no appsrc in the encoder".into()))?;
    let feed = || {
        appsrc
            .push_sample(sample)
            .and_then(|_| appsrc.end_of_stream())
            .map(|_| ())
            .map_err(|e| PipelineError::Build(format!("cannot feed the encoder: {e}")))
    };
    let samples = super::collect_built(pipeline, &appsink, timeout, feed)?;
    let jpeg = samples
        .first()
        .ok_or(ThumbnailError::NoImage(thumbnail.frame))?;
    bytes(thumbnail, jpeg)
}
