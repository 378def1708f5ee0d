//! The display rotation of a Matroska/WebM video track, which GStreamer 1.22 does not report.
//!
//! Matroska says a track is shown turned with `Projection` → `ProjectionPoseRoll` (degrees;
//! `mkvpropedit --set projection-pose-roll=90` writes it). ffmpeg turns the picture by it,
//! as it does by an MP4 matrix, and so do players built on it; GStreamer 1.22's
//! matroskademux ignores it and gives no `image-orientation` tag. The probe reads it here
//! from the file's track headers when GStreamer gave no orientation.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::Orientation;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const VIDEO: u32 = 0xE0;
const PROJECTION: u32 = 0x7670;
const POSE_ROLL: u32 = 0x7675;
/// `TrackType` of a video track.
const VIDEO_TRACK: u64 = 1;
/// Track headers (and seek heads) larger than this are not read (they are a few hundred
/// bytes).
const MAX_TRACKS_SIZE: u64 = 1 << 20;
/// How many top-level elements are passed over looking for the track headers, when no seek
/// head says where they are (each cluster is one).
const MAX_TOP_LEVEL_ELEMENTS: usize = 100_000;

/// The orientation `ProjectionPoseRoll` gives the first video track of the Matroska file
/// at `path`, as ffmpeg turns the picture: a roll of 90 as an MP4's `rotate=90`. `None` when the file
/// is not Matroska, has no roll, or its roll is not a quarter turn.
pub fn orientation(path: &Path) -> Option<Orientation> {
    let mut file = std::fs::File::open(path).ok()?;
    let roll = pose_roll(&mut file)?;
    let quarter_turns = (roll / 90.0).round();
    if (roll - quarter_turns * 90.0).abs() > 0.01 {
        tracing::warn!(
            roll,
            "Matroska ProjectionPoseRoll is not a quarter turn: ignored"
        );
        return None;
    }
    Some(match (quarter_turns as i64).rem_euclid(4) {
        0 => Orientation::Identity,
        // The roll is the counterclockwise turn that shows the picture upright (ffmpeg
        // shows a roll of 90 as an MP4's `rotate=90`).
        1 => Orientation::Rotate90L,
        2 => Orientation::Rotate180,
        _ => Orientation::Rotate90R,
    })
}

/// An element's ID and the size of its body (`u64::MAX`: unknown, to the end of its parent).
fn header(reader: &mut impl Read) -> Option<(u32, u64)> {
    let id = vint(reader, true)? as u32;
    let size = vint(reader, false)?;
    Some((id, size))
}

/// An EBML variable-length integer: an ID keeps its length marker; a size of all ones means
/// unknown (`u64::MAX` for an ID never happens, IDs are at most 4 bytes).
fn vint(reader: &mut impl Read, keep_marker: bool) -> Option<u64> {
    let mut first = [0u8; 1];
    reader.read_exact(&mut first).ok()?;
    let length = first[0].leading_zeros() as usize + 1;
    if length > 8 || (keep_marker && length > 4) {
        return None;
    }
    let mut value = u64::from(first[0]);
    if !keep_marker {
        value &= 0xFF >> length;
    }
    let mut rest = [0u8; 7];
    reader.read_exact(&mut rest[..length - 1]).ok()?;
    let mut all_ones = value == 0xFF >> length;
    for &byte in &rest[..length - 1] {
        value = value << 8 | u64::from(byte);
        all_ones &= byte == 0xFF;
    }
    if !keep_marker && all_ones {
        return Some(u64::MAX);
    }
    Some(value)
}

