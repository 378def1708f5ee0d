//! Frame N <-> timestamp, built once per file at import (demux + parse, no decoding).
//!
//! # What a timestamp is
//!
//! Frame `n` is the `n`-th frame (zero-based) in presentation order that lies inside the
//! demuxer's segment: exactly the frame `ffmpeg -i F -vf select=eq(n\,N)` picks.
//! `timestamp(n)` is its **stream time** in nanoseconds, `segment.to_stream_time(pts)`: what
//! a `GST_FORMAT_TIME` seek on a pipeline is expressed in, and what
//! `segment.to_stream_time(buffer.pts())` gives back for a decoded buffer.
//!
//! # Showing frame `n`
//!
//! 1. Seek with `FLUSH | ACCURATE` to [`FrameIndex::seek_position`]`(n)`: 1 ms
//!    ([`SEEK_MARGIN_NS`]) before `timestamp(n)`, never before frame 0.
//! 2. Pull decoded buffers; the first one for which
//!    [`FrameIndex::decoded_frame`]`(stream time)` is `Some(n)` is frame `n`. Skip those for
//!    which it is `None`.
//!
//! Why not seek to `timestamp(n)` and take the first buffer: a video decoder keeps a frame
//! that merely *overlaps* the segment start and rewrites its PTS to that start. When the
//! previous frame's duration reaches past `timestamp(n)` (Matroska gives every frame the
//! nominal duration, however far the next frame is in a variable-rate file) it comes out
//! first, with stream time exactly `timestamp(n)`, indistinguishable from frame `n`. Seeking
//! a little earlier makes such a frame come out at the seek position instead, which
//! `decoded_frame` rejects. Never before frame 0, because tsdemux maps the first frame to the
//! seek position when asked for a time before the stream starts. And compare within a
//! tolerance: tsdemux rounds the segment start to its 90 kHz clock, so stream times after a
//! seek can be off by up to 11 µs.
//!
//! # Containers
//!
//! - MP4/MOV: qtdemux applies the edit list (segment start = media time of the edit), so
//!   frame 0 is at or near 0 even in a stream-copied cut; the pre-roll frames before the edit
//!   are not frames (ffmpeg hides them too). They have no keyframe of their own, so
//!   `keyframe_at_or_before` is 0 for the frames before the first keyframe. GStreamer 1.22's
//!   qtdemux would stop such a track early (a stream-copied cut whose edit starts seconds
//!   into the media loses its last GOP): `probe` and framesrc both read the file through
//!   [`gstframecast::movie_duration::MovieDurationFix`], so every frame ffmpeg shows is
//!   indexed and shown.
//! - MPEG-TS: stream time is the PTS less tsdemux's time base (taken from the first PCR), not
//!   less the first PTS: frame 0 is at 0.78 s in a file ffmpeg wrote with its default 1.4 s
//!   start, and the container's start offset (`-output_ts_offset`) does not show.
//! - Matroska/WebM: stream time is the block timestamp less the earliest block timestamp of
//!   any track (matroskademux re-bases once it meets an earlier block; see `probe`).
//! - Containers that only give decode times for some frames (MPEG-PS, AVI with B-frames) are
//!   indexed by DTS for those frames: right count, but B-frames make that order and those
//!   times wrong. `probe` logs a warning.

use serde::{Deserialize, Serialize};

use super::Orientation;

/// Every video frame's presentation timestamp (stream time, nanoseconds) in presentation
/// order, after the container's edit list / start offset, plus which frames are keyframes.
///
/// It also holds how decoded frames are turned to be shown upright ([`Orientation`]): what
/// the file's frames are, as decoded, and how they are shown.
///
/// Serialised with [`FrameIndex::to_bytes`] in a compact delta-encoded form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameIndex {
    /// Stream time of each frame, non-decreasing.
    timestamps: Vec<u64>,
    /// Frame numbers (presentation order) of the frames that start a GOP, ascending.
    keyframes: Vec<u32>,
    /// Stream time at which the last frame stops being displayed.
    end_ns: u64,
    orientation: Orientation,
}

