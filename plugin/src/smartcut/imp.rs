use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{h264, stamp};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "smartcut",
        gst::DebugColorFlags::empty(),
        Some("H.264 frame range, edges re-encoded, GOPs copied"),
    )
});

/// The decoder threads of an edge's framesrc. The head decodes alone before the first byte
/// (the other parts start after it), from the keyframe before `start`: two frame threads
/// bring the first byte sooner (a 1080p head 17 frames into its GOP, through the server on
/// a quiet 2-core machine on 2026-12-01: 0.249 s against 0.319 s with one, medians of 11).
/// Past that, and in the tail, the encoder is the bottleneck and more decoder threads only
/// hold more frames.
fn decoder_threads(head: bool) -> u32 {
    if head {
        2
    } else {
        1
    }
}

/// How far a timestamp may be from the one it names (see framesrc's `TIMESTAMP_TOLERANCE`).
const TOLERANCE: u64 = 100_000;

/// The tail's encoded frames wait here while the head and the copy go out: bounded, and far
/// more than a GOP of compressed frames takes.
const TAIL_QUEUE_BYTES: u32 = 64 << 20;

#[derive(Debug, Clone, Default)]
struct Settings {
    location: Option<String>,
    start: u64,
    stop: u64,
    copy_start: u64,
    copy_stop: u64,
    copy_frames: u32,
    reorder_delay: u64,
    encoder: Option<String>,
    audio: bool,
}

#[derive(Default)]
pub struct SmartCut {
    settings: Mutex<Settings>,
    built: Mutex<bool>,
    /// The parts that start once the first frame is out (see `build`).
    deferred: Mutex<Vec<gst::Element>>,
}

/// Where the copied part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the key-unit seek to `copy-start` to flush: what comes before is from the
    /// file's beginning.
    AwaitingSeek { sent: bool },
    /// Before the IDR at `copy-start`.
    Before,
    /// Between the IDRs; `n` packets passed.
    Copying { n: u32 },
    /// At the IDR at `copy-stop`: EOS is on its way downstream.
    Ended,
    /// EOS went by: nothing more passes.
    Finished,
}

struct Copy {
    phase: Phase,
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
}

fn signed_ns(value: gst::Signed<gst::ClockTime>) -> i64 {
    match value {
        gst::Signed::Positive(t) => t.nseconds() as i64,
        gst::Signed::Negative(t) => -(t.nseconds() as i64),
    }
}

impl SmartCut {
    fn make(&self, factory: &str) -> Result<gst::Element, gst::StateChangeError> {
        gst::ElementFactory::make(factory).build().map_err(|_| {
            gst::element_imp_error!(
                self,
                gst::CoreError::MissingPlugin,
                ["Missing element {factory}"]
            );
            gst::StateChangeError
        })
    }

    /// A queue bounded by buffers or bytes (0: unbounded), never by time.
    fn queue(
        &self,
        max_buffers: u32,
        max_bytes: u32,
    ) -> Result<gst::Element, gst::StateChangeError> {
        let queue = self.make("queue")?;
        queue.set_property("max-size-buffers", max_buffers);
        queue.set_property("max-size-bytes", max_bytes);
        queue.set_property("max-size-time", 0u64);
        Ok(queue)
    }

    fn fail(&self, message: String) -> gst::StateChangeError {
        gst::element_imp_error!(self, gst::CoreError::Failed, ["{message}"]);
        gst::StateChangeError
    }

