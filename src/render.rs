//! Re-encoded streams as MPEG-TS (H.264 + AAC): clips, and the video or a trace's span with
//! detections drawn. One pipeline serves them all: framesrc (exactly frames first..=last,
//! and the audio of that span), optionally the `detectionoverlay` element, then
//! pipelines/clip-video.gst and pipelines/clip-audio.gst into pipelines/clip-mux.gst.

use std::path::Path;

use crate::catalog::FileRecord;
use crate::pipeline::{
    self, files, Branch, ChainUse, Composition, ElementSpec, Muxing, PipelineFiles, Prop, Stage,
};

/// The name of the framesrc (`src.video`, `src.audio` in gst-launch terms).
pub const SOURCE_NAME: &str = "src";

/// A validated request for a re-encoded span of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    /// First frame, zero-based, through the frame index.
    pub first: u32,
    /// Last frame, inclusive.
    pub last: u32,
    /// Whether the stream carries audio: asked for and the file has some.
    pub audio: bool,
    /// What is drawn on the frames; `None` leaves them as decoded.
    pub overlay: Option<Overlay>,
}

/// What `detectionoverlay` draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub detections: Detections,
    /// The info panel: frame number, time, detections in the frame, file uuid.
    pub debug: bool,
    /// The panel's first line.
    pub title: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detections {
    /// Every detection with its label.
    All,
    /// One trace, highlighted and interpolated between its detections.
    Trace(i64),
    /// None (the debug panel alone).
    None,
}

impl Render {
    pub fn frames(&self) -> u32 {
        self.last - self.first + 1
    }

    /// Stream time the span covers, from its first frame's timestamp to the end of its last.
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

/// The pipeline for `render`; the overlay reads detections from the SQLite `catalog`.
pub fn composition(
    file: &FileRecord,
    render: &Render,
    files: &PipelineFiles,
    catalog: &Path,
) -> Composition {
    let source = pipeline::source::frame_range(file, render.first, render.last, render.audio)
        .named(SOURCE_NAME);
    let chain = |spec| {
        Stage::Chain(ChainUse {
            chain: files.get(spec).clone(),
            overrides: Vec::new(),
        })
    };
    let mut video = Vec::new();
    if let Some(overlay) = &render.overlay {
        video.push(Stage::Element(overlay_element(
            file,
            render.first,
            overlay,
            catalog,
        )));
    }
    video.push(chain(files::CLIP_VIDEO));
    let mut branches = vec![Branch {
        pad: "video",
        stages: video,
    }];
    if render.audio {
        branches.push(Branch {
            pad: "audio",
            stages: vec![chain(files::CLIP_AUDIO)],
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

/// `detectionoverlay`, numbering buffers from `first` (framesrc delivers exactly the range).
fn overlay_element(
    file: &FileRecord,
    first: u32,
    overlay: &Overlay,
    catalog: &Path,
) -> ElementSpec {
    let mut element = ElementSpec::new("detectionoverlay");
    if overlay.detections != Detections::None {
        element = element.prop("catalog", Prop::Path(catalog.to_path_buf()));
    }
    element = element
        .prop("file-uuid", Prop::Str(file.uuid.to_string()))
        .prop("first-frame", Prop::U64(first.into()));
    element = match overlay.detections {
        Detections::All => element,
        Detections::Trace(id) => element
            .prop("mode", Prop::Enum("trace"))
            .prop("trace-id", Prop::I64(id)),
        Detections::None => element.prop("mode", Prop::Enum("none")),
    };
    if overlay.debug {
        element = element.prop("debug", Prop::Bool(true));
    }
    if let Some(title) = &overlay.title {
        element = element.prop("title", Prop::Str(title.clone()));
    }
    element
}
