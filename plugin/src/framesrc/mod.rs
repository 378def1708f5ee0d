//! `framesrc`: decodes an exact stream-time range of a media file.
//!
//! ```text
//! gst-launch-1.0 framesrc location=/x.mp4 start=1000000000 stop=1033333334 \
//!     ! videoconvert ! jpegenc ! filesink location=f.jpg
//! gst-launch-1.0 framesrc name=s location=/x.mp4 start=1000000000 stop=3000000000 audio=true \
//!     s.video ! queue ! fakesink  s.audio ! queue ! fakesink
//! ```
//!
//! A bin around `filesrc ! decodebin`. It exposes the first video stream as a sometimes pad
//! `video` and, with `audio=true`, the first audio stream as `audio`, then emits no-more-pads.
//! Other streams are not exposed.
//!
//! When `start` is not 0 the element seeks itself (`FLUSH | ACCURATE`, to `start`, no stop) as
//! soon as decoding has begun, and hides everything decoded before that seek, flushes
//! included. Without audio, from an MP4 or MOV, it seeks as soon as the first video packet
//! reaches the decoder instead, and nothing from before the seek is decoded at all. Video
//! frames come out when `start <= stream time < stop`, within [`range::TIMESTAMP_TOLERANCE`]
//! for timestamps rounded elsewhere; audio is clipped to the sample. The first buffer at or after `stop` ends each pad with EOS and tells upstream to
//! stop, so the demuxer stops reading once all streams are done.
//!
//! When the seek goes back to the stream's first video sample and the demuxer stamps it
//! differently than before the seek (qtdemux in the first fragment of a fragmented MP4), the
//! video decoder's input gets the earlier timestamps back: see [`restamp`].
//!
//! Segments are narrowed to `[start, stop)`: downstream running time starts at 0 with the
//! first buffer, stream times are those of the file.
//!
//! With `start` 0 nothing is seeked, and the decoder shows what it shows from the beginning:
//! for an MP4 whose edit list starts inside a frame, the rest of that frame at stream time 0
//! before the file's first frame. Pass the first frame's own stream time to start exactly
//! with it.

use gst::glib;
use gst::prelude::*;

mod imp;
mod range;
mod restamp;
mod skip;

glib::wrapper! {
    pub struct FrameSrc(ObjectSubclass<imp::FrameSrc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "framesrc",
        gst::Rank::NONE,
        FrameSrc::static_type(),
    )
}
