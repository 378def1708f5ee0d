//! Where the overlay's detections come from, and their lookup by frame.
//!
//! A detections file is read whole at start (it is hand-made, for gst-launch lines). A
//! catalog (the SQLite file of the `catalog` property, or any [`DetectionSource`] handed to
//! the element) is queried in windows of [`WINDOW`] frames as the stream advances, so
//! starting a stream costs the same whether the file has a thousand detections or a million;
//! a trace's detections are read once, through the trace index. Either way the frame's
//! detections are a slice of a vector sorted by frame.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::draw::Rgb;
use crate::detections::{self, Detection, DetectionSource};

/// Frames per catalog query.
pub const WINDOW: u64 = 256;

/// Distinct, saturated colours that read on most footage; picked from by a hash.
pub const PALETTE: [Rgb; 12] = [
    Rgb(230, 25, 75),
    Rgb(60, 180, 75),
    Rgb(255, 225, 25),
    Rgb(0, 130, 200),
    Rgb(245, 130, 48),
    Rgb(145, 30, 180),
    Rgb(70, 240, 240),
    Rgb(240, 50, 230),
    Rgb(210, 245, 60),
    Rgb(250, 190, 212),
    Rgb(0, 128, 128),
    Rgb(170, 110, 40),
];

/// A stable palette index: by trace id when there is one, else by label. FNV-1a, not std's
/// randomly seeded hasher, so a trace keeps its colour across requests and runs.
pub fn palette_index(trace_id: Option<i64>, label: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    match trace_id {
        Some(id) => feed(&id.to_le_bytes()),
        None => feed(label.as_bytes()),
    }
    (hash % PALETTE.len() as u64) as usize
}

/// A detection ready to draw: caption and colour are worked out once, at load.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub frame: u64,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
    pub trace_id: Option<i64>,
    pub color: usize,
    pub caption: String,
}

impl From<Detection> for Entry {
    fn from(d: Detection) -> Entry {
        Entry {
            frame: d.frame as u64,
            x: d.x as i64,
            y: d.y as i64,
            w: d.w as i64,
            h: d.h as i64,
            trace_id: d.trace_id,
            color: palette_index(d.trace_id, &d.label),
            caption: d.caption(),
        }
    }
}

/// The entries of `sorted` (by frame) on frame `n`.
pub fn on_frame(sorted: &[Entry], n: u64) -> &[Entry] {
    let start = sorted.partition_point(|e| e.frame < n);
    let len = sorted[start..].partition_point(|e| e.frame == n);
    &sorted[start..start + len]
}

/// What a trace shows on one frame.
#[derive(Debug, PartialEq)]
pub enum TraceBox<'a> {
    /// Outside the trace's span.
    Outside,
    /// The trace's detections on this frame.
    Detected(&'a [Entry]),
    /// Between two detections: the box interpolated linearly between them.
    Between(Entry),
}

/// The trace (its detections sorted by frame) on frame `n`.
pub fn trace_at(trace: &[Entry], n: u64) -> TraceBox<'_> {
    let next = trace.partition_point(|e| e.frame < n);
    match (next.checked_sub(1).map(|i| &trace[i]), trace.get(next)) {
        (_, Some(e)) if e.frame == n => TraceBox::Detected(on_frame(&trace[next..], n)),
        (Some(before), Some(after)) => {
            let t = (n - before.frame) as f64 / (after.frame - before.frame) as f64;
            let lerp = |a: i64, b: i64| a + ((b - a) as f64 * t).round() as i64;
            TraceBox::Between(Entry {
                frame: n,
                x: lerp(before.x, after.x),
                y: lerp(before.y, after.y),
                w: lerp(before.w, after.w),
                h: lerp(before.h, after.h),
                trace_id: before.trace_id,
                color: before.color,
                caption: before.caption.clone(),
            })
        }
        _ => TraceBox::Outside,
    }
}

/// Detections in framecast's SQLite catalog, for one file: the `catalog` property, for
/// gst-launch lines.
pub struct SqliteSource {
    /// rusqlite connections are not `Sync`; only the streaming thread uses this one.
    connection: Mutex<Connection>,
    file_uuid: String,
}

