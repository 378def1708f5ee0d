//! Warm decoders: frame stepping at decoder speed.
//!
//! A thumbnail with the pool enabled runs as two pipelines: a decoder, `framesrc (start =
//! the frame's time, stop open) ! appsink (max-buffers=1)`, and an encoder built per request
//! from the decoded frame (`appsrc ! <the thumbnail composition after framesrc>`, see
//! [`super::thumbnail`]). After its frame the decoder is not stopped but parked here, paused
//! by the appsink's backpressure with the next frame or two decoded. A request for frame M
//! of the same file, with the decoder's next frame N ≤ M and M at most `max_step` frames on
//! or in the same GOP as N, takes it out of the pool (one request at a time), pulls and drops M − N frames and uses frame M: about a
//! frame's decoding time instead of a seek and a GOP's decoding.
//!
//! Bounds: at most `size` parked decoders (the oldest goes first), each freed after `idle`
//! without use (by [`DecoderPool::evict_idle`], which the server runs periodically), each
//! holding its decoder's memory estimate in the admission budget, which a request short of
//! memory takes back first ([`DecoderPool::evict_oldest`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{pull_sample, Composition, PipelineError, RunningPipeline, Stage};
use crate::admission::{Admission, MemoryCharge};
use crate::catalog::{FileRecord, FileUuid};
use crate::config::{positive_seconds, Config, ConfigError};
use crate::metrics::metrics;
use crate::storage::Location;

/// The pool's settings; `size` 0 disables it (one pipeline per thumbnail, as before).
#[derive(Debug, Clone, Copy)]
pub struct WarmSettings {
    pub size: usize,
    /// How many frames a parked decoder may skip to reach a request's frame.
    pub max_step: u32,
    /// A parked decoder unused for this long is freed.
    pub idle: Duration,
}

impl WarmSettings {
    /// The pool's settings from `warm_decoders` (default twice the cores),
    /// `warm_decoder_max_step` and `warm_decoder_idle_seconds`.
    pub fn from_config(config: &Config) -> Result<WarmSettings, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(WarmSettings {
            size: config.warm_decoders.unwrap_or(2 * cores),
            max_step: config.warm_decoder_max_step,
            idle: positive_seconds(
                "warm_decoder_idle_seconds",
                config.warm_decoder_idle_seconds,
            )?,
        })
    }
}

/// What a decoder decodes: the file as imported (a re-import or a changed file is another).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileKey {
    uuid: FileUuid,
    location: Location,
    size: u64,
    mtime_ns: i64,
}

impl FileKey {
    fn of(file: &FileRecord) -> FileKey {
        FileKey {
            uuid: file.uuid,
            location: file.location.clone(),
            size: file.size,
            mtime_ns: file.mtime_ns,
        }
    }
}

/// A decode pipeline positioned in a file.
pub struct Decoder {
    key: FileKey,
    /// The frame number the appsink gives next (as far as is known: checked on every pull).
    next: u32,
    appsink: gst_app::AppSink,
    bus: gst::Bus,
    running: RunningPipeline,
}

/// Why a decoder gave no usable frame.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("the decoder ended before frame {0}")]
    Ended(u32),
    #[error("the decoder produced frame {got:?} where frame {want} was expected")]
    WrongFrame { want: u32, got: Option<u32> },
}

impl Decoder {
    /// Starts decoding `file` (read from `source`, its path or URL) from `frame` on, with no
    /// stop.
    pub fn start(file: &FileRecord, source: &str, frame: u32) -> Result<Decoder, PipelineError> {
        let mut source = super::source::frame_range(file, source, frame, frame, false);
        // Open-ended: the decoder goes on to the following frames as they are pulled.
        for (name, value) in &mut source.props {
            if *name == "stop" {
                *value = super::Prop::U64(u64::MAX);
            }
        }
        let composition = Composition {
            stages: vec![Stage::Element(source)],
        };
        let (pipeline, appsink) = composition.build().map_err(PipelineError::Build)?;
        // One decoded frame waiting (and one more blocked in the appsink's render): the
        // decoder then waits for a pull instead of decoding the file to its end.
        appsink.set_max_buffers(1);
        appsink.set_drop(false);
        let (running, bus) = RunningPipeline::play(pipeline)?;
        Ok(Decoder {
            key: FileKey::of(file),
            next: frame,
            appsink,
            bus,
            running,
        })
    }

