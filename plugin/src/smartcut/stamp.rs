//! The output timeline of a smart cut: head (re-encoded), copied GOPs, tail (re-encoded) as
//! one stream whose presentation times are continuous and whose decoding times strictly
//! increase across the seams.
//!
//! Presentation: running time 0 is the first frame (`start`); a frame at stream time `t` is
//! at `t - start`. Decoding: the copied GOPs keep their own distance from presentation (the
//! source's reorder delay `D`, the copied IDR's PTS - DTS), and the re-encoded frames, which
//! have no B-frames, are given DTS = PTS - D: then the head's last DTS is a frame before the
//! copied IDR's, and the tail's first DTS is a frame after the copied GOPs' last one.
//!
//! Buffer times are running times plus [`BASE`], in a segment starting at `BASE`, so that
//! decoding times before running time 0 (the first frames' PTS - D) are still positive
//! buffer times (x264enc does the same with 1000 hours).

/// Where running time 0 is in buffer time.
pub const BASE: u64 = 1000 * 3600 * 1_000_000_000;

/// The one segment of the output, in buffer time: running time 0 at [`BASE`], stream time
/// the file's (`start` at running time 0).
pub fn segment(start: u64) -> gst::FormattedSegment<gst::ClockTime> {
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(gst::ClockTime::from_nseconds(BASE));
    segment.set_time(gst::ClockTime::from_nseconds(start));
    segment.set_position(gst::ClockTime::from_nseconds(BASE));
    segment
}

/// Output `(pts, dts)` of a re-encoded frame at running time `running` of its part, the part
/// beginning `part_offset` after `start`.
pub fn edge(running: u64, part_offset: u64, reorder_delay: u64) -> (u64, u64) {
    let pts = BASE + part_offset + running;
    (pts, pts - reorder_delay)
}

/// Output time of a copied packet's timestamp at signed stream time `stream_time`.
pub fn copied(stream_time: i64, start: u64) -> u64 {
    (BASE as i64 + stream_time - start as i64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_times_increase_across_the_seams() {
        // 25 fps, reorder delay 2 frames; head frames 0-2 (start 10), copy 13-14 (IDR 13),
        // tail 15.
        let f = 40_000_000u64;
        let start = 10 * f;
        let d = 2 * f;
        let head: Vec<_> = (0..3).map(|i| edge(i * f, 0, d)).collect();
        // Copied, in decoding order: IDR 13 (dts 11), then 14 (dts 12).
        let copy = [
            (copied(13 * f as i64, start), copied(11 * f as i64, start)),
            (copied(14 * f as i64, start), copied(12 * f as i64, start)),
        ];
        let tail = [edge(0, 5 * f, d)];
        let all: Vec<(u64, u64)> = head.into_iter().chain(copy).chain(tail).collect();
        assert_eq!(all[0].0, BASE);
        for pair in all.windows(2) {
            assert!(pair[1].1 > pair[0].1, "{all:?}");
        }
        for (pts, dts) in all {
            assert!(dts <= pts);
        }
    }
}
