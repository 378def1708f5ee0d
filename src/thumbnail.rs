//! One exact frame as JPEG: the pipeline, its identity (ETag), and running it.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::catalog::FileRecord;
use crate::pipeline::{
    self, files, ChainUse, Composition, ElementSpec, PipelineError, PipelineFiles, Prop, Stage,
};

/// A crop rectangle in source pixels, inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// A validated thumbnail request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub frame: u32,
    pub crop: Option<Crop>,
    /// Output size after cropping; `None` keeps the (cropped) size.
    pub size: Option<(u32, u32)>,
    /// JPEG quality override; `None` uses the pipeline file's.
    pub quality: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("the pipeline produced no image for frame {0}")]
    NoImage(u32),
    #[error("the decoder produced frame {got:?} where frame {want} was expected")]
    WrongFrame { want: u32, got: Option<u32> },
}

/// The pipeline for `thumbnail` of `file`: framesrc (exactly that frame) ! videocrop !
/// videoscale ! capsfilter ! pipelines/thumbnail.gst.
pub fn composition(file: &FileRecord, thumbnail: &Thumbnail, files: &PipelineFiles) -> Composition {
    let frame = thumbnail.frame;
    let mut stages = vec![Stage::Element(pipeline::source::frame_range(
        file, frame, frame, false,
    ))];
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
        stages.push(Stage::Element(ElementSpec::new("videoscale")));
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
    Composition { stages }
}

/// A strong ETag naming exactly these bytes: the file as imported, the request, and the
/// pipeline file that encodes it.
pub fn etag(file: &FileRecord, thumbnail: &Thumbnail, files: &PipelineFiles) -> String {
    let identity = format!(
        "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{}",
        file.uuid,
        file.size,
        file.mtime_ns,
        thumbnail.frame,
        thumbnail.crop,
        thumbnail.size,
        thumbnail.quality,
        files.get(files::THUMBNAIL).digest
    );
    format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(identity.as_bytes()))[..32]
    )
}

/// Runs `composition` (from [`composition`]) and returns the JPEG, after checking the
/// decoder gave the frame the index names. Blocking.
pub fn render(
    file: &FileRecord,
    thumbnail: &Thumbnail,
    composition: &Composition,
    timeout: Duration,
) -> Result<Vec<u8>, ThumbnailError> {
    let samples = pipeline::collect_samples(composition, timeout)?;
    // framesrc passes only the requested frame; checking its timestamp against the index
    // guards the promise that this is frame N, not a neighbour.
    let frame_of = |sample: &gst::Sample| {
        let buffer = sample.buffer()?;
        let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
        let stream_time = segment.to_stream_time(buffer.pts()?)?;
        file.media.frame_index.decoded_frame(stream_time.nseconds())
    };
    let sample = samples
        .first()
        .ok_or(ThumbnailError::NoImage(thumbnail.frame))?;
    let got = frame_of(sample);
    if got != Some(thumbnail.frame) {
        return Err(ThumbnailError::WrongFrame {
            want: thumbnail.frame,
            got,
        });
    }
    let buffer = sample
        .buffer()
        .ok_or(ThumbnailError::NoImage(thumbnail.frame))?;
    let map = buffer
        .map_readable()
        .map_err(|_| ThumbnailError::NoImage(thumbnail.frame))?;
    Ok(map.as_slice().to_vec())
}
