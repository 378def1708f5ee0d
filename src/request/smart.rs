//! `cut=smart|reencode` on `/clip`: whether an H.264 clip re-encodes only the partial GOPs at
//! its edges and copies the whole ones between (smart, the default where it is sound), or
//! re-encodes every frame.
//!
//! Smart applies when nothing is drawn, the output is MPEG-TS, the file is H.264, upright,
//! of even size, 8-bit 4:2:0 progressive, in MP4/MOV or Matroska, and two IDR pictures of
//! the same reorder delay lie in the range (the first at or after `start_frame`, the last at
//! or before `end_frame + 1`, the first before the last). The index names keyframes; whether
//! they are IDR pictures (not the I-frames of open GOPs), the reorder delay and the format
//! are read from the packets ([`crate::media::h264::inspect`]). Anything else is re-encoded,
//! and the log says why.

use super::query::{Container, QueryParams};
use super::stream::{Coding, SmartCut, StreamJob};
use super::PlanError;
use crate::media::h264::{Inspection, KeyPacket};
use crate::media::Orientation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Smart,
    Reencode,
}

/// `cut`, default `smart`.
pub fn parse(query: &QueryParams) -> Result<Cut, PlanError> {
    query.choice(
        "cut",
        &[("smart", Cut::Smart), ("reencode", Cut::Reencode)],
        Cut::Smart,
    )
}

/// How many keyframes are tried at each end: an open-GOP file's IDR pictures are rarer
/// than its keyframes, and each costs a seek.
const CANDIDATES: usize = 3;

/// Keyframes that may bound the copy, nearest to the edge first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidates {
    /// At or after the first frame.
    heads: Vec<u32>,
    /// At or before the frame after the last, descending.
    tails: Vec<u32>,
}

/// Makes `job` a smart cut when `query` asks for it (or leaves the default) and the file
/// allows it; otherwise leaves it re-encoded.
pub async fn apply(job: &mut StreamJob, query: &QueryParams) -> Result<(), PlanError> {
    if parse(query)? == Cut::Reencode {
        return Ok(());
    }
    let candidates = match candidates(job) {
        Ok(candidates) => candidates,
        Err(why) => {
            tracing::debug!(file = %job.file.uuid, why, "clip re-encoded: no smart cut");
            return Ok(());
        }
    };
    // The nearest keyframes first: in most files they are IDR pictures, and each keyframe
    // tried costs a seek before the first byte.
    let nearest = Candidates {
        heads: candidates.heads[..1].to_vec(),
        tails: candidates.tails[..1].to_vec(),
    };
    let mut decision = inspect_and_choose(job, &nearest).await;
    if decision.is_err() && candidates != nearest {
        decision = inspect_and_choose(job, &candidates).await;
    }
    match decision {
        Ok(cut) => job.coding = Coding::Smart(cut),
        Err(why) => tracing::info!(file = %job.file.uuid, why, "clip re-encoded: no smart cut"),
    }
    Ok(())
}

async fn inspect_and_choose(job: &StreamJob, candidates: &Candidates) -> Result<SmartCut, String> {
    let index = &job.file.media.frame_index;
    let times: Vec<u64> = candidates
        .heads
        .iter()
        .chain(&candidates.tails)
        .map(|&k| index.timestamp(k).expect("keyframes are frames"))
        .collect();
    // The packets of a file as imported do not change: what they said is kept, keyed by the
    // file as imported and the times asked, and used while the file is unchanged (a remote
    // one was checked before planning; a local one is looked at here).
    let file = &job.file;
    let unchanged = match &file.location {
        crate::storage::Location::File(path) => {
            std::fs::metadata(path).is_ok_and(|m| file.imported().matches_local(&m))
        }
        _ => true,
    };
    let key = format!(
        "{}/{}/{}/{}/{times:?}",
        file.uuid,
        file.size,
        file.mtime_ns,
        file.etag.as_deref().unwrap_or_default()
    );
    if let Some(inspection) = inspections().get(&key).filter(|_| unchanged) {
        return choose(job, candidates, &inspection);
    }
    let source = job.source.clone();
    let inspection =
        tokio::task::spawn_blocking(move || crate::media::h264::inspect(&source, &times))
            .await
            .map_err(|e| e.to_string())??;
    inspections().insert(key, inspection.clone());
    choose(job, candidates, &inspection)
}

/// Inspections already made: each saves a demuxer start and a seek per keyframe (about
/// 10 ms) before a repeated clip's first byte. A few hundred bytes each.
fn inspections() -> &'static quick_cache::sync::Cache<String, Inspection> {
    static CACHE: std::sync::LazyLock<quick_cache::sync::Cache<String, Inspection>> =
        std::sync::LazyLock::new(|| quick_cache::sync::Cache::new(4096));
    &CACHE
}

