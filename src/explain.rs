//! `framecast explain URL`: the gst-launch-1.0 command that writes to a file exactly what the
//! server sends for that request, planned as the server plans it.

use std::path::Path;

use crate::catalog::{CatalogError, FileUuid};
use crate::pipeline::{launch, stream, thumbnail, PipelineFiles};
use crate::request::{Job, PlanError, Planner, QueryParams, Route};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("not a request URL: {0}")]
    BadUrl(String),
    #[error(
        "{0}: explain covers /api/v1/file/UUID/ thumbnail, clip, video/bbox, \
         trace/ID/video and video with mode=debug or audio=off"
    )]
    UnknownRoute(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the original file is served as is: no pipeline to explain ({0})")]
    NoPipeline(String),
    #[error("no file with uuid {0} is registered")]
    UnknownFile(FileUuid),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl From<PlanError> for ExplainError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Catalog(e) => ExplainError::Catalog(e),
            e => ExplainError::BadRequest(e.to_string()),
        }
    }
}

/// The command for `url` (absolute, or a path with its query), writing to `output` or, by
/// default, to `frame.jpg`, `clip.ts` or `stream.ts`.
pub async fn launch_line(
    url: &str,
    planner: &Planner,
    pipelines: &PipelineFiles,
    catalog_path: &Path,
    output: Option<&str>,
) -> Result<String, ExplainError> {
    let uri: poem::http::Uri = url
        .parse()
        .map_err(|e| ExplainError::BadUrl(format!("{url}: {e}")))?;
    let (route, path) = Route::match_path(uri.path())
        .ok_or_else(|| ExplainError::UnknownRoute(uri.path().to_owned()))?;
    let query = QueryParams::parse(uri.query().unwrap_or(""));
    let uuid: FileUuid = path.file_uuid.parse().map_err(ExplainError::BadRequest)?;
    let file = planner
        .catalog
        .file(uuid)
        .await?
        .ok_or(ExplainError::UnknownFile(uuid))?;
    let (composition, default_output) = match planner.plan(route, &path, file, &query).await? {
        Job::Original(_) => return Err(ExplainError::NoPipeline(uri.path().to_owned())),
        Job::Thumbnail(job) => (thumbnail::composition(&job, pipelines), "frame.jpg"),
        Job::Stream(job) => (
            stream::composition(&job, pipelines, catalog_path),
            if route == Route::Clip {
                "clip.ts"
            } else {
                "stream.ts"
            },
        ),
    };
    Ok(launch::launch_line(
        &composition,
        output.unwrap_or(default_output),
    ))
}
