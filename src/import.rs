//! `framecast import`: probe a video, read its detections, register both in one step.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::catalog::{Catalog, CatalogError, FileRecord, FileUuid};
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
}

/// Registers `video` under `uuid` (a new random one when `None`), replacing any previous
/// entry atomically. Nothing is written unless the video and every detection are valid.
pub fn import(
    catalog: &dyn Catalog,
    video: &Path,
    uuid: Option<FileUuid>,
    detections_file: Option<&Path>,
) -> Result<FileUuid, ImportError> {
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
    let uuid = uuid.unwrap_or_else(FileUuid::new_random);
    let frame_count = info.frame_index.len();
    let record = FileRecord {
        uuid,
        path,
        size: metadata.len(),
        mtime_ns,
        media: info,
    };
    // Rows go into the catalog's transaction as they are read: memory stays flat whatever
    // the file's size, and a bad row anywhere still rolls everything back.
    let mut stored = 0u64;
    let mut counted = |row| {
        stored += 1;
        row
    };
    let result = match detections_file {
        Some(file) => {
            let reader = std::fs::File::open(file).map_err(read_error(file))?;
            let mut rows = detections::rows(reader, Some(frame_count)).map(&mut counted);
            catalog.put_file(&record, &mut rows)
        }
        None => catalog.put_file(&record, &mut std::iter::empty()),
    };
    match result {
        Err(CatalogError::Detections(e)) => return Err(ImportError::Detections(e)),
        other => other?,
    }
    tracing::info!(%uuid, frames = record.frame_count(), detections = stored, "imported");
    Ok(uuid)
}