    /// Frame `want` (not before the decoder's position): pulls and drops the frames before
    /// it, checking each frame's number against the index, as the single pipeline does.
    pub fn frame(
        &mut self,
        file: &FileRecord,
        want: u32,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<gst::Sample, DecodeError> {
        loop {
            let sample = pull_sample(&self.appsink, &self.bus, deadline, timeout)?
                .ok_or(DecodeError::Ended(want))?;
            match super::thumbnail::frame_of(file, &sample) {
                Some(got) if got == want => {
                    self.next = want + 1;
                    return Ok(sample);
                }
                Some(got) if got < want => self.next = got + 1,
                got => return Err(DecodeError::WrongFrame { want, got }),
            }
        }
    }
}

/// The memory a parked decoder is charged: the decoder's frames as
/// [`super::thumbnail::memory_cost`] counts them (about 20 frames of the source's size),
/// plus the elements.
pub fn decoder_memory_cost(file: &FileRecord) -> u64 {
    let source = file.media.width as u64 * file.media.height as u64;
    20 * source * 3 / 2 + (4 << 20)
}

struct Parked {
    decoder: Decoder,
    since: Instant,
    _charge: MemoryCharge,
}

/// The parked decoders; see the module documentation.
pub struct DecoderPool {
    settings: WarmSettings,
    admission: Arc<Admission>,
    parked: Mutex<Vec<Parked>>,
}

impl DecoderPool {
    /// The pool, registered with `admission` to give its memory back under pressure.
    pub fn new(settings: WarmSettings, admission: Arc<Admission>) -> Arc<DecoderPool> {
        let pool = Arc::new(DecoderPool {
            settings,
            admission: admission.clone(),
            parked: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&pool);
        admission.set_reclaimer(Box::new(move || {
            weak.upgrade().is_some_and(|pool| pool.evict_oldest())
        }));
        pool
    }

    pub fn enabled(&self) -> bool {
        self.settings.size > 0
    }

    pub fn settings(&self) -> WarmSettings {
        self.settings
    }

    /// Takes out the parked decoder of `file` that reaches `frame` with the fewest frames
    /// to drop, if any: the caller has it alone until it gives it back with [`Self::put`].
    pub fn take(&self, file: &FileRecord, frame: u32) -> Option<Decoder> {
        let key = FileKey::of(file);
        let mut parked = self.parked.lock().unwrap();
        let best = parked
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let next = p.decoder.next;
                // Within the same GOP, stepping decodes no more than a seek would (which
                // decodes from the keyframe); past it, up to max_step frames.
                p.decoder.key == key
                    && next <= frame
                    && (frame - next <= self.settings.max_step
                        || file.media.frame_index.keyframe_at_or_before(frame) <= next)
            })
            .max_by_key(|(_, p)| p.decoder.next)
            .map(|(i, _)| i)?;
        let mut decoder = parked.swap_remove(best).decoder;
        metrics().warm_decoders.set(parked.len() as i64);
        drop(parked);
        decoder.running.unpark();
        Some(decoder)
    }

    /// Parks `decoder` for the next request, if the memory budget has room for it; the
    /// oldest parked decoder makes way when the pool is full.
    pub fn put(&self, file: &FileRecord, mut decoder: Decoder) {
        if !self.enabled() || decoder.appsink.is_eos() {
            return;
        }
        let Some(charge) = self.admission.try_reserve_memory(decoder_memory_cost(file)) else {
            return;
        };
        decoder.running.park();
        let evicted = {
            let mut parked = self.parked.lock().unwrap();
            let evicted = (parked.len() >= self.settings.size).then(|| oldest(&mut parked));
            parked.push(Parked {
                decoder,
                since: Instant::now(),
                _charge: charge,
            });
            metrics().warm_decoders.set(parked.len() as i64);
            evicted
        };
        // Stopped outside the lock: setting a pipeline to NULL joins its threads.
        drop(evicted);
    }

    /// Frees the decoders parked for longer than the idle timeout; returns how many.
    pub fn evict_idle(&self) -> usize {
        let idle = self.settings.idle;
        let evicted: Vec<Parked> = {
            let mut parked = self.parked.lock().unwrap();
            let (old, kept) = std::mem::take(&mut *parked)
                .into_iter()
                .partition(|p| p.since.elapsed() >= idle);
            *parked = kept;
            metrics().warm_decoders.set(parked.len() as i64);
            old
        };
        evicted.len()
    }

    /// Frees the longest-parked decoder; false when none is parked.
    pub fn evict_oldest(&self) -> bool {
        let evicted = {
            let mut parked = self.parked.lock().unwrap();
            if parked.is_empty() {
                return false;
            }
            let evicted = oldest(&mut parked);
            metrics().warm_decoders.set(parked.len() as i64);
            evicted
        };
        drop(evicted);
        true
    }

    /// Runs [`Self::evict_idle`] a few times per idle timeout, for as long as the pool
    /// exists: a client that leaves never leaves a decoder for much longer than that.
    pub async fn evict_idle_periodically(pool: std::sync::Weak<DecoderPool>) {
        let Some(period) = pool.upgrade().map(|p| {
            (p.settings.idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
        }) else {
            return;
        };
        loop {
            tokio::time::sleep(period).await;
            let Some(pool) = pool.upgrade() else { return };
            // Stopping pipelines blocks for a moment: not on the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || pool.evict_idle()).await;
        }
    }
}

fn oldest(parked: &mut Vec<Parked>) -> Parked {
    let i = parked
        .iter()
        .enumerate()
        .min_by_key(|(_, p)| p.since)
        .map(|(i, _)| i)
        .expect("not empty");
    parked.swap_remove(i)
}
