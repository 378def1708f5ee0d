use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::range::{decoder_segment, seek_position, BufferAction, Kind, RangeFilter, SeekAim};
use super::restamp::{self, Restamp};
use super::skip;
use crate::movie_duration::MovieDurationFix;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "framesrc",
        gst::DebugColorFlags::empty(),
        Some("Exact frame range source"),
    )
});

/// Every demuxer, to tell containers from streams.
static DEMUXERS: LazyLock<Vec<gst::ElementFactory>> = LazyLock::new(|| {
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DEMUXER, gst::Rank::MARGINAL)
        .into_iter()
        .collect()
});

const DEFAULT_START: u64 = 0;
const DEFAULT_STOP: u64 = u64::MAX;
const DEFAULT_AUDIO: bool = false;
const DEFAULT_VIDEO: bool = true;
const DEFAULT_DECODER_THREADS: u32 = 0;

#[derive(Debug, Clone)]
struct Settings {
    location: Option<String>,
    start: gst::ClockTime,
    /// `None`: to the end.
    stop: Option<gst::ClockTime>,
    /// Where the video ends, if before `stop` (the audio then goes on to `stop`).
    video_stop: Option<gst::ClockTime>,
    audio: bool,
    /// Whether the video is decoded and exposed: without it, only the audio (smart-cut clips
    /// copy or encode their video elsewhere, and the audio must not cost a video decode).
    video: bool,
    /// The video decoder's `max-threads`, where it has one (the libav decoders); 0: its own
    /// choice.
    decoder_threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: None,
            start: gst::ClockTime::from_nseconds(DEFAULT_START),
            stop: None,
            video_stop: None,
            audio: DEFAULT_AUDIO,
            video: DEFAULT_VIDEO,
            decoder_threads: DEFAULT_DECODER_THREADS,
        }
    }
}

/// Everything that lives from READY to PAUSED and back.
#[derive(Debug, Default)]
struct State {
    /// The settings as they were when the run started: properties may change in READY.
    settings: Settings,
    video: Option<gst::GhostPad>,
    audio: Option<gst::GhostPad>,
    /// Whether the seek to `start` has been sent.
    seeking: bool,
    /// That seek's sequence number, which the demuxer gives the segments that follow it.
    seek_seqnum: Option<gst::Seqnum>,
    /// Where the seek goes: see [`seek_aim`].
    seek_aim: SeekAim,
    /// Whether the demuxer takes the seek before decoding: see [`seeks_before_decoding`].
    early_seek_demuxer: bool,
    /// The qtdemux workaround for this file, if it needs it (see [`MovieDurationFix`]).
    movie_duration_fix: Option<Arc<MovieDurationFix>>,
    /// Set when the video range is complete (EOS sent downstream): see
    /// [`feed_nothing_after_the_range`].
    video_done: Arc<AtomicBool>,
    /// Whether the seek is sent from the video decoder's input, before it decodes anything
    /// (see [`FrameSrc::seek_before_decoding`]), rather than by the range filter of the
    /// decoded video.
    early_seek: bool,
}

#[derive(Default)]
pub struct FrameSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Built when first going to READY, where a missing plugin can be reported.
    filesrc: OnceLock<gst::Element>,
}

