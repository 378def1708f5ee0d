//! The JSON API's parameters (`/api/v1/files`, a file's detections, traces and frame times):
//! pages and frame spans, each bounded, each refusal a 400 that says what is valid.

use super::query::QueryParams;
use super::PlanError;
use crate::catalog::{FileRecord, FileUuid};
use crate::client_text::quote;

/// Items per page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// The most items one page may hold.
pub const MAX_PAGE: u32 = 1000;
/// The most frames one `/detections` request may span.
pub const MAX_DETECTION_FRAMES: u32 = 1000;
/// The most frames one `/frames` request may span.
pub const MAX_FRAME_TIMES: u32 = 10_000;

/// A page: the items after `after` (the previous page's `next_after`), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub after: Option<T>,
    pub limit: u32,
}

fn limit(query: &QueryParams) -> Result<u32, PlanError> {
    Ok(query
        .integer(
            "limit",
            1..=MAX_PAGE.into(),
            &format!("a number of items from 1 to {MAX_PAGE} (default {DEFAULT_PAGE})"),
        )?
        .map_or(DEFAULT_PAGE, |n| n as u32))
}

/// `limit` and `after` (a file uuid) of `/api/v1/files`.
pub fn files_page(query: &QueryParams) -> Result<Page<FileUuid>, PlanError> {
    let after = query
        .text("after")
        .map(|given| {
            given.parse::<FileUuid>().map_err(|_| {
                PlanError::bad_parameter(format!(
                    "after={} is not valid: after must be the next_after of the previous page \
                     (a file uuid)",
                    quote(given)
                ))
            })
        })
        .transpose()?;
    Ok(Page {
        after,
        limit: limit(query)?,
    })
}

/// `limit` and `after` (a trace id) of a file's `/traces`.
pub fn traces_page(query: &QueryParams) -> Result<Page<i64>, PlanError> {
    Ok(Page {
        after: query.integer(
            "after",
            i64::MIN..=i64::MAX,
            "the next_after of the previous page (a trace id)",
        )?,
        limit: limit(query)?,
    })
}

/// `start_frame` (default 0) and `end_frame` (default: as far as `max` frames allow, within
/// the file), inclusive; at most `max` frames.
pub fn frame_span(
    query: &QueryParams,
    file: &FileRecord,
    max: u32,
) -> Result<(u32, u32), PlanError> {
    let Some(last_frame) = file.frame_count().checked_sub(1) else {
        return Err(PlanError::bad_parameter("the file has no frames"));
    };
    let last_frame = last_frame as u32;
    let rule = format!("a zero-based frame number from 0 to {last_frame} (the last frame)");
    let start = query
        .integer("start_frame", 0..=last_frame.into(), &rule)?
        .map_or(0, |n| n as u32);
    let end = query
        .integer("end_frame", 0..=last_frame.into(), &rule)?
        .map_or_else(
            || start.saturating_add(max - 1).min(last_frame),
            |n| n as u32,
        );
    if start > end {
        return Err(PlanError::bad_parameter(format!(
            "start_frame {start} is after end_frame {end}: the span runs from start_frame to \
             end_frame inclusive"
        )));
    }
    if end - start >= max {
        return Err(PlanError::bad_parameter(format!(
            "frames {start} to {end} are {} frames; ask for at most {max} at a time",
            end - start + 1
        )));
    }
    Ok((start, end))
}
