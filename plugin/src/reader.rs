//! The element that reads a media location: `filesrc` for a path, `souphttpsrc` for an
//! `http://` or `https://` URL (an origin, or a pre-signed object-storage URL). framesrc and
//! the server's import probe both read through it, so they read a location the same way.
//!
//! souphttpsrc asks for byte ranges (`Range: bytes=N-`) and keeps its connection alive, so a
//! seek costs one request on the same connection; it never follows redirects here (an origin
//! could otherwise send the server to an address its allow-list refuses).

use gst::prelude::*;

/// Bytes per buffer souphttpsrc reads at most (its default is 4 KiB, a buffer and a few
/// syscalls per 4 KiB).
pub const HTTP_BLOCKSIZE: u32 = 128 * 1024;

/// Seconds souphttpsrc waits on a blocking read before failing.
pub const HTTP_TIMEOUT_SECONDS: u32 = 15;

/// Whether `location` is read over HTTP.
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The factory that reads `location`.
pub fn factory(location: &str) -> &'static str {
    if is_url(location) {
        "souphttpsrc"
    } else {
        "filesrc"
    }
}

/// A reader for `location`, its location not yet set (set it with the `location` property).
pub fn make(location: &str) -> Result<gst::Element, gst::glib::BoolError> {
    let element = gst::ElementFactory::make(factory(location)).build()?;
    if is_url(location) {
        configure_http(&element);
    }
    Ok(element)
}

/// souphttpsrc's settings for media reads.
pub fn configure_http(element: &gst::Element) {
    element.set_property("automatic-redirect", false);
    element.set_property("blocksize", HTTP_BLOCKSIZE);
    element.set_property("timeout", HTTP_TIMEOUT_SECONDS);
    element.set_property("retries", 1i32);
    element.set_property("keep-alive", true);
    element.set_property("user-agent", "framecast");
}
