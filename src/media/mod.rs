//! What framecast knows about a media file: probing at import, the frame index and the
//! display orientation.

pub mod codec;
pub mod frame_index;
pub mod h264;
mod matroska;
pub mod orientation;
pub mod probe;

pub use frame_index::{FrameIndex, SEEK_MARGIN_NS};
pub use orientation::Orientation;
pub use probe::{probe, probe_url, MediaInfo, ProbeError};
