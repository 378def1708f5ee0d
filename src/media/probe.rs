//! Probe a media file with GStreamer: stream properties plus the frame index.
//!
//! One pass over the file: `filesrc ! parsebin`, the first video stream into an appsink that
//! records every parsed frame's timestamp and keyframe flag, every other stream into a
//! fakesink. Nothing is decoded, so a file indexes at demux speed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gst::prelude::*;

use gstframecast::movie_duration::MovieDurationFix;

use super::{FrameIndex, Orientation};

#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// The container's duration; the video's end ([`FrameIndex::end_ns`]) when it has none.
    /// A file cut short after its header (moov at the front) keeps its full duration here,
    /// while the index ends with the last frame present.
    pub duration_ns: u64,
    /// Nominal frame rate: the caps' rate when it agrees with the frames' mean rate, else the
    /// mean rate (variable-rate Matroska says 0/1).
    pub fps: f64,
    /// The upright picture's size: the decoded frame's, turned by
    /// [`FrameIndex::orientation`] (sideways phone video is taller than wide here).
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
    /// Short codec names, e.g. "h264", "aac"; video first.
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub frame_index: FrameIndex,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot read {0}")]
    Io(String),
    #[error("GStreamer cannot demux or decode this file: {0}")]
    Unsupported(String),
    #[error("the file has no video stream")]
    NoVideo,
}

/// Time allowed for any file, plus [`TIMEOUT_BYTES_PER_SEC`] of file size per second: parsing
/// runs at hundreds of MB/s, so only a stuck pipeline gets near this.
const TIMEOUT_BASE: Duration = Duration::from_secs(120);
const TIMEOUT_BYTES_PER_SEC: u64 = 20 << 20;

/// How long the pipeline may go without moving a buffer before the scan gives up. parsebin
/// drops the errors an element posts while it is still being plugged (its error filter), so
/// a demuxer that fails right away on its own thread, as qtdemux does on a truncated header
/// now and then, leaves a pipeline that neither errors nor ends.
const STALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Name of the application message that ends the scan before EOS.
const STOP_MESSAGE: &str = "framecast-probe-stop";

