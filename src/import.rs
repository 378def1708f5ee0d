//! `framecast import`: probe a video, read its detections, register both in one step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::catalog::{Catalog, CatalogError, DetectionRows, FileRecord, FileUuid};
use crate::media::{self, ProbeError};
use gstframecast::detections::{self, ParseError as DetectionsError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Probe { path: PathBuf, source: ProbeError },
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
    video: &Path,
    uuid: Option<FileUuid>,
    detections_file: Option<&Path>,
) -> Result<FileUuid, ImportError> {
    // Probing and opening block: on the blocking pool, not a runtime thread.
    let (video, detections_file) = (video.to_owned(), detections_file.map(Path::to_owned));
    let (record, rows) = tokio::task::spawn_blocking(move || {
        let record = read_video(&video, uuid)?;
        let rows: DetectionRows = match detections_file {
            Some(file) => {
                let reader = std::fs::File::open(&file).map_err(read_error(&file))?;
                Box::new(detections::rows(reader, Some(record.frame_count())))
            }
            None => Box::new(std::iter::empty()),
        };
        Ok::<_, ImportError>((record, rows))
    })
    .await
    .map_err(|e| ImportError::Task(e.to_string()))??;
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
    let uuid = record.uuid;
    let detections = stored.load(Ordering::Relaxed);
    tracing::info!(%uuid, frames = record.frame_count(), detections, "imported");
    Ok(uuid)
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_owned();
    move |source| ImportError::Read { path, source }
}

/// The file's record: where it is, as it is now, and what probing it found.
fn read_video(video: &Path, uuid: Option<FileUuid>) -> Result<FileRecord, ImportError> {
    let path = std::fs::canonicalize(video).map_err(read_error(video))?;
    let metadata = std::fs::metadata(&path).map_err(read_error(&path))?;
    let mtime_ns = metadata
        .modified()
        .map_err(read_error(&path))?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let info = media::probe(&path).map_err(|source| ImportError::Probe {
        path: path.clone(),
        source,
    })?;
    Ok(FileRecord {
        uuid: uuid.unwrap_or_else(FileUuid::new_random),
        path,
        size: metadata.len(),
        mtime_ns,
        media: info,
    })
}
