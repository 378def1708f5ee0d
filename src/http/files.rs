//! The import API (scope `files:write`): `POST /api/v1/files` registers a video,
//! `PUT /api/v1/file/:file_uuid/detections` replaces its detections, `DELETE
//! /api/v1/file/:file_uuid` removes it. `framecast import` runs the same import code.
//!
//! Locations given here are checked against the allow-lists (`media_roots`,
//! `media_url_prefixes`) before anything reads them; bodies are read with a size limit
//! (`max_upload_bytes`, 413 past it) and nothing changes unless all of a body is valid.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use poem::http::{header, StatusCode};
use poem::web::Data;
use poem::{handler, Body, Request, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::auth::{Grant, WRITE_SCOPE};
use crate::catalog::{CatalogError, DetectionRows, FileRecord, FileUuid};
use crate::import::{self, ImportError};
use crate::storage::{self, Location};
use gstframecast::detections;

/// Largest `POST /api/v1/files` body: a location and a uuid.
const IMPORT_BODY_BYTES: u64 = 64 * 1024;

/// What the import API needs besides [`AppState`]'s planner (catalog and storage).
pub struct ImportSettings {
    pub media_roots: Vec<std::path::PathBuf>,
    pub media_url_prefixes: Vec<String>,
    pub max_upload_bytes: u64,
    /// A body that sends nothing for this long is abandoned.
    pub body_stall: Duration,
}

fn require_write(req: &Request) -> Result<(), ApiError> {
    let grant = req
        .extensions()
        .get::<Grant>()
        .expect("require_token runs first");
    if grant.may_write() {
        Ok(())
    } else {
        Err(ApiError::ForbiddenScope(WRITE_SCOPE))
    }
}

/// The request body, at most `limit` bytes (413 past it: from Content-Length before reading
/// anything, else as soon as the bytes read pass it).
async fn read_body(
    req: &Request,
    body: Body,
    limit: u64,
    stall: Duration,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut stream = body.into_bytes_stream();
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    loop {
        let chunk = match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => {
                return Err(ApiError::bad_parameter(format!(
                    "the request body stalled for {} s",
                    stall.as_secs_f64()
                )))
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(ApiError::bad_parameter("the request body was cut")),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    location: String,
    #[serde(default)]
    file_uuid: Option<String>,
}

/// A file's record as the API shows it.
fn record_json(file: &FileRecord) -> serde_json::Value {
    let media = &file.media;
    serde_json::json!({
        "success": true,
        "uuid": file.uuid.to_string(),
        "location": file.location.stored(),
        "size": file.size,
        "frames": file.frame_count(),
        "fps": media.fps,
        "duration": media.duration_ns as f64 / 1e9,
        "width": media.width,
        "height": media.height,
        "audio": media.has_audio,
        "video_codec": media.video_codec,
        "audio_codec": media.audio_codec,
    })
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(value.to_string())
}

/// `POST /api/v1/files` `{"location": "...", "file_uuid": "<optional hex32>"}` → 201 with the
/// record. A uuid already registered is replaced (its detections too, as `framecast import`
/// without `--detections` does): give its detections again with `PUT .../detections`.
#[handler]
pub async fn import_file(
    req: &Request,
    body: Body,
    state: Data<&Arc<AppState>>,
) -> Result<Response, ApiError> {
    require_write(req)?;
    let settings = &state.import;
    let bytes = read_body(req, body, IMPORT_BODY_BYTES, settings.body_stall).await?;
    let request: ImportRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_parameter(format!(
            "the body must be JSON {{\"location\": \"...\", \"file_uuid\": \"<optional 32 hex \
             digits>\"}}: {}",
            crate::client_text::quote(&e.to_string())
        ))
    })?;
    let uuid = match request.file_uuid.as_deref() {
        Some(text) => text.parse::<FileUuid>().map_err(ApiError::BadParameter)?,
        None => FileUuid::new_random(),
    };
    let given =
        Location::parse(&request.location).map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    let location = storage::allowed(&given, &settings.media_roots, &settings.media_url_prefixes)
        .map_err(|e| ApiError::bad_parameter(e.to_string()))?;
    let planner = &state.planner;
    let record = import::read_record(&planner.storage, &location, uuid)
        .await
        .map_err(|e| import_error(uuid, e))?;
    planner
        .catalog
        .put_file(&record, Box::new(std::iter::empty()))
        .await?;
    tracing::info!(%uuid, frames = record.frame_count(), "imported over HTTP");
    Ok(json(StatusCode::CREATED, record_json(&record)))
}

fn import_error(uuid: FileUuid, e: ImportError) -> ApiError {
    match e {
        ImportError::Storage(e) => ApiError::storage(uuid, e),
        ImportError::Probe { source, .. } => ApiError::bad_parameter(format!(
            "the location cannot be imported: {}",
            crate::client_text::quote(&source.to_string())
        )),
        ImportError::Read { .. } => {
            ApiError::bad_parameter("the location cannot be read".to_owned())
        }
        ImportError::Detections(e) => ApiError::bad_parameter(e.to_string()),
        ImportError::Catalog(e) => e.into(),
        ImportError::Task(e) => ApiError::internal(e),
    }
}

/// `PUT /api/v1/file/:file_uuid/detections`: a JSON array or JSON lines (the import format)
/// → 200 with the count; every row is checked before the old detections are replaced, in
/// one transaction.
#[handler]
pub async fn put_detections(
    req: &Request,
    body: Body,
    state: Data<&Arc<AppState>>,
) -> Result<Response, ApiError> {
    require_write(req)?;
    let uuid: FileUuid = req
        .raw_path_param("file_uuid")
        .unwrap_or_default()
        .parse()
        .map_err(ApiError::BadParameter)?;
    let catalog = &state.planner.catalog;
    let file = catalog
        .file(uuid)
        .await?
        .ok_or_else(|| ApiError::FileNotFound(uuid.to_string()))?;
    let settings = &state.import;
    let bytes = read_body(req, body, settings.max_upload_bytes, settings.body_stall).await?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(ApiError::bad_parameter("the body is not UTF-8"));
    }
    // Rows are checked as they are stored, in the catalog's transaction: a bad one anywhere
    // rolls everything back.
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rows: DetectionRows = {
        let counted = counted.clone();
        let rows = detections::rows(std::io::Cursor::new(bytes), Some(file.frame_count()));
        Box::new(rows.inspect(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }))
    };
    match catalog.replace_detections(uuid, rows).await {
        Ok(true) => {}
        // Deleted while the body was read.
        Ok(false) => return Err(ApiError::FileNotFound(uuid.to_string())),
        Err(CatalogError::Detections(e)) => return Err(ApiError::bad_parameter(e.to_string())),
        Err(e) => return Err(e.into()),
    }
    let detections = counted.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(%uuid, detections, "detections replaced over HTTP");
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "success": true,
            "uuid": uuid.to_string(),
            "detections": detections,
        }),
    ))
}

/// `DELETE /api/v1/file/:file_uuid` → 204; the media itself is not touched.
#[handler]
pub async fn delete_file(req: &Request, state: Data<&Arc<AppState>>) -> Result<Response, ApiError> {
    require_write(req)?;
    let uuid: FileUuid = req
        .raw_path_param("file_uuid")
        .unwrap_or_default()
        .parse()
        .map_err(ApiError::BadParameter)?;
    if !state.planner.catalog.delete_file(uuid).await? {
        return Err(ApiError::FileNotFound(uuid.to_string()));
    }
    tracing::info!(%uuid, "deleted over HTTP");
    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
}
