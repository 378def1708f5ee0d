//! What one exposed stream of `framesrc` lets through: the per-pad logic, kept apart from the
//! bin's plumbing so that it can be tested without media files.

/// How far below `start` or `stop` a video frame's stream time may be and still count as lying
/// at that boundary.
///
/// Callers name frames by timestamps that went through other tools or other rounding of the
/// same rational time (ffprobe prints microseconds, tsdemux counts a 90 kHz clock, ns values
/// are truncated or rounded), so the frame meant by `start` can come out a few µs below it.
/// Frames are milliseconds apart, so this cannot pick a neighbouring frame.
pub const TIMESTAMP_TOLERANCE: gst::ClockTime = gst::ClockTime::from_useconds(100);

/// How much earlier than the demuxer's segment a video decoder's segment starts.
///
/// A video decoder keeps a frame that overlaps its segment start and moves that frame's
/// timestamp to the segment start, so after a seek to `start` the frame before the wanted one
/// comes out stamped `start` when the caller's `start` is a little early (see
/// [`TIMESTAMP_TOLERANCE`]) or between frames. With the decoder's segment starting this much
/// earlier, that frame comes out clearly before `start` and the wanted one untouched.
///
/// Seeking earlier instead would do the same, but the demuxer then starts from the keyframe
/// before that position: a whole GOP more to decode when the wanted frame is a keyframe.
const DECODER_MARGIN: gst::ClockTime = gst::ClockTime::from_mseconds(1);

/// The segment to give a video decoder instead of `segment`: starting [`DECODER_MARGIN`]
/// earlier (as far as stream time 0 allows), with the same stream times.
pub fn decoder_segment(
    segment: &gst::FormattedSegment<gst::ClockTime>,
) -> gst::FormattedSegment<gst::ClockTime> {
    let (Some(start), Some(time)) = (segment.start(), segment.time()) else {
        return segment.clone();
    };
    let earlier = DECODER_MARGIN.min(start).min(time);
    let mut decoder_segment = segment.clone();
    decoder_segment.set_start(start - earlier);
    decoder_segment.set_time(time - earlier);
    decoder_segment.set_position(start - earlier);
    decoder_segment
}

/// Where to seek for a range starting at `start`, as `aim` says (see [`SeekAim`]); `first`
/// is the stream time at which the stream's first segment begins.
pub fn seek_position(
    start: gst::ClockTime,
    aim: SeekAim,
    first: Option<gst::ClockTime>,
) -> gst::ClockTime {
    let first = first.unwrap_or_default();
    match aim {
        SeekAim::Start => start.max(first),
        SeekAim::JustBefore => start.max(first).saturating_sub(gst::ClockTime::NSECOND),
        SeekAim::Lead(lead) => start.saturating_sub(lead),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The element's own seek has not flushed this stream yet: whatever comes out was decoded
    /// from the wrong position, and downstream must not see its segment or flushes either.
    AwaitingSeek,
    Running,
    /// Past `stop`: EOS was sent downstream, upstream gets `FlowError::Eos`.
    Ended,
}

/// The element's seek, as far as one stream knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seek {
    /// Nothing decoded yet.
    NotYet,
    /// The stream has begun, so its start is known: seek to this stream time.
    Wanted(gst::ClockTime),
    /// Handed out by [`RangeFilter::take_seek`], or not needed.
    Done,
}

/// Where a stream's seek goes, relative to `start`, by what its demuxer does with a seek.
///
/// Not before the stream's first stream time, except with a lead: tsdemux, asked for a time
/// before its first timestamp, starts the segment at that timestamp but keeps the asked time
/// as its stream time, which shifts all stream times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeekAim {
    /// At `start`: the demuxer goes to the keyframe before it.
    #[default]
    Start,
    /// A nanosecond before `start` (a nanosecond's shift of stream times when that is before
    /// the first): for a demuxer that takes a seek to the timestamp it has reached as no move
    /// (tsdemux).
    JustBefore,
    /// This much before `start`, even before the stream's first stream time, for a demuxer
    /// whose seek lands after the wanted frame (mpegpsdemux, which then starts at the
    /// beginning with its stream times unchanged).
    Lead(gst::ClockTime),
}

