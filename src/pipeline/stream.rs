//! Running a [`Composition`] as an HTTP body: the appsink's output leaves as soon as the
//! pipeline produces it, never held whole in memory.
//!
//! ```text
//! pipeline ─► appsink (max 8 buffers, blocks) ─► puller thread ─► bounded channel (8 chunks)
//!          ─► PipelineStream (owns the pipeline) ─► poem Body ─► client
//! ```
//!
//! - Backpressure: a slow client fills the channel, the puller blocks, the appsink fills
//!   and blocks the pipeline's streaming threads; memory per stream stays bounded.
//! - Disconnect: hyper drops the body, dropping the [`PipelineStream`], which sets the
//!   pipeline to NULL (on a thread of its own: it joins the streaming threads); the puller
//!   sees the closed channel and ends.
//! - Failure midway: a bus ERROR becomes an `Err` item, so hyper ends the chunked body
//!   without its last chunk and the client sees the response is incomplete. So does an end
//!   with fewer frames than promised ([`Expected`]): a truncated file ends demuxers quietly.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gst::prelude::*;
use tokio::sync::mpsc;

use super::{first_error, Composition, PipelineError, RunningPipeline};

/// Samples the appsink holds before it blocks the pipeline.
const APPSINK_BUFFERS: u32 = 8;
/// Chunks between the puller and the HTTP connection.
const CHANNEL_CHUNKS: usize = 8;
/// The puller sends what is ready at once, merging queued samples up to this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// How often the puller looks at the bus and the channel while no sample comes.
const POLL: Duration = Duration::from_millis(20);

/// The response body: chunks as the pipeline makes them. Dropping it stops the pipeline.
pub struct PipelineStream {
    chunks: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    /// `Option` only so that `Drop` can move it to a thread.
    pipeline: Option<RunningPipeline>,
    abort_connection_on_error: bool,
}

impl futures_util::Stream for PipelineStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.chunks.poll_recv(cx));
        if let Some(Err(error)) = &item {
            if self.abort_connection_on_error {
                // poem 3.1 polls an HTTP/1 connection once more after its response body
                // failed, and hyper then writes the chunked body's last chunk as if it were
                // complete. Unwinding drops the connection instead, unterminated: poem's
                // connection task catches it (`resume_unwind` runs no panic hook, so nothing
                // is printed), and this stream's drop still stops the pipeline.
                std::panic::resume_unwind(Box::new(format!(
                    "closing the connection on a failed body: {error}"
                )));
            }
        }
        Poll::Ready(item)
    }
}

impl Drop for PipelineStream {
    fn drop(&mut self) {
        // Stop the puller first: it may be blocked sending to us.
        self.chunks.close();
        if let Some(pipeline) = self.pipeline.take() {
            // Setting NULL joins the streaming threads: not on the async runtime's thread.
            let spawned = std::thread::Builder::new()
                .name("pipeline-stop".into())
                .spawn(move || drop(pipeline));
            if let Err(e) = spawned {
                tracing::warn!("cannot spawn a thread to stop a pipeline ({e}); stopping inline");
            }
        }
    }
}

impl PipelineStream {
    /// The response body. `http1`: the response goes over HTTP/1, where only closing the
    /// connection tells the client that a chunked body is incomplete (HTTP/2 resets the
    /// stream on the `Err` itself).
    pub fn into_body(mut self, http1: bool) -> poem::Body {
        self.abort_connection_on_error = http1;
        poem::Body::from_bytes_stream(self)
    }
}

/// How many buffers a pad of a named element must pass before EOS for the output to be
/// complete, e.g. the source's `video` frames.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub element: &'static str,
    pub pad: &'static str,
    pub buffers: u64,
}

