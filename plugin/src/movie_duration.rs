//! Working around a GStreamer 1.22 qtdemux quirk: tracks whose edit list starts past media
//! time 0 end early.
//!
//! qtdemux stops a track when, right after it pushed a keyframe, `segment.stop <= min_time`,
//! where its segment's stop is the movie duration (`mvhd`, movie time) but `min_time` is the
//! track's position in movie time *plus the edit's media start* (`position +=
//! segment->media_start` in `gst_qtdemux_loop_state_movie`). For a track whose edit starts
//! `M` seconds into its media, the check fires once the track is past `duration - M`: an MP4
//! cut with `ffmpeg -ss S -i in.mp4 -c copy` (the edit starts mid-GOP, M up to a GOP) loses
//! every frame after the first keyframe past that point, up to the last GOP, and its audio
//! ends early too. ffmpeg and players show them all. Seeks cannot lift that stop: they clamp
//! it to the duration.
//!
//! The workaround gives qtdemux a movie duration larger by the largest media start of any
//! edit: the bytes of the `mvhd` duration field are patched as filesrc hands them out (a pad
//! probe, pull and push mode alike), the file is not touched. The check then fires only past
//! the real end, where each track has already ended by its own edit list. What the larger
//! duration changes otherwise: qtdemux reports it in duration queries (the caller takes
//! [`MovieDurationFix::original_duration`] instead) and allows seeks up to it (past the
//! tracks' ends, which end them, as before).
//!
//! Only unfragmented files are patched (fragmented ones take their duration from `mehd`, and
//! those ffmpeg writes have no edit list starting past 0 but their B-frame delay).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use gst::prelude::*;

/// The largest `moov` read to look for edit lists; a larger one is left alone.
const MAX_MOOV_BYTES: u64 = 64 << 20;
/// How many top-level boxes are looked at before giving up (a file that is not MP4 fails at
/// the first).
const MAX_TOP_LEVEL_BOXES: usize = 4096;

/// The bytes to write over the `mvhd` duration of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovieDurationFix {
    /// File offset of the duration field.
    offset: u64,
    /// Its new value, big-endian, as wide as the field.
    bytes: Vec<u8>,
    original: gst::ClockTime,
    patched: gst::ClockTime,
}

impl MovieDurationFix {
    /// What to patch in the MP4/MOV file at `path`, if it has the quirk: an edit list
    /// starting past media time 0 and a movie duration. `None` for any other file (not
    /// MP4, fragmented, unreadable: qtdemux then behaves as without the fix).
    pub fn for_file(path: &Path) -> Option<Self> {
        let mut file = File::open(path).ok()?;
        let (moov_offset, moov) = read_moov(&mut file)?;
        let movie = parse_moov(&moov)?;
        if movie.fragmented || movie.duration == 0 || movie.timescale == 0 {
            return None;
        }
        let media_start_ns = movie.max_media_start_ns?;
        // In movie units, rounded up, plus one unit for qtdemux's own rounding.
        let extra = (media_start_ns as u128 * movie.timescale as u128).div_ceil(1_000_000_000);
        let duration = (movie.duration as u128 + extra + 1).min(match movie.duration_width {
            4 => u32::MAX as u128,
            _ => i64::MAX as u128,
        }) as u64;
        let bytes = match movie.duration_width {
            4 => (duration as u32).to_be_bytes().to_vec(),
            _ => duration.to_be_bytes().to_vec(),
        };
        let to_time = |units: u64| {
            gst::ClockTime::from_nseconds(
                (units as u128 * 1_000_000_000 / movie.timescale as u128) as u64,
            )
        };
        Some(MovieDurationFix {
            offset: moov_offset + movie.duration_offset as u64,
            bytes,
            original: to_time(movie.duration),
            patched: to_time(duration),
        })
    }

    /// The file's own movie duration, which qtdemux would report without the fix.
    pub fn original_duration(&self) -> gst::ClockTime {
        self.original
    }

    /// The duration qtdemux sees with the fix.
    pub fn patched_duration(&self) -> gst::ClockTime {
        self.patched
    }

    /// Whether `buffer`, a range of the file starting at its offset, holds a byte of the
    /// duration field.
    fn overlaps(&self, buffer: &gst::BufferRef) -> bool {
        let start = buffer.offset();
        // filesrc sets every buffer's offset; without one, it cannot be placed.
        start != u64::MAX
            && start < self.offset + self.bytes.len() as u64
            && self.offset < start.saturating_add(buffer.size() as u64)
    }

    /// Writes the new duration into `buffer`, a range of the file starting at its offset.
    pub fn patch(&self, buffer: &mut gst::BufferRef) {
        if !self.overlaps(buffer) {
            return;
        }
        let start = buffer.offset();
        let Ok(mut map) = buffer.map_writable() else {
            return;
        };
        let end = start + map.len() as u64;
        for (at, &byte) in (self.offset..).zip(&self.bytes) {
            if (start..end).contains(&at) {
                map[(at - start) as usize] = byte;
            }
        }
    }

