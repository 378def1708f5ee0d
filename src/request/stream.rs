//! The job of every re-encoded stream (clips, the video with detections drawn, a trace's
//! span): which frames, with or without audio, what is drawn, whether the video is copied, and
//! the container (MPEG-TS, or fragmented MP4 for browsers).

use super::query::{Audio, Container, QueryParams, StreamParams};
use super::PlanError;
use crate::catalog::FileRecord;
use crate::media::codec::ByteStream;

/// A validated request for a span of a file as MPEG-TS or fragmented MP4 (H.264 + AAC).
#[derive(Debug, Clone)]
pub struct StreamJob {
    pub file: FileRecord,
    /// What the pipeline reads: the file's path, or its URL for this request (for s3://,
    /// pre-signed by [`super::Planner::plan`], which also checked the object).
    pub source: String,
    /// First frame, zero-based, through the frame index.
    pub first: u32,
    /// Last frame, inclusive.
    pub last: u32,
    /// Whether the stream carries audio: asked for and the file has some.
    pub audio: bool,
    /// What is drawn on the frames; `None` leaves them as decoded.
    pub overlay: Option<Overlay>,
    pub coding: Coding,
    /// MPEG-TS or fragmented MP4 (`format`).
    pub container: Container,
    pub cache_control: &'static str,
}

/// How the video gets into the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Decoded and encoded with pipelines/clip-video.gst.
    Reencode,
    /// The file's own video as it is (the whole file, in a codec MPEG-TS carries; MPEG-TS
    /// only).
    Copy(ByteStream),
    /// H.264 clips (`cut=smart`): the partial GOPs at the edges re-encoded, the whole GOPs
    /// between copied (see [`SmartCut`]).
    Smart(SmartCut),
}

/// A smart cut's boundaries: frames `first..copy_first` are re-encoded, `copy_first..copy_end`
/// copied, `copy_end..=last` re-encoded. Both boundaries are IDR pictures (checked in the
/// file's packets when planning), `first <= copy_first < copy_end <= last + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmartCut {
    pub copy_first: u32,
    /// Exclusive.
    pub copy_end: u32,
    /// The source's PTS - DTS at the copied IDR: the re-encoded frames get DTS = PTS - this,
    /// so that decoding times increase across the seams.
    pub reorder_delay_ns: u64,
}

impl Coding {
    /// `X-Framecast-Cut`: how the video was made.
    pub fn cut_name(self) -> &'static str {
        match self {
            Coding::Reencode => "reencode",
            Coding::Copy(_) => "copy",
            Coding::Smart(_) => "smart",
        }
    }
}

/// What `detectionoverlay` draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub detections: Detections,
    /// The info panel: frame number, time, detections in the frame, file uuid.
    pub debug: bool,
    /// The panel's first line.
    pub title: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detections {
    /// Every detection with its label.
    All,
    /// One trace, highlighted and interpolated between its detections.
    Trace(i64),
    /// None (the debug panel alone).
    None,
}

/// A clip depends on the file alone, which cannot change under its uuid unnoticed.
pub const FILE_CACHE_CONTROL: &str = "public, max-age=86400";
/// Detections may be re-imported: caches revalidate (and, without validators, refetch).
pub const DETECTIONS_CACHE_CONTROL: &str = "no-cache";

impl StreamJob {
    pub fn frames(&self) -> u32 {
        self.last - self.first + 1
    }

    /// Stream time the span covers, from its first frame's timestamp to the end of its last.
    pub fn duration_ns(&self) -> u64 {
        let index = &self.file.media.frame_index;
        let start = index.timestamp(self.first).unwrap_or(0);
        let end = index.timestamp(self.last + 1).unwrap_or(index.end_ns());
        end.saturating_sub(start)
    }

    /// `Content-Disposition` file name: `<uuid>_<first>-<last>.ts` (or `.mp4`).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}-{}.{}",
            self.file.uuid,
            self.first,
            self.last,
            self.container.extension()
        )
    }
}

/// `start`: the first frame to stream, within `first..=last`.
pub(super) fn start_frame(query: &QueryParams, first: u32, last: u32) -> Result<u32, PlanError> {
    let rule = format!("a frame number from {first} to {last}");
    Ok(query
        .integer("start", first.into()..=last.into(), &rule)?
        .map_or(first, |start| start as u32))
}

/// Audio when asked for and the file has some.
pub(super) fn audio(params: &StreamParams, file: &FileRecord) -> bool {
    params.audio == Audio::On && file.media.has_audio
}

/// The last frame's number.
pub(super) fn last_frame(file: &FileRecord) -> u32 {
    file.frame_count().saturating_sub(1) as u32
}
