//! `smartcut`: an exact frame range of an H.264 file as H.264, re-encoding only the partial
//! GOPs at its edges and copying the whole GOPs between them.
//!
//! ```text
//! gst-launch-1.0 smartcut name=s location=/x.mp4 start=400000000 stop=4400000000 \
//!     copy-start=1000000000 copy-stop=4000000000 copy-frames=75 reorder-delay=80000000 \
//!     encoder="videoconvert ! x264enc bframes=0 ! video/x-h264,stream-format=byte-stream ! h264parse" \
//!     audio=true s.video ! queue ! mpegtsmux name=m ! filesink location=o.ts \
//!     s.audio ! queue ! audioconvert ! avenc_aac ! aacparse ! m.
//! ```
//!
//! A bin of three parts in a `concat`, played in order:
//!
//! - head, frames `[start, copy-start)`: `framesrc ! <encoder>`;
//! - copy, `[copy-start, copy-stop)`: `filesrc ! parsebin ! h264parse config-interval=-1`, from
//!   the IDR picture at `copy-start` (reached with a key-unit seek) up to, in decoding order,
//!   the IDR at `copy-stop`; every packet is checked to lie in the range and the count against
//!   `copy-frames`, and anything else (no IDR where promised, a reorder delay other than
//!   `reorder-delay`, a packet outside) is an error, never a broken stream;
//! - tail, `[copy-stop, stop)`: `framesrc ! <encoder> ! queue`; the queue takes the whole tail
//!   (bounded in bytes), so the tail is encoded while the head is, on another core.
//!
//! The caller picks `copy-start` and `copy-stop` (IDR pictures, see [`h264::is_idr`]) and the
//! source's reorder delay (the copied IDR's PTS - DTS); a part of no frames is left out.
//! Timestamps are rewritten onto one timeline (see [`stamp`]), with one segment and the first
//! caps only, on the always-present sometimes pad `video` (added when going to READY). With
//! `audio=true`, a `framesrc video=false` gives the span's audio, decoded, on `audio`, without
//! decoding any video.

use gst::glib;
use gst::prelude::*;

pub mod h264;
mod imp;
mod stamp;

glib::wrapper! {
    pub struct SmartCut(ObjectSubclass<imp::SmartCut>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "smartcut",
        gst::Rank::NONE,
        SmartCut::static_type(),
    )
}