fn pose_roll(file: &mut std::fs::File) -> Option<f64> {
    let (id, size) = header(file)?;
    if id != EBML {
        return None;
    }
    file.seek(SeekFrom::Current(i64::try_from(size).ok()?))
        .ok()?;
    let (id, _) = header(file)?;
    if id != SEGMENT {
        return None;
    }
    let segment_start = file.stream_position().ok()?;
    // The segment's top-level elements up to the track headers. They usually precede the
    // clusters; a file edited in place (mkvpropedit) may have them at the end, where the
    // seek head points.
    let mut tracks_at = None;
    for _ in 0..MAX_TOP_LEVEL_ELEMENTS {
        let (id, size) = header(file)?;
        let size = (size != u64::MAX).then_some(size)?;
        match id {
            TRACKS if size <= MAX_TRACKS_SIZE => {
                let mut tracks = vec![0u8; size as usize];
                file.read_exact(&mut tracks).ok()?;
                return video_roll(&tracks);
            }
            SEEK_HEAD if size <= MAX_TRACKS_SIZE && tracks_at.is_none() => {
                let mut seek_head = vec![0u8; size as usize];
                file.read_exact(&mut seek_head).ok()?;
                tracks_at = tracks_position(&seek_head).map(|at| segment_start + at);
            }
            CLUSTER if tracks_at.is_some() => {
                file.seek(SeekFrom::Start(tracks_at.take()?)).ok()?;
            }
            TRACKS => return None,
            _ => {
                file.seek(SeekFrom::Current(i64::try_from(size).ok()?))
                    .ok()?;
            }
        }
    }
    None
}

/// Where the seek head `seek_head` says the track headers are, from the segment's data.
fn tracks_position(seek_head: &[u8]) -> Option<u64> {
    children(seek_head)
        .filter(|&(id, _)| id == SEEK)
        .find_map(|(_, seek)| {
            let target = children(seek).find(|&(id, _)| id == SEEK_ID)?.1;
            (unsigned(target) == u64::from(TRACKS))
                .then(|| children(seek).find(|&(id, _)| id == SEEK_POSITION))
                .flatten()
                .map(|(_, position)| unsigned(position))
        })
}

/// The children of the element body `data`: (ID, body).
fn children(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let mut reader = rest;
        let (id, size) = header(&mut reader)?;
        let size = usize::try_from(size).ok()?;
        let body = reader.get(..size)?;
        rest = &reader[size..];
        Some((id, body))
    })
}

fn unsigned(body: &[u8]) -> u64 {
    body.iter()
        .fold(0, |value, &byte| value << 8 | u64::from(byte))
}

fn float(body: &[u8]) -> Option<f64> {
    match body.len() {
        0 => Some(0.0),
        4 => Some(f64::from(f32::from_be_bytes(body.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(body.try_into().ok()?)),
        _ => None,
    }
}

/// The roll of the first video track among the `Tracks` body `tracks`.
fn video_roll(tracks: &[u8]) -> Option<f64> {
    let entry = children(tracks)
        .filter(|&(id, _)| id == TRACK_ENTRY)
        .map(|(_, entry)| entry)
        .find(|entry| {
            children(entry).any(|(id, body)| id == TRACK_TYPE && unsigned(body) == VIDEO_TRACK)
        })?;
    let (_, video) = children(entry).find(|&(id, _)| id == VIDEO)?;
    let (_, projection) = children(video).find(|&(id, _)| id == PROJECTION)?;
    let (_, roll) = children(projection).find(|&(id, _)| id == POSE_ROLL)?;
    float(roll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_variable_length_integers() {
        assert_eq!(vint(&mut &[0x81u8][..], false), Some(1));
        assert_eq!(vint(&mut &[0x40u8, 0x02][..], false), Some(2));
        assert_eq!(vint(&mut &[0xFFu8][..], false), Some(u64::MAX));
        assert_eq!(
            vint(&mut &[0x1Au8, 0x45, 0xDF, 0xA3][..], true),
            Some(u64::from(EBML))
        );
        assert_eq!(vint(&mut &[0x00u8][..], false), None);
    }

    #[test]
    fn finds_the_video_tracks_roll() {
        // Tracks: an audio entry, then a video entry with Video/Projection/PoseRoll = 90.0f.
        let roll = [0x76, 0x75, 0x84, 0x42, 0xB4, 0x00, 0x00];
        let projection = [&[0x76, 0x70, 0x80 | roll.len() as u8][..], &roll].concat();
        let video = [&[0xE0, 0x80 | projection.len() as u8][..], &projection].concat();
        let entry = [&[0x83, 0x81, 0x01][..], &video].concat();
        let audio = [0xAE, 0x83, 0x83, 0x81, 0x02];
        let tracks = [&audio[..], &[0xAE, 0x80 | entry.len() as u8], &entry].concat();
        assert_eq!(video_roll(&tracks), Some(90.0));
        assert_eq!(video_roll(&audio), None);
    }
}