impl FrameSrc {
    /// Builds `filesrc ! decodebin` (`souphttpsrc ! decodebin` for an http(s) location)
    /// inside the bin.
    fn build(&self) -> Result<gst::Element, gst::StateChangeError> {
        let make = |factory: &str| {
            gst::ElementFactory::make(factory).build().map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::MissingPlugin,
                    ["Missing element {factory}"]
                );
                gst::StateChangeError
            })
        };
        let location = self.settings.lock().unwrap().location.clone();
        let filesrc = make(crate::reader::factory(
            location.as_deref().unwrap_or_default(),
        ))?;
        if crate::reader::is_url(location.as_deref().unwrap_or_default()) {
            crate::reader::configure_http(&filesrc);
        }
        let decodebin = make("decodebin")?;
        // GStreamer 1.22's qtdemux ends tracks whose edit list starts past media time 0
        // early; the file's bytes are patched on their way to it.
        MovieDurationFix::install(
            &filesrc.static_pad("src").expect("filesrc has a src pad"),
            glib::clone!(
                #[weak(rename_to = this)]
                self,
                #[upgrade_or]
                None,
                move || this.state.lock().unwrap().movie_duration_fix.clone()
            ),
        );
        let obj = self.obj();
        obj.add_many([&filesrc, &decodebin])
            .and_then(|_| filesrc.link(&decodebin))
            .map_err(|err| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ["{err}"]);
                gst::StateChangeError
            })?;

        // Without audio, compressed audio goes no further than the demuxer: not decoding it
        // saves the time, and the pad is left out anyway.
        decodebin.connect(
            "autoplug-continue",
            false,
            glib::clone!(
                #[weak(rename_to = this)]
                self,
                #[upgrade_or]
                Some(true.to_value()),
                move |args| {
                    let caps = args[2].get::<gst::Caps>().expect("signal signature");
                    let name = caps.structure(0).map(|s| s.name().as_str());
                    let is_audio = name.is_some_and(|n| n.starts_with("audio/"));
                    // A container (video/quicktime) is not a video stream: demuxers take it.
                    let is_video = name.is_some_and(|n| n.starts_with("video/"))
                        && !DEMUXERS.iter().any(|f| f.can_sink_any_caps(&caps));
                    let settings = &this.state.lock().unwrap().settings;
                    let wanted = (settings.audio || !is_audio) && (settings.video || !is_video);
                    Some(wanted.to_value())
                }
            ),
        );
        decodebin.connect_pad_added(glib::clone!(
            #[weak(rename_to = this)]
            self,
            move |_, pad| this.pad_added(pad)
        ));
        decodebin.connect_no_more_pads(glib::clone!(
            #[weak(rename_to = this)]
            self,
            move |_| this.no_more_pads()
        ));
        obj.connect_deep_element_added(glib::clone!(
            #[weak(rename_to = this)]
            self,
            move |_, _, element| {
                let Some(factory) = element.factory() else {
                    return;
                };
                if factory.klass().contains("Demux") {
                    let mut state = this.state.lock().unwrap();
                    state.seek_aim = seek_aim(factory.name().as_str());
                    state.early_seek_demuxer = seeks_before_decoding(factory.name().as_str());
                }
                let klass = factory.klass().to_owned();
                let Some(sink) = element.static_pad("sink") else {
                    return;
                };
                if klass.contains("Decoder") && klass.contains("Video") {
                    let settings = this.state.lock().unwrap().settings.clone();
                    if settings.start > gst::ClockTime::ZERO {
                        // First: the probes below see the repaired timestamps.
                        repair_timestamps_after_seek(&sink);
                    }
                    let threads = settings.decoder_threads;
                    if threads != DEFAULT_DECODER_THREADS
                        && element.find_property("max-threads").is_some()
                    {
                        element.set_property_from_str("max-threads", &threads.to_string());
                    }
                    sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, start_decoding_earlier);
                    let early = this.state.lock().unwrap().early_seek_demuxer;
                    if early && settings.start > gst::ClockTime::ZERO && !settings.audio {
                        // After start_decoding_earlier: the seek position comes from the
                        // segment the decoder gets, as the range filter's would.
                        this.seek_before_decoding(element, &sink);
                    }
                    sink.add_probe(gst::PadProbeType::BUFFER, skip_unreferenced_before_start);
                    let done = this.state.lock().unwrap().video_done.clone();
                    feed_nothing_after_the_range(&sink, done);
                } else if klass.contains("Decoder") && klass.contains("Audio") {
                    if let Some(src) = element.static_pad("src") {
                        this.steady_audio_decoder_state(&sink, &src);
                    }
                }
            }
        ));
        Ok(filesrc)
    }

    /// Seeks as soon as the first packet reaches the video decoder `decoder` (whose sink pad
    /// is `sink`), and keeps every packet from before the seek out of it: the decoder then
    /// decodes nothing from the wrong place, and the range filter of its pad, which comes
    /// after the seek, has none to wait for (see [`State::early_seek`]).
    ///
    /// Otherwise the seek waits for decodebin's first decoded frame: the stream's first
    /// picture, and as many more as the decoder has frame threads, decoded to be dropped,
    /// then a flush that waits for those threads: in a 45 ms 720p thumbnail, 11 ms of
    /// decoding and a 4 ms flush by GStreamer's timestamps; 5-8 ms less side by side.
    /// Only without audio: with audio the seek still waits for decoded output, so that an
    /// audio decoder decodes the same packets before it in every run (see
    /// [`Self::steady_audio_decoder_state`]).
    fn seek_before_decoding(&self, decoder: &gst::Element, sink: &gst::Pad) {
        let Some(decoded) = decoder.static_pad("src") else {
            return;
        };
        let mut state = self.state.lock().unwrap();
        state.early_seek = true;
        let (start, aim) = (state.settings.start, state.seek_aim);
        drop(state);
        let weak_obj = self.obj().downgrade();
        // The stream time of the first segment, and whether the seek was sent.
        let seek = Mutex::new((None, false));
        sink.add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| {
                let mut seek = seek.lock().unwrap();
                let (first_stream_time, sent) = &mut *seek;
                match &info.data {
                    Some(gst::PadProbeData::Event(event)) => match event.view() {
                        gst::EventView::Segment(segment) => {
                            if first_stream_time.is_none() {
                                *first_stream_time = segment
                                    .segment()
                                    .downcast_ref::<gst::ClockTime>()
                                    .and_then(|segment| segment.time());
                            }
                            return gst::PadProbeReturn::Ok;
                        }
                        // Our seek's: what follows is from the right place.
                        gst::EventView::FlushStop(_) if *sent => {
                            return gst::PadProbeReturn::Remove
                        }
                        // A stream that ends before any packet still needs the seek.
                        gst::EventView::Eos(_) | gst::EventView::Gap(_) => {}
                        _ => return gst::PadProbeReturn::Ok,
                    },
                    Some(gst::PadProbeData::Buffer(_)) => {}
                    _ => return gst::PadProbeReturn::Ok,
                }
                if !std::mem::replace(sent, true) {
                    if let Some(obj) = weak_obj.upgrade() {
                        let position = seek_position(start, aim, *first_stream_time);
                        obj.imp().seek(&decoded, position);
                    }
                }
                // Consumed here. (`Drop` would make GStreamer 1.22 unref the data that
                // gstreamer-rs took from it.)
                info.data = None;
                gst::PadProbeReturn::Handled
            },
        );
    }

    /// Gives an audio decoder the same packets before our seek in every run: those up to
    /// its first output, which tells decodebin its caps, and not one more.
    ///
    /// A flush does not reset an audio decoder entirely: FFmpeg's AAC decoder keeps the
    /// previous frame's window shape (which shapes the next frame's first half) and its noise
    /// generator. How many packets it decoded before the seek's flush depended on thread
    /// timing, and the first frame after the seek came out different in about one run in
    /// ten. (Video decoders restart from a keyframe, which owes nothing to earlier pictures.)
    fn steady_audio_decoder_state(&self, sink: &gst::Pad, src: &gst::Pad) {
        if self.state.lock().unwrap().settings.start == gst::ClockTime::ZERO {
            return; // No seek: everything is wanted.
        }
        let weak_obj = self.obj().downgrade();
        let weak_src = src.downgrade();
        let flushed = std::sync::atomic::AtomicBool::new(false);
        sink.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_FLUSH,
            move |pad, info| {
                use std::sync::atomic::Ordering;
                match &info.data {
                    Some(gst::PadProbeData::Event(event)) => {
                        if event.type_() == gst::EventType::FlushStop {
                            flushed.store(true, Ordering::SeqCst);
                        }
                        return gst::PadProbeReturn::Ok;
                    }
                    Some(gst::PadProbeData::Buffer(_)) => {}
                    _ => return gst::PadProbeReturn::Ok,
                }
                // After the seek: this pad saw its flush or, linked later, its segment
                // (which the demuxer numbers with the seek's seqnum).
                let seek_seqnum = weak_obj
                    .upgrade()
                    .and_then(|obj| obj.imp().state.lock().unwrap().seek_seqnum);
                let segment_seqnum = pad
                    .sticky_event::<gst::event::Segment>(0)
                    .map(|event| event.seqnum());
                let after_seek = flushed.load(Ordering::SeqCst)
                    || (seek_seqnum.is_some() && segment_seqnum == seek_seqnum);
                if after_seek {
                    return gst::PadProbeReturn::Remove;
                }
                // The decoder handles one packet at a time on this thread: when the next one
                // comes, the previous one's output, if any, has set the caps.
                let has_output = weak_src
                    .upgrade()
                    .is_some_and(|src| src.current_caps().is_some());
                if !has_output {
                    return gst::PadProbeReturn::Ok;
                }
                gst::trace!(CAT, obj = pad, "dropping audio from before the seek");
                // Consumed here. (`Drop` would make GStreamer 1.22 unref the data that
                // gstreamer-rs took from it.)
                info.data = None;
                gst::PadProbeReturn::Handled
            },
        );
    }

    /// Exposes the first video and (with `audio`) the first audio stream; the others are
    /// swallowed.
    fn pad_added(&self, decoded: &gst::Pad) {
        let caps = decoded.current_caps();
        let media = caps.as_ref().and_then(|caps| caps.structure(0));
        let mut state = self.state.lock().unwrap();
        let kind = match media.map(|s| s.name().as_str()) {
            Some("video/x-raw") if state.settings.video && state.video.is_none() => Kind::Video,
            Some("audio/x-raw") if state.settings.audio && state.audio.is_none() => Kind::Audio,
            _ => {
                gst::debug!(CAT, imp = self, "Not exposing {caps:?}");
                // Unlinked, it would return not-linked; EOS also tells the demuxer that it
                // need not read on for this stream.
                decoded.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                    info.flow_res = Err(gst::FlowError::Eos);
                    gst::PadProbeReturn::Handled
                });
                return;
            }
        };
        let name = match kind {
            Kind::Video => "video",
            Kind::Audio => "audio",
        };
        let templ = self
            .obj()
            .pad_template(name)
            .expect("templates for both kinds");
        let ghost = match gst::GhostPad::builder_from_template_with_target(&templ, decoded) {
            Ok(builder) => builder.name(name).build(),
            Err(err) => {
                gst::element_imp_error!(self, gst::CoreError::Pad, ["{err}"]);
                return;
            }
        };

        let settings = &state.settings;
        // Everything decoded before our seek is from the wrong place. A video decoder that
        // got nothing from before it decoded nothing from there.
        let await_seek =
            settings.start > gst::ClockTime::ZERO && !(kind == Kind::Video && state.early_seek);
        let filter = Mutex::new(
            RangeFilter::new(
                kind,
                settings.start,
                match kind {
                    Kind::Video => settings.video_stop.or(settings.stop),
                    Kind::Audio => settings.stop,
                },
                await_seek,
            )
            .aiming(state.seek_aim),
        );
        let weak_ghost = ghost.downgrade();
        let weak_obj = self.obj().downgrade();
        // Decoders push buffers one by one, never lists.
        decoded.add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |decoded, info| match (weak_obj.upgrade(), weak_ghost.upgrade()) {
                (Some(obj), Some(ghost)) => obj.imp().probe(decoded, info, &filter, &ghost),
                _ => gst::PadProbeReturn::Ok,
            },
        );

        gst::debug!(CAT, imp = self, "Exposing {caps:?} as {name}");
        match kind {
            Kind::Video => state.video = Some(ghost.clone()),
            Kind::Audio => state.audio = Some(ghost.clone()),
        }
        // Not under our lock: adding the pad runs the application's pad-added handlers.
        drop(state);
        let obj = self.obj();
        if ghost.set_active(true).is_err() || obj.add_pad(&ghost).is_err() {
            gst::element_imp_error!(self, gst::CoreError::Pad, ["Could not add pad {name}"]);
        }
    }

    /// Everything decodebin outputs on the pad behind `ghost` goes through here.
    fn probe(
        &self,
        decoded: &gst::Pad,
        info: &mut gst::PadProbeInfo,
        filter: &Mutex<RangeFilter>,
        ghost: &gst::GhostPad,
    ) -> gst::PadProbeReturn {
        enum Outcome<'a> {
            Buffer(BufferAction),
            Event(Option<gst::Event>),
            Other(Option<gst::PadProbeData<'a>>),
        }

        // Not locked while pushing downstream.
        let (outcome, seek) = {
            let mut filter = filter.lock().unwrap();
            let outcome = match info.data.take() {
                Some(gst::PadProbeData::Buffer(buffer)) => Outcome::Buffer(filter.buffer(buffer)),
                Some(gst::PadProbeData::Event(event)) => Outcome::Event(filter.event(event)),
                other => Outcome::Other(other),
            };
            (outcome, filter.take_seek())
        };
        if let Some(position) = seek {
            self.seek(decoded, position);
        }

        match outcome {
            Outcome::Buffer(BufferAction::Pass(buffer, segment)) => {
                if let Some(segment) = segment {
                    ghost.push_event(segment);
                }
                info.data = Some(gst::PadProbeData::Buffer(buffer));
                gst::PadProbeReturn::Ok
            }
            // Consumed by the filter. (`Drop` would make GStreamer 1.22 unref the data that
            // gstreamer-rs took from it.)
            Outcome::Buffer(BufferAction::Drop) | Outcome::Event(None) => {
                gst::PadProbeReturn::Handled
            }
            Outcome::Buffer(BufferAction::End) => {
                gst::debug!(CAT, obj = ghost, "Past the stop, sending EOS");
                if ghost.name() == "video" {
                    self.state
                        .lock()
                        .unwrap()
                        .video_done
                        .store(true, Ordering::SeqCst);
                }
                ghost.push_event(gst::event::Eos::new());
                // Upstream stops feeding this stream; the demuxer stops reading once every
                // stream has said so.
                info.flow_res = Err(gst::FlowError::Eos);
                gst::PadProbeReturn::Handled
            }
            Outcome::Buffer(BufferAction::Refuse) => {
                info.flow_res = Err(gst::FlowError::Eos);
                gst::PadProbeReturn::Handled
            }
            Outcome::Event(Some(event)) => {
                info.data = Some(gst::PadProbeData::Event(event));
                gst::PadProbeReturn::Ok
            }
            Outcome::Other(data) => {
                info.data = data;
                gst::PadProbeReturn::Ok
            }
        }
    }

    /// Seeks all streams (once per run) by sending the seek upstream from `decoded`, through
    /// the decoder, to the demuxer.
    fn seek(&self, decoded: &gst::Pad, position: gst::ClockTime) {
        let seqnum = gst::Seqnum::next();
        {
            let mut state = self.state.lock().unwrap();
            if state.seeking {
                return;
            }
            state.seeking = true;
            state.seek_seqnum = Some(seqnum);
        }
        let decoded = decoded.clone();
        // This runs on a streaming thread, which the seek's flush must be able to stop.
        self.obj().call_async(move |obj| {
            gst::debug!(CAT, obj = obj, "Seeking to {position}");
            // Without a stop: the decoder would clip the frames past it, and we would not see
            // the first of them, which is what tells that the range is complete. Demuxers
            // also stop at the next keyframe at best, and some (matroskademux) drop the
            // B-frames that come after a later P-frame in decoding order.
            let seek = gst::event::Seek::builder(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::SeekType::Set,
                position,
                gst::SeekType::None,
                gst::ClockTime::NONE,
            )
            .seqnum(seqnum)
            .build();
            // Failing because we are shutting down is no error.
            if !decoded.send_event(seek) && decoded.is_active() {
                gst::element_error!(obj, gst::CoreError::Seek, ["Could not seek to {position}"]);
            }
        });
    }

    /// decodebin has exposed all its pads, and so have we.
    fn no_more_pads(&self) {
        let state = self.state.lock().unwrap();
        let exposed = state.video.is_some() || state.audio.is_some();
        drop(state);
        if exposed {
            self.obj().no_more_pads();
        } else {
            gst::element_imp_error!(self, gst::StreamError::WrongType, ["No video stream"]);
        }
    }
}