#[derive(Debug)]
pub enum BufferAction {
    /// Push this buffer (possibly clipped) downstream, after the segment event if there is
    /// one.
    Pass(gst::Buffer, Option<gst::Event>),
    /// Outside the range, before `stop`: drop it and keep going.
    Drop,
    /// The first buffer at or after `stop`: send EOS downstream and stop upstream.
    End,
    /// After [`BufferAction::End`]: keep telling upstream that this stream is over.
    Refuse,
}

/// The stream-time range `[start, stop)` of one decoded stream.
#[derive(Debug)]
pub struct RangeFilter {
    kind: Kind,
    start: gst::ClockTime,
    stop: Option<gst::ClockTime>,
    phase: Phase,
    /// The stream's current segment narrowed to `[start, stop)`, in buffer time: what audio is
    /// clipped to, and what video timestamps are compared with.
    window: Option<gst::FormattedSegment<gst::ClockTime>>,
    /// Sequence number of the segment event `window` came from.
    window_seqnum: gst::Seqnum,
    /// Whether a buffer went downstream in `window`.
    started: bool,
    seek: Seek,
    /// Where to seek, relative to `start` (see [`Self::aiming`]).
    aim: SeekAim,
    /// Stream time at which the segment before the seek starts: where the stream begins.
    first_stream_time: Option<gst::ClockTime>,
    /// Rate and frame size for clipping audio.
    audio_info: Option<gst_audio::AudioInfo>,
}

impl RangeFilter {
    /// `await_seek`: drop everything until a flush (the element's seek, see
    /// [`Self::take_seek`]) went by.
    pub fn new(
        kind: Kind,
        start: gst::ClockTime,
        stop: Option<gst::ClockTime>,
        await_seek: bool,
    ) -> Self {
        let (phase, seek) = if await_seek {
            (Phase::AwaitingSeek, Seek::NotYet)
        } else {
            (Phase::Running, Seek::Done)
        };
        Self {
            kind,
            start,
            stop,
            phase,
            window: None,
            window_seqnum: gst::Seqnum::next(),
            started: false,
            seek,
            aim: SeekAim::default(),
            first_stream_time: None,
            audio_info: None,
        }
    }

    /// Seek where `aim` says, for the demuxer this stream comes from; the frames before
    /// `start` are dropped as usual.
    pub fn aiming(mut self, aim: SeekAim) -> Self {
        self.aim = aim;
        self
    }

    /// The stream time to seek to, once, when the stream has started from its beginning (see
    /// [`SeekAim`]).
    pub fn take_seek(&mut self) -> Option<gst::ClockTime> {
        match self.seek {
            Seek::Wanted(position) => {
                self.seek = Seek::Done;
                Some(position)
            }
            _ => None,
        }
    }

    /// Called when the stream has begun, from wherever the demuxer started it.
    fn want_seek(&mut self) {
        if self.seek == Seek::NotYet {
            self.seek = Seek::Wanted(seek_position(self.start, self.aim, self.first_stream_time));
        }
    }

