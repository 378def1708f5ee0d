//! Repairing the timestamps a demuxer gives the stream's first keyframe when a seek goes back
//! to it.
//!
//! The same sample must carry the same timestamps before and after a seek. qtdemux 1.22 breaks
//! this for fragmented MP4 (`-movflags frag_keyframe+empty_moov`, browsers, recorders, DASH):
//! a seek into the first fragment takes the fragment's start from the `tfra` random-access
//! entry, which holds the keyframe's *presentation* time, and uses it as the first sample's
//! *decode* time, because it ignores a `tfdt` of 0 (`if (decode_ts > 0)`). Every sample of
//! that fragment then comes out late by the keyframe's composition offset (2 frames with
//! x264's B-frames); from the next fragment on, its non-zero `tfdt` puts the timestamps right
//! again, so decode times step back there. ffmpeg, and qtdemux without a seek, use the `tfdt`.
//!
//! The stream's first video buffer went into the decoder before the seek, with the right
//! timestamps. When the first buffer after the seek has the same bytes, a different
//! timestamp, and nothing seen before the seek can be that other sample, the difference is
//! taken off every buffer until the demuxer's decode times step back (it corrected itself) or
//! the next flush.
//!
//! Repairing on the decoder's input keeps all the rest as for any file: the decoder's
//! segment clipping, the range filter and the index's stream times. Avoiding the seek instead
//! would need to know, before seeking, that no later keyframe precedes `start`; seeking
//! elsewhere lands in the same fragment.

use gst::prelude::*;

/// The timestamps of a compressed buffer, in the demuxer's buffer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamps {
    pub pts: Option<gst::ClockTime>,
    pub dts: Option<gst::ClockTime>,
    /// Not a delta unit.
    pub keyframe: bool,
}

impl Stamps {
    /// Decode time, or presentation time for streams without decode times.
    fn decode_time(&self) -> Option<gst::ClockTime> {
        self.dts.or(self.pts)
    }
}

#[derive(Debug, Default)]
pub struct Restamp {
    /// The stream's first buffer before any flush, and its timestamps.
    first: Option<(gst::Buffer, Stamps)>,
    /// Latest decode time before the first flush.
    reached: Option<gst::ClockTime>,
    /// Earliest decode time of a keyframe other than the first before the first flush.
    other_keyframe: Option<gst::ClockTime>,
    flushed: bool,
    /// After a flush, until the first buffer.
    checking: bool,
    /// Taken off the timestamps: `Some` while repairing.
    shift: Option<gst::Signed<gst::ClockTime>>,
    /// The previous buffer's decode time as the demuxer gave it, while repairing.
    last_raw: Option<gst::ClockTime>,
}

impl Restamp {
    pub fn flush_stop(&mut self) {
        self.flushed = true;
        self.checking = true;
        self.shift = None;
        self.last_raw = None;
    }

    /// Called with each buffer going into the decoder, in order; `same_as_first` tells whether
    /// its bytes are those of the stream's first buffer. Returns the timestamps to give it,
    /// if they change.
    pub fn buffer(
        &mut self,
        buffer: &gst::BufferRef,
        same_as_first: impl FnOnce(&gst::BufferRef, &gst::BufferRef) -> bool,
    ) -> Option<Stamps> {
        let stamps = Stamps {
            pts: buffer.pts(),
            dts: buffer.dts(),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        };
        if !self.flushed {
            self.record(buffer, stamps);
            return None;
        }
        if std::mem::take(&mut self.checking) {
            self.shift = self.check(buffer, stamps, same_as_first);
        }
        self.repair(stamps)
    }

    fn record(&mut self, buffer: &gst::BufferRef, stamps: Stamps) {
        let time = stamps.decode_time();
        if self.first.is_none() {
            self.first = Some((buffer.to_owned(), stamps));
        } else if stamps.keyframe && self.other_keyframe.is_none() {
            self.other_keyframe = time;
        }
        if time.is_some() {
            self.reached = self.reached.max(time);
        }
    }

    /// The shift that puts the first buffer after a flush where it was before, if it is the
    /// stream's first buffer.
    fn check(
        &self,
        buffer: &gst::BufferRef,
        stamps: Stamps,
        same_as_first: impl FnOnce(&gst::BufferRef, &gst::BufferRef) -> bool,
    ) -> Option<gst::Signed<gst::ClockTime>> {
        let (first, first_stamps) = self.first.as_ref()?;
        let (Some(was), Some(now)) = (first_stamps.decode_time(), stamps.decode_time()) else {
            return None;
        };
        if was == now || !stamps.keyframe {
            return None;
        }
        // Only the first buffer can be at `now`: the stream was seen up to there (or, for the
        // demuxer's mistake above, `now` is the first buffer's presentation time) and held no
        // other keyframe. Identical keyframes elsewhere (a black leader) do not qualify.
        let covered = self.reached.max(first_stamps.pts);
        if covered.is_none_or(|covered| now > covered)
            || self.other_keyframe.is_some_and(|other| other <= now)
            || !same_as_first(buffer, first)
        {
            return None;
        }
        Some(now.into_positive() - was)
    }