/// Where to seek with this demuxer (GStreamer 1.22):
/// - mpegpsdemux seeks by the system clock reference, the muxer's clock, and lands where that
///   clock reads the wanted time: the video there is up to 1 s later (the MPEG system target
///   decoder's largest delay) and may start after the keyframe the wanted frame needs.
///   Seeking 1 s for the delay plus 1 s for a typical GOP earlier finds it; the extra frames
///   are decoded and dropped.
/// - tsdemux takes a flushing seek to its position (the highest timestamp it has pushed) for
///   no move: it flushes, then reads on from where it was, and the decoder gets the packets
///   after the wanted frame without their keyframe (a 20-frame range ended with 15 frames,
///   about one run in eight, when the demuxer had just pushed the wanted frame). `start` is a
///   frame's timestamp, so a nanosecond earlier is never its position; it seeks 2.5 s earlier
///   than asked anyway and starts at a keyframe from there, so this costs no decoding.
/// - Other demuxers seek to the keyframe before the wanted time themselves.
fn seek_aim(demuxer: &str) -> SeekAim {
    match demuxer {
        "mpegpsdemux" => SeekAim::Lead(gst::ClockTime::from_seconds(2)),
        "tsdemux" => SeekAim::JustBefore,
        _ => SeekAim::Start,
    }
}

