//! The pipeline of a [`StreamJob`]: MPEG-TS or fragmented MP4 (H.264 + AAC) of a span of
//! frames. One pipeline serves clips and the video or a trace's span with detections drawn:
//! framesrc (exactly frames first..=last, and the audio of that span), optionally the
//! `detectionoverlay` element, then pipelines/clip-video.gst and pipelines/clip-audio.gst
//! into pipelines/clip-mux.gst (MPEG-TS) or pipelines/clip-mux-mp4.gst (MP4). A job that
//! copies the video instead demuxes and parses it into the MPEG-TS muxer; a smart cut's
//! video comes from framecast's `smartcut` element (edges re-encoded with
//! pipelines/clip-video.gst, whole GOPs copied), its audio through clip-audio.gst.

use super::body::Expected;
use super::overlay::Drawing;
use super::{
    files, Branch, ChainUse, Composition, ElementSpec, Muxing, PipelineFiles, Prop, SourcePad,
    Stage,
};
use crate::media::codec::ByteStream;
use crate::request::{Coding, Container, SmartCut, StreamJob};

/// The name of the framesrc (`src.video`, `src.audio` in gst-launch terms).
pub const SOURCE_NAME: &str = "src";

/// The pipeline for `job`; an overlay reads its detections from `drawing`.
pub fn composition(job: &StreamJob, files: &PipelineFiles, drawing: &Drawing) -> Composition {
    match job.coding {
        Coding::Reencode => reencode(job, files, drawing),
        Coding::Copy(stream) => copy(&job.source, stream, files),
        Coding::Smart(cut) => smart(job, cut, files),
    }
}

/// About what the pipeline of `job` holds at its peak, in bytes, for admission. Re-encoding:
/// about 60 bytes per source pixel (x264's frames in flight, its lookahead and references,
/// the decoder's frames; a 720p stream measured 55 MB on 2026-12-01, gst-launch RSS less
/// the 61 MB of an idle process with libav loaded) plus the elements. Copying holds a few
/// packets. A smart cut encodes its head and tail at once: two encoders (its head's second
/// decoder thread holds a frame more, little beside them).
pub fn memory_cost(job: &StreamJob) -> u64 {
    let media = &job.file.media;
    let encoder = 60 * media.width as u64 * media.height as u64;
    match job.coding {
        Coding::Reencode => encoder + (8 << 20),
        Coding::Copy(_) => 8 << 20,
        Coding::Smart(_) => 2 * encoder + (8 << 20),
    }
}

/// What the stream's pipeline must deliver: its frames, counted where they leave the
/// source (a file truncated since import ends demuxers quietly, and must not pass for
/// complete).
pub fn expected(job: &StreamJob) -> Expected {
    let (element, pad) = match job.coding {
        Coding::Reencode | Coding::Smart(_) => (SOURCE_NAME, "video"),
        Coding::Copy(_) => (COPY_PARSER_NAME, "src"),
    };
    Expected {
        element,
        pad,
        buffers: job.frames().into(),
    }
}

/// A short queue at the head of each branch: a new thread, so that decoding works ahead
/// while the encoder is busy, and the muxer waiting on one stream does not hold up the
/// other's decoding. Two frames, not the default 10 MB (seven frames of raw 720p), to keep
/// memory per stream low; more measured no faster.
fn queue() -> Stage {
    Stage::Element(
        ElementSpec::new("queue")
            .prop("max-size-buffers", Prop::U32(2))
            .prop("max-size-bytes", Prop::U32(0))
            .prop("max-size-time", Prop::U64(0)),
    )
}

fn chain(files: &PipelineFiles, spec: super::files::ChainSpec) -> ChainUse {
    ChainUse {
        chain: files.get(spec).clone(),
        overrides: Vec::new(),
    }
}

