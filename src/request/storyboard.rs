//! GET /api/v1/file/:file_uuid/storyboard.vtt?width=W&interval=S and
//! .../storyboard.jpg?width=W&interval=S&sheet=N: a thumbnail track for a player's seek bar.
//! One tile every `interval` seconds, each the keyframe at or before its time (no frame is
//! decoded but keyframes), in sprite sheets of 10x10 tiles.

use super::query::QueryParams;
use super::PlanError;
use crate::catalog::FileRecord;
use crate::client_text::number;

/// Tiles per sheet row and column.
pub const COLUMNS: u32 = 10;
pub const ROWS: u32 = 10;
/// The most tiles a storyboard may have (100 sheets).
pub const MAX_TILES: u64 = 10_000;

/// A validated storyboard: its tile size, spacing and which keyframe each tile shows.
#[derive(Debug, Clone)]
pub struct Storyboard {
    pub file: FileRecord,
    /// What the sheet pipeline reads: the path, or the URL for this request (set by the
    /// HTTP layer after checking a remote object; for s3://, pre-signed).
    pub source: String,
    pub width: u32,
    /// Even, from the width and the video's aspect ratio.
    pub height: u32,
    pub interval_ns: u64,
    /// The frame (a keyframe, or frame 0) each tile shows, in time order.
    pub frames: Vec<u32>,
}

impl Storyboard {
    pub fn sheets(&self) -> u32 {
        (self.frames.len() as u32).div_ceil(COLUMNS * ROWS)
    }

    /// The frames of sheet `sheet`, left to right, top to bottom.
    pub fn sheet_frames(&self, sheet: u32) -> &[u32] {
        let per_sheet = (COLUMNS * ROWS) as usize;
        let start = (sheet as usize * per_sheet).min(self.frames.len());
        &self.frames[start..(start + per_sheet).min(self.frames.len())]
    }

    /// Pixel size of sheet `sheet` (the last may have fewer rows).
    pub fn sheet_size(&self, sheet: u32) -> (u32, u32) {
        let tiles = self.sheet_frames(sheet).len() as u32;
        let columns = tiles.clamp(1, COLUMNS);
        let rows = tiles.div_ceil(COLUMNS).max(1);
        (columns * self.width, rows * self.height)
    }

    /// A cache key naming these bytes: the file as imported (where, which object) and the
    /// tiles, so that a re-import is never served from the cache.
    pub fn cache_key(&self, sheet: u32) -> String {
        format!(
            "{}|{}|{}|{}|{:?}|{}|{}|{}",
            self.file.uuid,
            self.file.location,
            self.file.size,
            self.file.mtime_ns,
            self.file.etag,
            self.width,
            self.interval_ns,
            sheet
        )
    }

    /// The WebVTT track: cue `k` covers `[k × interval, (k + 1) × interval)` (the last ends
    /// with the video) and names its tile as `<sheet_url(sheet)>#xywh=x,y,w,h`.
    pub fn vtt(&self, sheet_url: impl Fn(u32) -> String) -> String {
        let end_ns = self.file.media.frame_index.end_ns().max(1);
        let per_sheet = COLUMNS * ROWS;
        let mut text = String::from("WEBVTT\n");
        for k in 0..self.frames.len() as u64 {
            let start = k * self.interval_ns;
            let end = ((k + 1) * self.interval_ns)
                .min(end_ns)
                .max(start + 1_000_000);
            let (sheet, tile) = ((k / per_sheet as u64) as u32, (k % per_sheet as u64) as u32);
            let (x, y) = (
                (tile % COLUMNS) * self.width,
                (tile / COLUMNS) * self.height,
            );
            text.push_str(&format!(
                "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
                vtt_time(start),
                vtt_time(end),
                sheet_url(sheet),
                self.width,
                self.height
            ));
        }
        text
    }
}

/// `hh:mm:ss.mmm`.
fn vtt_time(ns: u64) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `width` (16-640, default 160) and `interval` (1-3600 s, default 10) for `file`.
pub fn plan(file: FileRecord, query: &QueryParams) -> Result<Storyboard, PlanError> {
    let width = query
        .integer(
            "width",
            16..=640,
            "a tile width in pixels from 16 to 640 (default 160)",
        )?
        .unwrap_or(160) as u32;
    let interval = query
        .number(
            "interval",
            |v| (1.0..=3600.0).contains(&v),
            "seconds between tiles, from 1 to 3600 (default 10)",
        )?
        .unwrap_or(10.0);
    let media = &file.media;
    let index = &media.frame_index;
    if index.is_empty() || media.width == 0 {
        return Err(PlanError::bad_parameter("the file has no frames"));
    }
    let height =
        ((width as f64 * media.height as f64 / media.width as f64 / 2.0).round() as u32 * 2).max(2);
    let interval_ns = (interval * 1e9) as u64;
    let end_ns = index.end_ns();
    let tiles = end_ns.div_ceil(interval_ns).max(1);
    if tiles > MAX_TILES {
        return Err(PlanError::bad_parameter(format!(
            "interval={} gives {tiles} tiles for this {} s video, more than {MAX_TILES}: use an \
             interval of at least {}",
            number(interval),
            number((end_ns as f64 / 1e8).round() / 10.0),
            (end_ns as f64 / 1e9 / MAX_TILES as f64).ceil()
        )));
    }
    let first_ns = index.timestamp(0).unwrap_or(0);
    let frames = (0..tiles)
        .map(|k| {
            let frame = index.frame_at(first_ns.max(k * interval_ns)).unwrap_or(0);
            index.keyframe_at_or_before(frame)
        })
        .collect();
    Ok(Storyboard {
        source: file.location.stored(),
        file,
        width,
        height,
        interval_ns,
        frames,
    })
}

/// `sheet`, within the storyboard's sheets.
pub fn sheet(storyboard: &Storyboard, query: &QueryParams) -> Result<u32, PlanError> {
    let last = storyboard.sheets().saturating_sub(1);
    query
        .integer(
            "sheet",
            0..=last.into(),
            &format!("a sheet number from 0 to {last}"),
        )?
        .map(|n| n as u32)
        .ok_or_else(|| {
            PlanError::bad_parameter(format!(
                "sheet is missing: give a sheet number from 0 to {last}"
            ))
        })
}
