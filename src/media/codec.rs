//! Facts about codecs, by the names probing gives them (ffmpeg's names).

/// How a video codec travels as an Annex B byte stream (what MPEG-TS carries): its parser
/// and caps name. `None` for codecs framecast re-encodes instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteStream {
    pub parser: &'static str,
    pub caps: &'static str,
}

pub fn byte_stream(codec: &str) -> Option<ByteStream> {
    match codec {
        "h264" => Some(ByteStream {
            parser: "h264parse",
            caps: "video/x-h264",
        }),
        "hevc" => Some(ByteStream {
            parser: "h265parse",
            caps: "video/x-h265",
        }),
        _ => None,
    }
}