impl FrameIndex {
    /// Builds an index from frames already in presentation order.
    ///
    /// `timestamps` must be non-decreasing, `keyframes` strictly increasing frame numbers below
    /// `timestamps.len()`, and `end_ns` not before the last timestamp.
    pub fn new(timestamps: Vec<u64>, keyframes: Vec<u32>, end_ns: u64) -> Result<Self, String> {
        if u32::try_from(timestamps.len()).is_err() {
            return Err(format!("{} frames do not fit u32", timestamps.len()));
        }
        if let Some(w) = timestamps.windows(2).find(|w| w[1] < w[0]) {
            return Err(format!("timestamps go backwards: {} after {}", w[1], w[0]));
        }
        if let Some(w) = keyframes.windows(2).find(|w| w[1] <= w[0]) {
            return Err(format!("keyframes not increasing: {} after {}", w[1], w[0]));
        }
        if let Some(&k) = keyframes
            .last()
            .filter(|&&k| k as usize >= timestamps.len())
        {
            return Err(format!("keyframe {k} of {} frames", timestamps.len()));
        }
        if let Some(&last) = timestamps.last().filter(|&&last| end_ns < last) {
            return Err(format!("end {end_ns} before the last frame at {last}"));
        }
        // The compact form stores signed deltas.
        if end_ns > i64::MAX as u64 {
            return Err(format!("end {end_ns} past 292 years"));
        }
        Ok(Self {
            timestamps,
            keyframes,
            end_ns,
            orientation: Orientation::Identity,
        })
    }

    /// The same frames, shown turned by `orientation`.
    pub fn with_orientation(mut self, orientation: Orientation) -> Self {
        self.orientation = orientation;
        self
    }

    /// How decoded frames are turned to be shown upright.
    pub fn orientation(&self) -> Orientation {
        self.orientation
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Stream time (ns) of frame `n`. To show it, seek to [`Self::seek_position`].
    pub fn timestamp(&self, n: u32) -> Option<u64> {
        self.timestamps.get(n as usize).copied()
    }

    /// All frames' stream times, in presentation order.
    pub fn timestamps(&self) -> &[u64] {
        &self.timestamps
    }

    /// Stream time at which the last frame stops being displayed (its timestamp + duration).
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// The frame displayed at stream time `ts_ns`: the last frame whose timestamp is
    /// `<= ts_ns`. `None` before the first frame; times past [`Self::end_ns`] give the last
    /// frame.
    pub fn frame_at(&self, ts_ns: u64) -> Option<u32> {
        // Frames sharing a timestamp (broken files) resolve to the last of them, which is the
        // one a player would leave on screen.
        let after = self.timestamps.partition_point(|&ts| ts <= ts_ns);
        // `new` guarantees the count fits u32.
        after.checked_sub(1).map(|n| n as u32)
    }

    /// The nearest keyframe at or before frame `n` (the last keyframe for `n` past the end):
    /// where decoding must start to show `n`, or where a stream-copied clip can start.
    ///
    /// Returns 0 when no keyframe precedes `n`, which happens for the first frames of a file
    /// cut with an MP4 edit list: their keyframe lies in the hidden pre-roll, which the demuxer
    /// feeds to the decoder by itself when playing from frame 0.
    pub fn keyframe_at_or_before(&self, n: u32) -> u32 {
        let after = self.keyframes.partition_point(|&k| k <= n);
        after.checked_sub(1).map_or(0, |i| self.keyframes[i])
    }

    /// Where to seek (`FLUSH | ACCURATE`, stream time) to decode frame `n`: [`SEEK_MARGIN_NS`]
    /// before its timestamp, but not before frame 0 (see the module documentation).
    pub fn seek_position(&self, n: u32) -> Option<u64> {
        let ts = self.timestamp(n)?;
        Some(ts.saturating_sub(SEEK_MARGIN_NS).max(self.timestamps[0]))
    }

    /// The frame a decoded buffer with this stream time is: the frame whose timestamp is
    /// within half of [`SEEK_MARGIN_NS`] of it. `None` for the frames a decoder clips to the
    /// segment start after a seek to [`Self::seek_position`].
    pub fn decoded_frame(&self, stream_time_ns: u64) -> Option<u32> {
        let tolerance = SEEK_MARGIN_NS / 2;
        let n = self.frame_at(stream_time_ns.saturating_add(tolerance))?;
        (self.timestamps[n as usize] + tolerance >= stream_time_ns).then_some(n)
    }

    pub fn is_keyframe(&self, n: u32) -> bool {
        self.keyframes.binary_search(&n).is_ok()
    }

    /// Keyframe numbers, ascending.
    pub fn keyframes(&self) -> &[u32] {
        &self.keyframes
    }

    pub fn last_frame(&self) -> Option<u32> {
        self.len().checked_sub(1).map(|n| n as u32)
    }

    /// How long frame `n` is displayed, in ns.
    pub fn duration_of(&self, n: u32) -> Option<u64> {
        let ts = self.timestamp(n)?;
        let next = self.timestamp(n + 1).unwrap_or(self.end_ns);
        Some(next - ts)
    }

    /// Compact serialisation for the catalog: about 1 byte per frame for a constant frame rate
    /// in an exact timebase, 2-3 where the container rounds times (Matroska's milliseconds),
    /// then the orientation's code.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = postcard::to_stdvec(&CompactIndex::from(self.clone()))
            .expect("serialising into a Vec cannot fail");
        bytes.push(self.orientation.code());
        bytes
    }

