//! The catalog: which files exist, what they are, and their detections.
//!
//! Handlers see only the [`Catalog`] trait; SQLite ([`SqliteCatalog`]) is the embedded
//! default, and another store (PostgreSQL beside the analytics database) can be added by
//! implementing the trait.

pub mod backup;
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

use crate::media::MediaInfo;

pub use sqlite::SqliteCatalog;

/// A file's identity: 32 lowercase hex digits. Parsing also accepts the hyphenated and
/// upper-case forms and normalises them, so a client may paste either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileUuid(uuid::Uuid);

impl FileUuid {
    pub fn new_random() -> Self {
        FileUuid(uuid::Uuid::new_v4())
    }
}

impl FromStr for FileUuid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(FileUuid).map_err(|_| {
            format!(
                "malformed file uuid {}: expected 32 hexadecimal digits, like \
                 0123456789abcdef0123456789abcdef",
                crate::client_text::quote(s)
            )
        })
    }
}

impl fmt::Display for FileUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// A registered video: which file, as it was at import, and what probing it found.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub uuid: FileUuid,
    /// Absolute path, as resolved at import.
    pub path: PathBuf,
    pub size: u64,
    /// Modification time at import, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub media: MediaInfo,
}

impl FileRecord {
    pub fn frame_count(&self) -> usize {
        self.media.frame_index.len()
    }
}

/// One row of `framecast files`.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub uuid: String,
    pub path: PathBuf,
    pub duration_seconds: f64,
    pub fps: f64,
    pub frames: u64,
    pub detections: u64,
}

/// One detected box; the plugin's element draws the same rows.
pub use gstframecast::detections::Detection;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The catalog file cannot be reached (removed, unreadable): nothing can be looked up
    /// until it is back.
    #[error("the catalog file {path} is unavailable: {reason}")]
    Unavailable { path: PathBuf, reason: String },
    #[error("catalog entry for {uuid} is corrupt: {reason}")]
    Corrupt { uuid: String, reason: String },
    /// The lookup's thread failed (a bug): details for the log.
    #[error("catalog lookup failed: {0}")]
    Lookup(String),
}

/// Runs a blocking catalog call on tokio's blocking pool, inside the caller's span (the
/// catalog may log, e.g. when it reopens a replaced file: as part of the request).
pub async fn blocking<T: Send + 'static>(
    catalog: &std::sync::Arc<dyn Catalog>,
    call: impl FnOnce(&dyn Catalog) -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, CatalogError> {
    let catalog = catalog.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| call(&*catalog)))
        .await
        .map_err(|e| CatalogError::Lookup(e.to_string()))?
}

/// Storage behind the handlers. Implementations are blocking; async callers use
/// `spawn_blocking`.
pub trait Catalog: Send + Sync + 'static {
    /// Registers `file` with its detections, replacing any previous entry of the same uuid
    /// and its detections in one transaction.
    fn put_file(&self, file: &FileRecord, detections: &[Detection]) -> Result<(), CatalogError>;

    fn file(&self, uuid: FileUuid) -> Result<Option<FileRecord>, CatalogError>;

    fn list_files(&self) -> Result<Vec<FileSummary>, CatalogError>;

    /// Where trace `trace_id` of file `uuid` is seen; `None` for an unknown trace.
    fn trace_span(&self, uuid: FileUuid, trace_id: i64) -> Result<Option<TraceSpan>, CatalogError>;
}

/// A trace's first and last detection (frame numbers) and who it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpan {
    pub first: u32,
    pub last: u32,
    /// The first identity given to any of its detections.
    pub identity: Option<String>,
}
