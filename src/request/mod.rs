//! Planning: a request (route, file record, query) becomes a typed [`Job`] that carries
//! every decision: frames, crop, size, overlay, audio, copy or re-encode, limits, file name
//! and cache headers. The HTTP handlers and `framecast explain` both plan through
//! [`Planner::plan`], so what the server does and what explain prints cannot drift apart.
//!
//! Each route's parsing lives in its own file; nothing here knows HTTP or GStreamer.

mod clip;
pub mod listing;
mod query;
mod smart;
pub mod storyboard;
mod stream;
mod thumbnail;
mod trace;
mod video;

use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError, FileRecord, FileUuid, TraceSpan};
use crate::storage::{Storage, StorageError};

pub use query::{Audio, Container, Mode, QueryParams, StreamParams};
pub use stream::{Coding, Detections, Overlay, SmartCut, StreamJob};
pub use thumbnail::{Crop, ThumbnailJob};

/// Where the routes below live.
pub const API_PREFIX: &str = "/api/v1";

/// The routes that plan a job. Their templates serve both poem's router and
/// [`Route::match_path`] (explain's), so there is one list of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The original file, or it re-encoded (mode=debug, audio=off).
    Video,
    /// Every detection drawn.
    VideoBbox,
    /// One trace's span, the trace highlighted.
    TraceVideo,
    /// One frame as JPEG.
    Thumbnail,
    /// A span of frames as MPEG-TS.
    Clip,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::Video,
        Route::VideoBbox,
        Route::TraceVideo,
        Route::Thumbnail,
        Route::Clip,
    ];

    /// The path template under [`API_PREFIX`], in poem's syntax.
    pub fn template(self) -> &'static str {
        match self {
            Route::Video => "/file/:file_uuid/video",
            Route::VideoBbox => "/file/:file_uuid/video/bbox",
            Route::TraceVideo => "/file/:file_uuid/trace/:trace_id/video",
            Route::Thumbnail => "/file/:file_uuid/thumbnail",
            Route::Clip => "/file/:file_uuid/clip",
        }
    }

    /// The route a request path (with [`API_PREFIX`]) names, and its parameters.
    pub fn match_path(path: &str) -> Option<(Route, PathParams)> {
        let segments: Vec<&str> = path
            .trim_matches('/')
            .strip_prefix(API_PREFIX.trim_start_matches('/'))?
            .trim_start_matches('/')
            .split('/')
            .collect();
        Route::ALL.into_iter().find_map(|route| {
            let template: Vec<&str> = route
                .template()
                .trim_start_matches('/')
                .split('/')
                .collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut params = PathParams::default();
            for (part, given) in template.iter().zip(&segments) {
                match *part {
                    ":file_uuid" => params.file_uuid = (*given).to_owned(),
                    ":trace_id" => params.trace_id = Some((*given).to_owned()),
                    literal if literal == *given => {}
                    _ => return None,
                }
            }
            Some((route, params))
        })
    }
}

/// A route's path parameters, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams {
    pub file_uuid: String,
    pub trace_id: Option<String>,
}

/// What a request asks of the server.
#[derive(Debug)]
pub enum Job {
    /// The original file's bytes, served with ranges (`/video` with nothing to change).
    Original(FileRecord),
    Thumbnail(ThumbnailJob),
    Stream(StreamJob),
}

/// Server policy that planning applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest clip, in seconds of video.
    pub max_clip_seconds: u64,
    /// Largest thumbnail, in output pixels.
    pub max_thumbnail_pixels: u64,
}

