//! What framecast knows about a media file: probing at import and the frame index.

pub mod codec;
pub mod frame_index;
pub mod probe;

pub use frame_index::{FrameIndex, SEEK_MARGIN_NS};
pub use probe::{probe, probe_url, MediaInfo, ProbeError};
