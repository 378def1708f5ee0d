//! `/trace/:trace_id/video`: a trace's span with `padding` seconds around it, the trace
//! highlighted.

use super::query::{Mode, QueryParams, StreamParams};
use super::stream::{self, Coding, Detections, Overlay, StreamJob, DETECTIONS_CACHE_CONTROL};
use super::PlanError;
use crate::catalog::{FileRecord, TraceSpan};
use crate::client_text::quote;

/// Seconds of video around a trace, by default.
const DEFAULT_TRACE_PADDING_SECONDS: f64 = 2.0;

/// The trace id in the path.
pub fn parse_id(given: &str) -> Result<i64, PlanError> {
    given.parse().map_err(|_| {
        PlanError::bad_parameter(format!(
            "trace id {} is not valid: it must be an integer",
            quote(given)
        ))
    })
}

/// The query, checked before the trace is looked up.
pub struct TraceQuery {
    params: StreamParams,
    padding_ns: u64,
}

impl TraceQuery {
    pub fn parse(query: &QueryParams) -> Result<Self, PlanError> {
        let padding = query
            .number(
                "padding",
                |v| v >= 0.0,
                "seconds of video before and after the trace, 0 or more (default 2.0)",
            )?
            .unwrap_or(DEFAULT_TRACE_PADDING_SECONDS);
        Ok(TraceQuery {
            params: StreamParams::parse(query)?,
            // Saturating: a huge padding is the whole file.
            padding_ns: (padding * 1e9) as u64,
        })
    }

    /// Frames from `padding` seconds before the trace's first detection to `padding`
    /// seconds after its last ends (clamped to the file), from `start` if given.
    pub fn plan(
        &self,
        file: FileRecord,
        query: &QueryParams,
        trace_id: i64,
        span: &TraceSpan,
    ) -> Result<StreamJob, PlanError> {
        let index = &file.media.frame_index;
        let last_frame = stream::last_frame(&file);
        let first_ts = index.timestamp(span.first).unwrap_or(0);
        let first = index
            .frame_at(first_ts.saturating_sub(self.padding_ns))
            .unwrap_or(0);
        // The last frame that starts within `padding` of the end of the trace's last.
        let end = index.timestamp(span.last + 1).unwrap_or(index.end_ns());
        let last = index
            .frame_at(end.saturating_add(self.padding_ns).saturating_sub(1))
            .unwrap_or(span.last)
            .max(span.last)
            .min(last_frame);
        let identity = span
            .identity
            .as_deref()
            .map(|identity| format!(" {identity}"))
            .unwrap_or_default();
        Ok(StreamJob {
            first: stream::start_frame(query, first, last)?,
            last,
            audio: stream::audio(&self.params, &file),
            overlay: Some(Overlay {
                detections: Detections::Trace(trace_id),
                debug: self.params.mode == Mode::Debug,
                title: Some(format!("TRACE {trace_id} start={}{identity}", span.first)),
            }),
            coding: Coding::Reencode,
            container: self.params.container,
            cache_control: DETECTIONS_CACHE_CONTROL,
            source: file.location.stored(),
            file,
        })
    }
}
