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
//! When `start` is not 0 it seeks itself (`FLUSH | ACCURATE`, to `start`) once decodebin has
//! exposed its pads, and hides everything decoded before that seek. Video frames come out when
//! `start <= stream time < stop` (within [`range::TIMESTAMP_TOLERANCE`]); audio is clipped to
//! the sample. The first buffer at or after `stop` ends each pad with EOS.

use gst::glib;
use gst::prelude::*;

mod imp;
mod range;

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