/// Reads the whole file once (demux + parse, no decoding) and returns its properties and frame
/// index.
pub fn probe(path: &Path) -> Result<MediaInfo, ProbeError> {
    gst::init().map_err(|e| ProbeError::Unsupported(format!("GStreamer init: {e}")))?;
    let metadata =
        std::fs::metadata(path).map_err(|e| ProbeError::Io(format!("{}: {e}", path.display())))?;
    if !metadata.is_file() {
        return Err(ProbeError::Io(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    // Opening the file here turns a permission problem into `Io`, not a pipeline error.
    std::fs::File::open(path).map_err(|e| ProbeError::Io(format!("{}: {e}", path.display())))?;

    let _span = tracing::debug_span!("probe", path = %path.display()).entered();
    let started = Instant::now();
    let timeout = TIMEOUT_BASE + Duration::from_secs(metadata.len() / TIMEOUT_BYTES_PER_SEC);
    let mut scan = scan(&path.to_string_lossy(), timeout)?;
    if let Some(video) = scan
        .video
        .as_mut()
        .filter(|video| video.orientation.is_none())
    {
        // Matroska's rotation, which GStreamer 1.22 does not report (local files only).
        video.orientation = super::matroska::orientation(path);
    }
    let info = scan.into_media_info()?;
    tracing::debug!(
        frames = info.frame_index.len(),
        keyframes = info.frame_index.keyframes().len(),
        elapsed_ms = started.elapsed().as_millis(),
        "probed"
    );
    Ok(info)
}

/// As [`probe`], for media at an `http://` or `https://` URL (read with range requests by
/// souphttpsrc) of `size` bytes. The caller checked that the object exists.
pub fn probe_url(url: &str, size: u64) -> Result<MediaInfo, ProbeError> {
    gst::init().map_err(|e| ProbeError::Unsupported(format!("GStreamer init: {e}")))?;
    // The URL may carry a signature: not logged.
    let _span = tracing::debug_span!("probe", url = "(remote)").entered();
    let started = Instant::now();
    // Networks are slower than disks: a quarter of the local rate, still far above a
    // stuck pipeline.
    let timeout = TIMEOUT_BASE + Duration::from_secs(4 * size / TIMEOUT_BYTES_PER_SEC);
    let info = scan(url, timeout)?.into_media_info()?;
    tracing::debug!(
        frames = info.frame_index.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "probed over HTTP"
    );
    Ok(info)
}

/// What the streaming threads learn during the pass.
#[derive(Default)]
struct Scan {
    video: Option<Stream>,
    audio: Option<Stream>,
    /// Set when the video stream turns out to have no decoder: the scan stops early.
    undecodable: Option<String>,
    /// The segments video buffers came with, in order (see [`Scan::record`]).
    segments: Vec<gst::FormattedSegment<gst::ClockTime>>,
    buffers: Vec<VideoBuffer>,
    /// Buffers timed by their DTS, for lack of a PTS.
    pts_from_dts: u64,
    /// PTS - DTS of the buffers that have both: `Some` while it has always been the same.
    reorder_delay: ReorderDelay,
    /// Buffers without any timestamp, left out.
    untimed: u64,
    duration: Option<gst::ClockTime>,
}

/// How far presentation lags decoding, as the buffers with both timestamps show it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ReorderDelay {
    #[default]
    Unknown,
    /// The same for every such buffer: frames are not reordered (no B-frames), only delayed.
    Constant(gst::ClockTime),
    /// It varies: frames are reordered.
    Varying,
}

impl ReorderDelay {
    fn observe(&mut self, pts: gst::ClockTime, dts: gst::ClockTime) {
        let delay = pts.checked_sub(dts);
        *self = match (*self, delay) {
            (ReorderDelay::Unknown, Some(delay)) => ReorderDelay::Constant(delay),
            (ReorderDelay::Constant(was), Some(delay)) if was == delay => *self,
            _ => ReorderDelay::Varying,
        };
    }
}

/// A stream parsebin exposed.
struct Stream {
    /// Caps when the pad appeared: may still be unfixed (MPEG-TS exposes streams before the
    /// parser has seen a header), but tell the codec.
    caps: gst::Caps,
    pad: gst::Pad,
    /// From the stream's tags: stream-scoped ones win over the container's global ones, as
    /// in `videoflip video-direction=auto`.
    orientation: Option<Orientation>,
}

impl Stream {
    /// Replaces the caps by those the data actually flowed with, which carry the width,
    /// height and frame rate, and reads the orientation from the tags that went by (sticky
    /// on the pad). Only valid while the pipeline is not yet shut down.
    fn take_negotiated_facts(&mut self) {
        if let Some(caps) = self.pad.current_caps() {
            self.caps = caps;
        }
        let (mut stream, mut global) = (None, None);
        self.pad.sticky_events_foreach(|event| {
            if let gst::EventView::Tag(tag) = event.view() {
                let tags = tag.tag();
                if let Some(orientation) = Orientation::from_tags(tags) {
                    match tags.scope() {
                        gst::TagScope::Stream => stream = Some(orientation),
                        _ => global = Some(orientation),
                    }
                }
            }
            std::ops::ControlFlow::Continue(gst::EventForeachAction::Keep)
        });
        self.orientation = stream.or(global);
    }
}

/// A parsed video buffer, timed as the demuxer timed it.
struct VideoBuffer {
    ts: gst::ClockTime,
    /// `ts` is the DTS, for lack of a PTS.
    from_dts: bool,
    duration: Option<gst::ClockTime>,
    keyframe: bool,
    /// Index into [`Scan::segments`].
    segment: usize,
}

/// A video buffer that is a frame of the file.
struct Frame {
    stream_time: u64,
    /// Stream time at which it stops being displayed, when the buffer has a duration.
    end: Option<u64>,
    keyframe: bool,
}

type SharedScan = Arc<Mutex<Scan>>;

fn lock(shared: &SharedScan) -> std::sync::MutexGuard<'_, Scan> {
    // A panic in a streaming thread leaves plain data behind; keep using it.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the pipeline to NULL however the scan ends, which joins its streaming threads.
struct PipelineGuard(gst::Pipeline);

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// One pass over `location` (a path, or an http(s) URL).
fn scan(location: &str, timeout: Duration) -> Result<Scan, ProbeError> {
    let unsupported =
        |what: &str, e: &dyn std::fmt::Display| ProbeError::Unsupported(format!("{what}: {e}"));
    let filesrc = gstframecast::reader::make(location)
        .map_err(|e| unsupported(gstframecast::reader::factory(location), &e))?;
    filesrc.set_property("location", location);
    let parsebin = gst::ElementFactory::make("parsebin")
        // Error messages name their source: "parsebin", not "parsebin7".
        .name("parsebin")
        .build()
        .map_err(|e| unsupported("parsebin", &e))?;
    // framesrc patches the bytes qtdemux reads for some MP4s (see `MovieDurationFix`): the
    // index must see the frames framesrc will show.
    // (Read from a local file only: a remote one is indexed without the fix, as framesrc
    // reads it without it.)
    let movie_duration_fix = if gstframecast::reader::is_url(location) {
        None
    } else {
        MovieDurationFix::for_file(std::path::Path::new(location)).map(Arc::new)
    };
    if let Some(fix) = &movie_duration_fix {
        tracing::debug!(
            duration = %fix.original_duration(),
            patched = %fix.patched_duration(),
            "edit list past media time 0: patching the movie duration for qtdemux"
        );
        let fix = fix.clone();
        MovieDurationFix::install(
            &filesrc.static_pad("src").expect("filesrc has a src pad"),
            move || Some(fix.clone()),
        );
    }
    let pipeline = PipelineGuard(gst::Pipeline::new());
    pipeline
        .0
        .add_many([&filesrc, &parsebin])
        .and_then(|()| filesrc.link(&parsebin))
        .map_err(|e| unsupported("building the pipeline", &e))?;

    let shared = SharedScan::default();
    // Buffers that left parsebin, on any stream.
    let progress = Arc::new(AtomicU64::new(0));
    let pipeline_weak = pipeline.0.downgrade();
    parsebin.connect_pad_added({
        let shared = shared.clone();
        let progress = progress.clone();
        move |parsebin, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else {
                return;
            };
            let progress = progress.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                progress.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
            match link_stream(&pipeline, pad, &shared) {
                Ok(Continue::Yes) => {}
                Ok(Continue::No) => post_stop(parsebin),
                Err(e) => {
                    // The unlinked pad makes the demuxer fail with not-linked, which ends the
                    // scan with an error.
                    tracing::warn!(pad = %pad.name(), "cannot link stream: {e}");
                }
            }
        }
    });
    parsebin.connect_no_more_pads({
        let shared = shared.clone();
        move |parsebin| {
            // Without video there is nothing to index: skip reading the audio to the end.
            if lock(&shared).video.is_none() {
                post_stop(parsebin);
            }
        }
    });

    let bus = pipeline.0.bus().expect("a pipeline has a bus");
    if pipeline.0.set_state(gst::State::Playing).is_err() {
        return Err(bus_error(&bus));
    }

    let deadline = Instant::now() + timeout;
    let (mut seen, mut moved_at) = (0, Instant::now());
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ProbeError::Unsupported(format!(
                "still reading after {} s",
                timeout.as_secs()
            )));
        }
        let buffers = progress.load(Ordering::Relaxed);
        if buffers != seen {
            (seen, moved_at) = (buffers, now);
        } else if now.duration_since(moved_at) >= STALL_TIMEOUT {
            return Err(ProbeError::Unsupported(format!(
                "the demuxer stalled for {} s without an error",
                STALL_TIMEOUT.as_secs()
            )));
        }
        // Wake up every second to watch for a stall.
        let wait = (deadline - now).min(Duration::from_secs(1));
        let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::try_from(wait).ok(),
            &[
                gst::MessageType::Eos,
                gst::MessageType::Error,
                gst::MessageType::Warning,
                gst::MessageType::Application,
            ],
        ) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => return Err(error_message_to_probe_error(err)),
            gst::MessageView::Warning(warning) => {
                tracing::debug!("{}", warning.error());
            }
            gst::MessageView::Application(app)
                if app.structure().is_some_and(|s| s.name() == STOP_MESSAGE) =>
            {
                break
            }
            _ => {}
        }
    }

    // With the fix, qtdemux reports the patched duration.
    let duration = match &movie_duration_fix {
        Some(fix) => Some(fix.original_duration()),
        None => pipeline.0.query_duration::<gst::ClockTime>(),
    };
    let mut scan = std::mem::take(&mut *lock(&shared));
    scan.duration = duration;
    for stream in [&mut scan.video, &mut scan.audio].into_iter().flatten() {
        stream.take_negotiated_facts();
    }
    Ok(scan)
}

