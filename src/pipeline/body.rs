//! Running a [`Composition`] as an HTTP body: the appsink's output leaves as soon as the
//! pipeline produces it, never held whole in memory.
//!
//! ```text
//! pipeline ─► appsink (max 8 samples, blocks) ─► puller thread ─► bounded channel (8 chunks)
//!          ─► PipelineStream ─► poem Body ─► client
//! ```
//!
//! - Backpressure: a slow client fills the channel, the puller blocks, the appsink fills
//!   and blocks the pipeline's streaming threads. What a stream holds, however slow its
//!   client: 8 samples in the appsink, 8 chunks of at most 64 KiB plus one sample each in
//!   the channel, one chunk being filled, and hyper's and the kernel's socket buffers
//!   (a few hundred KiB); about 1-2 MB for a 720p clip, whose samples are one muxed
//!   frame each (tens of KiB).
//! - Disconnect: hyper drops the body, dropping the [`PipelineStream`], which sets the
//!   pipeline to NULL (on a thread of its own: it joins the streaming threads) and frees
//!   its admission slot; the puller sees the closed channel and ends.
//! - Stall: no output from the pipeline, or no room in the channel (the client reads
//!   nothing), for the stall timeout: the puller stops the pipeline and frees the slot at
//!   once, then the body ends abnormally after what was already queued.
//! - Failure midway: a bus ERROR ends the body with an `Err`, so hyper ends the chunked
//!   body without its last chunk and the client sees the response is incomplete. So does
//!   an end with fewer frames than promised ([`Expected`]): a truncated file ends demuxers
//!   quietly.
//!
//! The puller reports how the stream ended in a shared [`Ending`] rather than as an item
//! in the channel: a stalled client leaves no room in the channel for it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gst::prelude::*;
use tokio::sync::mpsc;

use super::{first_error, Composition, PipelineError, RunningPipeline};
use crate::admission::Permit;
use crate::metrics::{metrics, PipelineFailure};

/// Samples the appsink holds before it blocks the pipeline.
const APPSINK_BUFFERS: u32 = 8;
/// Chunks between the puller and the HTTP connection.
const CHANNEL_CHUNKS: usize = 8;
/// The puller sends what is ready at once, merging queued samples up to this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// How often the puller looks at the bus and the channel while no sample comes.
const POLL: Duration = Duration::from_millis(20);

/// How long a stream may wait for its pipeline and its client.
#[derive(Debug, Clone, Copy)]
pub struct StreamTimeouts {
    /// Until the first output: past it the request fails with an error response.
    pub first_output: Duration,
    /// Between two steps of progress once streaming: past it the body is cut.
    pub stall: Duration,
}

/// The pipeline and its admission slot, released together by dropping (fields drop in
/// order: the pipeline is stopped before its slot is offered to the next request).
struct Lease {
    _pipeline: RunningPipeline,
    _permit: Permit,
}

/// Taken (and so released) by whichever comes first: the puller at the end of the output,
/// or the body's drop when the client goes away.
type SharedLease = Arc<Mutex<Option<Lease>>>;

fn release(lease: &SharedLease) {
    let taken = lease.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(taken);
}

/// How the puller ended: `Ok` complete, `Err` why the body must end incomplete. Unset while
/// it runs.
type Ending = Arc<OnceLock<Result<(), String>>>;

/// The response body: chunks as the pipeline makes them. Dropping it stops the pipeline.
pub struct PipelineStream {
    chunks: mpsc::Receiver<Bytes>,
    ending: Ending,
    lease: SharedLease,
    abort_connection_on_error: bool,
}

impl futures_util::Stream for PipelineStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(chunk) = std::task::ready!(self.chunks.poll_recv(cx)) else {
            // The puller has finished (its sender is gone): how?
            let error = match self.ending.get() {
                Some(Ok(())) => return Poll::Ready(None),
                Some(Err(error)) => error.clone(),
                None => "the pipeline's output ended unexpectedly".to_owned(),
            };
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
            return Poll::Ready(Some(Err(std::io::Error::other(error))));
        };
        Poll::Ready(Some(Ok(chunk)))
    }
}

