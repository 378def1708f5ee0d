//! Re-encoded streams as MPEG-TS (H.264 + AAC): clips, and the video or a trace's span with
//! detections drawn. One pipeline serves them all: framesrc (exactly frames first..=last,
//! and the audio of that span), optionally the `detectionoverlay` element, then
//! pipelines/clip-video.gst and pipelines/clip-audio.gst into pipelines/clip-mux.gst.

use std::path::Path;

use crate::catalog::FileRecord;
use crate::pipeline::stream::Expected;
use crate::pipeline::{
    self, files, Branch, ChainUse, Composition, ElementSpec, Muxing, PipelineFiles, Prop,
    SourcePad, Stage,
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
    // One decoder thread: the encoder keeps every core busy, so more decoder threads do not
    // make the stream faster, while each holds frames (about 10 MB at 720p).
    let source = pipeline::source::frame_range(file, render.first, render.last, render.audio)
        .named(SOURCE_NAME)
        .prop("decoder-threads", Prop::U32(1));
    let chain = |spec| {
        Stage::Chain(ChainUse {
            chain: files.get(spec).clone(),
            overrides: Vec::new(),
        })
    };
    // A short queue at the head of each branch: a new thread, so that decoding works ahead
    // while the encoder is busy, and the muxer waiting on one stream does not hold up the
    // other's decoding. Two frames, not the default 10 MB (seven frames of raw 720p), to keep
    // memory per stream low; more measured no faster.
    let queue = || {
        Stage::Element(
            ElementSpec::new("queue")
                .prop("max-size-buffers", Prop::U32(2))
                .prop("max-size-bytes", Prop::U32(0))
                .prop("max-size-time", Prop::U64(0)),
        )
    };
    let mut video = vec![queue()];
    if let Some(overlay) = &render.overlay {
        // The overlay draws in the common 8-bit formats; others (10-bit, say) are converted
        // to the nearest of those. Formats it draws in pass through untouched.
        video.push(Stage::Element(ElementSpec::new("videoconvert")));
        video.push(Stage::Element(overlay_element(
            file,
            render.first,
            overlay,
            catalog,
        )));
    }
    // 4:2:0 H.264 has no odd sizes: an odd last column or row is cropped off, which leaves
    // every other pixel (and the detections' coordinates) where it was.
    let (odd_width, odd_height) = (file.media.width % 2, file.media.height % 2);
    if odd_width + odd_height > 0 {
        video.push(Stage::Element(
            ElementSpec::new("videocrop")
                .prop("right", Prop::I32(odd_width as i32))
                .prop("bottom", Prop::I32(odd_height as i32)),
        ));
    }
    video.push(chain(files::CLIP_VIDEO));
    let mut branches = vec![Branch {
        pad: SourcePad::Named("video"),
        stages: video,
    }];
    if render.audio {
        branches.push(Branch {
            pad: SourcePad::Named("audio"),
            stages: vec![queue(), chain(files::CLIP_AUDIO)],
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

/// The name of the parser in [`remux_composition`], whose buffers are the frames.
pub const REMUX_PARSER_NAME: &str = "videoparse";

/// The file's video as it is, without its audio, in the clip muxer: `None` unless its codec
/// goes into MPEG-TS as is (H.264, H.265) and it starts at a keyframe. (An MP4 cut with an
/// edit list between keyframes starts with frames that only show after decoding a hidden
/// keyframe, which the muxer drops: those are re-encoded instead.)
fn remux_composition(file: &FileRecord, files: &PipelineFiles) -> Option<Composition> {
    let (parser, caps) = match file.media.video_codec.as_str() {
        "h264" => ("h264parse", "video/x-h264"),
        "hevc" => ("h265parse", "video/x-h265"),
        _ => return None,
    };
    if !file.media.frame_index.is_keyframe(0) {
        return None;
    }
    let caps = gst::Caps::builder(caps)
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build();
    let video = vec![
        // Parameter sets before every keyframe, so that players can join anywhere.
        Stage::Element(
            ElementSpec::new(parser)
                .named(REMUX_PARSER_NAME)
                .prop("config-interval", Prop::I32(-1)),
        ),
        Stage::Element(ElementSpec::new("capsfilter").prop("caps", Prop::Caps(caps))),
    ];
    Some(Composition {
        stages: vec![
            Stage::Element(
                ElementSpec::new("filesrc").prop("location", Prop::Path(file.path.clone())),
            ),
            Stage::Element(ElementSpec::new("parsebin").named(SOURCE_NAME)),
            Stage::Mux(Muxing {
                branches: vec![Branch {
                    pad: SourcePad::Accepted,
                    stages: video,
                }],
                mux: ChainUse {
                    chain: files.get(files::CLIP_MUX).clone(),
                    overrides: Vec::new(),
                },
            }),
        ],
    })
}

/// A stream ready to run: its pipeline, its name, and the frames it must deliver (a file
/// truncated since import ends demuxers quietly, and must not pass for complete).
pub struct Plan {
    pub composition: Composition,
    pub file_name: String,
    pub expected: Expected,
}

impl Plan {
    /// The pipeline for `render`. With `remux`, a render that would change nothing in the
    /// video (the whole of it, no overlay, no audio) copies the video instead when
    /// [`remux_composition`] can.
    pub fn new(
        file: &FileRecord,
        render: &Render,
        files: &PipelineFiles,
        catalog: &Path,
        remux: bool,
    ) -> Plan {
        let file_name = render.file_name(file);
        let whole_video_only = render.overlay.is_none()
            && !render.audio
            && render.first == 0
            && render.last + 1 == file.frame_count() as u32;
        if let Some(composition) =
            remux_composition(file, files).filter(|_| remux && whole_video_only)
        {
            return Plan {
                composition,
                file_name,
                expected: Expected {
                    element: REMUX_PARSER_NAME,
                    pad: "src",
                    buffers: render.frames().into(),
                },
            };
        }
        Plan {
            composition: composition(file, render, files, catalog),
            file_name,
            expected: Expected {
                element: SOURCE_NAME,
                pad: "video",
                buffers: render.frames().into(),
            },
        }
    }
}
