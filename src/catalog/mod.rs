//! The catalog: which files exist, what they are, and their detections.
//!
//! Handlers see only the [`Catalog`] trait, opened by [`open`] from the `catalog` setting:
//! SQLite ([`SqliteCatalog`], the embedded default) or PostgreSQL ([`PostgresCatalog`],
//! shared by several instances). Both store the same rows: the detections table follows the
//! analytics platform's `face_detections` (see [`gstframecast::detections::COLUMNS`]).

pub mod backup;
mod overlay;
mod postgres;
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{CatalogSetting, Config};
use crate::media::MediaInfo;
pub use crate::storage::Location;

pub use overlay::OverlaySource;
pub use postgres::PostgresCatalog;
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
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub uuid: FileUuid,
    /// Where the bytes are: an absolute path (as resolved at import), or an http(s)/s3 URL.
    pub location: Location,
    pub size: u64,
    /// Modification time at import (a remote object's Last-Modified, 0 if it had none),
    /// nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// A remote object's entity tag at import, as its origin sent it; `None` for local
    /// files (and origins that send none).
    pub etag: Option<String>,
    pub media: MediaInfo,
}

impl FileRecord {
    /// What the origin checks compare with: the object as imported.
    pub fn imported(&self) -> crate::storage::Imported<'_> {
        crate::storage::Imported {
            location: &self.location,
            size: self.size,
            mtime_ns: self.mtime_ns,
            etag: self.etag.as_deref(),
        }
    }

    pub fn frame_count(&self) -> usize {
        self.media.frame_index.len()
    }
}

/// One row of `framecast files` and of `GET /api/v1/files`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileSummary {
    pub uuid: String,
    pub path: PathBuf,
    pub duration_seconds: f64,
    pub fps: f64,
    pub frames: u64,
    pub detections: u64,
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
}

/// Which page of files [`Catalog::files_page`] returns: ordered by uuid.
#[derive(Debug, Clone, Default)]
pub struct FilesPage {
    /// Only uuids after this one (the last of the previous page).
    pub after: Option<FileUuid>,
    /// Only these files (a token's scope); `None` for every file.
    pub only: Option<Vec<FileUuid>>,
    /// At most this many.
    pub limit: u32,
}

/// One trace of a file: where it is seen, who it follows, how many detections it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    pub trace_id: i64,
    pub first_frame: u32,
    pub last_frame: u32,
    /// The first identity given to any of its detections.
    pub identity: Option<String>,
    pub detections: u64,
}

/// One detected box; the plugin's element draws the same rows.
pub use gstframecast::detections::Detection;

/// Detections as [`Catalog::put_file`] takes them: read and checked one by one
/// (`gstframecast::detections::rows`), or from memory with [`rows_of`]. Owned and `Send`:
/// SQLite consumes them on its blocking thread.
pub type DetectionRows =
    Box<dyn Iterator<Item = Result<Detection, gstframecast::detections::ParseError>> + Send>;

/// Rows from memory.
pub fn rows_of(detections: Vec<Detection>) -> DetectionRows {
    Box::new(detections.into_iter().map(Ok))
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Not `From`: every PostgreSQL error goes through the check that makes connection
    /// failures [`CatalogError::Unavailable`].
    #[error("catalog database error: {0}")]
    Postgres(tokio_postgres::Error),
    /// The catalog cannot be reached (file removed or unreadable, database server down or
    /// refusing connections): nothing can be looked up until it is back. `catalog` names it
    /// for the log (a path, or a URL without its password).
    #[error("the catalog {catalog} is unavailable: {reason}")]
    Unavailable { catalog: String, reason: String },
    /// A bad detection row given to `put_file`: nothing was written.
    #[error(transparent)]
    Detections(#[from] gstframecast::detections::ParseError),
    #[error("catalog entry for {uuid} is corrupt: {reason}")]
    Corrupt { uuid: String, reason: String },
    /// A value the store cannot hold (a frame number past its integer type, say).
    #[error("cannot store {0}")]
    OutOfRange(String),
    /// The blocking task running a SQLite call panicked or was cancelled.
    #[error("catalog task failed: {0}")]
    Task(String),
}

/// Storage behind the handlers and the CLI, whichever store it is. Methods are async:
/// PostgreSQL is queried on the runtime, SQLite's blocking calls run on tokio's blocking
/// pool, so no caller blocks a runtime thread.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Registers `file` with its detections, replacing any previous entry of the same uuid
    /// and its detections in one transaction. Rows are stored as the iterator yields them
    /// (a file of millions is never held in memory); a row that is an error rolls back
    /// everything and is returned as [`CatalogError::Detections`].
    async fn put_file(
        &self,
        file: &FileRecord,
        detections: DetectionRows,
    ) -> Result<(), CatalogError>;

    /// Replaces every detection of file `uuid` with `detections`, in one transaction, rows
    /// stored as they are read (a bad one rolls everything back, as
    /// [`CatalogError::Detections`]); `false` (and nothing written) when no such file is
    /// registered.
    async fn replace_detections(
        &self,
        uuid: FileUuid,
        detections: DetectionRows,
    ) -> Result<bool, CatalogError>;

    /// Removes file `uuid` and its detections; `false` when no such file was registered.
    async fn delete_file(&self, uuid: FileUuid) -> Result<bool, CatalogError>;

    async fn file(&self, uuid: FileUuid) -> Result<Option<FileRecord>, CatalogError>;

    async fn list_files(&self) -> Result<Vec<FileSummary>, CatalogError>;

    /// A page of files ordered by uuid: those after `page.after`, among `page.only` if
    /// given, at most `page.limit`.
    async fn files_page(&self, page: &FilesPage) -> Result<Vec<FileSummary>, CatalogError>;

    /// The traces of `uuid` ordered by trace id: those after `after`, at most `limit`.
    async fn traces(
        &self,
        uuid: FileUuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TraceSummary>, CatalogError>;

    /// Where trace `trace_id` of file `uuid` is seen; `None` for an unknown trace.
    async fn trace_span(
        &self,
        uuid: FileUuid,
        trace_id: i64,
    ) -> Result<Option<TraceSpan>, CatalogError>;

    /// The detections of `uuid` on frames `first_frame..=last_frame`, ordered by frame, then
    /// by row id (import order).
    async fn detections(
        &self,
        uuid: FileUuid,
        first_frame: u32,
        last_frame: u32,
    ) -> Result<Vec<Detection>, CatalogError>;

    /// Every detection of trace `trace_id` of `uuid`, ordered by frame, then row id.
    async fn trace_detections(
        &self,
        uuid: FileUuid,
        trace_id: i64,
    ) -> Result<Vec<Detection>, CatalogError>;
}

/// The catalog the `catalog` setting names, opened and migrated: what `serve` and every
/// CLI command use, so that nothing else knows which store it is.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Catalog>> {
    Ok(match config.catalog_setting()? {
        CatalogSetting::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create the catalog's folder {}: {e}", dir.display())
                })?;
            }
            Arc::new(SqliteCatalog::open_async(path).await?)
        }
        CatalogSetting::Postgres(url) => Arc::new(PostgresCatalog::open(&url).await?),
    })
}

/// A trace's first and last detection (frame numbers) and who it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSpan {
    pub first: u32,
    pub last: u32,
    /// The first identity given to any of its detections.
    pub identity: Option<String>,
}