    /// Reads [`Self::to_bytes`]' form, and the first format's (no orientation: indexes
    /// written before framecast read orientations, shown as decoded until re-imported).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let corrupt = |e: &dyn std::fmt::Display| format!("corrupt frame index: {e}");
        let (compact, rest) =
            postcard::take_from_bytes::<CompactIndex>(bytes).map_err(|e| corrupt(&e))?;
        let orientation = match (compact.format, rest) {
            (FORMAT_WITHOUT_ORIENTATION, []) => Orientation::Identity,
            (COMPACT_FORMAT, &[code]) => Orientation::from_code(code)
                .ok_or_else(|| corrupt(&format!("orientation {code}")))?,
            (COMPACT_FORMAT | FORMAT_WITHOUT_ORIENTATION, _) => {
                return Err(corrupt(&"unexpected trailing bytes"))
            }
            (format, _) => return Err(format!("unknown frame index format {format}")),
        };
        Ok(FrameIndex::try_from(compact)?.with_orientation(orientation))
    }
}

/// How far before a frame's timestamp to seek to decode it. Far below any frame interval, far
/// above the 90 kHz clock tick (11 µs) that tsdemux rounds seek positions to.
pub const SEEK_MARGIN_NS: u64 = 1_000_000;

/// Version of [`CompactIndex`], so that a catalog written by another layout is refused rather
/// than misread. 2: followed by the orientation's code.
const COMPACT_FORMAT: u8 = 2;
/// The first version, without an orientation.
const FORMAT_WITHOUT_ORIENTATION: u8 = 1;

/// Wire form of [`FrameIndex`].
///
/// Timestamps are stored as the change of the frame-to-frame delta: for a constant frame rate
/// the delta is constant or alternates by 1 ns of rounding, so each frame costs one varint
/// byte (postcard zig-zag encodes signed integers), where a raw delta of ~33 ms would cost 4.
#[derive(Serialize, Deserialize)]
struct CompactIndex {
    format: u8,
    /// `None` for an index without frames.
    first_ns: Option<u64>,
    /// `delta[i] - delta[i - 1]`, with `delta[i] = ts[i + 1] - ts[i]` and `delta[-1] = 0`.
    delta_changes: Vec<i64>,
    /// Keyframe numbers as gaps from the previous keyframe (the first from frame 0).
    keyframe_gaps: Vec<u32>,
    /// `end_ns` minus the last timestamp.
    last_duration: u64,
}

impl From<FrameIndex> for CompactIndex {
    fn from(index: FrameIndex) -> Self {
        let mut previous_delta = 0i64;
        let delta_changes = index
            .timestamps
            .windows(2)
            .map(|w| {
                // `new` keeps stream times below i64::MAX, so deltas fit.
                let delta = (w[1] - w[0]) as i64;
                let change = delta - previous_delta;
                previous_delta = delta;
                change
            })
            .collect();
        let mut previous_key = 0;
        let keyframe_gaps = index
            .keyframes
            .iter()
            .map(|&k| {
                let gap = k - previous_key;
                previous_key = k;
                gap
            })
            .collect();
        CompactIndex {
            format: COMPACT_FORMAT,
            first_ns: index.timestamps.first().copied(),
            delta_changes,
            keyframe_gaps,
            last_duration: index.end_ns - index.timestamps.last().copied().unwrap_or(0),
        }
    }
}