impl Drop for PipelineStream {
    fn drop(&mut self) {
        // Stop the puller first: it may be blocked sending to us.
        self.chunks.close();
        // Usually the puller has released the pipeline already (it ended); not when the
        // client left first.
        let Some(lease) = self.lease.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        // Setting NULL joins the streaming threads: not on the async runtime's thread.
        let lease = Arc::new(Mutex::new(Some(lease)));
        let stopping = lease.clone();
        let spawned = std::thread::Builder::new()
            .name("pipeline-stop".into())
            .spawn(move || release(&stopping));
        if let Err(e) = spawned {
            tracing::warn!("cannot spawn a thread to stop a pipeline ({e}); stopping inline");
            release(&lease);
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

/// Starts `composition` and waits (up to `timeouts.first_output`) for its first output, so
/// that a pipeline failing at the start is an error response rather than a cut body; then
/// streams the rest. `permit` is the pipeline's admission slot, held as long as the
/// pipeline. `what` names the request in logs. Blocking: call from the runtime's blocking
/// threads (`spawn_blocking`), inside the request's span.
pub fn start(
    composition: &Composition,
    timeouts: StreamTimeouts,
    what: String,
    expected: Option<Expected>,
    permit: Permit,
) -> Result<PipelineStream, PipelineError> {
    let kind = permit.kind();
    let failed = |failure, error: PipelineError| {
        metrics().pipeline_failed(kind, failure);
        error
    };
    let (pipeline, appsink) = composition
        .build()
        .map_err(|e| failed(PipelineFailure::Start, PipelineError::Build(e)))?;
    let counted = expected
        .map(|expected| count_buffers(&pipeline, &expected).map(|count| (expected, count)))
        .transpose()
        .map_err(|e| failed(PipelineFailure::Start, PipelineError::Build(e)))?;
    appsink.set_max_buffers(APPSINK_BUFFERS);
    appsink.set_drop(false);
    appsink.set_property("buffer-list", true);
    let (running, bus) =
        RunningPipeline::play(pipeline).map_err(|e| failed(PipelineFailure::Start, e))?;
    let lease = Lease {
        _pipeline: running,
        _permit: permit,
    };

    let deadline = Instant::now() + timeouts.first_output;
    let first = loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(failed(
                PipelineFailure::Timeout,
                PipelineError::Timeout(timeouts.first_output),
            ));
        }
        let wait = (deadline - now).min(POLL);
        match appsink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) {
            Some(sample) => break sample,
            None => {
                if let Some(error) = first_error(&bus) {
                    return Err(failed(PipelineFailure::Start, error));
                }
                if appsink.is_eos() {
                    return Err(failed(
                        PipelineFailure::Start,
                        PipelineError::Failed {
                            source_element: "pipeline".into(),
                            message: "ended without output".into(),
                            debug: None,
                        },
                    ));
                }
            }
        }
    };

    let (sender, chunks) = mpsc::channel(CHANNEL_CHUNKS);
    let lease: SharedLease = Arc::new(Mutex::new(Some(lease)));
    let ending = Ending::default();
    let puller = Puller {
        appsink,
        bus,
        sender,
        what,
        counted,
        stall_timeout: timeouts.stall,
        runtime: tokio::runtime::Handle::current(),
        lease: lease.clone(),
        ending: ending.clone(),
        kind,
    };
    // The puller's log lines belong to the request that started it.
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("pipeline-pull".into())
        .spawn(move || span.in_scope(|| puller.run(first)))
        .map_err(|e| PipelineError::Build(format!("cannot start the puller thread: {e}")))?;
    Ok(PipelineStream {
        chunks,
        ending,
        lease,
        abort_connection_on_error: false,
    })
}

/// Moves the appsink's output into the channel until EOS, an error, a stall, or the
/// receiver is gone.
struct Puller {
    appsink: gst_app::AppSink,
    bus: gst::Bus,
    sender: mpsc::Sender<Bytes>,
    what: String,
    counted: Option<(Expected, Arc<AtomicU64>)>,
    stall_timeout: Duration,
    /// To wait on the channel with a timeout from this plain thread.
    runtime: tokio::runtime::Handle,
    lease: SharedLease,
    ending: Ending,
    kind: crate::metrics::PipelineKind,
}

