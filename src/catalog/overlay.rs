//! The catalog as `detectionoverlay`'s source of detections, in-process.

use std::sync::Arc;

use gstframecast::detections::{Detection, DetectionSource};

use super::{Catalog, FileUuid};

/// One file's detections from any [`Catalog`], for `DetectionOverlay::set_source`: the
/// element calls it from its streaming thread (a GStreamer thread, not a runtime one), in
/// windows of frames as the stream advances, and this runs each query on `runtime` and
/// waits for it.
///
/// ```ignore
/// let source = OverlaySource::new(state.catalog.clone(), Handle::current(), file.uuid);
/// overlay.downcast_ref::<gstframecast::DetectionOverlay>().unwrap().set_source(Arc::new(source));
/// ```
pub struct OverlaySource {
    catalog: Arc<dyn Catalog>,
    runtime: tokio::runtime::Handle,
    uuid: FileUuid,
}

impl OverlaySource {
    /// `runtime` must be a multi-threaded runtime's (the server's): its workers run the
    /// queries while the calling thread waits.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        runtime: tokio::runtime::Handle,
        uuid: FileUuid,
    ) -> OverlaySource {
        OverlaySource {
            catalog,
            runtime,
            uuid,
        }
    }

    /// Runs `query` on the runtime and waits for its answer. Spawned and waited for rather
    /// than `Handle::block_on`, which panics on a thread inside the runtime (the element
    /// reads a trace while starting, on whichever thread sets the pipeline's state).
    fn wait<T: Send + 'static>(
        &self,
        query: impl std::future::Future<Output = Result<T, super::CatalogError>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            // The receiver is gone only if the element gave up waiting: nothing to do.
            let _ = tx.send(query.await);
        });
        rx.recv()
            .map_err(|_| "the server is shutting down".to_owned())?
            .map_err(|e| e.to_string())
    }
}

impl DetectionSource for OverlaySource {
    fn frames(&self, first: u64, last: u64) -> Result<Vec<Detection>, String> {
        // Frame numbers are u32 in the catalog: a window starting past that is empty.
        let Ok(first) = u32::try_from(first) else {
            return Ok(Vec::new());
        };
        let last = u32::try_from(last).unwrap_or(u32::MAX);
        let (catalog, uuid) = (self.catalog.clone(), self.uuid);
        self.wait(async move { catalog.detections(uuid, first, last).await })
    }

    fn trace(&self, trace_id: i64) -> Result<Vec<Detection>, String> {
        let (catalog, uuid) = (self.catalog.clone(), self.uuid);
        self.wait(async move { catalog.trace_detections(uuid, trace_id).await })
    }
}