/// Ends the bus loop from a streaming thread.
fn post_stop(element: &gst::Element) {
    let message = gst::message::Application::new(gst::Structure::new_empty(STOP_MESSAGE));
    // Only fails when the element has no bus any more, i.e. the scan is over already.
    let _ = element.post_message(message);
}

/// Whether the scan goes on after a stream was linked.
enum Continue {
    Yes,
    /// The video stream cannot be decoded: reading further is pointless.
    No,
}

/// Links one of parsebin's streams: the first video stream to the frame recorder, everything
/// else to a fakesink (every pad must be linked, or the demuxer stops with not-linked).
///
/// Sinks are `async=false`: the pipeline is PLAYING before parsebin exposes its pads, and an
/// async sink added then makes the pipeline lose its state, so a sink added in that window
/// syncs to PAUSED and blocks the demuxer's thread in preroll forever.
fn link_stream(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    shared: &SharedScan,
) -> Result<Continue, String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    tracing::debug!(pad = %pad.name(), %caps, "stream");

    let (record_frames, next) = {
        let mut scan = lock(shared);
        let stream = Stream {
            caps: caps.clone(),
            pad: pad.clone(),
            orientation: None,
        };
        if is_video(&caps) && scan.video.is_none() {
            scan.video = Some(stream);
            scan.undecodable = undecodable(&caps);
            match scan.undecodable {
                None => (true, Continue::Yes),
                // Still linked, to a fakesink: the demuxer must not fail with not-linked
                // before the stop message is handled.
                Some(_) => (false, Continue::No),
            }
        } else {
            let is_audio = caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("audio/"));
            if is_audio && scan.audio.is_none() {
                scan.audio = Some(stream);
            }
            (false, Continue::Yes)
        }
    };
    let sink = if record_frames {
        frame_recorder(shared.clone())
    } else {
        gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|e| e.to_string())?
    };
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    let sinkpad = sink.static_pad("sink").expect("sinks have a sink pad");
    pad.link(&sinkpad).map_err(|e| e.to_string())?;
    Ok(next)
}

