//! Detections: the row type, the JSON / JSON-lines file format and the catalog queries.
//!
//! Public so that the server (which links this crate as `gstframecast`) and the
//! `detectionoverlay` element read detections the same way.
//!
//! A detections file is a JSON array, or JSON lines, of objects like
//! `{"frame": 12, "x": 10, "y": 20, "w": 64, "h": 64, "label": "face", "confidence": 0.93,
//!   "trace_id": 4, "identity": "alice"}` (`frame_number` is accepted for `frame`, and
//! `identity_id`, the catalog's column name, for `identity`; `label` defaults to `face`;
//! `confidence`, `trace_id` and `identity` are optional).

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

/// One detected box, in source pixels; x/y is the top-left corner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    #[serde(alias = "frame_number")]
    pub frame: u32,
    pub x: i32,
    pub y: i32,
    pub w: u32,
    pub h: u32,
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub trace_id: Option<i64>,
    /// Column `identity_id` in the catalog, as in the analytics platform's table.
    #[serde(default, alias = "identity_id")]
    pub identity: Option<String>,
}

fn default_label() -> String {
    "face".to_owned()
}

impl Detection {
    /// The text drawn with the box: `#<trace> <identity>` (or `#<trace>`) for a detection in
    /// a trace, else `<label> <confidence>` (or `<label>`).
    pub fn caption(&self) -> String {
        match (self.trace_id, &self.identity, self.confidence) {
            (Some(trace), Some(identity), _) => format!("#{trace} {identity}"),
            (Some(trace), None, _) => format!("#{trace}"),
            (None, _, Some(confidence)) => format!("{} {confidence:.2}", self.label),
            (None, _, None) => self.label.clone(),
        }
    }
}

/// A bad detections file: where (`line N` or `index N`) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub location: String,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "detections file, {}: {}", self.location, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Longest `label` accepted, in characters: it is drawn on every frame it appears in.
pub const MAX_LABEL_CHARS: usize = 200;
/// Longest `identity` accepted, in characters (drawn like a label).
pub const MAX_IDENTITY_CHARS: usize = 200;
/// How much of a row's error (which may quote the row) is reported.
const MAX_REASON_CHARS: usize = 200;

/// Parses a detections file and checks every row; with `frame_count`, frames must be below
/// it. The first bad row is reported by its line (JSON lines) or index (array).
pub fn parse(text: &str, frame_count: Option<usize>) -> Result<Vec<Detection>, ParseError> {
    rows(text.as_bytes(), frame_count).collect()
}

/// The rows of a detections file, read and checked one at a time, so that a file of
/// millions of rows is never held in memory. After the first error the iterator ends.
/// A UTF-8 byte order mark at the start is skipped.
pub fn rows<R: Read>(reader: R, frame_count: Option<usize>) -> Rows<R> {
    Rows {
        reader: BufReader::new(reader),
        frame_count,
        format: None,
        position: 0,
        done: false,
        line: String::new(),
    }
}

/// Iterator returned by [`rows`].
pub struct Rows<R> {
    reader: BufReader<R>,
    frame_count: Option<usize>,
    /// Known after the first non-blank byte: `[` starts an array, else JSON lines.
    format: Option<Format>,
    /// Lines read (JSON lines) or elements read (array).
    position: usize,
    done: bool,
    /// Reused line buffer (JSON lines).
    line: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Lines,
    Array,
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<Detection, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = match self.format {
            None => self.start().and_then(|()| self.next_row()),
            Some(_) => self.next_row(),
        };
        match next {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A bad row's error, its reason cut short (serde's may quote the whole value).
fn row_error(location: String, reason: impl fmt::Display) -> ParseError {
    let reason = reason.to_string();
    let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    };
    ParseError { location, reason }
}

fn io_error(e: std::io::Error) -> ParseError {
    row_error("reading".into(), e)
}