    /// Patches every buffer leaving `filesrc_pad` (pulled or pushed) with the fix `current`
    /// returns at that moment, if any.
    pub fn install(
        filesrc_pad: &gst::Pad,
        current: impl Fn() -> Option<std::sync::Arc<MovieDurationFix>> + Send + Sync + 'static,
    ) {
        filesrc_pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::PULL | gst::PadProbeType::PUSH,
            move |_, info| {
                if let (Some(fix), Some(gst::PadProbeData::Buffer(buffer))) =
                    (current(), &mut info.data)
                {
                    if fix.overlaps(buffer) {
                        // A copy when shared: the file's bytes stay as they are elsewhere.
                        fix.patch(buffer.make_mut());
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
}

/// Finds the top-level `moov` box: its offset and its bytes (header included).
fn read_moov(file: &mut File) -> Option<(u64, Vec<u8>)> {
    let len = file.metadata().ok()?.len();
    let mut offset = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if offset + 8 > len {
            return None;
        }
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8]).ok()?;
        let kind: [u8; 4] = header[4..8].try_into().unwrap();
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return None; // Not an MP4 box: not an MP4 file.
        }
        let size = match u32::from_be_bytes(header[..4].try_into().unwrap()) {
            0 => len - offset,
            1 => {
                file.read_exact(&mut header[8..16]).ok()?;
                u64::from_be_bytes(header[8..16].try_into().unwrap())
            }
            size => size as u64,
        };
        if size < 8 || offset.checked_add(size)? > len {
            return None;
        }
        if &kind == b"moov" {
            if size > MAX_MOOV_BYTES {
                return None;
            }
            let mut moov = vec![0u8; size as usize];
            file.seek(SeekFrom::Start(offset)).ok()?;
            file.read_exact(&mut moov).ok()?;
            return Some((offset, moov));
        }
        offset += size;
    }
    None
}

/// What the fix needs from a `moov`.
#[derive(Debug, Default)]
struct Movie {
    timescale: u32,
    duration: u64,
    /// Offset of the duration field in the `moov` box, and its width in bytes.
    duration_offset: usize,
    duration_width: usize,
    fragmented: bool,
    /// The largest media time an edit of any track starts at, when one is past 0.
    max_media_start_ns: Option<u64>,
}

/// The children of the box body `data[start..end]`: (type, body start, body end).
fn children(data: &[u8], start: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut boxes = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        let (header, size) = match size {
            0 => (8, end - at),
            1 if at + 16 <= end => {
                let size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
                (16, usize::try_from(size).unwrap_or(usize::MAX))
            }
            size => (8, size),
        };
        if size < header || size > end - at {
            break;
        }
        boxes.push((kind, at + header, at + size));
        at += size;
    }
    boxes
}

fn be(data: &[u8], at: usize, width: usize) -> Option<u64> {
    let bytes = data.get(at..at + width)?;
    Some(bytes.iter().fold(0u64, |v, &b| (v << 8) | b as u64))
}

fn parse_moov(moov: &[u8]) -> Option<Movie> {
    let mut movie = Movie::default();
    let mut mvhd = false;
    for (kind, start, end) in children(moov, 8, moov.len()) {
        match &kind {
            b"mvhd" => {
                // version(1) flags(3), then creation and modification times, timescale and
                // duration: 4 bytes each in version 0, 8 (timescale 4) in version 1.
                let wide = *moov.get(start)? == 1;
                let (time_width, timescale_at) = if wide { (8, 20) } else { (4, 12) };
                movie.timescale = be(moov, start + timescale_at, 4)? as u32;
                movie.duration_offset = start + timescale_at + 4;
                movie.duration_width = time_width;
                movie.duration = be(moov, movie.duration_offset, time_width)?;
                if end < movie.duration_offset + time_width {
                    return None;
                }
                mvhd = true;
            }
            b"mvex" => movie.fragmented = true,
            b"trak" => {
                if let Some(ns) = track_media_start_ns(moov, start, end) {
                    movie.max_media_start_ns = Some(movie.max_media_start_ns.unwrap_or(0).max(ns));
                }
            }
            _ => {}
        }
    }
    mvhd.then_some(movie)
}