    fn repair(&mut self, stamps: Stamps) -> Option<Stamps> {
        let shift = self.shift?;
        let raw = stamps.decode_time();
        if let (Some(raw), Some(last)) = (raw, self.last_raw) {
            if raw <= last {
                // The demuxer's own timestamps are right again.
                self.shift = None;
                return None;
            }
        }
        self.last_raw = raw.or(self.last_raw);
        let apply = |time: Option<gst::ClockTime>| {
            time.map(|time| {
                (time.into_positive() - shift)
                    .positive()
                    .unwrap_or_default()
            })
        };
        Some(Stamps {
            pts: apply(stamps.pts),
            dts: apply(stamps.dts),
            keyframe: stamps.keyframe,
        })
    }
}

/// Whether two buffers hold the same bytes.
pub fn same_bytes(a: &gst::BufferRef, b: &gst::BufferRef) -> bool {
    if a.size() != b.size() {
        return false;
    }
    match (a.map_readable(), b.map_readable()) {
        (Ok(a), Ok(b)) => a.as_slice() == b.as_slice(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: gst::ClockTime = gst::ClockTime::MSECOND;

    fn buffer(data: &[u8], pts: u64, dts: u64, keyframe: bool) -> gst::Buffer {
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(MS * pts);
            buffer.set_dts(MS * dts);
            if !keyframe {
                buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        buffer
    }

    /// (pts, dts) in ms after the repair.
    fn feed(restamp: &mut Restamp, buffer: &gst::Buffer) -> (u64, u64) {
        match restamp.buffer(buffer, same_bytes) {
            Some(stamps) => (
                stamps.pts.unwrap().mseconds(),
                stamps.dts.unwrap().mseconds(),
            ),
            None => (
                buffer.pts().unwrap().mseconds(),
                buffer.dts().unwrap().mseconds(),
            ),
        }
    }

    #[test]
    fn the_first_fragment_of_a_fragmented_mp4() {
        gst::init().unwrap();
        let mut restamp = Restamp::default();
        // Before the seek: keyframe shown at 80 ms, then a P- and a B-frame.
        feed(&mut restamp, &buffer(b"I0", 80, 0, true));
        feed(&mut restamp, &buffer(b"P", 160, 40, false));
        feed(&mut restamp, &buffer(b"B", 120, 80, false));
        restamp.flush_stop();
        // The same samples 80 ms late, up to the second fragment, whose decode times step back
        // to the right ones.
        let after = [
            buffer(b"I0", 160, 80, true),
            buffer(b"P", 240, 120, false),
            buffer(b"B", 200, 160, false),
            buffer(b"B", 1080, 1040, false),
            buffer(b"I1", 1080, 1000, true),
            buffer(b"P", 1160, 1040, false),
        ];
        let stamps: Vec<_> = after.iter().map(|b| feed(&mut restamp, b)).collect();
        assert_eq!(
            stamps,
            [
                (80, 0),
                (160, 40),
                (120, 80),
                (1000, 960),
                (1080, 1000),
                (1160, 1040)
            ]
        );
    }

    #[test]
    fn other_samples_are_left_alone() {
        gst::init().unwrap();
        let mut restamp = Restamp::default();
        feed(&mut restamp, &buffer(b"black", 0, 0, true));
        feed(&mut restamp, &buffer(b"P", 40, 40, false));
        restamp.flush_stop();
        // The same bytes 2 s later: an identical keyframe, not the first one.
        assert_eq!(
            feed(&mut restamp, &buffer(b"black", 2000, 2000, true)),
            (2000, 2000)
        );
        restamp.flush_stop();
        // A seek back to the start with the right timestamps.
        assert_eq!(feed(&mut restamp, &buffer(b"black", 0, 0, true)), (0, 0));
        restamp.flush_stop();
        // A keyframe with other bytes.
        assert_eq!(feed(&mut restamp, &buffer(b"I1", 40, 40, true)), (40, 40));
    }

    #[test]
    fn not_when_another_keyframe_was_there() {
        gst::init().unwrap();
        let mut restamp = Restamp::default();
        // All-intra: identical frames, each a keyframe.
        feed(&mut restamp, &buffer(b"same", 0, 0, true));
        feed(&mut restamp, &buffer(b"same", 40, 40, true));
        feed(&mut restamp, &buffer(b"same", 80, 80, true));
        restamp.flush_stop();
        assert_eq!(feed(&mut restamp, &buffer(b"same", 40, 40, true)), (40, 40));
    }
}