fn is_video(caps: &gst::CapsRef) -> bool {
    caps.structure(0).is_some_and(|s| {
        // MJPEG in AVI/MOV comes out as image/jpeg, with a frame rate.
        s.name().starts_with("video/") || (s.name() == "image/jpeg" && s.has_field("framerate"))
    })
}

/// Why these parsed video caps cannot be decoded here, if they cannot.
fn undecodable(caps: &gst::CapsRef) -> Option<String> {
    if caps.structure(0).is_some_and(|s| s.name() == "video/x-raw") {
        return None;
    }
    let decoders = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_VIDEO,
        // decodebin skips elements below marginal rank too.
        gst::Rank::MARGINAL,
    );
    if decoders.iter().any(|f| f.can_sink_any_caps(caps)) {
        None
    } else {
        Some(format!("no video decoder installed for {caps}"))
    }
}

/// An appsink that records each parsed video buffer into the scan.
fn frame_recorder(shared: SharedScan) -> gst::Element {
    let appsink = gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .build();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |appsink| {
                let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                lock(&shared).record(&sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    appsink.upcast()
}

impl Scan {
    fn record(&mut self, sample: &gst::Sample) {
        let (Some(buffer), Some(segment)) = (
            sample.buffer(),
            sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>()),
        ) else {
            return;
        };
        let (ts, from_dts) = match (buffer.pts(), buffer.dts()) {
            (Some(pts), dts) => {
                if let Some(dts) = dts {
                    self.reorder_delay.observe(pts, dts);
                }
                (pts, false)
            }
            // Parsers interpolate missing PTS for most streams; what is left (AVI, MPEG-PS)
            // only has decode times, which equal presentation times less the reorder delay
            // (see `frames`).
            (None, Some(dts)) => {
                self.pts_from_dts += 1;
                (dts, true)
            }
            (None, None) => {
                self.untimed += 1;
                return;
            }
        };
        match self.segments.last_mut() {
            Some(last) if last == segment => {}
            // matroskademux maps the first block it reads to stream time 0; when a block of
            // another track turns out to be earlier, it sends a segment starting earlier at the
            // same stream time, re-basing stream time on that block, and seeks use that base.
            // The frames it sent before are re-based with it.
            Some(last) if segment.start() < last.start() && segment.time() <= last.time() => {
                *last = segment.clone();
            }
            _ => self.segments.push(segment.clone()),
        }
        self.buffers.push(VideoBuffer {
            ts,
            from_dts,
            duration: buffer.duration(),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            segment: self.segments.len() - 1,
        });
    }

    /// The buffers that are frames of the file, in presentation order.
    fn frames(&self) -> Vec<Frame> {
        let mut outside_segment = 0;
        let mut frames: Vec<Frame> = self
            .buffers
            .iter()
            .filter_map(|buffer| {
                let segment = &self.segments[buffer.segment];
                // Without reordering, the PTS is the DTS plus the constant delay that the
                // buffers with both show (MPEG-PS stamps only some frames; MPEG-1 video there
                // decodes a frame before showing it). With reordering, the DTS is the best
                // guess left.
                let ts = match (buffer.from_dts, self.reorder_delay) {
                    (true, ReorderDelay::Constant(delay)) => buffer.ts + delay,
                    _ => buffer.ts,
                };
                // Buffers before the segment start are an edit list's pre-roll (decoded only
                // to reach the first shown frame), those at or after the stop are past its
                // end: neither is shown, and ffmpeg drops them too.
                let start = segment.start().unwrap_or(gst::ClockTime::ZERO);
                if ts < start || segment.stop().is_some_and(|stop| ts >= stop) {
                    outside_segment += 1;
                    return None;
                }
                let end = buffer.duration.map(|duration| {
                    let end = ts + duration;
                    segment.stop().map_or(end, |stop| end.min(stop))
                });
                Some(Frame {
                    stream_time: segment.to_stream_time(ts)?.nseconds(),
                    end: end
                        .and_then(|end| segment.to_stream_time(end))
                        .map(gst::ClockTime::nseconds),
                    keyframe: buffer.keyframe,
                })
            })
            .collect();
        tracing::debug!(
            buffers = self.buffers.len(),
            segments = self.segments.len(),
            outside_segment,
            pts_from_dts = self.pts_from_dts,
            untimed = self.untimed,
            "video buffers"
        );
        if self.pts_from_dts > 0 && !matches!(self.reorder_delay, ReorderDelay::Constant(_)) {
            tracing::warn!(
                buffers = self.pts_from_dts,
                "video buffers without PTS, indexed by DTS: with B-frames the order is off"
            );
        }
        // Parsers emit decode order; B-frames make it differ from presentation order. The sort
        // is stable so that frames sharing a timestamp keep their decode order.
        frames.sort_by_key(|f| f.stream_time);
        frames
    }

    fn into_media_info(self) -> Result<MediaInfo, ProbeError> {
        let Some(video) = &self.video else {
            return Err(if self.audio.is_some() {
                ProbeError::NoVideo
            } else {
                ProbeError::Unsupported("no audio or video stream found".into())
            });
        };
        if let Some(reason) = &self.undecodable {
            return Err(ProbeError::Unsupported(reason.clone()));
        }
        let frames = self.frames();
        let Some(last) = frames.last().map(|f| f.stream_time) else {
            return Err(ProbeError::Unsupported(
                "the video stream has no frames".into(),
            ));
        };
        let end_ns = frames
            .iter()
            .filter_map(|f| f.end)
            .max()
            .unwrap_or(last)
            .max(last);
        let keyframes = (0u32..)
            .zip(&frames)
            .filter(|(_, f)| f.keyframe)
            .map(|(n, _)| n)
            .collect();
        let timestamps = frames.iter().map(|f| f.stream_time).collect();
        let orientation = video.orientation.unwrap_or_default();
        let frame_index = FrameIndex::new(timestamps, keyframes, end_ns)
            .map_err(|e| ProbeError::Unsupported(format!("frame index: {e}")))?
            .with_orientation(orientation);

        let video = video
            .caps
            .structure(0)
            .expect("video caps have a structure");
        let dimension = |field| video.get::<i32>(field).map_or(0, |v| v.max(0) as u32);
        let (width, height) = orientation.upright(dimension("width"), dimension("height"));
        let duration_ns = self.duration.map_or(end_ns, gst::ClockTime::nseconds);
        Ok(MediaInfo {
            duration_ns,
            fps: nominal_fps(video, &frame_index),
            width,
            height,
            has_audio: self.audio.is_some(),
            video_codec: codec_name(video),
            audio_codec: self
                .audio
                .as_ref()
                .and_then(|audio| audio.caps.structure(0))
                .map(codec_name),
            frame_index,
        })
    }
}

/// The caps' frame rate when it describes the frames, else the mean rate of the index.
///
/// Caps say 0/1 for variable rate (Matroska), and qtdemux derives the rate of a file with an
/// edit list from samples / edit duration, which counts the hidden pre-roll (a 25 fps cut
/// gets 73/3): so the caps' exact fraction is only used when it agrees with the index. The
/// mean is taken between the first and the last frame's start, as the segment end often
/// clips the last frame's duration.
fn nominal_fps(video: &gst::StructureRef, index: &FrameIndex) -> f64 {
    let measured = match index.timestamps() {
        [first, .., last] if last > first => {
            Some((index.len() - 1) as f64 * 1e9 / (last - first) as f64)
        }
        _ => None,
    };
    let caps = video
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
    match (caps, measured) {
        (Some(caps), Some(measured)) if (caps - measured).abs() <= measured * 0.001 => caps,
        (caps, measured) => measured.or(caps).unwrap_or(0.0),
    }
}

/// ffmpeg-style short codec name for parsed caps, e.g. "h264" for `video/x-h264`.
fn codec_name(s: &gst::StructureRef) -> String {
    let int = |field| s.get::<i32>(field).ok();
    let name = match s.name().as_str() {
        "video/x-h264" => "h264",
        "video/x-h265" => "hevc",
        "video/x-vp8" => "vp8",
        "video/x-vp9" => "vp9",
        "video/x-av1" => "av1",
        "video/x-theora" => "theora",
        "video/x-h263" => "h263",
        "video/x-raw" => "rawvideo",
        "video/x-prores" => "prores",
        "video/x-dnxhd" => "dnxhd",
        "video/x-ffv" => "ffv1",
        "image/jpeg" => "mjpeg",
        "video/x-xvid" => "mpeg4",
        "video/x-divx" if int("divxversion") == Some(3) => "msmpeg4v3",
        "video/x-divx" => "mpeg4",
        "video/mpeg" => match int("mpegversion") {
            Some(1) => "mpeg1video",
            Some(2) => "mpeg2video",
            _ => "mpeg4",
        },
        "video/x-wmv" => match (int("wmvversion"), s.get::<&str>("format").ok()) {
            (_, Some("WVC1")) => "vc1",
            (Some(1), _) => "wmv1",
            (Some(2), _) => "wmv2",
            _ => "wmv3",
        },
        "audio/mpeg" => match (int("mpegversion"), int("layer")) {
            (Some(1), Some(1)) => "mp1",
            (Some(1), Some(2)) => "mp2",
            (Some(1), _) => "mp3",
            _ => "aac",
        },
        "audio/x-opus" => "opus",
        "audio/x-vorbis" => "vorbis",
        "audio/x-flac" => "flac",
        "audio/x-ac3" => "ac3",
        "audio/x-eac3" => "eac3",
        "audio/x-dts" => "dts",
        "audio/x-alac" => "alac",
        "audio/x-true-hd" => "truehd",
        "audio/x-raw" => "pcm",
        "audio/x-alaw" => "pcm_alaw",
        "audio/x-mulaw" => "pcm_mulaw",
        "audio/AMR" => "amr_nb",
        "audio/AMR-WB" => "amr_wb",
        "audio/x-wma" => match int("wmaversion") {
            Some(1) => "wmav1",
            Some(3) => "wmapro",
            _ => "wmav2",
        },
        other => {
            return other
                .trim_start_matches("video/")
                .trim_start_matches("audio/")
                .trim_start_matches("x-")
                .to_string()
        }
    };
    name.to_string()
}

/// Why the pipeline failed to start, from the error already on the bus.
fn bus_error(bus: &gst::Bus) -> ProbeError {
    match bus.pop_filtered(&[gst::MessageType::Error]) {
        Some(message) => match message.view() {
            gst::MessageView::Error(err) => error_message_to_probe_error(err),
            _ => unreachable!("filtered to errors"),
        },
        None => ProbeError::Unsupported("the pipeline failed to start".into()),
    }
}

fn error_message_to_probe_error(err: &gst::message::Error) -> ProbeError {
    let error = err.error();
    if error.matches(gst::ResourceError::NotFound)
        || error.matches(gst::ResourceError::OpenRead)
        || error.matches(gst::ResourceError::Read)
    {
        return ProbeError::Io(error.to_string());
    }
    let mut message = error.to_string();
    if let Some(details) = err.debug() {
        tracing::debug!(%message, %details, "probe pipeline error");
    }
    if let Some(source) = err.src() {
        message = format!("{message} ({})", source.name());
    }
    ProbeError::Unsupported(message)
}