impl Limits {
    /// The limits the settings give.
    pub fn from_config(config: &crate::config::Config) -> Limits {
        Limits {
            max_clip_seconds: config.max_clip_seconds,
            max_thumbnail_pixels: config.max_thumbnail_pixels,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A parameter is missing, malformed or out of range; the message says what is valid.
    #[error("{0}")]
    BadParameter(String),
    #[error("file {file} has no trace {trace_id}")]
    NoTrace { file: FileUuid, trace_id: i64 },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A remote file's origin failed, timed out, or has another object now.
    #[error("file {file}: {source}")]
    Storage {
        file: FileUuid,
        source: StorageError,
    },
}

impl PlanError {
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        PlanError::BadParameter(message.into())
    }
}

/// Plans jobs; what it needs besides the request: the catalog (for traces), the storage
/// (what a pipeline reads for a remote file) and the limits.
pub struct Planner {
    pub catalog: Arc<dyn Catalog>,
    pub storage: Arc<Storage>,
    pub limits: Limits,
}

impl Planner {
    /// The job for `route` on `file` (already authorized) with `query`.
    pub async fn plan(
        &self,
        route: Route,
        path: &PathParams,
        file: FileRecord,
        query: &QueryParams,
    ) -> Result<Job, PlanError> {
        let mut job = self.plan_query(route, path, file, query).await?;
        // A pipeline on a remote file: the object must still be the one imported (one HEAD
        // request), and an s3:// one is read through a URL signed for this request.
        let (file, source) = match &mut job {
            Job::Original(_) => return Ok(job),
            Job::Thumbnail(job) => (&job.file, &mut job.source),
            Job::Stream(job) => (&job.file, &mut job.source),
        };
        if file.location.is_remote() {
            let failed = |source| PlanError::Storage {
                file: file.uuid,
                source,
            };
            self.storage.check(&file.imported()).await.map_err(failed)?;
            *source = self.storage.source(&file.location).map_err(failed)?;
        }
        // After the check: the packets a smart cut is planned from are read from the source.
        if let (Route::Clip, Job::Stream(job)) = (route, &mut job) {
            smart::apply(job, query).await?;
        }
        Ok(job)
    }

    async fn plan_query(
        &self,
        route: Route,
        path: &PathParams,
        file: FileRecord,
        query: &QueryParams,
    ) -> Result<Job, PlanError> {
        match route {
            Route::Video => video::plan(file, query),
            Route::VideoBbox => video::plan_bbox(file, query, false).map(Job::Stream),
            Route::Thumbnail => {
                let mut job = thumbnail::plan(file, query, &self.limits)?;
                if job.overlay.is_some() {
                    let drawn = self
                        .catalog
                        .detections(job.file.uuid, job.frame, job.frame)
                        .await?;
                    job.detections_digest = Some(digest(&drawn));
                }
                Ok(Job::Thumbnail(job))
            }
            Route::Clip => clip::plan(file, query, &self.limits).map(Job::Stream),
            Route::TraceVideo => {
                let trace_id = trace::parse_id(path.trace_id.as_deref().unwrap_or_default())?;
                // Parameters first: a bad one is a 400 whether or not the trace exists.
                let trace_query = trace::TraceQuery::parse(query)?;
                let span = self.trace_span(file.uuid, trace_id).await?;
                trace_query
                    .plan(file, query, trace_id, &span)
                    .map(Job::Stream)
            }
        }
    }

    async fn trace_span(&self, file: FileUuid, trace_id: i64) -> Result<TraceSpan, PlanError> {
        self.catalog
            .trace_span(file, trace_id)
            .await?
            .ok_or(PlanError::NoTrace { file, trace_id })
    }
}

/// Names `detections` (SHA-256 of their JSON, in hex): equal digests, equal drawings.
fn digest(detections: &[crate::catalog::Detection]) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(detections).expect("detections serialize");
    hex::encode(Sha256::digest(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_route_templates() {
        let uuid = "0123456789abcdef0123456789abcdef";
        let params = |trace: Option<&str>| PathParams {
            file_uuid: uuid.into(),
            trace_id: trace.map(Into::into),
        };
        let cases = [
            ("video", Route::Video, None),
            ("video/bbox", Route::VideoBbox, None),
            ("trace/7/video", Route::TraceVideo, Some("7")),
            ("thumbnail", Route::Thumbnail, None),
            ("clip/", Route::Clip, None),
        ];
        for (tail, route, trace) in cases {
            let path = format!("/api/v1/file/{uuid}/{tail}");
            assert_eq!(
                Route::match_path(&path),
                Some((route, params(trace))),
                "{path}"
            );
        }
        for path in [
            "/api/v1/file/x/nothing",
            "/api/v2/file/x/clip",
            "/file/x/clip",
            "/api/v1/file/x/trace/1/2/video",
        ] {
            assert_eq!(Route::match_path(path), None, "{path}");
        }
    }
}
