//! Per-request GStreamer pipelines: framecast's own source element, a chain from
//! pipelines/, an appsink.

pub mod body;
pub mod compose;
pub mod files;
pub mod launch;
pub mod overlay;
pub mod source;
pub mod storyboard;
pub mod stream;
pub mod thumbnail;
pub mod warm;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::metrics::metrics;

pub use compose::{
    Branch, ChainUse, Composition, ElementSpec, Muxing, Prop, SourceHandle, SourcePad, Stage,
};
pub use files::{Chain, PipelineFileError, PipelineFiles};

/// Initialises GStreamer and registers framecast's elements in this process, once; a
/// failure is returned to every caller (once_cell: std's OnceLock has no stable fallible
/// initialisation).
pub fn init() -> Result<(), gst::glib::Error> {
    static INIT: once_cell::sync::OnceCell<()> = once_cell::sync::OnceCell::new();
    INIT.get_or_try_init(|| {
        gst::init()?;
        gstframecast::plugin_register_static()
            .map_err(|e| gst::glib::Error::new(gst::CoreError::Failed, &e.to_string()))
    })
    .copied()
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot build the pipeline: {0}")]
    Build(String),
    #[error("{source_element}: {message}")]
    Failed {
        source_element: String,
        message: String,
        debug: Option<String>,
    },
    #[error("the pipeline did not finish within {0:?}")]
    Timeout(Duration),
}

impl PipelineError {
    /// Reading a remote file failed (souphttpsrc's error: the origin went away, refused, or
    /// stalled past the element's timeout), as opposed to the pipeline's own failure.
    pub fn is_remote_read(&self) -> bool {
        matches!(self, PipelineError::Failed { source_element, .. }
            if source_element.contains("GstSoupHTTPSrc") || source_element.starts_with("souphttpsrc"))
    }
}

/// Pipelines built and not yet set back to NULL, in this process.
static LIVE_PIPELINES: AtomicUsize = AtomicUsize::new(0);

/// How many pipelines are live now (`GET /health` shows it): each request's pipeline counts
/// from its start until it is set to NULL.
pub fn live_pipelines() -> usize {
    LIVE_PIPELINES.load(Ordering::SeqCst)
}

/// Sets the pipeline to NULL when dropped, whatever path the caller leaves by; counted in
/// [`live_pipelines`] meanwhile, except while parked (see [`RunningPipeline::park`]).
pub struct RunningPipeline(gst::Pipeline, bool);

impl RunningPipeline {
    /// Counts the pipeline as live and sets it PLAYING; a failure to start is reported with
    /// the element's own error when it posted one.
    pub fn play(pipeline: gst::Pipeline) -> Result<(Self, gst::Bus), PipelineError> {
        Self::start(pipeline, gst::State::Playing)
    }

    /// Counts the pipeline as live and sets it PAUSED, waiting for nothing (the caller
    /// waits for ASYNC_DONE on the bus).
    pub fn pause(pipeline: gst::Pipeline) -> Result<Self, PipelineError> {
        Self::start(pipeline, gst::State::Paused).map(|(running, _)| running)
    }

    fn start(
        pipeline: gst::Pipeline,
        state: gst::State,
    ) -> Result<(Self, gst::Bus), PipelineError> {
        LIVE_PIPELINES.fetch_add(1, Ordering::SeqCst);
        metrics().live_gstreamer_pipelines.inc();
        metrics().pipelines_started.inc();
        let running = RunningPipeline(pipeline, false);
        let bus = running.0.bus().expect("a pipeline has a bus");
        running
            .0
            .set_state(state)
            .map_err(|_| first_error(&bus).unwrap_or_else(state_change_failed))?;
        Ok((running, bus))
    }

    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.0
    }

    /// Stops counting the pipeline as live: a warm decoder waiting in its pool (counted in
    /// its own gauge) serves no request, and `/health`, shutdown and the idle memory trim
    /// wait for pipelines that do.
    pub fn park(&mut self) {
        if !self.1 {
            self.1 = true;
            metrics().live_gstreamer_pipelines.dec();
            LIVE_PIPELINES.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Counts a parked pipeline as live again, as it serves a request.
    pub fn unpark(&mut self) {
        if self.1 {
            self.1 = false;
            metrics().live_gstreamer_pipelines.inc();
            LIVE_PIPELINES.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
        if self.1 {
            return; // Not counted as live.
        }
        metrics().live_gstreamer_pipelines.dec();
        if LIVE_PIPELINES.fetch_sub(1, Ordering::SeqCst) == 1 {
            give_free_memory_back();
        }
    }
}

/// Returns the allocator's free pages to the system. glibc keeps what pipelines free (their
/// frames, about 55 MB per 720p stream) in per-thread heaps, so without this an idle server
/// stayed at its busiest size: 185 MB instead of 109 MB after four 720p streams. Called
/// when the last live pipeline stops, as under load the memory is soon reused anyway; what
/// is freed after that (responses, connections) is returned by
/// [`crate::memory::trim_when_idle`]. (Mapping frames alone instead, with a lower mmap
/// threshold, made thumbnails 25% slower.)
fn give_free_memory_back() {
    crate::memory::give_free_memory_back();
}

/// Runs a short pipeline to its end and returns every sample the appsink received.
/// Blocking: call from a blocking thread.
pub fn collect_samples(
    composition: &Composition,
    timeout: Duration,
) -> Result<Vec<gst::Sample>, PipelineError> {
    let (pipeline, appsink) = composition.build().map_err(PipelineError::Build)?;
    collect_built(pipeline, &appsink, timeout, || Ok(()))
}

/// [`collect_samples`] for a pipeline already built; `feed` runs once it plays (an appsrc
/// takes buffers only once started).
pub fn collect_built(
    pipeline: gst::Pipeline,
    appsink: &gst_app::AppSink,
    timeout: Duration,
    feed: impl FnOnce() -> Result<(), PipelineError>,
) -> Result<Vec<gst::Sample>, PipelineError> {
    let (_running, bus) = RunningPipeline::play(pipeline)?;
    feed()?;
    let deadline = Instant::now() + timeout;
    let mut samples = Vec::new();
    loop {
        match pull_sample(appsink, &bus, deadline, timeout)? {
            Some(sample) => samples.push(sample),
            None => return Ok(samples),
        }
    }
}

/// The appsink's next sample, `None` at EOS, or the pipeline's error; waits until
/// `deadline` at most (`timeout` is what the error reports).
pub fn pull_sample(
    appsink: &gst_app::AppSink,
    bus: &gst::Bus,
    deadline: Instant,
    timeout: Duration,
) -> Result<Option<gst::Sample>, PipelineError> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(PipelineError::Timeout(timeout));
        }
        // Short waits so a bus error is noticed promptly even while no sample comes.
        let wait = (deadline - now).min(Duration::from_millis(50));
        match appsink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) {
            Some(sample) => return Ok(Some(sample)),
            None if appsink.is_eos() => return Ok(None),
            None => {
                if let Some(error) = first_error(bus) {
                    return Err(error);
                }
            }
        }
    }
}

fn state_change_failed() -> PipelineError {
    PipelineError::Failed {
        source_element: "pipeline".into(),
        message: "could not start".into(),
        debug: None,
    }
}

fn first_error(bus: &gst::Bus) -> Option<PipelineError> {
    let message = bus.pop_filtered(&[gst::MessageType::Error])?;
    let gst::MessageView::Error(error) = message.view() else {
        return None;
    };
    Some(PipelineError::Failed {
        source_element: error
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_default(),
        message: error.error().to_string(),
        debug: error.debug().map(|d| d.to_string()),
    })
}