    /// The event to send downstream instead of `event`, if any.
    pub fn event(&mut self, event: gst::Event) -> Option<gst::Event> {
        use gst::EventView;

        let awaiting_seek = self.phase == Phase::AwaitingSeek;
        match event.view() {
            EventView::Caps(caps) if self.kind == Kind::Audio => {
                self.audio_info = gst_audio::AudioInfo::from_caps(caps.caps()).ok();
            }
            // Downstream saw no data from before the seek, so it has nothing to flush.
            EventView::FlushStart(_) if awaiting_seek => return None,
            EventView::FlushStop(_) => {
                // After our own seek this is where the wanted data begins; otherwise someone
                // seeked the element again, which restarts the stream too.
                self.phase = Phase::Running;
                if awaiting_seek {
                    return None;
                }
            }
            EventView::Segment(segment) if awaiting_seek => {
                if self.first_stream_time.is_none() {
                    self.first_stream_time = segment
                        .segment()
                        .downcast_ref::<gst::ClockTime>()
                        .and_then(|segment| segment.time());
                }
                return None;
            }
            EventView::Segment(segment) => {
                // Decoders output TIME segments; buffers in anything else are dropped.
                self.window = segment
                    .segment()
                    .downcast_ref::<gst::ClockTime>()
                    .map(|segment| self.narrow(segment));
                self.window_seqnum = event.seqnum();
                self.started = false;
                if let Some(window) = &self.window {
                    return Some(segment_event(window, &event));
                }
            }
            // A stream that ends before any buffer still needs the seek.
            EventView::Eos(_) if awaiting_seek => {
                self.want_seek();
                return None;
            }
            EventView::Gap(_) if awaiting_seek => return None,
            // We sent EOS already, and an EOS pad refuses everything but a flush: passing
            // on, say, a late tag event would fail the next buffer's push with an error
            // instead of EOS.
            EventView::FlushStart(_) => {}
            _ if self.phase == Phase::Ended => return None,
            _ => {}
        }
        Some(event)
    }

    pub fn buffer(&mut self, buffer: gst::Buffer) -> BufferAction {
        match self.phase {
            Phase::AwaitingSeek => {
                // The stream has begun: its segment said where.
                self.want_seek();
                return BufferAction::Drop;
            }
            Phase::Ended => return BufferAction::Refuse,
            Phase::Running => {}
        }
        // Decoders output timestamped buffers in TIME segments: anything else cannot be placed
        // in the range.
        let (Some(window), Some(pts)) = (&mut self.window, buffer.pts()) else {
            return BufferAction::Drop;
        };
        let start = window.start().unwrap_or_default();
        let stop = window.stop();
        match self.kind {
            Kind::Video => {
                // Frames come in presentation order, so the first one at or after `stop` means
                // all wanted frames are out.
                let tolerant_pts = pts.saturating_add(TIMESTAMP_TOLERANCE);
                if stop.is_some_and(|stop| tolerant_pts >= stop) {
                    self.phase = Phase::Ended;
                    return BufferAction::End;
                }
                if tolerant_pts < start {
                    // Includes the frame that the decoder kept because it overlaps the
                    // segment start, restamped to that start (see `DECODER_MARGIN`).
                    return BufferAction::Drop;
                }
                let mut segment = None;
                if !self.started && pts < start {
                    // The first frame is a little before `start`: start the segment with it,
                    // so that every frame is inside its segment and running time starts at 0.
                    // This keeps stream times, it moves video against audio by less than
                    // `TIMESTAMP_TOLERANCE`.
                    let time = window.to_stream_time_full(pts);
                    window.set_time(time.and_then(|time| time.positive()).unwrap_or_default());
                    window.set_start(pts);
                    window.set_position(pts);
                    segment = Some(
                        gst::event::Segment::builder(window)
                            .seqnum(self.window_seqnum)
                            .build(),
                    );
                }
                self.started = true;
                BufferAction::Pass(buffer, segment)
            }
            Kind::Audio => {
                if stop.is_some_and(|stop| pts >= stop) {
                    self.phase = Phase::Ended;
                    return BufferAction::End;
                }
                let Some(info) = &self.audio_info else {
                    return BufferAction::Drop;
                };
                match gst_audio::audio_buffer_clip(
                    buffer,
                    window.upcast_ref(),
                    info.rate(),
                    info.bpf(),
                ) {
                    Some(buffer) => BufferAction::Pass(buffer, None),
                    None => BufferAction::Drop,
                }
            }
        }
    }

    /// `segment` starting at the buffer time of `self.start` and stopping at that of
    /// `self.stop`, with the same stream times: downstream running time starts at `start`.
    fn narrow(
        &self,
        segment: &gst::FormattedSegment<gst::ClockTime>,
    ) -> gst::FormattedSegment<gst::ClockTime> {
        // Times before the segment map to negative values: before anything in it.
        let non_negative = |time: Option<gst::Signed<gst::ClockTime>>| {
            time.and_then(|time| time.positive()).unwrap_or_default()
        };
        let position =
            |stream_time| non_negative(segment.position_from_stream_time_full(stream_time));
        let start = position(self.start).max(segment.start().unwrap_or_default());
        let mut window = segment.clone();
        window.set_time(non_negative(segment.to_stream_time_full(start)));
        window.set_start(start);
        window.set_position(start);
        if let Some(stop) = self.stop {
            window.set_stop(position(stop).max(start));
        }
        window
    }
}