/// The largest media time (ns) an edit of this track starts at, if past 0.
fn track_media_start_ns(moov: &[u8], start: usize, end: usize) -> Option<u64> {
    let boxes = children(moov, start, end);
    let find = |boxes: &[([u8; 4], usize, usize)], kind: &[u8; 4]| {
        boxes
            .iter()
            .find(|(k, _, _)| k == kind)
            .map(|&(_, s, e)| (s, e))
    };
    let (mdia_start, mdia_end) = find(&boxes, b"mdia")?;
    let (mdhd, _) = find(&children(moov, mdia_start, mdia_end), b"mdhd")?;
    let media_timescale = match moov.get(mdhd)? {
        1 => be(moov, mdhd + 20, 4)?,
        _ => be(moov, mdhd + 12, 4)?,
    };
    let (edts_start, edts_end) = find(&boxes, b"edts")?;
    let (elst, elst_end) = find(&children(moov, edts_start, edts_end), b"elst")?;
    let wide = *moov.get(elst)? == 1;
    let count = be(moov, elst + 4, 4)? as usize;
    // segment_duration, media_time, then media_rate (4 bytes).
    let width = if wide { 8 } else { 4 };
    let entry = 2 * width + 4;
    let mut max = 0u64;
    for i in 0..count {
        let at = elst + 8 + i * entry;
        if at + entry > elst_end {
            return None;
        }
        let media_time = be(moov, at + width, width)?;
        // Signed: -1 marks an empty edit.
        let negative = media_time >> (width * 8 - 1) == 1;
        if !negative && media_timescale > 0 {
            let ns = (media_time as u128 * 1_000_000_000 / media_timescale as u128) as u64;
            max = max.max(ns);
        }
    }
    (max > 0).then_some(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box of `kind` around `body`.
    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn mvhd(timescale: u32, duration: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12]; // version, flags, creation, modification
        body.extend(timescale.to_be_bytes());
        body.extend(duration.to_be_bytes());
        body.extend([0u8; 80]);
        mp4_box(b"mvhd", &body)
    }

    fn trak(media_timescale: u32, media_times: &[i32]) -> Vec<u8> {
        let mut mdhd = vec![0u8; 12];
        mdhd.extend(media_timescale.to_be_bytes());
        mdhd.extend([0u8; 8]);
        let mdia = mp4_box(b"mdia", &mp4_box(b"mdhd", &mdhd));
        let mut elst = vec![0u8; 4];
        elst.extend((media_times.len() as u32).to_be_bytes());
        for &t in media_times {
            elst.extend(1000u32.to_be_bytes());
            elst.extend(t.to_be_bytes());
            elst.extend(0x0001_0000u32.to_be_bytes());
        }
        let edts = mp4_box(b"edts", &mp4_box(b"elst", &elst));
        mp4_box(b"trak", &[edts, mdia].concat())
    }

    fn file(moov_children: &[Vec<u8>]) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut bytes = mp4_box(b"ftyp", b"isom\0\0\0\0");
        bytes.extend(mp4_box(b"mdat", &[0u8; 100]));
        bytes.extend(mp4_box(b"moov", &moov_children.concat()));
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        (file, bytes)
    }

    #[test]
    fn patches_the_duration_by_the_largest_media_start() {
        gst::init().unwrap();
        // Video: edit at 1.38 s of a 12800 Hz media; audio at 1.396 s of 44.1 kHz.
        let (f, bytes) = file(&[
            mvhd(1000, 3220),
            trak(12800, &[17664]),
            trak(44100, &[-1, 61562]),
        ]);
        let fix = MovieDurationFix::for_file(f.path()).unwrap();
        assert_eq!(fix.original_duration(), gst::ClockTime::from_mseconds(3220));
        // 3.22 s + 1.39596 s rounded up to the ms, + 1 ms.
        assert_eq!(fix.patched_duration(), gst::ClockTime::from_mseconds(4617));
        // Patching a buffer that holds the field's middle two bytes only.
        let field = fix.offset as usize;
        let mut buffer = gst::Buffer::from_slice(bytes[field + 1..field + 3].to_vec());
        buffer.get_mut().unwrap().set_offset(fix.offset + 1);
        fix.patch(buffer.get_mut().unwrap());
        assert_eq!(
            buffer.map_readable().unwrap().as_slice(),
            &4617u32.to_be_bytes()[1..3]
        );
        // A buffer elsewhere is left alone.
        let mut elsewhere = gst::Buffer::from_slice(vec![7u8; 16]);
        elsewhere.get_mut().unwrap().set_offset(0);
        fix.patch(elsewhere.get_mut().unwrap());
        assert_eq!(elsewhere.map_readable().unwrap().as_slice(), &[7u8; 16]);
    }

    #[test]
    fn leaves_other_files_alone() {
        // Edits from media time 0 (or empty ones): nothing to fix.
        let (f, _) = file(&[mvhd(1000, 3220), trak(12800, &[0]), trak(44100, &[-1, 0])]);
        assert_eq!(MovieDurationFix::for_file(f.path()), None);
        // No edit list.
        let (f, _) = file(&[mvhd(1000, 3220)]);
        assert_eq!(MovieDurationFix::for_file(f.path()), None);
        // Fragmented.
        let (f, _) = file(&[
            mvhd(1000, 3220),
            trak(12800, &[1024]),
            mp4_box(b"mvex", &[]),
        ]);
        assert_eq!(MovieDurationFix::for_file(f.path()), None);
        // Not MP4.
        let mut other = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut other, &[0x47u8; 188 * 4]).unwrap();
        assert_eq!(MovieDurationFix::for_file(other.path()), None);
    }
}
