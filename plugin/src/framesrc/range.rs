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

#[derive(Debug)]
pub enum BufferAction {
    /// Push this buffer (possibly clipped) downstream.
    Pass(gst::Buffer),
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
    /// Rate and frame size for clipping audio.
    audio_info: Option<gst_audio::AudioInfo>,
}

impl RangeFilter {
    /// `await_seek`: drop everything until a flush (the element's seek to `start`) went by.
    pub fn new(
        kind: Kind,
        start: gst::ClockTime,
        stop: Option<gst::ClockTime>,
        await_seek: bool,
    ) -> Self {
        Self {
            kind,
            start,
            stop,
            phase: if await_seek {
                Phase::AwaitingSeek
            } else {
                Phase::Running
            },
            window: None,
            audio_info: None,
        }
    }

    /// Whether `event` goes downstream.
    pub fn event(&mut self, event: &gst::EventRef) -> bool {
        use gst::EventView;

        match event.view() {
            EventView::Caps(caps) if self.kind == Kind::Audio => {
                self.audio_info = gst_audio::AudioInfo::from_caps(caps.caps()).ok();
                true
            }
            // Downstream saw no data from before the seek, so it has nothing to flush.
            EventView::FlushStart(_) => self.phase != Phase::AwaitingSeek,
            EventView::FlushStop(_) => {
                let pass = self.phase != Phase::AwaitingSeek;
                // After our own seek this is where the wanted data begins; otherwise someone
                // seeked the element again, which restarts the stream too.
                self.phase = Phase::Running;
                pass
            }
            // The pre-seek segment, a gap in it, or the end of the pre-seek decoding when our
            // seek had not arrived yet.
            EventView::Segment(_) | EventView::Gap(_) | EventView::Eos(_)
                if self.phase == Phase::AwaitingSeek =>
            {
                false
            }
            EventView::Segment(segment) => {
                self.window = segment
                    .segment()
                    .downcast_ref::<gst::ClockTime>()
                    .map(|segment| self.narrow(segment));
                true
            }
            // We sent EOS already.
            EventView::Eos(_) => self.phase != Phase::Ended,
            _ => true,
        }
    }

    pub fn buffer(&mut self, buffer: gst::Buffer) -> BufferAction {
        match self.phase {
            Phase::AwaitingSeek => return BufferAction::Drop,
            Phase::Ended => return BufferAction::Refuse,
            Phase::Running => {}
        }
        // Decoders output timestamped buffers in TIME segments: anything else cannot be placed
        // in the range.
        let (Some(window), Some(pts)) = (&self.window, buffer.pts()) else {
            return BufferAction::Drop;
        };
        let start = window.start().unwrap_or(gst::ClockTime::ZERO);
        match self.kind {
            Kind::Video => {
                // Frames come in presentation order, so the first one at or after `stop` means
                // all wanted frames are out.
                let pts = pts.saturating_add(TIMESTAMP_TOLERANCE);
                if window.stop().is_some_and(|stop| pts >= stop) {
                    self.phase = Phase::Ended;
                    BufferAction::End
                } else if pts < start {
                    // Includes a frame that the decoder kept because it overlaps the segment
                    // start.
                    BufferAction::Drop
                } else {
                    BufferAction::Pass(buffer)
                }
            }
            Kind::Audio => {
                if window.stop().is_some_and(|stop| pts >= stop) {
                    self.phase = Phase::Ended;
                    return BufferAction::End;
                }
                let Some(info) = &self.audio_info else {
                    return BufferAction::Drop;
                };
                gst_audio::audio_buffer_clip(buffer, window.upcast_ref(), info.rate(), info.bpf())
                    .map_or(BufferAction::Drop, BufferAction::Pass)
            }
        }
    }

    /// `segment` with start and stop moved to the buffer times of `self.start` and `self.stop`.
    fn narrow(
        &self,
        segment: &gst::FormattedSegment<gst::ClockTime>,
    ) -> gst::FormattedSegment<gst::ClockTime> {
        // Stream times before the segment map to negative positions: before anything in it.
        let position = |stream_time| match segment.position_from_stream_time_full(stream_time) {
            Some(gst::Signed::Positive(position)) => position,
            _ => gst::ClockTime::ZERO,
        };
        let mut window = segment.clone();
        window.set_start(position(self.start).max(segment.start().unwrap_or_default()));
        if let Some(stop) = self.stop {
            window.set_stop(position(stop));
        }
        window
    }
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

    fn video_buffer(pts: gst::ClockTime) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        buffer.get_mut().unwrap().set_pts(pts);
        buffer
    }

    fn verdicts(filter: &mut RangeFilter, times: &[gst::ClockTime]) -> Vec<&'static str> {
        times
            .iter()
            .map(|&pts| match filter.buffer(video_buffer(pts)) {
                BufferAction::Pass(_) => "pass",
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
        let expected = ["drop", "pass", "pass", "pass", "end", "refuse"];
        // Exact timestamps, and ones rounded up to the µs as ffprobe prints them.
        for late in [0, 1] {
            let late = gst::ClockTime::from_useconds(late);
            let mut filter =
                RangeFilter::new(Kind::Video, frame(30) + late, Some(frame(33) + late), false);
            assert!(filter.event(&segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO)));
            assert_eq!(verdicts(&mut filter, &frames), expected);
        }
    }

    #[test]
    fn events_before_the_seek_are_hidden() {
        gst::init().unwrap();
        let mut filter = RangeFilter::new(Kind::Video, MS * 500, None, true);
        let caps = gst::event::Caps::new(&gst::Caps::new_empty_simple("video/x-raw"));
        assert!(filter.event(&caps));
        assert!(!filter.event(&segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO)));
        assert!(!filter.event(&gst::event::Eos::new()));
        assert!(!filter.event(&gst::event::FlushStart::new()));
        assert!(!filter.event(&gst::event::FlushStop::new(true)));
        // The seek's segment, with an edit list: buffer time 1.5 s is stream time 0.5 s.
        assert!(filter.event(&segment_event(MS * 1500, MS * 500)));
        let frames = [MS * 1460, MS * 1500, MS * 1540];
        assert_eq!(verdicts(&mut filter, &frames), ["drop", "pass", "pass"]);
        // A later flush (someone seeking the element) goes downstream.
        assert!(filter.event(&gst::event::FlushStart::new()));
        assert!(filter.event(&gst::event::Eos::new()));
    }

    #[test]
    fn eos_is_not_sent_twice() {
        gst::init().unwrap();
        let mut filter = RangeFilter::new(Kind::Video, gst::ClockTime::ZERO, Some(MS * 40), false);
        assert!(filter.event(&segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO)));
        assert_eq!(verdicts(&mut filter, &[MS * 40]), ["end"]);
        assert!(!filter.event(&gst::event::Eos::new()));
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
        assert!(filter.event(&gst::event::Caps::new(&info.to_caps().unwrap())));
        assert!(filter.event(&segment_event(gst::ClockTime::ZERO, gst::ClockTime::ZERO)));

        let mut outcomes = Vec::new();
        for pts in [980, 990, 1010] {
            outcomes.push(match filter.buffer(audio_buffer(MS * pts)) {
                BufferAction::Pass(buffer) => Some((buffer.pts().unwrap(), buffer.size() / 2)),
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