/// A segment event for `segment` replacing `original`.
fn segment_event(
    segment: &gst::FormattedSegment<gst::ClockTime>,
    original: &gst::EventRef,
) -> gst::Event {
    gst::event::Segment::builder(segment)
        .seqnum(original.seqnum())
        .running_time_offset(original.running_time_offset())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    /// A flushing seek's segment: buffer time `start` is stream time `time`.
    fn segment_event(start: gst::ClockTime, time: gst::ClockTime) -> gst::Event {
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(start);
        segment.set_time(time);
        gst::event::Segment::new(&segment)
    }

    /// Whether `event` goes downstream.
    fn passes(filter: &mut RangeFilter, event: gst::Event) -> bool {
        filter.event(event).is_some()
    }

    fn video_buffer(pts: gst::ClockTime) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        buffer.get_mut().unwrap().set_pts(pts);
        buffer
    }

    fn verdicts(filter: &mut RangeFilter, times: &[gst::ClockTime]) -> Vec<&'static str> {
        times
            .iter()
            .map(|&pts| match filter.buffer(video_buffer(pts)) {
                BufferAction::Pass(_, None) => "pass",
                BufferAction::Pass(_, Some(_)) => "pass with a new segment",
                BufferAction::Drop => "drop",
                BufferAction::End => "end",
                BufferAction::Refuse => "refuse",
            })
            .collect()
    }

    #[test]
    fn video_frames_inside_the_range_pass_and_the_first_after_ends() {
        gst::init().unwrap();
        // Frames 33.3667 ms apart, the range is frames 30 to 32.
        let frame = |n: u64| gst::ClockTime::from_nseconds(n * 1001 * 1_000_000_000 / 30_000);
        let frames: Vec<_> = (29..35).map(frame).collect();
        let mut filter = RangeFilter::new(Kind::Video, frame(30), Some(frame(33)), false);
        let segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(passes(&mut filter, segment));
        assert_eq!(
            verdicts(&mut filter, &frames),
            ["drop", "pass", "pass", "pass", "end", "refuse"]
        );
    }

    #[test]
    fn late_timestamps_still_name_the_frame() {
        gst::init().unwrap();
        let frame = |n: u64| gst::ClockTime::from_nseconds(n * 1001 * 1_000_000_000 / 30_000);
        // Rounded up to the µs, as ffprobe prints them.
        let late = |n| frame(n) + gst::ClockTime::from_useconds(1);
        let mut filter = RangeFilter::new(Kind::Video, late(30), Some(late(33)), false);
        let segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(passes(&mut filter, segment));
        assert!(matches!(
            filter.buffer(video_buffer(frame(29))),
            BufferAction::Drop
        ));
        // Frame 30 is before the narrowed segment: a segment starting with it goes first.
        let BufferAction::Pass(_, Some(segment)) = filter.buffer(video_buffer(frame(30))) else {
            panic!("no new segment for the first frame");
        };
        let gst::EventView::Segment(segment) = segment.view() else {
            unreachable!()
        };
        let segment = segment.segment().downcast_ref::<gst::ClockTime>().unwrap();
        assert_eq!(
            segment.to_running_time(frame(30)),
            Some(gst::ClockTime::ZERO)
        );
        assert_eq!(segment.to_stream_time(frame(30)), Some(frame(30)));
        let frames: Vec<_> = (31..35).map(frame).collect();
        assert_eq!(
            verdicts(&mut filter, &frames),
            ["pass", "pass", "end", "refuse"]
        );
    }

    #[test]
    fn the_segment_starts_at_start() {
        gst::init().unwrap();
        // An MP4 edit list: buffer time 1.5 s is stream time 0.5 s. The seek went to the
        // wanted frame at 0.5 s, the decoder's segment starts 1 ms before.
        let start = MS * 500;
        let mut filter = RangeFilter::new(Kind::Video, start, Some(MS * 600), false);
        let mut demuxer_segment = gst::FormattedSegment::<gst::ClockTime>::new();
        demuxer_segment.set_start(MS * 1500);
        demuxer_segment.set_time(start);
        let segment = gst::event::Segment::new(&decoder_segment(&demuxer_segment));
        let Some(forwarded) = filter.event(segment) else {
            panic!("segment dropped");
        };
        let gst::EventView::Segment(forwarded) = forwarded.view() else {
            panic!("{forwarded:?} instead of a segment");
        };
        let forwarded = forwarded
            .segment()
            .downcast_ref::<gst::ClockTime>()
            .unwrap();
        assert_eq!(forwarded.start(), Some(MS * 1500));
        assert_eq!(forwarded.time(), Some(start));
        assert_eq!(forwarded.stop(), Some(MS * 1600));
        assert_eq!(
            forwarded.to_running_time(MS * 1500),
            Some(gst::ClockTime::ZERO)
        );
        // The decoder moved the frame before to the segment start, 1 ms early.
        let frames = [MS * 1499, MS * 1500, MS * 1540, MS * 1600];
        assert_eq!(
            verdicts(&mut filter, &frames),
            ["drop", "pass", "pass", "end"]
        );
    }

    #[test]
    fn decoder_segments_start_earlier_with_the_same_stream_times() {
        gst::init().unwrap();
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(MS * 1500);
        segment.set_time(MS * 500);
        let earlier = decoder_segment(&segment);
        assert_eq!(
            (earlier.start(), earlier.time()),
            (Some(MS * 1499), Some(MS * 499))
        );
        // Stream time cannot go below 0.
        segment.set_time(gst::ClockTime::from_useconds(300));
        let earlier = decoder_segment(&segment);
        assert_eq!(earlier.time(), Some(gst::ClockTime::ZERO));
        assert_eq!(
            earlier.to_stream_time(MS * 1500),
            segment.to_stream_time(MS * 1500)
        );
    }

    #[test]
    fn events_before_the_seek_are_hidden() {
        gst::init().unwrap();
        let mut filter = RangeFilter::new(Kind::Video, MS * 500, None, true);
        let caps = gst::event::Caps::new(&gst::Caps::new_empty_simple("video/x-raw"));
        assert!(passes(&mut filter, caps));
        let early_segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(!passes(&mut filter, early_segment));
        assert_eq!(filter.take_seek(), None);
        assert_eq!(verdicts(&mut filter, &[MS * 500]), ["drop"]);
        assert_eq!(filter.take_seek(), Some(MS * 500));
        assert_eq!(verdicts(&mut filter, &[MS * 533]), ["drop"]);
        assert_eq!(filter.take_seek(), None);
        assert!(!passes(&mut filter, gst::event::Eos::new()));
        assert!(!passes(&mut filter, gst::event::FlushStart::new()));
        assert!(!passes(&mut filter, gst::event::FlushStop::new(true)));
        assert!(passes(&mut filter, segment_event(MS * 499, MS * 499)));
        assert_eq!(verdicts(&mut filter, &[MS * 500]), ["pass"]);
        // A later flush (someone seeking the element) goes downstream.
        assert!(passes(&mut filter, gst::event::FlushStart::new()));
        assert!(passes(&mut filter, gst::event::Eos::new()));
    }

    #[test]
    fn no_seek_before_the_stream_starts() {
        gst::init().unwrap();
        // MPEG-TS: stream time starts at the first timestamp, here 0.7667 s.
        let first = gst::ClockTime::from_nseconds(766_733_334);
        let mut filter = RangeFilter::new(Kind::Video, first, None, true);
        assert!(!passes(&mut filter, segment_event(first, first)));
        // Even a stream that ends before anything was decoded gets its seek.
        assert!(!passes(&mut filter, gst::event::Eos::new()));
        assert_eq!(filter.take_seek(), Some(first));
    }

    #[test]
    fn seeks_aim_by_demuxer() {
        gst::init().unwrap();
        let first = MS * 700;
        let seek = |aim, start| {
            let mut filter = RangeFilter::new(Kind::Video, start, None, true).aiming(aim);
            assert!(!passes(&mut filter, segment_event(first, first)));
            assert_eq!(verdicts(&mut filter, &[first]), ["drop"]);
            filter.take_seek()
        };
        let ns = gst::ClockTime::NSECOND;
        assert_eq!(seek(SeekAim::Start, MS * 1500), Some(MS * 1500));
        assert_eq!(seek(SeekAim::Start, MS * 500), Some(first));
        assert_eq!(seek(SeekAim::JustBefore, MS * 1500), Some(MS * 1500 - ns));
        assert_eq!(seek(SeekAim::JustBefore, MS * 500), Some(first - ns));
        let lead = SeekAim::Lead(gst::ClockTime::from_seconds(1));
        assert_eq!(seek(lead, MS * 1500), Some(MS * 500));
        assert_eq!(seek(lead, MS * 500), Some(gst::ClockTime::ZERO));
    }

    #[test]
    fn eos_is_not_sent_twice() {
        gst::init().unwrap();
        let mut filter = RangeFilter::new(Kind::Video, gst::ClockTime::ZERO, Some(MS * 40), false);
        let segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(passes(&mut filter, segment));
        assert_eq!(verdicts(&mut filter, &[MS * 40]), ["end"]);
        assert!(!passes(&mut filter, gst::event::Eos::new()));
    }

    #[test]
    fn nothing_but_a_flush_follows_the_eos() {
        gst::init().unwrap();
        let mut filter = RangeFilter::new(Kind::Video, gst::ClockTime::ZERO, Some(MS * 40), false);
        let segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(passes(&mut filter, segment));
        assert_eq!(verdicts(&mut filter, &[MS * 40]), ["end"]);
        let tags = gst::event::Tag::new(gst::TagList::new());
        assert!(!passes(&mut filter, tags));
        assert!(passes(&mut filter, gst::event::FlushStart::new()));
        assert!(passes(&mut filter, gst::event::FlushStop::new(true)));
        assert!(passes(
            &mut filter,
            gst::event::Tag::new(gst::TagList::new())
        ));
    }

    /// 20 ms of 16-bit mono at 48 kHz (960 samples), starting at `pts`.
    fn audio_buffer(pts: gst::ClockTime) -> gst::Buffer {
        let mut buffer = gst::Buffer::with_size(960 * 2).unwrap();
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(pts);
            buffer.set_duration(MS * 20);
        }
        buffer
    }

    #[test]
    fn audio_is_clipped_to_the_sample() {
        gst::init().unwrap();
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48_000, 1)
            .build()
            .unwrap();
        let start = MS * 1000;
        let stop = MS * 1025;
        let mut filter = RangeFilter::new(Kind::Audio, start, Some(stop), false);
        assert!(passes(
            &mut filter,
            gst::event::Caps::new(&info.to_caps().unwrap())
        ));
        let segment = segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO);
        assert!(passes(&mut filter, segment));

        let mut outcomes = Vec::new();
        for pts in [980, 990, 1010] {
            outcomes.push(match filter.buffer(audio_buffer(MS * pts)) {
                BufferAction::Pass(buffer, None) => {
                    Some((buffer.pts().unwrap(), buffer.size() / 2))
                }
                BufferAction::Drop => None,
                other => panic!("{other:?} at {pts} ms"),
            });
        }
        assert_eq!(
            outcomes,
            [
                None,
                // The last 10 ms.
                Some((start, 480)),
                Some((MS * 1010, 720)),
            ]
        );
        assert!(matches!(
            filter.buffer(audio_buffer(MS * 1030)),
            BufferAction::End
        ));
        assert!(matches!(
            filter.buffer(audio_buffer(MS * 1050)),
            BufferAction::Refuse
        ));
    }
}