/// Why the puller stopped early.
enum Stop {
    ClientGone,
    Failed(PipelineFailure, String),
}

impl Puller {
    fn run(self, first: gst::Sample) {
        let outcome = self.pump(first);
        let what = &self.what;
        match &outcome {
            Ok(()) => tracing::debug!(%what, "stream complete"),
            Err(Stop::ClientGone) => tracing::debug!(%what, "client gone: stopping"),
            Err(Stop::Failed(failure, error)) => {
                metrics().pipeline_failed(self.kind, *failure);
                tracing::error!(%what, %error, "ending the response incomplete");
            }
        }
        // The pipeline is done with: free it and its slot now, not when the client has read
        // the last queued chunks (or, stalled, never).
        release(&self.lease);
        let ending = match outcome {
            Ok(()) => Ok(()),
            Err(Stop::ClientGone) => Err("client gone".to_owned()),
            Err(Stop::Failed(_, error)) => Err(error),
        };
        let _ = self.ending.set(ending);
        // Dropping `self.sender` (with `self`) now tells the body to look at `ending`.
    }

    fn pump(&self, first: gst::Sample) -> Result<(), Stop> {
        let mut chunk = BytesMut::with_capacity(CHUNK_BYTES);
        append(&mut chunk, &first);
        let mut last_output = Instant::now();
        loop {
            // Whatever else is ready goes in the same chunk, up to its size.
            while chunk.len() < CHUNK_BYTES {
                match self.appsink.try_pull_sample(gst::ClockTime::ZERO) {
                    Some(sample) => append(&mut chunk, &sample),
                    None => break,
                }
            }
            if !chunk.is_empty() {
                self.send(chunk.split().freeze())?;
                last_output = Instant::now();
            }
            // First: once the client has left, the body stops the pipeline, and what its
            // elements say while stopping (a demuxer's "internal data stream error") is no
            // failure.
            if self.sender.is_closed() {
                return Err(Stop::ClientGone);
            }
            if let Some(error) = first_error(&self.bus) {
                let detail = match &error {
                    PipelineError::Failed { debug, .. } => debug.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                tracing::error!(what = %self.what, %error, %detail, "pipeline failed midway");
                return Err(Stop::Failed(PipelineFailure::Midway, error.to_string()));
            }
            match self
                .appsink
                .try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64))
            {
                Some(sample) => append(&mut chunk, &sample),
                // A stopped appsink reports EOS too: the body stops the pipeline when its
                // client leaves, after closing the channel.
                None if self.appsink.is_eos() && self.sender.is_closed() => {
                    return Err(Stop::ClientGone)
                }
                None if self.appsink.is_eos() => return self.check_complete(),
                None if last_output.elapsed() >= self.stall_timeout => {
                    return Err(Stop::Failed(
                        PipelineFailure::Stall,
                        format!(
                            "the pipeline produced nothing for {:?} (stall timeout)",
                            self.stall_timeout
                        ),
                    ));
                }
                None => {}
            }
        }
    }

    /// Sends a chunk, waiting while the client is slow (backpressure into the pipeline),
    /// but not longer than the stall timeout.
    fn send(&self, bytes: Bytes) -> Result<(), Stop> {
        let sent = self.runtime.block_on(async {
            tokio::time::timeout(self.stall_timeout, self.sender.send(bytes)).await
        });
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::ClientGone),
            Err(_) => Err(Stop::Failed(
                PipelineFailure::Stall,
                format!(
                    "the client read nothing for {:?} (stall timeout)",
                    self.stall_timeout
                ),
            )),
        }
    }

    /// At EOS: did the output get every buffer it promised?
    fn check_complete(&self) -> Result<(), Stop> {
        if let Some((expected, count)) = &self.counted {
            let got = count.load(Ordering::Relaxed);
            if got != expected.buffers {
                return Err(Stop::Failed(
                    PipelineFailure::Midway,
                    format!(
                        "{}.{} passed {got} buffers where {} were expected (a truncated or \
                         damaged file?)",
                        expected.element, expected.pad, expected.buffers
                    ),
                ));
            }
        }
        Ok(())
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