impl<R: Read> Rows<R> {
    /// Skips a byte order mark and finds the format.
    fn start(&mut self) -> Result<(), ParseError> {
        let buffered = self.reader.fill_buf().map_err(io_error)?;
        if buffered.starts_with(b"\xEF\xBB\xBF") {
            self.reader.consume(3);
        }
        let first = self.peek_non_blank()?;
        if first == Some(b'[') {
            self.reader.consume(1);
            self.format = Some(Format::Array);
        } else {
            self.format = Some(Format::Lines);
        }
        Ok(())
    }

    /// The next byte that is not JSON whitespace, left unread; `None` at the end. Counts
    /// newlines only in the array format (JSON lines counts whole lines).
    fn peek_non_blank(&mut self) -> Result<Option<u8>, ParseError> {
        loop {
            let buffered = self.reader.fill_buf().map_err(io_error)?;
            let Some(&byte) = buffered.first() else {
                return Ok(None);
            };
            if !matches!(byte, b' ' | b'\t' | b'\r' | b'\n') {
                return Ok(Some(byte));
            }
            self.reader.consume(1);
        }
    }

    fn next_row(&mut self) -> Result<Option<Detection>, ParseError> {
        match self.format {
            Some(Format::Array) => self.next_element(),
            _ => self.next_line(),
        }
    }

    fn next_line(&mut self) -> Result<Option<Detection>, ParseError> {
        loop {
            self.line.clear();
            let read = self
                .reader
                .read_line(&mut self.line)
                .map_err(|e| row_error(format!("line {}", self.position + 1), e))?;
            if read == 0 {
                return Ok(None);
            }
            self.position += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            let location = format!("line {}", self.position);
            let row: Detection = serde_json::from_str(&self.line)
                .map_err(|e| row_error(location.clone(), format!("not valid JSON: {e}")))?;
            return check(row, self.frame_count)
                .map(Some)
                .map_err(|reason| row_error(location, reason));
        }
    }

    fn next_element(&mut self) -> Result<Option<Detection>, ParseError> {
        let location = format!("index {}", self.position);
        let not_an_array = |reason: &str| {
            row_error(
                location.clone(),
                format!("not a valid JSON array: {reason}"),
            )
        };
        if self.position > 0 {
            match self.peek_non_blank()? {
                Some(b',') => self.reader.consume(1),
                Some(b']') => return self.end_of_array(),
                Some(_) => return Err(not_an_array("expected `,` or `]` after a row")),
                None => return Err(not_an_array("the file ends before the closing `]`")),
            }
        } else if self.peek_non_blank()? == Some(b']') {
            return self.end_of_array();
        }
        // One element at a time: a deserializer reading straight from the file stops at
        // the element's closing brace.
        let mut deserializer = serde_json::Deserializer::from_reader(&mut self.reader);
        let row = Detection::deserialize(&mut deserializer);
        drop(deserializer);
        let row = row.map_err(|e| row_error(location.clone(), e))?;
        self.position += 1;
        check(row, self.frame_count)
            .map(Some)
            .map_err(|reason| row_error(location, reason))
    }

    /// After the closing `]`: only whitespace may follow.
    fn end_of_array(&mut self) -> Result<Option<Detection>, ParseError> {
        self.reader.consume(1);
        match self.peek_non_blank()? {
            None => Ok(None),
            Some(_) => Err(row_error(
                format!("index {}", self.position),
                "not a valid JSON array: text after the closing `]`",
            )),
        }
    }
}