/// Whether the seek may be sent as soon as the first video packet reaches the decoder (see
/// [`FrameSrc::seek_before_decoding`]) with this demuxer: only qtdemux (MP4, MOV), the one
/// it was checked with. matroskademux (GStreamer 1.22), seeked that early, gave a segment
/// starting after the first frame in about one run in nine, and the decoder restamped that
/// frame to the segment's start.
fn seeks_before_decoding(demuxer: &str) -> bool {
    demuxer == "qtdemux"
}

/// Gives the buffers going into a video decoder after our seek the timestamps they had before
/// it, where the demuxer got them wrong (see [`restamp`]).
fn repair_timestamps_after_seek(sink: &gst::Pad) {
    let restamp = Mutex::new(Restamp::default());
    sink.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_FLUSH,
        move |pad, info| {
            match &mut info.data {
                Some(gst::PadProbeData::Event(event))
                    if event.type_() == gst::EventType::FlushStop =>
                {
                    restamp.lock().unwrap().flush_stop();
                }
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let repaired = restamp.lock().unwrap().buffer(buffer, restamp::same_bytes);
                    if let Some(stamps) = repaired {
                        gst::trace!(
                            CAT,
                            obj = pad,
                            "restamping {:?}/{:?} to {:?}/{:?}",
                            buffer.pts(),
                            buffer.dts(),
                            stamps.pts,
                            stamps.dts
                        );
                        let buffer = buffer.make_mut();
                        buffer.set_pts(stamps.pts);
                        buffer.set_dts(stamps.dts);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Refuses the video decoder any packet once the range is complete (`done`): the demuxer
/// learns that this stream is over from the first refusal, and the decoder decodes nothing
/// nobody wants.
///
/// Without this, GStreamer 1.22's decodebin does not stop feeding the decoder: after the
/// decoder returned EOS (our range ended), its multiqueue drops the packets it holds, but
/// a tag event from the demuxer resets the pad's flow and the next packet goes through,
/// frames later. av1dec (libaom) refuses a packet whose reference frames it never saw and
/// posts "Failed to decode frame" on the bus, which cut a 31-frame /clip of an AV1 WebM
/// after its last frame (about one request in two on a loaded machine; decoders that
/// conceal such gaps show nothing).
fn feed_nothing_after_the_range(sink: &gst::Pad, done: Arc<AtomicBool>) {
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if !done.load(Ordering::SeqCst) {
            return gst::PadProbeReturn::Ok;
        }
        info.flow_res = Err(gst::FlowError::Eos);
        gst::PadProbeReturn::Handled
    });
}

/// Replaces the segments going into a video decoder with [`decoder_segment`]s.
fn start_decoding_earlier(_: &gst::Pad, info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
        if let gst::EventView::Segment(segment) = event.view() {
            if let Some(segment) = segment.segment().downcast_ref::<gst::ClockTime>() {
                *event = gst::event::Segment::builder(&decoder_segment(segment))
                    .seqnum(event.seqnum())
                    .running_time_offset(event.running_time_offset())
                    .build();
            }
        }
    }
    gst::PadProbeReturn::Ok
}

/// Drops H.264 and HEVC pictures that no other picture refers to (see [`skip::Coding`]) and
/// that would be shown before the decoder's segment starts: the decoder would decode them
/// only to clip them. After a seek into a long GOP this skips most B-frames between the
/// keyframe and `start`.
fn skip_unreferenced_before_start(
    pad: &gst::Pad,
    info: &mut gst::PadProbeInfo,
) -> gst::PadProbeReturn {
    let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
        return gst::PadProbeReturn::Ok;
    };
    let segment_start = pad
        .sticky_event::<gst::event::Segment>(0)
        .and_then(|event| {
            event
                .segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|segment| segment.start())
        });
    let (Some(start), Some(pts)) = (segment_start, buffer.pts()) else {
        return gst::PadProbeReturn::Ok;
    };
    let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
    if end > start {
        return gst::PadProbeReturn::Ok;
    }
    let Some(coding) = pad
        .current_caps()
        .and_then(|caps| skip::Coding::from_caps(&caps))
    else {
        return gst::PadProbeReturn::Ok;
    };
    let unreferenced = buffer
        .map_readable()
        .is_ok_and(|map| coding.is_non_reference(&map));
    if !unreferenced {
        return gst::PadProbeReturn::Ok;
    }
    gst::trace!(CAT, obj = pad, "skipping unreferenced picture at {pts}");
    // Consumed here. (`Drop` would make GStreamer 1.22 unref the data that gstreamer-rs took
    // from it.)
    info.data = None;
    gst::PadProbeReturn::Handled
}

