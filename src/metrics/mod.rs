//! The Prometheus registry of one node. Every series carries the `node` and `pop` labels; the names are the ones
//! fixed in the public interface. Parts record into the handles here; `/metrics` renders the text exposition.

pub mod delivery;
mod request_series;

pub use request_series::RequestSeries;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets for a CDN: sub-millisecond hits up to multi-second misses.
const LATENCY_BUCKETS: &[f64] =
    &[0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every series this node exports.
pub struct Metrics {
    registry: Registry,
    /// `edgecache_requests_total{cache_status, method, code}` and `edgecache_request_duration_seconds{cache_status}`
    pub requests: RequestSeries,
    /// `edgecache_upstream_requests_total{upstream, code}`
    pub upstream_requests: IntCounterVec,
    /// `edgecache_upstream_duration_seconds{upstream}`
    pub upstream_duration: HistogramVec,
    /// `edgecache_coalesced_requests_total`
    pub coalesced: IntCounter,
    /// `edgecache_cache_bytes`
    pub cache_bytes: IntGauge,
    /// `edgecache_cache_objects`
    pub cache_objects: IntGauge,
    /// `edgecache_cache_evictions_total{reason}`
    pub cache_evictions: IntCounterVec,
    /// `edgecache_open_connections{listener}`
    pub open_connections: prometheus::IntGaugeVec,
    /// `edgecache_tls_handshake_errors_total`
    pub tls_handshake_errors: IntCounter,
    /// `edgecache_throttled_requests_total{scope}`: client requests refused by a throttle (`client`: 429,
    /// `origin`: the origin budget, answered stale or 503).
    pub throttled: IntCounterVec,
    /// `edgecache_origin_queue_length`: requests waiting for the origin budget.
    pub origin_queue_length: IntGauge,
    /// `edgecache_origin_queue_wait_seconds`: time spent waiting for the origin budget, per origin request.
    pub origin_queue_wait: Histogram,
    /// `edgecache_origin_inflight`: origin requests open (until their body has streamed).
    pub origin_inflight: IntGauge,
    /// `edgecache_throttle_client_addresses`: client addresses with a token bucket (after the last sweep).
    pub throttle_client_addresses: IntGauge,
    /// `edgecache_peer_up{peer}`: 1 while a node of this pop or of the parent pop is up as this node sees it.
    pub peer_up: prometheus::IntGaugeVec,
    /// `edgecache_compressed_bytes_total{encoding, direction}`: bytes fed to an encoder (`in`) and produced by it
    /// (`out`).
    pub compressed_bytes: IntCounterVec,
    /// Bytes served by source, stored object sizes, freshness left at hits, build info.
    pub delivery: delivery::Delivery,
}

/// A registration failed: a programming error (duplicate or invalid series), reported at start.
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Registers every series with the constant labels `node` and `pop`.
    pub fn new(node: &str, pop: &str) -> Result<Metrics, MetricsError> {
        let labels = [("node".to_string(), node.to_string()), ("pop".to_string(), pop.to_string())].into();
        let registry = Registry::new_custom(None, Some(labels))?;
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, MetricsError> {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            let h = HistogramVec::new(opts, labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, MetricsError> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let requests = counter(
            "edgecache_requests_total",
            "Requests answered, by cache outcome, method and status code.",
            &["cache_status", "method", "code"],
        )?;
        let request_duration = histogram(
            "edgecache_request_duration_seconds",
            "Time from request head to response head, by cache outcome.",
            &["cache_status"],
        )?;
        let upstream_requests = counter(
            "edgecache_upstream_requests_total",
            "Requests sent upstream, by upstream kind and status code (0: no response).",
            &["upstream", "code"],
        )?;
        let upstream_duration = histogram(
            "edgecache_upstream_duration_seconds",
            "Time until the upstream's response head, by upstream kind.",
            &["upstream"],
        )?;
        let coalesced = IntCounter::new(
            "edgecache_coalesced_requests_total",
            "Requests answered from another request's upstream fetch.",
        )?;
        registry.register(Box::new(coalesced.clone()))?;
        let cache_bytes = gauge("edgecache_cache_bytes", "Bytes held by the cache (headers, bodies, overhead).")?;
        let cache_objects = gauge("edgecache_cache_objects", "Objects held by the cache.")?;
        let cache_evictions =
            counter("edgecache_cache_evictions_total", "Objects that left the cache, by reason.", &["reason"])?;
        let open_connections = prometheus::IntGaugeVec::new(
            Opts::new("edgecache_open_connections", "Client connections open, by listener kind."),
            &["listener"],
        )?;
        registry.register(Box::new(open_connections.clone()))?;
        let tls_handshake_errors =
            IntCounter::new("edgecache_tls_handshake_errors_total", "TLS handshakes that failed.")?;
        registry.register(Box::new(tls_handshake_errors.clone()))?;
        let throttled = counter(
            "edgecache_throttled_requests_total",
            "Client requests refused by a throttle: client (429) or origin (budget exhausted: stale or 503).",
            &["scope"],
        )?;
        let origin_queue_length = gauge("edgecache_origin_queue_length", "Requests waiting for the origin budget.")?;
        let origin_queue_wait = Histogram::with_opts(
            HistogramOpts::new(
                "edgecache_origin_queue_wait_seconds",
                "Time origin requests waited for the origin budget (refused ones included).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(origin_queue_wait.clone()))?;
        let origin_inflight =
            gauge("edgecache_origin_inflight", "Origin requests open, from the request until the body has streamed.")?;
        let throttle_client_addresses = gauge(
            "edgecache_throttle_client_addresses",
            "Client addresses holding a token bucket, as of the last sweep.",
        )?;
        let peer_up = prometheus::IntGaugeVec::new(
            Opts::new(
                "edgecache_peer_up",
                "1 while the node (of this pop or its parent pop) is up, as seen from here.",
            ),
            &["peer"],
        )?;
        registry.register(Box::new(peer_up.clone()))?;
        let compressed_bytes = counter(
            "edgecache_compressed_bytes_total",
            "Bytes fed to an encoder (direction=in) and produced by it (direction=out), by content coding.",
            &["encoding", "direction"],
        )?;
        let delivery = delivery::Delivery::register(&registry)?;
        // Known label values start at 0, so that dashboards and rules see the series before the first event.
        for scope in ["client", "origin"] {
            throttled.with_label_values(&[scope]);
        }
        for reason in ["size", "expired", "replaced", "explicit"] {
            cache_evictions.with_label_values(&[reason]);
        }
        Ok(Metrics {
            delivery,
            registry,
            peer_up,
            requests: RequestSeries::new(requests, request_duration),
            upstream_requests,
            upstream_duration,
            coalesced,
            cache_bytes,
            cache_objects,
            cache_evictions,
            open_connections,
            tls_handshake_errors,
            throttled,
            origin_queue_length,
            origin_queue_wait,
            origin_inflight,
            throttle_client_addresses,
            compressed_bytes,
        })
    }

    /// The registry, for parts that register series of their own (purge); they carry `node` and `pop` too.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for valid registered series; an error would leave the output empty.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "rendering metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
