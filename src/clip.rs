//! Frame-accurate clips as MPEG-TS (H.264 + AAC): the request, its pipeline, its name.

use crate::catalog::FileRecord;
use crate::pipeline::{
    self, files, Branch, ChainUse, Composition, ElementSpec, Muxing, PipelineFiles, Stage,
};

/// The name of the clip's framesrc (`src.video`, `src.audio` in gst-launch terms).
pub const SOURCE_NAME: &str = "src";

/// A validated clip request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// First frame, zero-based, through the frame index.
    pub first: u32,
    /// Last frame, inclusive.
    pub last: u32,
    /// Whether the clip carries audio: asked for and the file has some.
    pub audio: bool,
}

impl Clip {
    pub fn frames(&self) -> u32 {
        self.last - self.first + 1
    }

    /// Stream time the clip spans, from its first frame's timestamp to the end of its last.
    pub fn duration_ns(&self, file: &FileRecord) -> u64 {
        let index = &file.media.frame_index;
        let start = index.timestamp(self.first).unwrap_or(0);
        let end = index.timestamp(self.last + 1).unwrap_or(index.end_ns());
        end.saturating_sub(start)
    }

    /// `Content-Disposition` file name: `<uuid>_<first>-<last>.ts`.
    pub fn file_name(&self, file: &FileRecord) -> String {
        format!("{}_{}-{}.ts", file.uuid, self.first, self.last)
    }
}

/// The pipeline: framesrc (exactly frames first..=last, and the audio of that span) with its
/// video through pipelines/clip-video.gst and its audio through pipelines/clip-audio.gst into
/// pipelines/clip-mux.gst.
pub fn composition(file: &FileRecord, clip: &Clip, files: &PipelineFiles) -> Composition {
    let source =
        pipeline::source::frame_range(file, clip.first, clip.last, clip.audio).named(SOURCE_NAME);
    // A queue at the head of each branch: the decoder (on decodebin's thread) works ahead
    // while the encoder is busy, and the muxer waiting on one stream does not hold up the
    // decoding of the other. Default limits (at most 1 s, 200 buffers or 10 MB) bound memory.
    let chain = |spec| {
        vec![
            Stage::Element(ElementSpec::new("queue")),
            Stage::Chain(ChainUse {
                chain: files.get(spec).clone(),
                overrides: Vec::new(),
            }),
        ]
    };
    let mut branches = vec![Branch {
        pad: "video",
        stages: chain(files::CLIP_VIDEO),
    }];
    if clip.audio {
        branches.push(Branch {
            pad: "audio",
            stages: chain(files::CLIP_AUDIO),
        });
    }
    Composition {
        stages: vec![
            Stage::Element(source),
            Stage::Mux(Muxing {
                branches,
                mux: ChainUse {
                    chain: files.get(files::CLIP_MUX).clone(),
                    overrides: Vec::new(),
                },
            }),
        ],
    }
}
