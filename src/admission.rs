//! Admission: how many pipelines may run at once, per pool.
//!
//! On 2 cores, a tenth concurrent clip makes all ten slow rather than one more finished; so
//! a request first takes a [`Permit`] from its pool, waiting at most the queue timeout, and
//! is refused (503 with Retry-After) when none frees up. Thumbnails have a pool of their
//! own so that a burst of long streams never starves them.
//!
//! Slots alone do not bound memory: a 4K stream holds ten times what a 720p one does. So a
//! request is also charged its pipeline's estimated memory against one budget shared by
//! both pools, and waits (within the same queue timeout) until it fits.
//!
//! A route that runs a pipeline does, before building it:
//!
//! ```ignore
//! let permit = state.admission.admit(PipelineKind::Encoding, memory_cost).await?;
//! ```
//!
//! and hands the permit to whatever owns the pipeline (`pipeline::stream::start` for a
//! streamed body, the blocking closure for a thumbnail), so that the slot is free exactly
//! when the pipeline is gone, whether it ended, failed, stalled or lost its client.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::metrics::PipelineKind;
use crate::metrics::{metrics, KindLabels};

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(
        "the server is busy: all {limit} {kind} pipelines are in use and none freed up within \
         {waited:?}; retry after {retry_after_seconds} s"
    )]
    Busy {
        kind: PipelineKind,
        limit: usize,
        waited: Duration,
        retry_after_seconds: u64,
    },
    #[error(
        "the server is busy: this request's pipeline needs about {needed_mib} MiB and the \
         {budget_mib} MiB that pipelines may hold together did not free up within {waited:?}; \
         retry after {retry_after_seconds} s"
    )]
    NoMemory {
        kind: PipelineKind,
        needed_mib: u32,
        budget_mib: u32,
        waited: Duration,
        retry_after_seconds: u64,
    },
}

impl AdmissionError {
    pub fn retry_after_seconds(&self) -> u64 {
        match self {
            AdmissionError::Busy {
                retry_after_seconds,
                ..
            }
            | AdmissionError::NoMemory {
                retry_after_seconds,
                ..
            } => *retry_after_seconds,
        }
    }
}

struct Pool {
    kind: PipelineKind,
    limit: usize,
    slots: Arc<Semaphore>,
    /// What a refused client is told to wait: about how long a slot stays taken.
    retry_after_seconds: u64,
}

/// The pipeline pools and the memory budget, shared by every request.
pub struct Admission {
    encoding: Pool,
    thumbnail: Pool,
    /// The budget in MiB, one semaphore permit each.
    memory: Arc<Semaphore>,
    memory_budget_mib: u32,
    queue_timeout: Duration,
    /// Frees memory held by idle warm decoders (see [`crate::pipeline::warm`]); returns
    /// whether it freed any. Requests come first: a request short of memory calls it
    /// before waiting.
    reclaimer: std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
}

const MIB: u64 = 1 << 20;

impl Admission {
    pub fn new(
        max_encoding: usize,
        max_thumbnail: usize,
        memory_budget_bytes: u64,
        queue_timeout: Duration,
    ) -> Admission {
        let memory_budget_mib = (memory_budget_bytes / MIB).clamp(1, u32::MAX as u64) as u32;
        let pool = |kind, limit, retry_after_seconds| Pool {
            kind,
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            retry_after_seconds,
        };
        Admission {
            // A clip lasts seconds; a thumbnail a fraction of one.
            encoding: pool(PipelineKind::Encoding, max_encoding, 5),
            thumbnail: pool(PipelineKind::Thumbnail, max_thumbnail, 1),
            memory: Arc::new(Semaphore::new(memory_budget_mib as usize)),
            memory_budget_mib,
            queue_timeout,
            reclaimer: std::sync::OnceLock::new(),
        }
    }

    /// Sets what frees idle memory under pressure (once; later calls are ignored).
    pub fn set_reclaimer(&self, reclaim: Box<dyn Fn() -> bool + Send + Sync>) {
        let _ = self.reclaimer.set(reclaim);
    }

    /// `bytes` of the memory budget now, without waiting and without a slot: what an idle
    /// warm decoder holds. `None` when the budget has no room (the decoder is not kept).
    pub fn try_reserve_memory(&self, bytes: u64) -> Option<MemoryCharge> {
        let mib = self.mib(bytes);
        let permit = self.memory.clone().try_acquire_many_owned(mib).ok()?;
        Some(MemoryCharge::new(permit))
    }

    fn mib(&self, bytes: u64) -> u32 {
        bytes.div_ceil(MIB).clamp(1, self.memory_budget_mib.into()) as u32
    }

