//! The source end of every pipeline: framesrc over an exact frame range, through the index.

use super::{ElementSpec, Prop};
use crate::catalog::FileRecord;
use crate::media::frame_index::SEEK_MARGIN_NS;

/// framesrc decoding frames `first..=last` of `file` (zero-based, through the index).
///
/// framesrc keeps frames whose stream time lies in `[start, stop)`. Decoded stream times can
/// differ from the index by a few µs (tsdemux rounds to its 90 kHz clock), so both bounds sit
/// [`SEEK_MARGIN_NS`] before the frame they name: far below any frame interval. The first
/// frame of the file opens the range at 0 and the last leaves it open-ended, so neither
/// depends on that rounding.
pub fn frame_range(file: &FileRecord, first: u32, last: u32, audio: bool) -> ElementSpec {
    let index = &file.frame_index;
    let start = match first {
        0 => 0,
        n => index
            .timestamp(n)
            .expect("caller checked the frame")
            .saturating_sub(SEEK_MARGIN_NS),
    };
    let stop = index.timestamp(last + 1).map_or(u64::MAX, |next| {
        next.saturating_sub(SEEK_MARGIN_NS).max(start + 1)
    });
    ElementSpec::new("framesrc")
        .prop("location", Prop::Path(file.path.clone()))
        .prop("start", Prop::U64(start))
        .prop("stop", Prop::U64(stop))
        .prop("audio", Prop::Bool(audio))
}
