//! The source end of every pipeline: framesrc over an exact frame range, through the index.

use super::{ElementSpec, Prop};
use crate::catalog::FileRecord;

/// framesrc decoding frames `first..=last` of `file` (zero-based, through the index).
///
/// `start` is the first frame's stream time and `stop` the next frame's, so framesrc keeps
/// exactly the frames in `[start, stop)` (it absorbs the µs-level rounding of demuxers and
/// the frame a decoder clips to a seek's start). Frame 0 is asked for as `start = 0`, "from
/// the beginning", which needs no seek: seeking to a stream's first frame makes some
/// demuxers (tsdemux) re-base its timestamps. The last frame leaves `stop` open.
pub fn frame_range(file: &FileRecord, first: u32, last: u32, audio: bool) -> ElementSpec {
    let index = &file.frame_index;
    let start = match first {
        0 => 0,
        n => index.timestamp(n).expect("caller checked the frame"),
    };
    let stop = index.timestamp(last + 1).unwrap_or(u64::MAX);
    ElementSpec::new("framesrc")
        .prop("location", Prop::Path(file.path.clone()))
        .prop("start", Prop::U64(start))
        .prop("stop", Prop::U64(stop))
        .prop("audio", Prop::Bool(audio))
}
