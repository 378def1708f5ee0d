//! What `GET /metrics` shows, in the Prometheus text format (prometheus-client encodes it).
//!
//! One process-wide set, like the live pipeline count: the counters are bumped from request
//! handlers, from the HTTP middleware and from the threads that pull pipeline output, and
//! threading a handle through all of those would buy nothing (there is one server per
//! process).

use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Which pool a pipeline belongs to (see [`crate::admission`]).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PipelineKind {
    /// Clips and (later) overlay streams: long, about a core each.
    Encoding,
    /// One frame as JPEG: short.
    Thumbnail,
}

impl PipelineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineKind::Encoding => "encoding",
            PipelineKind::Thumbnail => "thumbnail",
        }
    }
}

impl std::fmt::Display for PipelineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Label values in lower case, as Prometheus conventions have them (the derive would
/// write the variant's name as it is).
macro_rules! lower_case_label_value {
    ($type:ty) => {
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                use std::fmt::Write;
                encoder.write_str(&format!("{self:?}").to_lowercase())
            }
        }
    };
}
lower_case_label_value!(PipelineKind);
lower_case_label_value!(PipelineFailure);
lower_case_label_value!(CacheOutcome);
lower_case_label_value!(ReloadOutcome);

/// Why the connection layer ([`crate::conn`]) closed a connection itself.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ConnectionClose {
    /// A request head not complete within `header_read_timeout_seconds`.
    HeaderTimeout,
    /// No request for `idle_timeout_seconds`.
    IdleTimeout,
    /// Closed, while waiting for a request, to make room at `max_connections`.
    Evicted,
    /// Closed at shutdown, or cut at the end of the grace period.
    Shutdown,
}

impl EncodeLabelValue for ConnectionClose {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(match self {
            ConnectionClose::HeaderTimeout => "header_timeout",
            ConnectionClose::IdleTimeout => "idle_timeout",
            ConnectionClose::Evicted => "evicted",
            ConnectionClose::Shutdown => "shutdown",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: ConnectionClose,
}

/// The `method` label: the standard methods by name, anything else as `other`, so that
/// made-up methods cannot add series (each would cost memory for good).
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: PipelineKind,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/api/v1/file/:file_uuid/clip`), never the raw path: uuids
    /// would make one series per file.
    pub route: String,
    /// From [`method_label`]: a closed set.
    pub method: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// Why a pipeline's work was lost.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PipelineFailure {
    /// Failed before any output (error response).
    Start,
    /// Failed after output began (body cut).
    Midway,
    /// A thumbnail over its timeout, or a clip with no first output in time.
    Timeout,
    /// A stream without progress for `stall_timeout_seconds`.
    Stall,
    /// Ran to its end without the output asked for: a thumbnail with no image, or not the
    /// frame the index names.
    Output,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: PipelineKind,
    pub failure: PipelineFailure,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub outcome: CacheOutcome,
}

/// How a reload (SIGHUP) ended: applied, or refused with the old keys and files kept.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied,
    Refused,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: ReloadOutcome,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub response_body_bytes: Family<RouteLabels, Counter>,
    pub active_pipelines: Family<KindLabels, Gauge>,
    pub live_gstreamer_pipelines: Gauge,
    pub pipelines_started: Counter,
    pub pipeline_failures: Family<FailureLabels, Counter>,
    pub admission_rejections: Family<KindLabels, Counter>,
    pub pipeline_memory_reserved_bytes: Gauge,
    pub thumbnail_cache: Family<CacheLabels, Counter>,
    pub warm_decoders: Gauge,
    pub warm_decoder_lookups: Family<CacheLabels, Counter>,
    pub open_connections: Gauge,
    pub connections_refused: Counter,
    pub connections_closed: Family<CloseLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s: cached thumbnails take about a millisecond, clip starts seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("framecast");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response headers (streamed bodies continue after), by route",
            request_seconds.clone(),
        );
        let response_body_bytes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_response_body_bytes",
            "Response body bytes handed to the connection, by route",
            response_body_bytes.clone(),
        );
        let active_pipelines = Family::<KindLabels, Gauge>::default();
        registry.register(
            "active_pipelines",
            "Pipelines admitted and running now, by pool",
            active_pipelines.clone(),
        );
        let live_gstreamer_pipelines = Gauge::default();
        registry.register(
            "live_gstreamer_pipelines",
            "GStreamer pipelines built and not yet set back to NULL (as /health reports)",
            live_gstreamer_pipelines.clone(),
        );
        let pipelines_started = Counter::default();
        registry.register(
            "pipelines_started",
            "GStreamer pipelines started (a HEAD or a cached thumbnail starts none)",
            pipelines_started.clone(),
        );
        let pipeline_failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "pipeline_failures",
            "Pipelines that failed, timed out or stalled, by pool and how",
            pipeline_failures.clone(),
        );
        let pipeline_memory_reserved_bytes = Gauge::default();
        registry.register(
            "pipeline_memory_reserved_bytes",
            "Estimated memory of the running pipelines, charged against pipeline_memory_bytes",
            pipeline_memory_reserved_bytes.clone(),
        );
        let admission_rejections = Family::<KindLabels, Counter>::default();
        registry.register(
            "admission_rejections",
            "Requests refused with 503 because their pipeline pool stayed full",
            admission_rejections.clone(),
        );
        let thumbnail_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "thumbnail_cache_lookups",
            "Thumbnail cache lookups, by outcome (hit or miss)",
            thumbnail_cache.clone(),
        );
        let warm_decoders = Gauge::default();
        registry.register(
            "warm_decoders",
            "Thumbnail decoders kept positioned in the pool, idle, now",
            warm_decoders.clone(),
        );
        let warm_decoder_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "warm_decoder_lookups",
            "Thumbnails that continued a pooled decoder (hit) or started one (miss)",
            warm_decoder_lookups.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "HTTP connections open now",
            open_connections.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections refused with 503 at max_connections (none was waiting to be closed)",
            connections_refused.clone(),
        );
        let connections_closed = Family::<CloseLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the server closed itself, by reason (timeouts, eviction, shutdown)",
            connections_closed.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        // Both series from the start, at 0: an alert on increase() misses the first
        // refusal of a series that appears with the value 1.
        for outcome in [ReloadOutcome::Applied, ReloadOutcome::Refused] {
            let _ = reloads.get_or_create(&ReloadLabels { outcome });
        }
        registry.register(
            "reloads",
            "Reloads of keys and pipeline files (SIGHUP), by outcome (applied or refused)",
            reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            response_body_bytes,
            active_pipelines,
            live_gstreamer_pipelines,
            pipelines_started,
            pipeline_failures,
            admission_rejections,
            pipeline_memory_reserved_bytes,
            thumbnail_cache,
            warm_decoders,
            warm_decoder_lookups,
            open_connections,
            connections_refused,
            connections_closed,
            reloads,
        }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    pub fn pipeline_failed(&self, kind: PipelineKind, failure: PipelineFailure) {
        self.pipeline_failures
            .get_or_create(&FailureLabels { kind, failure })
            .inc();
    }

    pub fn warm_decoder_lookup(&self, outcome: CacheOutcome) {
        self.warm_decoder_lookups
            .get_or_create(&CacheLabels { outcome })
            .inc();
    }

    pub fn thumbnail_cache_lookup(&self, outcome: CacheOutcome) {
        self.thumbnail_cache
            .get_or_create(&CacheLabels { outcome })
            .inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