    /// Builds the three parts, the audio source and the `video` pad.
    fn build(&self) -> Result<(), gst::StateChangeError> {
        let s = self.settings.lock().unwrap().clone();
        let location = s
            .location
            .clone()
            .ok_or_else(|| self.fail("no location".into()))?;
        let encoder = s
            .encoder
            .clone()
            .ok_or_else(|| self.fail("no encoder".into()))?;
        if !(s.start <= s.copy_start && s.copy_start < s.copy_stop && s.copy_stop <= s.stop) {
            return Err(self.fail(format!(
                "need start {} <= copy-start {} < copy-stop {} <= stop {}",
                s.start, s.copy_start, s.copy_stop, s.stop
            )));
        }
        let obj = self.obj();
        let concat = self.make("concat")?;
        // The parts are on one timeline already (see `stamp`).
        concat.set_property("adjust-base", false);
        obj.add(&concat).map_err(|e| self.fail(e.to_string()))?;

        // What starts (opens the file, seeks, decodes, encodes) only once the first frame is
        // out: the parts after the first, whose output waits for it anyway. Started with it,
        // they would take the cores from it and the first byte would come later.
        let mut deferred = Vec::new();
        let head = s.start < s.copy_start;
        // The audio comes from the head's framesrc when there is a head (its video ends at
        // copy-start, its audio goes on): one file opened less before the first byte.
        let mut audio_from = None;
        if head {
            let (end, source) = self.edge(&s, &location, &encoder, s.start, s.copy_start, None)?;
            self.link_part(&end, &concat)?;
            if s.audio {
                source.set_property("audio", true);
                source.set_property("video-stop", s.copy_start);
                source.set_property("stop", s.stop);
                audio_from = Some(source);
            }
        }
        let (end, copy) = self.copy_part(&s, &location)?;
        self.link_part(&end, &concat)?;
        if head {
            deferred.push(copy);
        }
        if s.copy_stop < s.stop {
            let queue = self.queue(0, TAIL_QUEUE_BYTES)?;
            let (end, tail_source) =
                self.edge(&s, &location, &encoder, s.copy_stop, s.stop, Some(queue))?;
            self.link_part(&end, &concat)?;
            deferred.push(tail_source);
        }
        for element in &deferred {
            element.set_locked_state(true);
            // Started while the pipeline plays: their decodebin's preroll must not make the
            // pipeline lose its state (a bin posts no EOS while a state change is pending, and
            // gst-launch then waited forever, about one run in five).
            if element.find_property("async-handling").is_some() {
                element.set_property("async-handling", true);
            }
        }
        *self.deferred.lock().unwrap() = deferred;
        let weak = obj.downgrade();
        concat
            .static_pad("src")
            .expect("concat has a src pad")
            .add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                if let (Some(parent), Some(obj)) = (pad.parent_element(), weak.upgrade()) {
                    // Not on the streaming thread: a state change may wait for it.
                    parent.call_async(move |_| obj.imp().start_deferred());
                }
                gst::PadProbeReturn::Remove
            });

        let src = concat.static_pad("src").expect("concat has a src pad");
        // One caps on the output: the parts differ in profile or level at most (the caller
        // checked size and format), which a decoder reads from the in-band SPS anyway.
        let seen_caps = std::sync::atomic::AtomicBool::new(false);
        src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let Some(gst::PadProbeData::Event(event)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if event.type_() != gst::EventType::Caps {
                return gst::PadProbeReturn::Ok;
            }
            if seen_caps.swap(true, std::sync::atomic::Ordering::SeqCst) {
                info.data = None;
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
        let templ = obj.pad_template("video").expect("video template");
        let ghost = gst::GhostPad::builder_from_template_with_target(&templ, &src)
            .map_err(|e| self.fail(e.to_string()))?
            .name("video")
            .build();
        obj.add_pad(&ghost).map_err(|e| self.fail(e.to_string()))?;

        if s.audio {
            let source = match audio_from {
                Some(source) => source,
                None => self.audio_source(&s, &location)?,
            };
            self.expose_audio(&source);
        } else {
            obj.no_more_pads();
        }
        Ok(())
    }

    /// Starts the parts that waited for the first frame, unless the element is stopping.
    /// Under the lock that [`Self::change_state`] takes before stopping: started while the
    /// element stops (the client left at the first byte), a part could be left running or
    /// push into pads being deactivated.
    fn start_deferred(&self) {
        let mut deferred = self.deferred.lock().unwrap();
        for element in deferred.drain(..) {
            element.set_locked_state(false);
            if element.sync_state_with_parent().is_err() {
                gst::error!(CAT, obj = element, "cannot start");
            }
        }
    }

    /// Links a part's last element to the next sink pad of `concat` (parts play in the order
    /// their pads were requested).
    fn link_part(
        &self,
        end: &gst::Pad,
        concat: &gst::Element,
    ) -> Result<(), gst::StateChangeError> {
        let sink = concat
            .request_pad_simple("sink_%u")
            .ok_or_else(|| self.fail("concat gave no sink pad".into()))?;
        end.link(&sink)
            .map(|_| ())
            .map_err(|e| self.fail(format!("cannot link a part: {e:?}")))
    }

    /// `framesrc start..stop ! <encoder> [! queue]`, retimed; returns its last src pad and the
    /// framesrc.
    fn edge(
        &self,
        s: &Settings,
        location: &str,
        encoder: &str,
        start: u64,
        stop: u64,
        queue: Option<gst::Element>,
    ) -> Result<(gst::Pad, gst::Element), gst::StateChangeError> {
        let obj = self.obj();
        let source = self.make("framesrc")?;
        source.set_property("location", location);
        source.set_property("start", start);
        source.set_property("stop", stop);
        source.set_property("decoder-threads", decoder_threads(start == s.start));
        let chain = gst::parse::bin_from_description(encoder, true)
            .map_err(|e| self.fail(format!("encoder {encoder:?}: {e}")))?;
        // Decoding works ahead on its own thread while the encoder is busy (as in a
        // re-encoded clip), two frames at most.
        let decoded = self.queue(2, 0)?;
        obj.add_many([&source, &decoded, chain.upcast_ref()])
            .map_err(|e| self.fail(e.to_string()))?;
        decoded.link(&chain).map_err(|e| self.fail(e.to_string()))?;
        let chain_sink = decoded.static_pad("sink").expect("queue sink pad");
        source.connect_pad_added(move |_, pad| {
            if pad.name() == "video" {
                if let Err(e) = pad.link(&chain_sink) {
                    gst::error!(CAT, obj = pad, "cannot link the encoder: {e:?}");
                }
            }
        });
        let mut end = chain.static_pad("src").expect("ghost src pad");
        let offset = start - s.start;
        let delay = s.reorder_delay;
        let segment_event = gst::event::Segment::new(&stamp::segment(s.start));
        let segment: Mutex<Option<gst::FormattedSegment<gst::ClockTime>>> = Mutex::new(None);
        end.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                match &mut info.data {
                    Some(gst::PadProbeData::Event(event)) => {
                        if let gst::EventView::Segment(e) = event.view() {
                            *segment.lock().unwrap() =
                                e.segment().downcast_ref::<gst::ClockTime>().cloned();
                            *event = segment_event.clone();
                        }
                    }
                    Some(gst::PadProbeData::Buffer(buffer)) => {
                        let running = segment
                            .lock()
                            .unwrap()
                            .as_ref()
                            .and_then(|seg| seg.to_running_time(buffer.pts()));
                        let Some(running) = running else {
                            gst::error!(CAT, "an encoded frame without a running time");
                            info.flow_res = Err(gst::FlowError::Error);
                            info.data = None;
                            return gst::PadProbeReturn::Handled;
                        };
                        let (pts, dts) = stamp::edge(running.nseconds(), offset, delay);
                        let buffer = buffer.make_mut();
                        buffer.set_pts(gst::ClockTime::from_nseconds(pts));
                        buffer.set_dts(gst::ClockTime::from_nseconds(dts));
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
        if let Some(queue) = queue {
            obj.add(&queue).map_err(|e| self.fail(e.to_string()))?;
            end.link(&queue.static_pad("sink").expect("queue sink"))
                .map_err(|e| self.fail(format!("{e:?}")))?;
            end = queue.static_pad("src").expect("queue src");
        }
        Ok((end, source))
    }

    /// `reader ! parsebin ! h264parse config-interval=-1 ! byte-stream/au ! queue`, cut to the
    /// packets from the IDR at `copy-start` to the one at `copy-stop`, retimed.
    /// Returns the queue's src pad and the bin of the rest (started as one, see `build`).
    fn copy_part(
        &self,
        s: &Settings,
        location: &str,
    ) -> Result<(gst::Pad, gst::Element), gst::StateChangeError> {
        let obj = self.obj();
        let reader = crate::reader::make(location).map_err(|e| self.fail(e.to_string()))?;
        reader.set_property("location", location);
        // As in framesrc: GStreamer 1.22's qtdemux ends tracks whose edit list starts past
        // media time 0 early, which would lose packets of a copy near the file's end.
        if !crate::reader::is_url(location) {
            let fix = crate::movie_duration::MovieDurationFix::for_file(location.as_ref())
                .map(std::sync::Arc::new);
            crate::movie_duration::MovieDurationFix::install(
                &reader.static_pad("src").expect("reader has a src pad"),
                move || fix.clone(),
            );
        }
        let parsebin = self.make("parsebin")?;
        let parse = self.make("h264parse")?;
        // Parameter sets before every IDR, so that a player can join anywhere.
        parse.set_property("config-interval", -1i32);
        let filter = self.make("capsfilter")?;
        filter.set_property("caps", h264::byte_stream_caps());
        // Waits for the head to finish; bounded, the demuxer then waits too.
        let queue = self.queue(64, 0)?;
        let branch = gst::Bin::with_name("copy");
        branch
            .add_many([&reader, &parsebin, &parse, &filter])
            .and_then(|_| reader.link(&parsebin))
            .and_then(|_| parse.link(&filter))
            .map_err(|e| self.fail(e.to_string()))?;
        let ghost = gst::GhostPad::with_target(&filter.static_pad("src").expect("capsfilter src"))
            .map_err(|e| self.fail(e.to_string()))?;
        branch
            .add_pad(&ghost)
            .map_err(|e| self.fail(e.to_string()))?;
        obj.add_many([branch.upcast_ref(), &queue])
            .map_err(|e| self.fail(e.to_string()))?;
        ghost
            .link(&queue.static_pad("sink").expect("queue sink"))
            .map_err(|e| self.fail(format!("{e:?}")))?;
        let parse_sink = parse.static_pad("sink").expect("h264parse sink");
        let weak = obj.downgrade();
        let sink = parse_sink.clone();
        parsebin.connect_no_more_pads(move |_| {
            if let Some(obj) = weak.upgrade() {
                if !sink.is_linked() {
                    gst::element_error!(obj, gst::StreamError::WrongType, ["no H.264 stream"]);
                }
            }
        });
        parsebin.connect_pad_added(move |_, pad| {
            // A pad may come before its caps are set: its template then says what it gives.
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let is_h264 = caps
                .structure(0)
                .is_some_and(|s| s.name() == "video/x-h264");
            if is_h264 && !parse_sink.is_linked() {
                if let Err(e) = pad.link(&parse_sink) {
                    gst::error!(CAT, obj = pad, "cannot link the parser: {e:?}");
                }
                return;
            }
            // Other streams: unlinked they would fail the demuxer with not-linked; EOS tells
            // it to read on for the video alone.
            pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                info.flow_res = Err(gst::FlowError::Eos);
                gst::PadProbeReturn::Handled
            });
        });

        let settings = s.clone();
        let copy = Mutex::new(Copy {
            phase: if s.copy_start > 0 {
                Phase::AwaitingSeek { sent: false }
            } else {
                Phase::Before
            },
            segment: None,
        });
        let weak = obj.downgrade();
        filter.static_pad("src").expect("capsfilter src").add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |pad, info| {
                let Some(obj) = weak.upgrade() else {
                    return gst::PadProbeReturn::Ok;
                };
                let verdict = {
                    let mut copy = copy.lock().unwrap();
                    obj.imp().copy_probe(pad, info, &mut copy, &settings)
                };
                match verdict {
                    Ok(ret) => {
                        if copy.lock().unwrap().phase == Phase::Ended {
                            // Not under the lock: the EOS goes through this probe too.
                            pad.push_event(gst::event::Eos::new());
                        }
                        ret
                    }
                    Err(message) => {
                        gst::element_error!(obj, gst::StreamError::Failed, ["{message}"]);
                        info.flow_res = Err(gst::FlowError::Error);
                        info.data = None;
                        gst::PadProbeReturn::Handled
                    }
                }
            },
        );
        Ok((queue.static_pad("src").expect("queue src"), branch.upcast()))
    }

    /// The copied part's selection and retiming; an `Err` is a stream error.
    fn copy_probe(
        &self,
        pad: &gst::Pad,
        info: &mut gst::PadProbeInfo,
        copy: &mut Copy,
        s: &Settings,
    ) -> Result<gst::PadProbeReturn, String> {
        let consumed = |info: &mut gst::PadProbeInfo| {
            // Consumed here. (`Drop` would make GStreamer 1.22 unref the data that
            // gstreamer-rs took from it.)
            info.data = None;
            Ok(gst::PadProbeReturn::Handled)
        };
        if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
            match (event.view(), copy.phase) {
                (gst::EventView::FlushStop(_), Phase::AwaitingSeek { .. }) => {
                    copy.phase = Phase::Before;
                    return consumed(info);
                }
                (gst::EventView::FlushStart(_) | gst::EventView::FlushStop(_), _) => {
                    return consumed(info)
                }
                (gst::EventView::Segment(e), _) => {
                    copy.segment = e.segment().downcast_ref::<gst::ClockTime>().cloned();
                    if matches!(copy.phase, Phase::AwaitingSeek { .. }) {
                        return consumed(info);
                    }
                    *event = gst::event::Segment::new(&stamp::segment(s.start));
                }
                // The demuxer may reach the file's end before the seek's flush: the seek
                // starts the stream again.
                (gst::EventView::Eos(_), Phase::AwaitingSeek { .. }) => return consumed(info),
                (gst::EventView::Eos(_), Phase::Ended) => {
                    copy.phase = Phase::Finished;
                    return Ok(gst::PadProbeReturn::Ok);
                }
                (_, Phase::Ended | Phase::Finished) => return consumed(info),
                (gst::EventView::Eos(_), _) => {
                    return Err(format!(
                        "the file ended before the IDR picture at {} ns",
                        s.copy_stop
                    ))
                }
                _ => {}
            }
            return Ok(gst::PadProbeReturn::Ok);
        }
        let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data else {
            return Ok(gst::PadProbeReturn::Ok);
        };
        match copy.phase {
            Phase::AwaitingSeek { sent: false } => {
                copy.phase = Phase::AwaitingSeek { sent: true };
                let seek = gst::event::Seek::new(
                    1.0,
                    gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE,
                    gst::SeekType::Set,
                    gst::ClockTime::from_nseconds(s.copy_start),
                    gst::SeekType::None,
                    gst::ClockTime::NONE,
                );
                let pad = pad.clone();
                // On a streaming thread, which the seek's flush must be able to stop.
                self.obj().call_async(move |obj| {
                    if !pad.send_event(seek) && pad.is_active() {
                        gst::element_error!(obj, gst::CoreError::Seek, ["cannot seek to the copy"]);
                    }
                });
                return consumed(info);
            }
            Phase::AwaitingSeek { sent: true } => return consumed(info),
            Phase::Ended | Phase::Finished => {
                info.flow_res = Err(gst::FlowError::Eos);
                return consumed(info);
            }
            _ => {}
        }
        let segment = copy
            .segment
            .as_ref()
            .ok_or("a copied packet before its segment")?;
        let stream_time = |t: Option<gst::ClockTime>| {
            t.and_then(|t| segment.to_stream_time_full(t))
                .map(signed_ns)
        };
        let (Some(pts), Some(dts)) = (stream_time(buffer.pts()), stream_time(buffer.dts())) else {
            return Err("a copied packet without PTS or DTS".into());
        };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let idr = || {
            buffer
                .map_readable()
                .map(|map| h264::is_idr(&map))
                .unwrap_or(false)
        };
        let near = |a: i64, b: u64| a.abs_diff(b as i64) <= TOLERANCE;
        match copy.phase {
            Phase::Before => {
                if near(pts, s.copy_start) && keyframe {
                    if !idr() {
                        return Err(format!("no IDR picture at {} ns", s.copy_start));
                    }
                    let delay = pts - dts;
                    if !near(delay, s.reorder_delay) {
                        return Err(format!(
                            "reorder delay {delay} ns at the copied IDR, not {}",
                            s.reorder_delay
                        ));
                    }
                    copy.phase = Phase::Copying { n: 1 };
                } else if pts > s.copy_start as i64 + TOLERANCE as i64 && keyframe {
                    return Err(format!("no keyframe at {} ns", s.copy_start));
                } else {
                    return consumed(info);
                }
            }
            Phase::Copying { n } => {
                if pts + TOLERANCE as i64 >= s.copy_stop as i64 {
                    if !(near(pts, s.copy_stop) && keyframe && idr()) {
                        return Err(format!(
                            "a packet at {pts} ns where the IDR picture at {} ns should be",
                            s.copy_stop
                        ));
                    }
                    if n != s.copy_frames {
                        return Err(format!(
                            "{n} packets between the IDR pictures, not {}",
                            s.copy_frames
                        ));
                    }
                    gst::debug!(CAT, imp = self, "copied {n} packets");
                    copy.phase = Phase::Ended;
                    info.flow_res = Err(gst::FlowError::Eos);
                    return consumed(info);
                }
                if pts + (TOLERANCE as i64) < s.copy_start as i64 {
                    return Err(format!(
                        "a copied packet at {pts} ns, before the IDR picture"
                    ));
                }
                copy.phase = Phase::Copying { n: n + 1 };
            }
            _ => unreachable!("handled above"),
        }
        let buffer = buffer.make_mut();
        buffer.set_pts(gst::ClockTime::from_nseconds(stamp::copied(pts, s.start)));
        buffer.set_dts(gst::ClockTime::from_nseconds(stamp::copied(dts, s.start)));
        Ok(gst::PadProbeReturn::Ok)
    }

    /// `framesrc video=false audio=true` over the whole span.
    fn audio_source(
        &self,
        s: &Settings,
        location: &str,
    ) -> Result<gst::Element, gst::StateChangeError> {
        let source = self.make("framesrc")?;
        source.set_property("location", location);
        source.set_property("start", s.start);
        source.set_property("stop", s.stop);
        source.set_property("audio", true);
        source.set_property("video", false);
        self.obj()
            .add(&source)
            .map_err(|e| self.fail(e.to_string()))?;
        Ok(source)
    }

    /// Exposes `source`'s `audio` pad as ours, and its no-more-pads as ours.
    fn expose_audio(&self, source: &gst::Element) {
        let obj = self.obj();
        let weak = obj.downgrade();
        source.connect_pad_added(move |_, pad| {
            let Some(obj) = weak.upgrade() else { return };
            if pad.name() != "audio" {
                return;
            }
            let templ = obj.pad_template("audio").expect("audio template");
            let ghost = match gst::GhostPad::builder_from_template_with_target(&templ, pad) {
                Ok(builder) => builder.name("audio").build(),
                Err(e) => {
                    gst::element_error!(obj, gst::CoreError::Pad, ["{e}"]);
                    return;
                }
            };
            if ghost.set_active(true).is_err() || obj.add_pad(&ghost).is_err() {
                gst::element_error!(obj, gst::CoreError::Pad, ["cannot add the audio pad"]);
            }
        });
        let weak = obj.downgrade();
        source.connect_no_more_pads(move |_| {
            if let Some(obj) = weak.upgrade() {
                obj.no_more_pads();
            }
        });
    }
}