fn check(row: Detection, frame_count: Option<usize>) -> Result<Detection, String> {
    let too_long = |field: &str, text: &str, max: usize| {
        let chars = text.chars().count();
        (chars > max)
            .then(|| format!("{field} is {chars} characters long; at most {max} are allowed"))
    };
    if let Some(e) = too_long("label", &row.label, MAX_LABEL_CHARS) {
        return Err(e);
    }
    if let Some(e) = row
        .identity
        .as_deref()
        .and_then(|identity| too_long("identity", identity, MAX_IDENTITY_CHARS))
    {
        return Err(e);
    }
    if let Some(frame_count) = frame_count.filter(|&n| row.frame as usize >= n) {
        return Err(format!(
            "frame {} is beyond the video's last frame {} (frames are zero-based)",
            row.frame,
            frame_count.saturating_sub(1)
        ));
    }
    if row.w == 0 || row.h == 0 {
        return Err(format!(
            "w and h must be at least 1, got {}x{}",
            row.w, row.h
        ));
    }
    if let Some(c) = row.confidence.filter(|c| !(0.0..=1.0).contains(c)) {
        return Err(format!("confidence must be between 0 and 1, got {c}"));
    }
    Ok(row)
}

/// The catalog's detections table; its columns follow the analytics platform's
/// `face_detections` (plus `label`, and framecast's own `id`), so that a platform can write
/// rows there directly or expose its table under this name through a view.
pub const TABLE: &str = "face_detections";

/// The detection columns every catalog query reads and writes, in the order of
/// [`Detection`]'s fields as [`from_row`] and the catalogs' inserts bind them. With
/// `file_uuid` (and `id`, generated), this is the whole table: one list for SQLite here and
/// in the server, and for PostgreSQL.
pub const COLUMNS: &str = "frame_number, x, y, w, h, label, confidence, trace_id, identity_id";

/// A row of [`COLUMNS`] read from SQLite.
pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Detection> {
    Ok(Detection {
        frame: row.get(0)?,
        x: row.get(1)?,
        y: row.get(2)?,
        w: row.get(3)?,
        h: row.get(4)?,
        label: row.get(5)?,
        confidence: row.get(6)?,
        trace_id: row.get(7)?,
        identity: row.get(8)?,
    })
}

/// The detections of `file_uuid` on frames `first..=last` of framecast's SQLite catalog,
/// ordered by frame (then row id), through the (file_uuid, frame_number) index.
pub fn query_frames(
    connection: &Connection,
    file_uuid: &str,
    first: u64,
    last: u64,
) -> rusqlite::Result<Vec<Detection>> {
    // SQLite integers are i64: frame numbers past that are past any video.
    let clamp = |frame: u64| i64::try_from(frame).unwrap_or(i64::MAX);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {TABLE}
         WHERE file_uuid = ?1 AND frame_number BETWEEN ?2 AND ?3
         ORDER BY frame_number, id"
    ))?;
    let rows = statement.query_map(params![file_uuid, clamp(first), clamp(last)], from_row)?;
    rows.collect()
}

/// The detections of one trace, ordered by frame, through the (file_uuid, trace_id,
/// frame_number) index.
pub fn query_trace(
    connection: &Connection,
    file_uuid: &str,
    trace_id: i64,
) -> rusqlite::Result<Vec<Detection>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {TABLE}
         WHERE file_uuid = ?1 AND trace_id = ?2
         ORDER BY frame_number, id"
    ))?;
    let rows = statement.query_map(params![file_uuid, trace_id], from_row)?;
    rows.collect()
}

/// Where `detectionoverlay` reads one file's detections from, handed to the element with
/// `DetectionOverlay::set_source` by a program that runs it in-process (the server gives it
/// its catalog, whichever store that is). Called from the element's streaming thread, so an
/// implementation may block; errors are posted on the bus as read errors.
pub trait DetectionSource: Send + Sync {
    /// The detections on frames `first..=last`, ordered by frame. The element asks for
    /// windows of a few hundred frames as the stream advances.
    fn frames(&self, first: u64, last: u64) -> Result<Vec<Detection>, String>;