/// The candidates from what the record says, or why there is no smart cut.
fn candidates(job: &StreamJob) -> Result<Candidates, &'static str> {
    let media = &job.file.media;
    if job.overlay.is_some() {
        return Err("something is drawn");
    }
    if job.container != Container::Ts {
        return Err("MP4 output");
    }
    if media.video_codec != "h264" {
        return Err("not H.264");
    }
    if media.frame_index.orientation() != Orientation::Identity {
        return Err("rotated: upright needs re-encoding");
    }
    if media.width % 2 + media.height % 2 > 0 {
        return Err("odd size");
    }
    let keyframes = media.frame_index.keyframes();
    let heads: Vec<u32> = keyframes
        .iter()
        .copied()
        .filter(|&k| k >= job.first && k <= job.last)
        .take(CANDIDATES)
        .collect();
    let tails: Vec<u32> = keyframes
        .iter()
        .rev()
        .copied()
        .filter(|&k| k <= job.last + 1 && k > job.first)
        .take(CANDIDATES)
        .collect();
    match (heads.first(), tails.first()) {
        (Some(head), Some(tail)) if head < tail => Ok(Candidates { heads, tails }),
        _ => Err("no whole GOP in the range"),
    }
}

/// The boundaries from the packets, or why there are none.
fn choose(
    job: &StreamJob,
    candidates: &Candidates,
    inspection: &Inspection,
) -> Result<SmartCut, String> {
    let media = &job.file.media;
    match inspection.demuxer.as_deref() {
        Some("qtdemux" | "matroskademux") => {}
        other => return Err(format!("container demuxed by {other:?}")),
    }
    if inspection.chroma_format.as_deref() != Some("4:2:0") || inspection.bit_depth_luma != Some(8)
    {
        return Err(format!(
            "{:?} {:?}-bit: not 8-bit 4:2:0",
            inspection.chroma_format, inspection.bit_depth_luma
        ));
    }
    if !inspection.progressive() {
        return Err(format!(
            "interlaced: {:?} {:?}",
            inspection.interlace_mode, inspection.coded_picture_structure
        ));
    }
    if (inspection.width, inspection.height)
        != (Some(media.width as i32), Some(media.height as i32))
    {
        return Err("the stream's size is not the decoded picture's".into());
    }
    let (copy_first, copy_end, delay) = boundaries(candidates, &inspection.keyframes)?;
    Ok(SmartCut {
        copy_first,
        copy_end,
        reorder_delay_ns: delay,
    })
}

/// The first IDR picture among the heads and the last among the tails after it, with their
/// reorder delay, from the packets found at the candidates (heads', then tails').
fn boundaries(
    candidates: &Candidates,
    packets: &[Option<KeyPacket>],
) -> Result<(u32, u32, u64), String> {
    let (heads, tails) = packets.split_at(candidates.heads.len().min(packets.len()));
    let idr = |packets: &[Option<KeyPacket>], frames: &[u32]| {
        packets
            .iter()
            .zip(frames)
            .filter_map(|(packet, &frame)| match packet {
                Some(p) if p.idr && p.reorder_delay_ns >= 0 => {
                    Some((frame, p.reorder_delay_ns as u64))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let heads = idr(heads, &candidates.heads);
    let tails = idr(tails, &candidates.tails);
    let Some(&(copy_first, delay)) = heads.first() else {
        return Err("no IDR picture among the first keyframes of the range".into());
    };
    let Some(&(copy_end, tail_delay)) = tails.iter().find(|(k, _)| *k > copy_first) else {
        return Err("no IDR picture after the first one among the last keyframes".into());
    };
    if tail_delay != delay {
        return Err(format!(
            "reorder delays {delay} and {tail_delay} ns at the boundaries"
        ));
    }
    Ok((copy_first, copy_end, delay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(idr: bool, delay: i64) -> Option<KeyPacket> {
        Some(KeyPacket {
            idr,
            reorder_delay_ns: delay,
        })
    }

    #[test]
    fn copies_between_the_nearest_idr_pictures() {
        let candidates = Candidates {
            heads: vec![25, 50, 75],
            tails: vec![125, 100, 75],
        };
        let d = 80_000_000;
        let all_idr = vec![packet(true, d); 6];
        assert_eq!(boundaries(&candidates, &all_idr), Ok((25, 125, d as u64)));
        // Open-GOP I-frames (not IDR) are skipped at either end; a missing packet too.
        let some = [
            packet(false, d),
            packet(true, d),
            packet(true, d),
            None,
            packet(false, d),
            packet(true, d),
        ];
        assert_eq!(boundaries(&candidates, &some), Ok((50, 75, d as u64)));
        // Nothing after the first IDR picture: no copy.
        let late = [
            packet(false, d),
            packet(false, d),
            packet(true, d),
            packet(false, d),
            packet(false, d),
            packet(true, d),
        ];
        assert!(boundaries(&candidates, &late).is_err());
        // Different reorder delays at the two ends cannot be spliced.
        let mixed = [packet(true, d), None, None, packet(true, 0), None, None];
        assert!(boundaries(&candidates, &mixed).is_err());
    }
}
