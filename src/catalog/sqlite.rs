//! The embedded catalog: one SQLite file in the data dir, migrated on open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gstframecast::detections::{self, COLUMNS, TABLE};
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    Catalog, CatalogError, Detection, DetectionRows, FileRecord, FileSummary, FileUuid, FilesPage,
    Location, TraceSpan, TraceSummary,
};
use crate::media::{FrameIndex, MediaInfo};

/// Schema steps, applied in order; `PRAGMA user_version` counts those already applied.
/// Tables mirror the analytics database (files, face_detections) so rows can be copied over.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE files (
        file_uuid    TEXT PRIMARY KEY NOT NULL,
        path         TEXT NOT NULL,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        duration_ns  INTEGER NOT NULL,
        fps          REAL NOT NULL,
        frame_count  INTEGER NOT NULL,
        width        INTEGER NOT NULL,
        height       INTEGER NOT NULL,
        has_audio    INTEGER NOT NULL,
        video_codec  TEXT NOT NULL,
        audio_codec  TEXT,
        frame_index  BLOB NOT NULL,
        imported_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE face_detections (
        id           INTEGER PRIMARY KEY,
        file_uuid    TEXT NOT NULL REFERENCES files(file_uuid) ON DELETE CASCADE,
        trace_id     INTEGER,
        frame_number INTEGER NOT NULL,
        x            INTEGER NOT NULL,
        y            INTEGER NOT NULL,
        w            INTEGER NOT NULL,
        h            INTEGER NOT NULL,
        confidence   REAL,
        label        TEXT NOT NULL,
        identity     TEXT
    );
    CREATE INDEX face_detections_by_frame ON face_detections(file_uuid, frame_number);
    CREATE INDEX face_detections_by_trace ON face_detections(file_uuid, trace_id, frame_number);
"#,
    // The analytics platform's name for the column.
    "ALTER TABLE face_detections RENAME COLUMN identity TO identity_id;",
    // A remote object's entity tag at import (its size and Last-Modified are size/mtime_ns).
    "ALTER TABLE files ADD COLUMN etag TEXT;",
];

/// What [`summary`] reads, from `files f`.
const SUMMARY_COLUMNS: &str = "f.file_uuid, f.path, f.duration_ns, f.fps, f.frame_count,
    (SELECT COUNT(*) FROM face_detections d WHERE d.file_uuid = f.file_uuid),
    f.width, f.height, f.has_audio";

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<FileSummary> {
    Ok(FileSummary {
        uuid: row.get(0)?,
        path: PathBuf::from(row.get::<_, String>(1)?),
        duration_seconds: row.get::<_, i64>(2)? as f64 / 1e9,
        fps: row.get(3)?,
        frames: row.get::<_, i64>(4)? as u64,
        detections: row.get::<_, i64>(5)? as u64,
        width: row.get(6)?,
        height: row.get(7)?,
        has_audio: row.get(8)?,
    })
}

/// Cheap to clone: the connection is shared.
#[derive(Clone)]
pub struct SqliteCatalog {
    inner: Arc<Inner>,
}

/// What the blocking calls run on.
struct Inner {
    path: PathBuf,
    open: Mutex<OpenCatalog>,
}

/// The connection and which file (device, inode) it has open.
struct OpenCatalog {
    connection: Connection,
    file: (u64, u64),
}

/// Device and inode: what tells a restored catalog file from the one that was open.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
}

impl SqliteCatalog {
    /// Opens (creating it if missing) and migrates the catalog at `path`. Blocking: see
    /// [`SqliteCatalog::open_async`].
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let open = Inner::connect(path)?;
        Ok(SqliteCatalog {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                open: Mutex::new(open),
            }),
        })
    }

    /// [`SqliteCatalog::open`] on tokio's blocking pool.
    pub async fn open_async(path: PathBuf) -> Result<Self, CatalogError> {
        tokio::task::spawn_blocking(move || Self::open(&path))
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?
    }

    /// Runs `f` on tokio's blocking pool (SQLite calls block), in the caller's tracing span
    /// so that what it logs (reopening a replaced file) is part of the request.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let inner = self.inner.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&inner)))
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?
    }
}

