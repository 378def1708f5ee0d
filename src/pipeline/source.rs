//! The source end of every pipeline: framesrc over an exact frame range, through the index.

use super::{ElementSpec, Prop, Stage};
use crate::catalog::FileRecord;
use crate::media::Orientation;

/// framesrc decoding frames `first..=last` of `file` (zero-based, through the index).
///
/// `start` is the first frame's stream time and `stop` the next frame's, so framesrc keeps
/// exactly the frames in `[start, stop)` (it absorbs the µs-level rounding of demuxers).
/// `start` is never before frame 0, even for frame 0: seeking before a stream's first frame
/// makes tsdemux re-base its timestamps, and an MP4 edit list that starts mid-frame makes
/// the decoder emit a clipped pre-roll frame at stream time 0, which is not a frame. The
/// last frame leaves `stop` open.
///
/// `source` is what framesrc opens: the file's path, or its http(s) URL (framesrc then reads
/// it with souphttpsrc).
pub fn frame_range(
    file: &FileRecord,
    source: &str,
    first: u32,
    last: u32,
    audio: bool,
) -> ElementSpec {
    let index = &file.media.frame_index;
    let start = index.timestamp(first).expect("caller checked the frame");
    let stop = index.timestamp(last + 1).unwrap_or(u64::MAX);
    ElementSpec::new("framesrc")
        .prop("location", Prop::Str(source.to_owned()))
        .prop("start", Prop::U64(start))
        .prop("stop", Prop::U64(stop))
        .prop("audio", Prop::Bool(audio))
}

/// What turns framesrc's video upright, as players show it (see [`Orientation`]): nothing
/// for most files; for a file recorded sideways, `videoflip` with the orientation read at
/// import given explicitly (so `framecast explain` shows it and tags cannot change it),
/// after a `videoconvert` for the few formats videoflip does not take (8-bit 4:2:2 and
/// 4:1:1, say; it passes the others through untouched).
pub fn upright(file: &FileRecord) -> Vec<Stage> {
    match file.media.frame_index.orientation() {
        Orientation::Identity => Vec::new(),
        orientation => vec![
            Stage::Element(ElementSpec::new("videoconvert")),
            Stage::Element(
                ElementSpec::new("videoflip")
                    .prop("video-direction", Prop::Enum(orientation.video_direction())),
            ),
        ],
    }
}

/// The element reading `source` as it is (a path with filesrc, a URL with souphttpsrc set up
/// as framesrc sets it up), for pipelines that demux without decoding.
pub fn reader(source: &str) -> ElementSpec {
    use gstframecast::reader;
    let spec = ElementSpec::new(reader::factory(source));
    let spec = if reader::is_url(source) {
        spec.prop("automatic-redirect", Prop::Bool(false))
            .prop("blocksize", Prop::U32(reader::HTTP_BLOCKSIZE))
            .prop("timeout", Prop::U32(reader::HTTP_TIMEOUT_SECONDS))
            .prop("retries", Prop::I32(1))
    } else {
        spec
    };
    spec.prop("location", Prop::Str(source.to_owned()))
}