#[glib::object_subclass]
impl ObjectSubclass for SmartCut {
    const NAME: &'static str = "GstSmartCut";
    type Type = super::SmartCut;
    type ParentType = gst::Bin;
}

impl ObjectImpl for SmartCut {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let ns = |name: &'static str, blurb: &'static str, default: u64| {
                glib::ParamSpecUInt64::builder(name)
                    .blurb(blurb)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("location")
                    .blurb("Path of the H.264 media file, or its http:// or https:// URL")
                    .mutable_ready()
                    .build(),
                ns("start", "Stream time (ns) of the first frame", 0),
                ns(
                    "stop",
                    "Stream time (ns) where the range ends, exclusive",
                    u64::MAX,
                ),
                ns(
                    "copy-start",
                    "Stream time (ns) of the IDR picture where copying begins",
                    0,
                ),
                ns(
                    "copy-stop",
                    "Stream time (ns) of the IDR picture where copying ends (exclusive)",
                    0,
                ),
                glib::ParamSpecUInt::builder("copy-frames")
                    .blurb("Frames in [copy-start, copy-stop): checked against the packets")
                    .mutable_ready()
                    .build(),
                ns(
                    "reorder-delay",
                    "The source's PTS - DTS at the copied IDR (ns); re-encoded frames get \
                     DTS = PTS - this",
                    0,
                ),
                glib::ParamSpecString::builder("encoder")
                    .blurb(
                        "gst-launch description of the edges' encoder: raw video in, H.264 \
                         byte-stream access units out, without B-frames",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .blurb("Also output the span's decoded audio on the pad 'audio'")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let get = || value.get::<u64>().expect("type checked upstream");
        match pspec.name() {
            "location" => s.location = value.get().expect("type checked upstream"),
            "start" => s.start = get(),
            "stop" => s.stop = get(),
            "copy-start" => s.copy_start = get(),
            "copy-stop" => s.copy_stop = get(),
            "copy-frames" => s.copy_frames = value.get().expect("type checked upstream"),
            "reorder-delay" => s.reorder_delay = get(),
            "encoder" => s.encoder = value.get().expect("type checked upstream"),
            "audio" => s.audio = value.get().expect("type checked upstream"),
            name => unimplemented!("property {name}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location.to_value(),
            "start" => s.start.to_value(),
            "stop" => s.stop.to_value(),
            "copy-start" => s.copy_start.to_value(),
            "copy-stop" => s.copy_stop.to_value(),
            "copy-frames" => s.copy_frames.to_value(),
            "reorder-delay" => s.reorder_delay.to_value(),
            "encoder" => s.encoder.to_value(),
            "audio" => s.audio.to_value(),
            name => unimplemented!("property {name}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.settings.lock().unwrap().stop = u64::MAX;
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for SmartCut {}

impl ElementImpl for SmartCut {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Smart-cut H.264 range",
                "Source/Video/Audio",
                "An exact frame range of an H.264 file: partial GOPs at the edges re-encoded, \
                 whole GOPs copied",
                "framecast",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            [
                ("video", gst::Caps::new_empty_simple("video/x-h264")),
                ("audio", gst::Caps::new_empty_simple("audio/x-raw")),
            ]
            .into_iter()
            .map(|(name, caps)| {
                gst::PadTemplate::new(
                    name,
                    gst::PadDirection::Src,
                    gst::PadPresence::Sometimes,
                    &caps,
                )
                .expect("valid template")
            })
            .collect()
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PausedToReady {
            // Stopping: the parts not started yet never start (they stay in NULL).
            self.deferred.lock().unwrap().clear();
        }
        if transition == gst::StateChange::NullToReady {
            let mut built = self.built.lock().unwrap();
            if !*built {
                // Built once, from the properties as they are now: a smart cut is one run.
                self.build()?;
                *built = true;
            }
        }
        self.parent_change_state(transition)
    }
}

impl BinImpl for SmartCut {}