/// Counts the buffers through `expected`'s pad (once it exists).
fn count_buffers(pipeline: &gst::Pipeline, expected: &Expected) -> Result<Arc<AtomicU64>, String> {
    let element = pipeline
        .by_name(expected.element)
        .ok_or_else(|| format!("no element {} to count buffers on", expected.element))?;
    let count = Arc::new(AtomicU64::new(0));
    let probe = {
        let count = count.clone();
        move |pad: &gst::Pad| {
            let count = count.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                count.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
    };
    match element.static_pad(expected.pad) {
        Some(pad) => probe(&pad),
        None => {
            let name = expected.pad;
            element.connect_pad_added(move |_, pad| {
                if pad.name() == name {
                    probe(pad);
                }
            });
        }
    }
    Ok(count)
}

/// Starts `composition` and waits (up to `first_output_timeout`) for its first output, so
/// that a pipeline failing at the start is an error response rather than a cut body; then
/// streams the rest. `what` names the request in logs. Blocking: call from a blocking
/// thread.
pub fn start(
    composition: &Composition,
    first_output_timeout: Duration,
    what: String,
    expected: Option<Expected>,
) -> Result<PipelineStream, PipelineError> {
    let (pipeline, appsink) = composition.build().map_err(PipelineError::Build)?;
    let counted = expected
        .map(|expected| count_buffers(&pipeline, &expected).map(|count| (expected, count)))
        .transpose()
        .map_err(PipelineError::Build)?;
    appsink.set_max_buffers(APPSINK_BUFFERS);
    appsink.set_drop(false);
    appsink.set_property("buffer-list", true);
    let (running, bus) = RunningPipeline::play(pipeline)?;

    let deadline = Instant::now() + first_output_timeout;
    let first = loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(PipelineError::Timeout(first_output_timeout));
        }
        let wait = (deadline - now).min(POLL);
        match appsink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) {
            Some(sample) => break sample,
            None => {
                if let Some(error) = first_error(&bus) {
                    return Err(error);
                }
                if appsink.is_eos() {
                    return Err(PipelineError::Failed {
                        source_element: "pipeline".into(),
                        message: "ended without output".into(),
                        debug: None,
                    });
                }
            }
        }
    };

    let (sender, chunks) = mpsc::channel(CHANNEL_CHUNKS);
    std::thread::Builder::new()
        .name("pipeline-pull".into())
        .spawn(move || pull(appsink, bus, first, sender, what, counted))
        .map_err(|e| PipelineError::Build(format!("cannot start the puller thread: {e}")))?;
    Ok(PipelineStream {
        chunks,
        pipeline: Some(running),
        abort_connection_on_error: false,
    })
}

/// Moves the appsink's output into `sender` until EOS, an error, or the receiver is gone.
fn pull(
    appsink: gst_app::AppSink,
    bus: gst::Bus,
    first: gst::Sample,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    what: String,
    counted: Option<(Expected, Arc<AtomicU64>)>,
) {
    let mut chunk = BytesMut::with_capacity(CHUNK_BYTES);
    append(&mut chunk, &first);
    loop {
        // Whatever else is ready goes in the same chunk, up to its size.
        while chunk.len() < CHUNK_BYTES {
            match appsink.try_pull_sample(gst::ClockTime::ZERO) {
                Some(sample) => append(&mut chunk, &sample),
                None => break,
            }
        }
        if !chunk.is_empty() {
            let bytes = chunk.split().freeze();
            // Blocks while the client is slow: backpressure into the pipeline.
            if sender.blocking_send(Ok(bytes)).is_err() {
                tracing::debug!(%what, "client gone: stopping");
                return;
            }
        }
        if let Some(error) = first_error(&bus) {
            let detail = match &error {
                PipelineError::Failed { debug, .. } => debug.clone().unwrap_or_default(),
                _ => String::new(),
            };
            tracing::error!(%what, %error, %detail, "pipeline failed midway: ending the response incomplete");
            let _ = sender.blocking_send(Err(std::io::Error::other(error.to_string())));
            return;
        }
        if sender.is_closed() {
            tracing::debug!(%what, "client gone: stopping");
            return;
        }
        match appsink.try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64)) {
            Some(sample) => append(&mut chunk, &sample),
            None if appsink.is_eos() => {
                if let Some((expected, count)) = &counted {
                    let got = count.load(Ordering::Relaxed);
                    if got != expected.buffers {
                        let error = format!(
                            "{}.{} passed {got} buffers where {} were expected (a truncated or \
                             damaged file?)",
                            expected.element, expected.pad, expected.buffers
                        );
                        tracing::error!(%what, %error, "ending the response incomplete");
                        let _ = sender.blocking_send(Err(std::io::Error::other(error)));
                        return;
                    }
                }
                tracing::debug!(%what, "stream complete");
                return;
            }
            None => {}
        }
    }
}

fn append(chunk: &mut BytesMut, sample: &gst::Sample) {
    let mut copy = |buffer: &gst::BufferRef| {
        if let Ok(map) = buffer.map_readable() {
            chunk.extend_from_slice(map.as_slice());
        }
    };
    if let Some(list) = sample.buffer_list() {
        list.iter().for_each(&mut copy);
    } else if let Some(buffer) = sample.buffer() {
        copy(buffer);
    }
}
