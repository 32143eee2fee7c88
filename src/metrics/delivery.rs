//! The series that say whether the cache is doing its job, beyond request counts: bytes served from the cache
//! against bytes passed on from upstream (the bandwidth the cache saves), the size of what is stored, how much
//! freshness is left when a hit is served, and which build each node runs.
//!
//! Each handle here is resolved once (no label lookup per request) and recorded by the data plane's hooks.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::MetricsError;

/// Object sizes a CDN stores: from a small API answer to the 16 MiB default `cache.max_object_size` and beyond.
pub const SIZE_BUCKETS: &[f64] = &[
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
];

/// Freshness left at a hit, in seconds: from "about to expire" to objects kept for a month.
pub const TTL_BUCKETS: &[f64] =
    &[1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 604_800.0, 2_592_000.0];

/// Where the bytes of a response body came from (the `source` label of `edgecache_served_bytes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The body was read from this node's cache (fresh, stale or revalidated hits).
    Cache,
    /// The body came from this request's own upstream fetch (misses, pass-through, a coalesced fetch's leader).
    Upstream,
    /// The body came from another request's upstream fetch (a waiter of a coalesced fetch): served without a
    /// fetch of its own.
    Coalesced,
    /// The node wrote the body itself (errors, throttling answers).
    Generated,
}

impl Source {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Upstream => "upstream",
            Source::Coalesced => "coalesced",
            Source::Generated => "generated",
        }
    }
}

/// Delivery series of one node.
pub struct Delivery {
    /// `edgecache_served_bytes_total{source="cache"}`
    served_cache: IntCounter,
    /// `edgecache_served_bytes_total{source="upstream"}`
    served_upstream: IntCounter,
    /// `edgecache_served_bytes_total{source="coalesced"}`
    served_coalesced: IntCounter,
    /// `edgecache_served_bytes_total{source="generated"}`
    served_generated: IntCounter,
    /// `edgecache_object_size_bytes`: body size of each object stored.
    pub object_size: Histogram,
    /// `edgecache_hit_ttl_seconds`: freshness left when a fresh hit is served.
    pub hit_ttl: Histogram,
    /// `edgecache_cache_capacity_bytes`: `cache.memory`, the most `edgecache_cache_bytes` may reach.
    pub cache_capacity: prometheus::IntGauge,
}

impl Delivery {
    /// Registers the delivery series, plus `edgecache_build_info{version}` (always 1) and
    /// `edgecache_start_time_seconds`.
    pub fn register(registry: &Registry) -> Result<Delivery, MetricsError> {
        let served = IntCounterVec::new(
            Opts::new(
                "edgecache_served_bytes_total",
                "Response body bytes sent to clients, by where they came from: cache, upstream, coalesced, generated.",
            ),
            &["source"],
        )?;
        registry.register(Box::new(served.clone()))?;
        let object_size = Histogram::with_opts(
            HistogramOpts::new("edgecache_object_size_bytes", "Body size of each object stored in the cache.")
                .buckets(SIZE_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(object_size.clone()))?;
        let hit_ttl = Histogram::with_opts(
            HistogramOpts::new("edgecache_hit_ttl_seconds", "Freshness left (seconds) when a fresh hit is served.")
                .buckets(TTL_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(hit_ttl.clone()))?;
        let info = IntGaugeVec::new(
            Opts::new("edgecache_build_info", "The edgecache version this node runs (always 1)."),
            &["version"],
        )?;
        registry.register(Box::new(info.clone()))?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let started = prometheus::Gauge::new(
            "edgecache_start_time_seconds",
            "When this node started, in seconds since the Unix epoch (restarts show as changes).",
        )?;
        registry.register(Box::new(started.clone()))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        started.set(now.as_secs_f64());
        let cache_capacity =
            prometheus::IntGauge::new("edgecache_cache_capacity_bytes", "The cache's size limit (cache.memory).")?;
        registry.register(Box::new(cache_capacity.clone()))?;
        Ok(Delivery {
            cache_capacity,
            served_cache: served.with_label_values(&[Source::Cache.as_str()]),
            served_upstream: served.with_label_values(&[Source::Upstream.as_str()]),
            served_coalesced: served.with_label_values(&[Source::Coalesced.as_str()]),
            served_generated: served.with_label_values(&[Source::Generated.as_str()]),
            object_size,
            hit_ttl,
        })
    }

    /// The counter of bytes served from `source`.
    pub fn served(&self, source: Source) -> &IntCounter {
        match source {
            Source::Cache => &self.served_cache,
            Source::Upstream => &self.served_upstream,
            Source::Coalesced => &self.served_coalesced,
            Source::Generated => &self.served_generated,
        }
    }

    /// Records the body size of an object just stored.
    pub fn stored(&self, body_len: usize) {
        self.object_size.observe(body_len as f64);
    }
}
