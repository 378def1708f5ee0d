//! `framecast import`: probe a video, read its detections, register both in one step.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::catalog::{Catalog, CatalogError, Detection, FileRecord, FileUuid};
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
    // Probing and reading block: on the blocking pool, not a runtime thread.
    let (video, detections_file) = (video.to_owned(), detections_file.map(Path::to_owned));
    let (record, detections) =
        tokio::task::spawn_blocking(move || read_video(&video, uuid, detections_file.as_deref()))
            .await
            .map_err(|e| ImportError::Task(e.to_string()))??;
    catalog.put_file(&record, &detections).await?;
    let uuid = record.uuid;
    tracing::info!(%uuid, frames = record.frame_count(), detections = detections.len(), "imported");
    Ok(uuid)
}

/// The file's record and its checked detections.
fn read_video(
    video: &Path,
    uuid: Option<FileUuid>,
    detections_file: Option<&Path>,
) -> Result<(FileRecord, Vec<Detection>), ImportError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ImportError::Read { path, source }
    };
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
    let detections = match detections_file {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(read_error(file))?;
            detections::parse(&text, Some(info.frame_index.len()))?
        }
        None => Vec::new(),
    };
    let uuid = uuid.unwrap_or_else(FileUuid::new_random);
    let record = FileRecord {
        uuid,
        path,
        size: metadata.len(),
        mtime_ns,
        media: info,
    };
    Ok((record, detections))
}