/// `smartcut` (see its module): the span's frames, the partial GOPs at the edges re-encoded
/// with pipelines/clip-video.gst without B-frames (the copied GOPs' reorder delay is kept by
/// retiming instead) and with access unit delimiters, and the span's audio through
/// clip-audio.gst. MPEG-TS only.
fn smart(job: &StreamJob, cut: SmartCut, files: &PipelineFiles) -> Composition {
    let index = &job.file.media.frame_index;
    let time = |frame: u32| index.timestamp(frame).expect("planned frames exist");
    let encoder = ChainUse {
        chain: files.get(files::CLIP_VIDEO).clone(),
        overrides: vec![
            ("videoenc", "bframes", Prop::U32(0)),
            ("videoenc", "aud", Prop::Bool(true)),
        ],
    };
    let source = ElementSpec::new("smartcut")
        .named(SOURCE_NAME)
        .prop("location", Prop::Str(job.source.clone()))
        .prop("start", Prop::U64(time(job.first)))
        .prop(
            "stop",
            Prop::U64(index.timestamp(job.last + 1).unwrap_or(u64::MAX)),
        )
        .prop("copy-start", Prop::U64(time(cut.copy_first)))
        .prop("copy-stop", Prop::U64(time(cut.copy_end)))
        .prop("copy-frames", Prop::U32(cut.copy_end - cut.copy_first))
        .prop("reorder-delay", Prop::U64(cut.reorder_delay_ns))
        .prop("encoder", Prop::Str(encoder.description()))
        .prop("audio", Prop::Bool(job.audio));
    let mut branches = vec![Branch {
        pad: SourcePad::Named("video"),
        stages: vec![queue()],
    }];
    if job.audio {
        branches.push(Branch {
            pad: SourcePad::Named("audio"),
            stages: vec![queue(), Stage::Chain(chain(files, files::CLIP_AUDIO))],
        });
    }
    Composition {
        stages: vec![
            Stage::Element(source),
            Stage::Mux(Muxing {
                branches,
                mux: chain(files, files::CLIP_MUX),
            }),
        ],
    }
}

fn reencode(job: &StreamJob, files: &PipelineFiles, drawing: &Drawing) -> Composition {
    let file = &job.file;
    // One decoder thread: the encoder keeps every core busy, so more decoder threads do not
    // make the stream faster, while each holds frames (about 10 MB at 720p).
    let source = super::source::frame_range(file, &job.source, job.first, job.last, job.audio)
        .named(SOURCE_NAME)
        .prop("decoder-threads", Prop::U32(1));
    let chain = |spec, overrides| {
        Stage::Chain(ChainUse {
            chain: files.get(spec).clone(),
            overrides,
        })
    };
    let mut video = vec![queue()];
    // Upright before anything is drawn: detection boxes are in the upright picture's pixels.
    video.extend(super::source::upright(file));
    if let Some(overlay) = &job.overlay {
        // The overlay draws in the common 8-bit formats; others (10-bit, say) are converted
        // to the nearest of those. Formats it draws in pass through untouched.
        video.push(Stage::Element(ElementSpec::new("videoconvert")));
        video.push(Stage::Element(drawing.element(file, job.first, overlay)));
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
    // GStreamer 1.22's mp4mux writes no edit list for the encoder's B-frame delay: the first
    // frame would be shown one frame after the audio starts (and after time 0). Without
    // B-frames the first frame is at 0, as in MPEG-TS.
    let video_overrides = match job.container {
        Container::Ts => Vec::new(),
        Container::Mp4 => vec![("videoenc", "bframes", Prop::U32(0))],
    };
    video.push(chain(files::CLIP_VIDEO, video_overrides));
    let mut branches = vec![Branch {
        pad: SourcePad::Named("video"),
        stages: video,
    }];
    if job.audio {
        branches.push(Branch {
            pad: SourcePad::Named("audio"),
            stages: vec![queue(), chain(files::CLIP_AUDIO, Vec::new())],
        });
    }
    let mux = match job.container {
        Container::Ts => files::CLIP_MUX,
        Container::Mp4 => files::CLIP_MUX_MP4,
    };
    Composition {
        stages: vec![
            Stage::Element(source),
            Stage::Mux(Muxing {
                branches,
                mux: ChainUse {
                    chain: files.get(mux).clone(),
                    overrides: Vec::new(),
                },
            }),
        ],
    }
}

/// The name of the parser in [`copy`], whose buffers are the frames.
const COPY_PARSER_NAME: &str = "videoparse";

/// The file's video as it is, without its audio, in the clip muxer.
fn copy(source: &str, stream: ByteStream, files: &PipelineFiles) -> Composition {
    let caps = gst::Caps::builder(stream.caps)
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build();
    let video = vec![
        // Parameter sets before every keyframe, so that players can join anywhere.
        Stage::Element(
            ElementSpec::new(stream.parser)
                .named(COPY_PARSER_NAME)
                .prop("config-interval", Prop::I32(-1)),
        ),
        Stage::Element(ElementSpec::new("capsfilter").prop("caps", Prop::Caps(caps))),
    ];
    Composition {
        stages: vec![
            Stage::Element(super::source::reader(source)),
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
    }
}
