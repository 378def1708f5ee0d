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
pub fn frame_range(file: &FileRecord, first: u32, last: u32, audio: bool) -> ElementSpec {
    let index = &file.media.frame_index;
    let start = index.timestamp(first).expect("caller checked the frame");
    let stop = index.timestamp(last + 1).unwrap_or(u64::MAX);
    ElementSpec::new("framesrc")
        .prop("location", Prop::Path(file.path.clone()))
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