    /// Every detection of trace `trace_id`, ordered by frame; read once, at start.
    fn trace(&self, trace_id: i64) -> Result<Vec<Detection>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_lines_give_the_same_rows() {
        let array = r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5},
                        {"frame_number": 2, "x": -1, "y": 0, "w": 9, "h": 9, "label": "car",
                         "confidence": 0.5, "trace_id": 3, "identity": "bob"}]"#;
        let lines = "{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n\n\
                     {\"frame_number\": 2, \"x\": -1, \"y\": 0, \"w\": 9, \"h\": 9, \"label\": \"car\", \
                      \"confidence\": 0.5, \"trace_id\": 3, \"identity\": \"bob\"}\n";
        let a = parse(array, Some(10)).unwrap();
        assert_eq!(a, parse(lines, None).unwrap());
        assert_eq!(a[0].label, "face");
        assert_eq!(a[1].trace_id, Some(3));
        assert_eq!(a[1].identity.as_deref(), Some("bob"));
        // The catalog's column name is accepted too.
        let b = parse(
            r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5, "identity_id": "bob"}]"#,
            None,
        )
        .unwrap();
        assert_eq!(b[0].identity.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_rows_are_named_by_line_or_index() {
        let lines =
            "{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n{\"frame\": 1, \"x\": 2}\n";
        let e = parse(lines, None).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("missing field"), "{e}");
        let e = parse("{\"frame\": 1,\n", None).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");

        let array = r#"[{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5}, {"frame": 10, "x": 2, "y": 3, "w": 4, "h": 5}]"#;
        let e = parse(array, Some(10)).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains("last frame 9"), "{e}");
        assert!(parse(array, None).is_ok());

        let e = parse(r#"[{"frame": 0, "x": 0, "y": 0, "w": 0, "h": 5}]"#, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = parse(
            r#"[{"frame": 0, "x": 0, "y": 0, "w": 1, "h": 5, "confidence": 1.5}]"#,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let row = r#"{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5}"#;
        assert_eq!(parse(&format!("\u{feff}{row}\n"), None).unwrap().len(), 1);
        assert_eq!(
            parse(&format!("\u{feff}[{row}, {row}]"), None)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn long_labels_and_identities_are_refused_naming_the_row() {
        let row = |identity: &str| {
            format!(r#"{{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5, "identity": "{identity}"}}"#)
        };
        let ok = "a".repeat(MAX_IDENTITY_CHARS);
        let long = "a".repeat(MAX_IDENTITY_CHARS + 1);
        let lines = format!("{}\n{}\n", row(&ok), row(&long));
        let e = parse(&lines, None).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("identity is 201 characters"),
            "{e}"
        );
        let array = format!("[{}, {}]", row(&ok), row(&long));
        let e = parse(&array, None).unwrap_err().to_string();
        assert!(e.contains("index 1"), "{e}");
        let label = format!(
            r#"[{{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5, "label": "{}"}}]"#,
            "b".repeat(MAX_LABEL_CHARS + 1)
        );
        let e = parse(&label, None).unwrap_err().to_string();
        assert!(e.contains("index 0") && e.contains("label is 201"), "{e}");
        // A reason quoting a huge value stays short.
        let huge = format!(r#"[{{"frame": "{}"}}]"#, "9".repeat(100_000));
        assert!(parse(&huge, None).unwrap_err().to_string().len() < 400);
    }

    #[test]
    fn malformed_arrays_are_refused() {
        let row = r#"{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5}"#;
        assert_eq!(parse("[]", None).unwrap(), vec![]);
        assert_eq!(parse(" [ ] \n", None).unwrap(), vec![]);
        for bad in [
            format!("[{row}"),
            format!("[{row},"),
            format!("[{row} {row}]"),
            format!("[{row}] x"),
            format!("[{row},]"),
        ] {
            assert!(parse(&bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn captions() {
        let mut d = parse(r#"[{"frame": 0, "x": 0, "y": 0, "w": 1, "h": 1}]"#, None).unwrap();
        let d = &mut d[0];
        assert_eq!(d.caption(), "face");
        d.confidence = Some(0.934);
        assert_eq!(d.caption(), "face 0.93");
        d.trace_id = Some(7);
        assert_eq!(d.caption(), "#7");
        d.identity = Some("alice".into());
        assert_eq!(d.caption(), "#7 alice");
    }
}