    /// A slot in `kind`'s pool and `memory_cost` bytes of the memory budget, waiting for
    /// both at most the queue timeout. A cost above the whole budget is charged the whole
    /// budget: that pipeline runs alone rather than never.
    pub async fn admit(
        &self,
        kind: PipelineKind,
        memory_cost: u64,
    ) -> Result<Permit, AdmissionError> {
        let pool = match kind {
            PipelineKind::Encoding => &self.encoding,
            PipelineKind::Thumbnail => &self.thumbnail,
        };
        let deadline = Instant::now() + self.queue_timeout;
        let refused = |error| {
            metrics()
                .admission_rejections
                .get_or_create(&KindLabels { kind })
                .inc();
            error
        };
        // The semaphores are never closed: an error is treated like a timeout.
        let slot = match tokio::time::timeout_at(deadline, pool.slots.clone().acquire_owned()).await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) | Err(_) => {
                return Err(refused(AdmissionError::Busy {
                    kind,
                    limit: pool.limit,
                    waited: self.queue_timeout,
                    retry_after_seconds: pool.retry_after_seconds,
                }))
            }
        };
        let mib = self.mib(memory_cost);
        // Idle warm decoders give their memory up before a request waits for it.
        while self.memory.available_permits() < mib as usize {
            match self.reclaimer.get() {
                Some(reclaim) if reclaim() => {}
                _ => break,
            }
        }
        let memory = self.memory.clone().acquire_many_owned(mib);
        match tokio::time::timeout_at(deadline, memory).await {
            Ok(Ok(memory)) => Ok(Permit::new(pool.kind, slot, memory)),
            Ok(Err(_)) | Err(_) => Err(refused(AdmissionError::NoMemory {
                kind,
                needed_mib: mib,
                budget_mib: self.memory_budget_mib,
                waited: self.queue_timeout,
                retry_after_seconds: pool.retry_after_seconds,
            })),
        }
    }
}

/// A taken slot; dropping it frees the slot. Keep it alive exactly as long as the pipeline.
#[derive(Debug)]
pub struct Permit {
    kind: PipelineKind,
    _slot: OwnedSemaphorePermit,
    memory: OwnedSemaphorePermit,
}

impl Permit {
    fn new(kind: PipelineKind, slot: OwnedSemaphorePermit, memory: OwnedSemaphorePermit) -> Permit {
        metrics()
            .active_pipelines
            .get_or_create(&KindLabels { kind })
            .inc();
        metrics()
            .pipeline_memory_reserved_bytes
            .inc_by((memory.num_permits() as u64 * MIB) as i64);
        Permit {
            kind,
            _slot: slot,
            memory,
        }
    }

    pub fn kind(&self) -> PipelineKind {
        self.kind
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        metrics()
            .active_pipelines
            .get_or_create(&KindLabels { kind: self.kind })
            .dec();
        metrics()
            .pipeline_memory_reserved_bytes
            .dec_by((self.memory.num_permits() as u64 * MIB) as i64);
    }
}

/// Part of the memory budget held outside any slot (an idle warm decoder's); counted in
/// `pipeline_memory_reserved_bytes` like a permit's, freed on drop.
#[derive(Debug)]
pub struct MemoryCharge(OwnedSemaphorePermit);

impl MemoryCharge {
    fn new(permit: OwnedSemaphorePermit) -> MemoryCharge {
        metrics()
            .pipeline_memory_reserved_bytes
            .inc_by((permit.num_permits() as u64 * MIB) as i64);
        MemoryCharge(permit)
    }
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        metrics()
            .pipeline_memory_reserved_bytes
            .dec_by((self.0.num_permits() as u64 * MIB) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_refuses_after_the_queue_timeout_and_frees_on_drop() {
        let admission = Admission::new(1, 1, 1 << 30, Duration::from_millis(50));
        let clip = admission.admit(PipelineKind::Encoding, MIB).await.unwrap();
        let refused = admission
            .admit(PipelineKind::Encoding, MIB)
            .await
            .unwrap_err();
        assert_eq!(refused.retry_after_seconds(), 5);
        // The other pool is not affected.
        let thumbnail = admission.admit(PipelineKind::Thumbnail, MIB).await.unwrap();
        drop(clip);
        admission.admit(PipelineKind::Encoding, MIB).await.unwrap();
        drop(thumbnail);
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_and_a_large_pipeline_runs_alone() {
        let admission = Admission::new(4, 4, 100 * MIB, Duration::from_millis(50));
        let stream = admission
            .admit(PipelineKind::Encoding, 60 * MIB)
            .await
            .unwrap();
        // Slots are free, memory is not: refused, naming the memory.
        let refused = admission
            .admit(PipelineKind::Thumbnail, 50 * MIB)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, AdmissionError::NoMemory { needed_mib: 50, .. }),
            "{refused}"
        );
        let small = admission
            .admit(PipelineKind::Thumbnail, 40 * MIB)
            .await
            .unwrap();
        drop((stream, small));
        // More than the whole budget: admitted alone, charged the budget.
        let huge = admission
            .admit(PipelineKind::Encoding, 500 * MIB)
            .await
            .unwrap();
        assert!(admission.admit(PipelineKind::Thumbnail, MIB).await.is_err());
        drop(huge);
        admission.admit(PipelineKind::Thumbnail, MIB).await.unwrap();
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_slot_freed_within_the_queue_timeout() {
        let admission = Arc::new(Admission::new(1, 1, 1 << 30, Duration::from_secs(5)));
        let first = admission.admit(PipelineKind::Thumbnail, MIB).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(PipelineKind::Thumbnail, MIB).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }
}