impl Inner {
    fn connect(path: &Path) -> Result<OpenCatalog, CatalogError> {
        let mut connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut connection)?;
        let file = file_identity(path).map_err(|e| CatalogError::Unavailable {
            catalog: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(OpenCatalog { connection, file })
    }

    /// The connection, after checking that the catalog file is still the one open.
    ///
    /// An open SQLite connection keeps reading a deleted file (the inode lives on), so
    /// without this check a catalog removed by mistake would go unnoticed until the
    /// restart that finds it empty. Instead: removed means an error on every request, and
    /// a file put back (a new inode) is opened again, with no restart.
    fn connection(&self) -> Result<std::sync::MutexGuard<'_, OpenCatalog>, CatalogError> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions
        // roll back on drop), so a poisoned lock is safe to reuse.
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match file_identity(&self.path) {
            Ok(file) if file == open.file => {}
            Ok(_) => {
                tracing::warn!(path = %self.path.display(), "the catalog file was replaced: reopening it");
                *open = Self::connect(&self.path)?;
            }
            Err(e) => {
                return Err(CatalogError::Unavailable {
                    catalog: self.path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        }
        Ok(open)
    }
}

/// Inserts `detections` of file `uuid` within `tx`.
fn insert_detections(
    tx: &rusqlite::Transaction<'_>,
    uuid: &str,
    detections: DetectionRows,
) -> Result<(), CatalogError> {
    // Bound in the order of COLUMNS.
    let mut insert = tx.prepare(&format!(
        "INSERT INTO {TABLE} (file_uuid, {COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    for d in detections {
        // An error returns before commit: the transaction rolls back on drop.
        let d = d?;
        insert.execute(params![
            uuid,
            d.frame,
            d.x,
            d.y,
            d.w,
            d.h,
            d.label,
            d.confidence,
            d.trace_id,
            d.identity
        ])?;
    }
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), CatalogError> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = connection.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Catalog for SqliteCatalog {
    async fn put_file(
        &self,
        file: &FileRecord,
        detections: DetectionRows,
    ) -> Result<(), CatalogError> {
        // The blocking pool needs owned data; the rows are read there as they are stored.
        let file = file.clone();
        self.blocking(move |inner| inner.put_file(&file, detections))
            .await
    }

    async fn replace_detections(
        &self,
        uuid: FileUuid,
        detections: DetectionRows,
    ) -> Result<bool, CatalogError> {
        self.blocking(move |inner| {
            let mut open = inner.connection()?;
            // IMMEDIATE: the write lock first, so the file cannot go between check and write.
            let tx = open
                .connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let uuid = uuid.to_string();
            let found = tx
                .query_row(
                    "SELECT 1 FROM files WHERE file_uuid = ?1",
                    params![uuid],
                    |_| Ok(()),
                )
                .optional()?;
            if found.is_none() {
                return Ok(false);
            }
            tx.execute(
                &format!("DELETE FROM {TABLE} WHERE file_uuid = ?1"),
                params![uuid],
            )?;
            insert_detections(&tx, &uuid, detections)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn delete_file(&self, uuid: FileUuid) -> Result<bool, CatalogError> {
        self.blocking(move |inner| {
            let open = inner.connection()?;
            // Cascades to the detections.
            let deleted = open.connection.execute(
                "DELETE FROM files WHERE file_uuid = ?1",
                params![uuid.to_string()],
            )?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn file(&self, uuid: FileUuid) -> Result<Option<FileRecord>, CatalogError> {
        self.blocking(move |inner| inner.file(uuid)).await
    }

    async fn list_files(&self) -> Result<Vec<FileSummary>, CatalogError> {
        self.blocking(Inner::list_files).await
    }

    async fn files_page(&self, page: &FilesPage) -> Result<Vec<FileSummary>, CatalogError> {
        let page = page.clone();
        self.blocking(move |inner| inner.files_page(&page)).await
    }

    async fn traces(
        &self,
        uuid: FileUuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TraceSummary>, CatalogError> {
        self.blocking(move |inner| inner.traces(uuid, after, limit))
            .await
    }

    async fn trace_span(
        &self,
        uuid: FileUuid,
        trace_id: i64,
    ) -> Result<Option<TraceSpan>, CatalogError> {
        self.blocking(move |inner| inner.trace_span(uuid, trace_id))
            .await
    }

    async fn detections(
        &self,
        uuid: FileUuid,
        first_frame: u32,
        last_frame: u32,
    ) -> Result<Vec<Detection>, CatalogError> {
        self.blocking(move |inner| {
            let open = inner.connection()?;
            let rows = detections::query_frames(
                &open.connection,
                &uuid.to_string(),
                first_frame.into(),
                last_frame.into(),
            )?;
            Ok(rows)
        })
        .await
    }

    async fn trace_detections(
        &self,
        uuid: FileUuid,
        trace_id: i64,
    ) -> Result<Vec<Detection>, CatalogError> {
        self.blocking(move |inner| {
            let open = inner.connection()?;
            Ok(detections::query_trace(
                &open.connection,
                &uuid.to_string(),
                trace_id,
            )?)
        })
        .await
    }
}

impl Inner {
    fn put_file(&self, file: &FileRecord, detections: DetectionRows) -> Result<(), CatalogError> {
        let mut open = self.connection()?;
        let connection = &mut open.connection;
        let tx = connection.transaction()?;
        let uuid = file.uuid.to_string();
        // Cascades to the old detections.
        tx.execute("DELETE FROM files WHERE file_uuid = ?1", params![uuid])?;
        tx.execute(
            "INSERT INTO files (file_uuid, path, size, mtime_ns, duration_ns, fps, frame_count,
                                width, height, has_audio, video_codec, audio_codec, frame_index,
                                etag)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                uuid,
                file.location.stored(),
                file.size as i64,
                file.mtime_ns,
                file.media.duration_ns as i64,
                file.media.fps,
                file.frame_count() as i64,
                file.media.width,
                file.media.height,
                file.media.has_audio,
                file.media.video_codec,
                file.media.audio_codec,
                file.media.frame_index.to_bytes(),
                file.etag,
            ],
        )?;
        insert_detections(&tx, &uuid, detections)?;
        tx.commit()?;
        Ok(())
    }

    fn file(&self, uuid: FileUuid) -> Result<Option<FileRecord>, CatalogError> {
        let uuid_text = uuid.to_string();
        let row = self
            .connection()?
            .connection
            .query_row(
                "SELECT path, size, mtime_ns, duration_ns, fps, width, height, has_audio,
                        video_codec, audio_codec, frame_index, etag
                 FROM files WHERE file_uuid = ?1",
                params![uuid_text],
                |row| {
                    Ok((
                        FileRecord {
                            uuid,
                            location: Location::from_stored(&row.get::<_, String>(0)?),
                            size: row.get::<_, i64>(1)? as u64,
                            mtime_ns: row.get(2)?,
                            etag: row.get(11)?,
                            media: MediaInfo {
                                duration_ns: row.get::<_, i64>(3)? as u64,
                                fps: row.get(4)?,
                                width: row.get(5)?,
                                height: row.get(6)?,
                                has_audio: row.get(7)?,
                                video_codec: row.get(8)?,
                                audio_codec: row.get(9)?,
                                frame_index: FrameIndex::default(),
                            },
                        },
                        row.get::<_, Vec<u8>>(10)?,
                    ))
                },
            )
            .optional()?;
        let Some((mut record, index_bytes)) = row else {
            return Ok(None);
        };
        record.media.frame_index =
            FrameIndex::from_bytes(&index_bytes).map_err(|reason| CatalogError::Corrupt {
                uuid: uuid_text,
                reason,
            })?;
        Ok(Some(record))
    }

    fn list_files(&self) -> Result<Vec<FileSummary>, CatalogError> {
        let open = self.connection()?;
        let connection = &open.connection;
        let mut query = connection.prepare(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM files f ORDER BY f.imported_at, f.rowid"
        ))?;
        let rows = query.query_map([], summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn files_page(&self, page: &FilesPage) -> Result<Vec<FileSummary>, CatalogError> {
        let open = self.connection()?;
        let after = page.after.map(|u| u.to_string()).unwrap_or_default();
        // The scope as a JSON array, read back by json_each: one parameter whatever its size.
        let only = page.only.as_ref().map(|only| {
            serde_json::to_string(&only.iter().map(|u| u.to_string()).collect::<Vec<_>>())
                .expect("strings serialize")
        });
        let mut query = open.connection.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM files f
             WHERE f.file_uuid > ?1
               AND (?2 IS NULL OR f.file_uuid IN (SELECT value FROM json_each(?2)))
             ORDER BY f.file_uuid LIMIT ?3"
        ))?;
        let rows = query.query_map(params![after, only, page.limit], summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn traces(
        &self,
        uuid: FileUuid,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TraceSummary>, CatalogError> {
        let open = self.connection()?;
        // Through the (file_uuid, trace_id, frame_number) index.
        let mut query = open.connection.prepare_cached(&format!(
            "SELECT d.trace_id, MIN(d.frame_number), MAX(d.frame_number), COUNT(*),
                    (SELECT i.identity_id FROM {TABLE} i
                     WHERE i.file_uuid = ?1 AND i.trace_id = d.trace_id
                       AND i.identity_id IS NOT NULL
                     ORDER BY i.frame_number, i.id LIMIT 1)
             FROM {TABLE} d
             WHERE d.file_uuid = ?1 AND d.trace_id IS NOT NULL AND d.trace_id > ?2
             GROUP BY d.trace_id ORDER BY d.trace_id LIMIT ?3"
        ))?;
        let rows = query.query_map(
            params![uuid.to_string(), after.unwrap_or(i64::MIN), limit],
            |row| {
                Ok(TraceSummary {
                    trace_id: row.get(0)?,
                    first_frame: row.get(1)?,
                    last_frame: row.get(2)?,
                    detections: row.get::<_, i64>(3)? as u64,
                    identity: row.get(4)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn trace_span(&self, uuid: FileUuid, trace_id: i64) -> Result<Option<TraceSpan>, CatalogError> {
        // Both through the (file_uuid, trace_id, frame_number) index.
        let span = self.connection()?.connection.query_row(
            "SELECT MIN(frame_number), MAX(frame_number),
                    (SELECT identity_id FROM face_detections
                     WHERE file_uuid = ?1 AND trace_id = ?2 AND identity_id IS NOT NULL
                     ORDER BY frame_number, id LIMIT 1)
             FROM face_detections WHERE file_uuid = ?1 AND trace_id = ?2",
            params![uuid.to_string(), trace_id],
            |row| {
                Ok((
                    row.get::<_, Option<u32>>(0)?,
                    row.get::<_, Option<u32>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            },
        )?;
        Ok(match span {
            (Some(first), Some(last), identity) => Some(TraceSpan {
                first,
                last,
                identity,
            }),
            _ => None,
        })
    }
}
