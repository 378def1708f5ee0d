//! Import: probe a video (local, or remote over HTTP/S3), read its detections, register both
//! in one step. `framecast import` and `POST /api/v1/files` share this.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError, DetectionRows, FileRecord, FileUuid};
use crate::media::{self, ProbeError};
use crate::storage::{epoch_ns, Location, Storage, StorageError};
use gstframecast::detections::{self, ParseError as DetectionsError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{location}: {source}")]
    Probe {
        location: String,
        source: ProbeError,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Detections(#[from] DetectionsError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("import task failed: {0}")]
    Task(String),
}

/// Registers `video` under `uuid` (a new random one when `None`), replacing any previous
/// entry atomically. Nothing is written unless the video and every detection are valid.
pub async fn import(
    catalog: &dyn Catalog,
    storage: &Storage,
    video: &Location,
    uuid: Option<FileUuid>,
    detections_file: Option<&Path>,
) -> Result<FileUuid, ImportError> {
    let uuid = uuid.unwrap_or_else(FileUuid::new_random);
    let record = read_record(storage, video, uuid).await?;
    // Opening the detections file blocks: on the blocking pool.
    let rows: DetectionRows = match detections_file {
        Some(file) => {
            let (file, frames) = (file.to_owned(), record.frame_count());
            tokio::task::spawn_blocking(move || {
                let reader = std::fs::File::open(&file).map_err(read_error(&file))?;
                Ok::<DetectionRows, ImportError>(Box::new(detections::rows(reader, Some(frames))))
            })
            .await
            .map_err(|e| ImportError::Task(e.to_string()))??
        }
        None => Box::new(std::iter::empty()),
    };
    // Rows go into the catalog's transaction as they are read: memory stays flat whatever
    // the file's size, and a bad row anywhere still rolls everything back.
    let stored = Arc::new(AtomicU64::new(0));
    let counted = {
        let stored = stored.clone();
        Box::new(rows.inspect(move |_| {
            stored.fetch_add(1, Ordering::Relaxed);
        }))
    };
    match catalog.put_file(&record, counted).await {
        Err(CatalogError::Detections(e)) => return Err(ImportError::Detections(e)),
        other => other?,
    }
    let detections = stored.load(Ordering::Relaxed);
    tracing::info!(%uuid, frames = record.frame_count(), detections, "imported");
    Ok(uuid)
}

/// The record of the video at `location` under `uuid`: probed (the frame index built by one
/// demux pass, over the network for a remote object), with what identifies the object
/// (size, modification time, and a remote object's ETag) so that a later change is noticed.
pub async fn read_record(
    storage: &Storage,
    location: &Location,
    uuid: FileUuid,
) -> Result<FileRecord, ImportError> {
    let task = |e: tokio::task::JoinError| ImportError::Task(e.to_string());
    match location {
        Location::File(path) => {
            // Probing blocks: on the blocking pool, not a runtime thread.
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_local(&path, uuid))
                .await
                .map_err(task)?
        }
        remote => {
            let object = storage.head(remote).await?;
            let url = storage.source(remote)?;
            let size = object.size;
            let media = tokio::task::spawn_blocking(move || media::probe_url(&url, size))
                .await
                .map_err(task)?
                .map_err(|source| ImportError::Probe {
                    location: remote.stored(),
                    source,
                })?;
            // The index must describe the object that is recorded.
            if storage.head(remote).await? != object {
                return Err(StorageError::Gone("the object changed while it was imported").into());
            }
            Ok(FileRecord {
                uuid,
                location: remote.clone(),
                size: object.size,
                mtime_ns: object.mtime_ns,
                etag: object.etag,
                media,
            })
        }
    }
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_owned();
    move |source| ImportError::Read { path, source }
}

/// A local file's record: where it is, as it is now, and what probing it found.
fn read_local(video: &Path, uuid: FileUuid) -> Result<FileRecord, ImportError> {
    let path = std::fs::canonicalize(video).map_err(read_error(video))?;
    let metadata = std::fs::metadata(&path).map_err(read_error(&path))?;
    let mtime_ns = epoch_ns(metadata.modified().map_err(read_error(&path))?).unwrap_or(0);
    let info = media::probe(&path).map_err(|source| ImportError::Probe {
        location: path.display().to_string(),
        source,
    })?;
    Ok(FileRecord {
        uuid,
        location: Location::File(path),
        size: metadata.len(),
        mtime_ns,
        etag: None,
        media: info,
    })
}