impl TryFrom<CompactIndex> for FrameIndex {
    type Error = String;

    fn try_from(compact: CompactIndex) -> Result<Self, String> {
        if ![COMPACT_FORMAT, FORMAT_WITHOUT_ORIENTATION].contains(&compact.format) {
            return Err(format!("unknown frame index format {}", compact.format));
        }
        let overflow = || "timestamp overflow".to_string();
        let Some(first_ns) = compact.first_ns else {
            // `new` refuses keyframes without frames; deltas need checking here.
            if !compact.delta_changes.is_empty() {
                return Err("frame deltas without frames".into());
            }
            return FrameIndex::new(Vec::new(), compact.keyframe_gaps, compact.last_duration);
        };
        let mut timestamps = Vec::with_capacity(compact.delta_changes.len() + 1);
        timestamps.push(first_ns);
        let (mut ts, mut delta) = (first_ns, 0i64);
        for change in compact.delta_changes {
            delta = delta.checked_add(change).ok_or_else(overflow)?;
            let delta = u64::try_from(delta).map_err(|_| "negative frame delta".to_string())?;
            ts = ts.checked_add(delta).ok_or_else(overflow)?;
            timestamps.push(ts);
        }
        // `new` checks that the keyframes increase, i.e. that no gap but the first is 0.
        let mut key = 0u32;
        let keyframes = compact
            .keyframe_gaps
            .into_iter()
            .map(|gap| {
                key = key.checked_add(gap).ok_or("keyframe overflow")?;
                Ok(key)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let end_ns = ts.checked_add(compact.last_duration).ok_or_else(overflow)?;
        FrameIndex::new(timestamps, keyframes, end_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_30: u64 = 33_333_333;

    /// 30 fps with the rounding pattern a 1/30 s timebase gives in ns, keyframe every 30.
    fn cfr_30(frames: u64) -> FrameIndex {
        let timestamps: Vec<u64> = (0..frames).map(|n| n * 1_000_000_000 / 30).collect();
        let keyframes = (0..frames as u32).step_by(30).collect();
        let end = frames * 1_000_000_000 / 30;
        FrameIndex::new(timestamps, keyframes, end).unwrap()
    }

    #[test]
    fn round_trip_cfr_is_about_one_byte_per_frame() {
        let index = cfr_30(30 * 3600);
        let bytes = index.to_bytes();
        assert!(bytes.len() < 30 * 3600 * 3 / 2, "{} bytes", bytes.len());
        assert_eq!(FrameIndex::from_bytes(&bytes).unwrap(), index);
    }

    #[test]
    fn round_trip_vfr_and_edge_cases() {
        let vfr = FrameIndex::new(
            vec![
                40_000_000,
                40_000_000,
                90_000_000,
                91_000_000,
                5_000_000_000,
            ],
            vec![0, 3],
            5_040_000_000,
        )
        .unwrap();
        for index in [vfr, FrameIndex::default(), cfr_30(1)] {
            assert_eq!(FrameIndex::from_bytes(&index.to_bytes()).unwrap(), index);
        }
    }

    #[test]
    fn from_bytes_refuses_garbage() {
        assert!(FrameIndex::from_bytes(&[]).is_err());
        assert!(FrameIndex::from_bytes(&[7, 0, 0, 0, 0]).is_err());
        let mut bytes = cfr_30(10).to_bytes();
        bytes.truncate(bytes.len() - 2);
        assert!(FrameIndex::from_bytes(&bytes).is_err());
        // A negative first delta would make time go backwards.
        let backwards = CompactIndex {
            format: FORMAT_WITHOUT_ORIENTATION,
            first_ns: Some(100),
            delta_changes: vec![-1],
            keyframe_gaps: vec![0],
            last_duration: 0,
        };
        assert!(FrameIndex::from_bytes(&postcard::to_stdvec(&backwards).unwrap()).is_err());
    }

    #[test]
    fn orientation_round_trips_and_old_indexes_read_as_upright() {
        let turned = cfr_30(10).with_orientation(Orientation::Rotate90L);
        let bytes = turned.to_bytes();
        assert_eq!(FrameIndex::from_bytes(&bytes).unwrap(), turned);
        // An unknown orientation code, or none after the second format.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 99;
        assert!(FrameIndex::from_bytes(&bad).is_err());
        assert!(FrameIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        // The first format, as catalogs hold it from before orientations.
        let mut old = CompactIndex::from(cfr_30(10));
        old.format = FORMAT_WITHOUT_ORIENTATION;
        let index = FrameIndex::from_bytes(&postcard::to_stdvec(&old).unwrap()).unwrap();
        assert_eq!(index, cfr_30(10));
        assert_eq!(index.orientation(), Orientation::Identity);
    }

    #[test]
    fn new_validates() {
        assert!(FrameIndex::new(vec![2, 1], vec![], 2).is_err());
        assert!(FrameIndex::new(vec![1, 2], vec![1, 1], 2).is_err());
        assert!(FrameIndex::new(vec![1, 2], vec![2], 2).is_err());
        assert!(FrameIndex::new(vec![1, 2], vec![0], 1).is_err());
        assert!(FrameIndex::new(vec![1, 2], vec![0], u64::MAX).is_err());
    }

    #[test]
    fn lookups() {
        let index = cfr_30(90);
        assert_eq!(index.len(), 90);
        assert_eq!(index.last_frame(), Some(89));
        assert_eq!(index.timestamp(1), Some(FRAME_30));
        assert_eq!(index.timestamp(90), None);
        assert_eq!(index.frame_at(0), Some(0));
        assert_eq!(index.frame_at(FRAME_30 - 1), Some(0));
        assert_eq!(index.frame_at(FRAME_30), Some(1));
        assert_eq!(index.frame_at(2_000_000_000), Some(60));
        assert_eq!(index.frame_at(u64::MAX), Some(89));
        assert_eq!(index.keyframe_at_or_before(0), 0);
        assert_eq!(index.keyframe_at_or_before(59), 30);
        assert_eq!(index.keyframe_at_or_before(60), 60);
        assert_eq!(index.keyframe_at_or_before(1000), 60);
        assert!(index.is_keyframe(30) && !index.is_keyframe(31));
        assert_eq!(index.duration_of(0), Some(FRAME_30));
        assert_eq!(index.duration_of(89), Some(3_000_000_000 - 2_966_666_666));
        assert_eq!(index.duration_of(90), None);
    }

    #[test]
    fn seek_positions_and_decoded_frames() {
        let index = cfr_30(90);
        assert_eq!(index.seek_position(0), Some(0));
        assert_eq!(index.seek_position(1), Some(FRAME_30 - SEEK_MARGIN_NS));
        assert_eq!(index.seek_position(90), None);
        let late_start = FrameIndex::new(vec![780_000_000, 820_000_000], vec![0], 860_000_000);
        assert_eq!(late_start.unwrap().seek_position(0), Some(780_000_000));
        assert_eq!(index.decoded_frame(FRAME_30), Some(1));
        // tsdemux rounds to its 90 kHz clock, a few µs off.
        assert_eq!(index.decoded_frame(FRAME_30 - 11_111), Some(1));
        assert_eq!(index.decoded_frame(FRAME_30 + 11_111), Some(1));
        // A frame clipped to the seek position is none of the frames.
        assert_eq!(index.decoded_frame(FRAME_30 - SEEK_MARGIN_NS), None);
        assert_eq!(index.decoded_frame(u64::MAX), None);
    }

    #[test]
    fn lookups_with_late_start_and_no_leading_keyframe() {
        // An edit-list cut: the first frames' keyframe was in the hidden pre-roll.
        let index = FrameIndex::new(vec![1_000, 2_000, 3_000], vec![2], 4_000).unwrap();
        assert_eq!(index.frame_at(999), None);
        assert_eq!(index.frame_at(1_000), Some(0));
        assert_eq!(index.keyframe_at_or_before(1), 0);
        assert_eq!(index.keyframe_at_or_before(2), 2);
        assert_eq!(FrameIndex::default().frame_at(0), None);
        assert_eq!(FrameIndex::default().last_frame(), None);
    }
}
