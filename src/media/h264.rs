//! What a smart cut must know of an H.264 file that the frame index does not say: which of
//! its keyframes are IDR pictures (an I-frame of an open GOP is marked a keyframe too, but
//! pictures after it refer to the GOP before), the reorder delay at them (PTS - DTS), the
//! stream's format as its parser reads it, and the demuxer.
//!
//! `reader ! parsebin ! h264parse ! byte-stream/au ! appsink`, one key-unit seek per keyframe
//! asked about, one packet read at each: milliseconds, nothing decoded.

use gst::prelude::*;

/// How far a packet's time may be from the index's (see framesrc's `TIMESTAMP_TOLERANCE`).
const TOLERANCE_NS: u64 = 100_000;

/// Time for the pipeline to give a packet before the inspection gives up.
const PULL_TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// Packets read after a seek before giving up on finding the keyframe.
const MAX_PACKETS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The demuxer's factory name (`qtdemux`, `matroskademux`, ...).
    pub demuxer: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// `4:2:0`, `4:2:2`, ... as h264parse's caps say.
    pub chroma_format: Option<String>,
    pub bit_depth_luma: Option<u32>,
    /// `interleaved`, `mixed`, ... when the stream may have fields; h264parse leaves it out
    /// for progressive streams.
    pub interlace_mode: Option<String>,
    /// `frame` for progressive streams; `field` ... otherwise.
    pub coded_picture_structure: Option<String>,
    /// One per time asked about, in order: `None` when no packet was found at that time.
    pub keyframes: Vec<Option<KeyPacket>>,
}

impl Inspection {
    /// Frames only, no fields.
    pub fn progressive(&self) -> bool {
        matches!(self.interlace_mode.as_deref(), None | Some("progressive"))
            && matches!(
                self.coded_picture_structure.as_deref(),
                None | Some("frame")
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPacket {
    pub idr: bool,
    /// PTS - DTS, ns (negative: a broken stream).
    pub reorder_delay_ns: i64,
}

/// Inspects `source` (a path or an http(s) URL) at the stream times `times` (keyframes of
/// the index).
pub fn inspect(source: &str, times: &[u64]) -> Result<Inspection, String> {
    let pipeline = gst::Pipeline::new();
    let reader = gstframecast::reader::make(source).map_err(|e| e.to_string())?;
    reader.set_property("location", source);
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|e| format!("{factory}: {e}"))
    };
    let parsebin = make("parsebin")?;
    let parse = make("h264parse")?;
    let filter = make("capsfilter")?;
    filter.set_property("caps", gstframecast::smartcut::h264::byte_stream_caps());
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(4)
        .build();
    pipeline
        .add_many([&reader, &parsebin, &parse, &filter, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    reader.link(&parsebin).map_err(|e| e.to_string())?;
    gst::Element::link_many([&parse, &filter, sink.upcast_ref()]).map_err(|e| e.to_string())?;
    let demuxer = std::sync::Arc::new(std::sync::Mutex::new(None));
    pipeline.connect_deep_element_added({
        let demuxer = demuxer.clone();
        move |_, _, element| {
            if let Some(factory) = element.factory() {
                if factory.klass().contains("Demux") {
                    *demuxer.lock().unwrap() = Some(factory.name().to_string());
                }
            }
        }
    });
    let parse_sink = parse.static_pad("sink").expect("h264parse has a sink pad");
    parsebin.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let is_h264 = caps
            .structure(0)
            .is_some_and(|s| s.name() == "video/x-h264");
        if is_h264 && !parse_sink.is_linked() && pad.link(&parse_sink).is_ok() {
            return;
        }
        pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
            info.flow_res = Err(gst::FlowError::Eos);
            gst::PadProbeReturn::Handled
        });
    });
    let result = run(&pipeline, &sink, times, &demuxer);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    times: &[u64],
    demuxer: &std::sync::Mutex<Option<String>>,
) -> Result<Inspection, String> {
    let failure = || {
        pipeline
            .bus()
            .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
            .and_then(|message| match message.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "no H.264 packet".to_owned())
    };
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| failure())?;
    // Not kept: appsink (1.22) reuses its last sample, and warns when someone still holds it.
    let caps = sink
        .try_pull_sample(PULL_TIMEOUT)
        .ok_or_else(failure)?
        .caps()
        .and_then(|caps| caps.structure(0).map(|s| s.to_owned()));
    let field = |name: &str| caps.as_ref().and_then(|s| s.get::<String>(name).ok());
    let mut inspection = Inspection {
        demuxer: demuxer.lock().unwrap().clone(),
        width: caps.as_ref().and_then(|s| s.get::<i32>("width").ok()),
        height: caps.as_ref().and_then(|s| s.get::<i32>("height").ok()),
        chroma_format: field("chroma-format"),
        bit_depth_luma: caps
            .as_ref()
            .and_then(|s| s.get::<u32>("bit-depth-luma").ok()),
        interlace_mode: field("interlace-mode"),
        coded_picture_structure: field("coded-picture-structure"),
        keyframes: Vec::with_capacity(times.len()),
    };
    for &time in times {
        pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE,
                gst::ClockTime::from_nseconds(time),
            )
            .map_err(|e| format!("cannot seek to {time} ns: {e}"))?;
        let mut found = None;
        for _ in 0..MAX_PACKETS {
            let sample = sink.try_pull_sample(PULL_TIMEOUT).ok_or_else(failure)?;
            let (Some(buffer), Some(segment)) = (sample.buffer(), sample.segment()) else {
                continue;
            };
            let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
                continue;
            };
            let stream_time = |t: Option<gst::ClockTime>| {
                t.and_then(|t| segment.to_stream_time_full(t))
                    .map(|t| match t {
                        gst::Signed::Positive(t) => t.nseconds() as i64,
                        gst::Signed::Negative(t) => -(t.nseconds() as i64),
                    })
            };
            let (Some(pts), Some(dts)) = (stream_time(buffer.pts()), stream_time(buffer.dts()))
            else {
                continue;
            };
            if pts.abs_diff(time as i64) <= TOLERANCE_NS {
                let map = buffer.map_readable().map_err(|e| e.to_string())?;
                found = Some(KeyPacket {
                    idr: gstframecast::smartcut::h264::is_idr(&map),
                    reorder_delay_ns: pts - dts,
                });
                break;
            }
            if dts > time as i64 + TOLERANCE_NS as i64 {
                // Decoding went past it: the index and the packets disagree.
                break;
            }
        }
        inspection.keyframes.push(found);
    }
    Ok(inspection)
}
