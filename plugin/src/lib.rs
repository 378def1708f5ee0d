//! framecast's GStreamer plugin.

use gst::glib;

mod detectionoverlay;
pub mod detections;
mod framesrc;
mod icc;
mod jpegpad;
pub mod movie_duration;
mod nal;
pub mod reader;
pub mod smartcut;

pub use detectionoverlay::{detection_color, DetectionOverlay, Mode as DetectionOverlayMode};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    framesrc::register(plugin)?;
    jpegpad::register(plugin)?;
    smartcut::register(plugin)?;
    detectionoverlay::register(plugin)
}

gst::plugin_define!(
    framecast,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "framecast",
    env!("BUILD_REL_DATE")
);
