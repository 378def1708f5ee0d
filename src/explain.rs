//! `framecast explain URL`: the gst-launch-1.0 command that writes to a file exactly what the
//! server sends for that request, planned as the server plans it.

use std::path::{Path, PathBuf};

use crate::catalog::Detection;
use crate::catalog::{CatalogError, FileUuid};
use crate::pipeline::overlay::{DetectionsFrom, Drawing};
use crate::pipeline::{launch, stream, thumbnail, PipelineFiles};
use crate::request::{Detections, Job, Overlay, PlanError, Planner, QueryParams, Route};

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
    #[error("cannot write the detections file {0}")]
    Write(String),
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
/// default, to `frame.jpg`, `clip.ts` or `stream.ts` (`.mp4` for format=mp4). A stream that draws detections reads
/// them from `<output>.detections.jsonl`, which this writes: the span's detections as the
/// catalog has them now.
pub async fn launch_line(
    url: &str,
    planner: &Planner,
    pipelines: &PipelineFiles,
    label_font: Option<&str>,
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
    let job = planner.plan(route, &path, file, &query).await?;
    let default_output = match (&job, route) {
        (Job::Thumbnail(_), _) => "frame.jpg".to_owned(),
        (Job::Stream(job), Route::Clip) => format!("clip.{}", job.container.extension()),
        (Job::Stream(job), _) => format!("stream.{}", job.container.extension()),
        (Job::Original(_), _) => String::new(),
    };
    let output = output.unwrap_or(&default_output);
    // Drawn detections come from a file the line names, written now from the catalog.
    let detections = PathBuf::from(format!("{output}.detections.jsonl"));
    let drawing = Drawing {
        detections: DetectionsFrom::File(detections.clone()),
        label_font: label_font.map(str::to_owned),
    };
    let composition = match job {
        Job::Original(_) => return Err(ExplainError::NoPipeline(uri.path().to_owned())),
        Job::Thumbnail(job) => {
            if job.overlay.is_some() {
                write_detections(
                    planner,
                    job.file.uuid,
                    (job.frame, job.frame),
                    None,
                    &detections,
                )
                .await?;
            }
            thumbnail::composition(&job, pipelines, &drawing)
        }
        Job::Stream(job) => {
            match &job.overlay {
                Some(Overlay {
                    detections: Detections::All,
                    ..
                }) => {
                    let span = (job.first, job.last);
                    write_detections(planner, job.file.uuid, span, None, &detections).await?
                }
                Some(Overlay {
                    detections: Detections::Trace(trace),
                    ..
                }) => {
                    let span = (job.first, job.last);
                    write_detections(planner, job.file.uuid, span, Some(*trace), &detections)
                        .await?
                }
                _ => {}
            }
            stream::composition(&job, pipelines, &drawing)
        }
    };
    Ok(launch::launch_line(&composition, output))
}

/// Writes what an overlay reads to `path`, as JSON lines: the detections of the
/// frames `first..=last` and, for a trace, all of the trace's (its boxes are interpolated
/// from detections outside the span).
async fn write_detections(
    planner: &Planner,
    uuid: FileUuid,
    (first, last): (u32, u32),
    trace: Option<i64>,
    path: &Path,
) -> Result<(), ExplainError> {
    let mut rows = planner.catalog.detections(uuid, first, last).await?;
    if let Some(trace_id) = trace {
        let outside = |d: &Detection| d.frame < first || d.frame > last;
        let trace = planner.catalog.trace_detections(uuid, trace_id).await?;
        rows.extend(trace.into_iter().filter(outside));
    }
    let mut text = String::new();
    for row in &rows {
        text.push_str(&serde_json::to_string(row).expect("a detection serializes"));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| ExplainError::Write(format!("{}: {e}", path.display())))
}
