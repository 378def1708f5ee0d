//! `framecast explain URL`: the gst-launch-1.0 command that writes to a file exactly what the
//! server sends for that request.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, FileRecord, FileUuid};
use crate::http as rest;
use crate::http::error::ApiError;
use crate::http::params::QueryParams;
use crate::pipeline::{Composition, PipelineFiles};
use crate::render::{Plan, Render};

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
    Catalog(#[from] crate::catalog::CatalogError),
}

/// The composition the server builds for `url` (absolute, or a path with its query). The
/// server's limit on clip length is policy, not pipeline: explain leaves it out.
pub async fn composition_for(
    url: &str,
    catalog: &dyn Catalog,
    catalog_path: &Path,
    pipelines: &PipelineFiles,
) -> Result<(Composition, &'static str), ExplainError> {
    let uri: poem::http::Uri = url
        .parse()
        .map_err(|e| ExplainError::BadUrl(format!("{url}: {e}")))?;
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let query = QueryParams::parse(uri.query().unwrap_or(""));
    let bad = |e: ApiError| ExplainError::BadRequest(e.to_string());
    // As the routes plan them: only /video may copy the video instead of re-encoding it.
    let stream = |file: &FileRecord, render: Render, remux: bool| {
        let plan = Plan::new(file, &render, pipelines, catalog_path, remux);
        Ok((plan.composition, "stream.ts"))
    };
    match segments.as_slice() {
        ["api", "v1", "file", uuid, "thumbnail"] => {
            let file = lookup(catalog, uuid).await?;
            let request = rest::thumbnail::parse(&query, &file).map_err(bad)?;
            Ok((
                crate::thumbnail::composition(&file, &request, pipelines),
                "frame.jpg",
            ))
        }
        ["api", "v1", "file", uuid, "clip"] => {
            let file = lookup(catalog, uuid).await?;
            let request = rest::clip::parse(&query, &file, u64::MAX).map_err(bad)?;
            let plan = Plan::new(&file, &request, pipelines, catalog_path, false);
            Ok((plan.composition, "clip.ts"))
        }
        ["api", "v1", "file", uuid, "video", "bbox"] => {
            let file = lookup(catalog, uuid).await?;
            let render = rest::rendered::parse_bbox(&query, &file, false).map_err(bad)?;
            stream(&file, render, false)
        }
        ["api", "v1", "file", uuid, "video"] => {
            let file = lookup(catalog, uuid).await?;
            match rest::rendered::parse_video(&query, &file).map_err(bad)? {
                Some(render) => stream(&file, render, true),
                None => Err(ExplainError::NoPipeline(uri.path().to_owned())),
            }
        }
        ["api", "v1", "file", uuid, "trace", trace_id, "video"] => {
            let file = lookup(catalog, uuid).await?;
            let trace_id = rest::rendered::parse_trace_id(trace_id).map_err(bad)?;
            let trace_query = rest::rendered::TraceQuery::parse(&query).map_err(bad)?;
            let span = catalog
                .trace_span(file.uuid, trace_id)
                .await?
                .ok_or_else(|| bad(ApiError::NotFound(format!("no trace {trace_id}"))))?;
            let render = trace_query
                .render(&query, &file, trace_id, &span)
                .map_err(bad)?;
            stream(&file, render, false)
        }
        _ => Err(ExplainError::UnknownRoute(uri.path().to_owned())),
    }
}

async fn lookup(catalog: &dyn Catalog, uuid: &str) -> Result<FileRecord, ExplainError> {
    let uuid: FileUuid = uuid.parse().map_err(ExplainError::BadRequest)?;
    catalog
        .file(uuid)
        .await?
        .ok_or(ExplainError::UnknownFile(uuid))
}

/// Where gst-launch-1.0 finds framecast's plugin: beside the running binary, where cargo
/// puts `libgstframecast.so` (`cargo build --workspace`). `cargo test` alone leaves the
/// plugin in `deps/` (and may leave an older copy beside the binary): the newer copy wins.
pub fn plugin_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let modified = |dir: &std::path::Path| {
        std::fs::metadata(dir.join("libgstframecast.so"))
            .and_then(|m| m.modified())
            .ok()
    };
    let deps = dir.join("deps");
    match (modified(&dir), modified(&deps)) {
        (None, Some(_)) => deps,
        (Some(beside), Some(built)) if built > beside => deps,
        _ => dir,
    }
}

/// A shell command line: `GST_PLUGIN_PATH=... gst-launch-1.0 -q <words>`, each word
/// quoted for the shell as needed.
pub fn launch_line(composition: &Composition, output: &str) -> String {
    let quote = |s: &str| {
        shlex::try_quote(s)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| s.to_owned())
    };
    let words: Vec<String> = composition
        .launch_words(output)
        .iter()
        .map(|w| quote(w))
        .collect();
    format!(
        "GST_PLUGIN_PATH={} gst-launch-1.0 -q {}",
        quote(&plugin_dir().to_string_lossy()),
        words.join(" ")
    )
}