impl SqliteSource {
    /// Opens the catalog at `path` read-only and checks that it knows `file_uuid`.
    pub fn open(path: &Path, file_uuid: &str) -> Result<SqliteSource, String> {
        if !path.is_file() {
            return Err(format!("catalog {} does not exist", path.display()));
        }
        let fail = |e: rusqlite::Error| format!("catalog {}: {e}", path.display());
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(fail)?;
        let known: bool = connection
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM files WHERE file_uuid = ?1)",
                [file_uuid],
                |row| row.get(0),
            )
            .map_err(fail)?;
        if !known {
            return Err(format!(
                "file {file_uuid} is not in catalog {}",
                path.display()
            ));
        }
        // A catalog without the detections table (or with other columns) fails here, at
        // start, rather than on the first frame.
        detections::query_frames(&connection, file_uuid, 0, 0).map_err(fail)?;
        Ok(SqliteSource {
            connection: Mutex::new(connection),
            file_uuid: file_uuid.to_owned(),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Reads only: a panic elsewhere cannot have left the connection half-way.
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl DetectionSource for SqliteSource {
    fn frames(&self, first: u64, last: u64) -> Result<Vec<Detection>, String> {
        detections::query_frames(&self.connection(), &self.file_uuid, first, last)
            .map_err(|e| e.to_string())
    }

    fn trace(&self, trace_id: i64) -> Result<Vec<Detection>, String> {
        detections::query_trace(&self.connection(), &self.file_uuid, trace_id)
            .map_err(|e| e.to_string())
    }
}

/// A [`DetectionSource`] read in windows of [`WINDOW`] frames as the stream advances.
pub struct Windowed {
    source: Arc<dyn DetectionSource>,
    /// The frames `rows` holds, inclusive.
    window: Option<(u64, u64)>,
    rows: Vec<Entry>,
}

impl Windowed {
    pub fn new(source: Arc<dyn DetectionSource>) -> Windowed {
        Windowed {
            source,
            window: None,
            rows: Vec::new(),
        }
    }

    /// The detections on frame `n`, reading the window of frames from `n` when `n` is not
    /// in the current one.
    pub fn frame(&mut self, n: u64) -> Result<&[Entry], String> {
        if !self
            .window
            .is_some_and(|(first, last)| (first..=last).contains(&n))
        {
            let last = n.saturating_add(WINDOW - 1);
            let rows = self
                .source
                .frames(n, last)
                .map_err(|e| format!("reading detections of frames {n}..={last}: {e}"))?;
            let mut rows: Vec<Entry> = rows.into_iter().map(Entry::from).collect();
            // Sources promise frame order; a stable sort keeps their order within a frame
            // and makes a careless one harmless (lookups are binary searches).
            rows.sort_by_key(|e| e.frame);
            self.rows = rows;
            self.window = Some((n, last));
        }
        Ok(on_frame(&self.rows, n))
    }

    pub fn trace(&self, trace_id: i64) -> Result<Vec<Entry>, String> {
        let mut rows: Vec<Entry> = self
            .source
            .trace(trace_id)
            .map_err(|e| format!("reading trace {trace_id}: {e}"))?
            .into_iter()
            .map(Entry::from)
            .collect();
        rows.sort_by_key(|e| e.frame);
        Ok(rows)
    }
}

/// The configured source of detections.
pub enum Source {
    /// Nothing configured: no detections.
    None,
    /// A detections file, whole, sorted by frame.
    File(Vec<Entry>),
    /// The SQLite catalog, or a source handed over by the program running the element.
    Windowed(Windowed),
}

impl Source {
    /// Reads and checks a detections file.
    pub fn file(path: &Path) -> Result<Source, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read detections file {}: {e}", path.display()))?;
        let rows =
            detections::parse(&text, None).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut entries: Vec<Entry> = rows.into_iter().map(Entry::from).collect();
        // Stable: detections of one frame keep the file's order.
        entries.sort_by_key(|e| e.frame);
        Ok(Source::File(entries))
    }

    pub fn frame(&mut self, n: u64) -> Result<&[Entry], String> {
        match self {
            Source::None => Ok(&[]),
            Source::File(entries) => Ok(on_frame(entries, n)),
            Source::Windowed(windowed) => windowed.frame(n),
        }
    }

    /// The detections of a trace, sorted by frame.
    pub fn trace(&self, trace_id: i64) -> Result<Vec<Entry>, String> {
        match self {
            Source::None => Ok(Vec::new()),
            Source::File(entries) => Ok(entries
                .iter()
                .filter(|e| e.trace_id == Some(trace_id))
                .cloned()
                .collect()),
            Source::Windowed(windowed) => windowed.trace(trace_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(frame: u64, x: i64) -> Entry {
        Entry {
            frame,
            x,
            y: 2 * x,
            w: 10,
            h: 20,
            trace_id: None,
            color: 0,
            caption: String::new(),
        }
    }

    #[test]
    fn frames_and_traces() {
        let sorted = [entry(1, 0), entry(3, 1), entry(3, 2), entry(7, 3)];
        assert!(on_frame(&sorted, 0).is_empty());
        assert_eq!(on_frame(&sorted, 3), &sorted[1..3]);
        assert!(on_frame(&sorted, 8).is_empty());

        let trace = [entry(10, 0), entry(20, 100)];
        assert_eq!(trace_at(&trace, 9), TraceBox::Outside);
        assert_eq!(trace_at(&trace, 10), TraceBox::Detected(&trace[..1]));
        assert_eq!(trace_at(&trace, 20), TraceBox::Detected(&trace[1..]));
        assert_eq!(trace_at(&trace, 21), TraceBox::Outside);
        match trace_at(&trace, 15) {
            TraceBox::Between(e) => assert_eq!((e.x, e.y, e.frame), (50, 100, 15)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn colours_are_stable_and_keyed_by_trace_first() {
        assert_eq!(
            palette_index(Some(7), "face"),
            palette_index(Some(7), "car")
        );
        assert_eq!(palette_index(None, "car"), palette_index(None, "car"));
        let distinct: std::collections::HashSet<_> =
            (0..50).map(|id| palette_index(Some(id), "")).collect();
        assert!(distinct.len() > PALETTE.len() / 2, "{distinct:?}");
    }
}