#[glib::object_subclass]
impl ObjectSubclass for FrameSrc {
    const NAME: &'static str = "GstFrameSrc";
    type Type = super::FrameSrc;
    type ParentType = gst::Bin;
}

impl ObjectImpl for FrameSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Path of the media file, or its http:// or https:// URL")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("start")
                    .nick("Start")
                    .blurb("Stream time (ns) of the first frame to output")
                    .default_value(DEFAULT_START)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("stop")
                    .nick("Stop")
                    .blurb(
                        "Stream time (ns) at which output ends, exclusive \
                         (18446744073709551615 = to the end)",
                    )
                    .default_value(DEFAULT_STOP)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("video-stop")
                    .nick("Video stop")
                    .blurb(
                        "Stream time (ns) at which the video ends, exclusive, when before 'stop' \
                         (the audio goes on to 'stop'); 18446744073709551615 = at 'stop'",
                    )
                    .default_value(DEFAULT_STOP)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Also output the first audio stream, on the pad 'audio'")
                    .default_value(DEFAULT_AUDIO)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("video")
                    .nick("Video")
                    .blurb(
                        "Decode and output the first video stream on the pad 'video'; false: \
                         audio only, no video decoded",
                    )
                    .default_value(DEFAULT_VIDEO)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("decoder-threads")
                    .nick("Decoder threads")
                    .blurb(
                        "Threads of the video decoder, where it can be told (the libav \
                         decoders' max-threads); 0 = the decoder's own choice. Each thread \
                         holds frames in flight: 1 saves memory when the decoder is not the \
                         bottleneck",
                    )
                    .default_value(DEFAULT_DECODER_THREADS)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => settings.location = value.get().expect("type checked upstream"),
            "start" => {
                settings.start = gst::ClockTime::from_nseconds(value.get().expect("type checked"))
            }
            "stop" => {
                let stop: u64 = value.get().expect("type checked upstream");
                settings.stop = (stop != DEFAULT_STOP).then(|| gst::ClockTime::from_nseconds(stop));
            }
            "video-stop" => {
                let stop: u64 = value.get().expect("type checked upstream");
                settings.video_stop =
                    (stop != DEFAULT_STOP).then(|| gst::ClockTime::from_nseconds(stop));
            }
            "audio" => settings.audio = value.get().expect("type checked upstream"),
            "video" => settings.video = value.get().expect("type checked upstream"),
            "decoder-threads" => {
                settings.decoder_threads = value.get().expect("type checked upstream")
            }
            name => unimplemented!("property {name}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => settings.location.to_value(),
            "start" => settings.start.nseconds().to_value(),
            "stop" => settings
                .stop
                .map_or(DEFAULT_STOP, gst::ClockTime::nseconds)
                .to_value(),
            "video-stop" => settings
                .video_stop
                .map_or(DEFAULT_STOP, gst::ClockTime::nseconds)
                .to_value(),
            "audio" => settings.audio.to_value(),
            "video" => settings.video.to_value(),
            "decoder-threads" => settings.decoder_threads.to_value(),
            name => unimplemented!("property {name}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for FrameSrc {}

impl ElementImpl for FrameSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Frame range source",
                "Source/Video/Audio",
                "Decodes the frames of a media file whose stream time is in [start, stop)",
                "framecast",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            [("video", "video/x-raw"), ("audio", "audio/x-raw")]
                .into_iter()
                .map(|(name, media)| {
                    gst::PadTemplate::new(
                        name,
                        gst::PadDirection::Src,
                        gst::PadPresence::Sometimes,
                        &gst::Caps::new_empty_simple(media),
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
        match transition {
            gst::StateChange::NullToReady if self.filesrc.get().is_none() => {
                let filesrc = self.build()?;
                let _ = self.filesrc.set(filesrc);
            }
            gst::StateChange::ReadyToPaused => {
                // filesrc opens the file in this transition.
                let settings = self.settings.lock().unwrap().clone();
                if let Some(filesrc) = self.filesrc.get() {
                    // The reader was chosen by the first location's kind.
                    let wanted =
                        crate::reader::factory(settings.location.as_deref().unwrap_or_default());
                    if filesrc.factory().is_none_or(|f| f.name() != wanted) {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Failed,
                            ["framesrc cannot switch between a path and a URL: make a new one"]
                        );
                        return Err(gst::StateChangeError);
                    }
                    filesrc.set_property("location", settings.location.as_deref());
                }
                let movie_duration_fix = settings
                    .location
                    .as_deref()
                    .and_then(|location| MovieDurationFix::for_file(location.as_ref()))
                    .map(Arc::new);
                *self.state.lock().unwrap() = State {
                    settings,
                    movie_duration_fix,
                    ..State::default()
                };
            }
            _ => {}
        }

        let success = self.parent_change_state(transition)?;

        if transition == gst::StateChange::PausedToReady {
            // decodebin has removed its pads, ours lost their targets.
            let mut state = self.state.lock().unwrap();
            let ghosts = [state.video.take(), state.audio.take()];
            drop(state);
            let obj = self.obj();
            for ghost in ghosts.into_iter().flatten() {
                let _ = obj.remove_pad(&ghost);
            }
        }
        Ok(success)
    }
}

impl BinImpl for FrameSrc {}
