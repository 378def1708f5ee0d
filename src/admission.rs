//! Admission: how many pipelines may run at once, per pool.
//!
//! On 2 cores, a tenth concurrent clip makes all ten slow rather than one more finished; so
//! a request first takes a [`Permit`] from its pool, waiting at most the queue timeout, and
//! is refused (503 with Retry-After) when none frees up. Thumbnails have a pool of their
//! own so that a burst of long streams never starves them.
//!
//! A route that runs a pipeline does, before building it:
//!
//! ```ignore
//! let permit = state.admission.admit(PipelineKind::Encoding).await?;
//! ```
//!
//! and hands the permit to whatever owns the pipeline (`pipeline::stream::start` for a
//! streamed body, the blocking closure for a thumbnail), so that the slot is free exactly
//! when the pipeline is gone, whether it ended, failed, stalled or lost its client.

use std::sync::Arc;
use std::time::Duration;

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
}

impl AdmissionError {
    pub fn retry_after_seconds(&self) -> u64 {
        match self {
            AdmissionError::Busy {
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

/// The pipeline pools, shared by every request.
pub struct Admission {
    encoding: Pool,
    thumbnail: Pool,
    queue_timeout: Duration,
}

impl Admission {
    pub fn new(max_encoding: usize, max_thumbnail: usize, queue_timeout: Duration) -> Admission {
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
            queue_timeout,
        }
    }

    /// A slot in `kind`'s pool, waiting for one at most the queue timeout.
    pub async fn admit(&self, kind: PipelineKind) -> Result<Permit, AdmissionError> {
        let pool = match kind {
            PipelineKind::Encoding => &self.encoding,
            PipelineKind::Thumbnail => &self.thumbnail,
        };
        let acquired =
            tokio::time::timeout(self.queue_timeout, pool.slots.clone().acquire_owned()).await;
        match acquired {
            Ok(Ok(slot)) => Ok(Permit::new(pool.kind, slot)),
            // The semaphore is never closed; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => {
                metrics()
                    .admission_rejections
                    .get_or_create(&KindLabels { kind })
                    .inc();
                Err(AdmissionError::Busy {
                    kind,
                    limit: pool.limit,
                    waited: self.queue_timeout,
                    retry_after_seconds: pool.retry_after_seconds,
                })
            }
        }
    }
}

/// A taken slot; dropping it frees the slot. Keep it alive exactly as long as the pipeline.
#[derive(Debug)]
pub struct Permit {
    kind: PipelineKind,
    _slot: OwnedSemaphorePermit,
}

impl Permit {
    fn new(kind: PipelineKind, slot: OwnedSemaphorePermit) -> Permit {
        metrics()
            .active_pipelines
            .get_or_create(&KindLabels { kind })
            .inc();
        Permit { kind, _slot: slot }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_refuses_after_the_queue_timeout_and_frees_on_drop() {
        let admission = Admission::new(1, 1, Duration::from_millis(50));
        let clip = admission.admit(PipelineKind::Encoding).await.unwrap();
        let refused = admission.admit(PipelineKind::Encoding).await.unwrap_err();
        assert_eq!(refused.retry_after_seconds(), 5);
        // The other pool is not affected.
        let thumbnail = admission.admit(PipelineKind::Thumbnail).await.unwrap();
        drop(clip);
        admission.admit(PipelineKind::Encoding).await.unwrap();
        drop(thumbnail);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_slot_freed_within_the_queue_timeout() {
        let admission = Arc::new(Admission::new(1, 1, Duration::from_secs(5)));
        let first = admission.admit(PipelineKind::Thumbnail).await.unwrap();
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.admit(PipelineKind::Thumbnail).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }
}
