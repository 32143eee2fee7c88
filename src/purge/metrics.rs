//! The purge series, registered in the node's registry (so they carry `node` and `pop`):
//! `edgecache_purges_total{kind,soft}`, `edgecache_purge_duration_seconds`, `edgecache_purge_unconfirmed_total`,
//! `edgecache_purge_log_entries`, `edgecache_purge_tag_index_entries`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Purge latency buckets: a purge confirmed on loopback takes about a millisecond, across continents ~100 ms.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Handles on the purge series.
#[derive(Clone)]
pub struct PurgeMetrics {
    /// `edgecache_purges_total{kind,soft}`: purges applied by this node (its own and its peers'), once per kind a
    /// purge contains.
    pub purges: IntCounterVec,
    /// `edgecache_purge_duration_seconds`: from receiving `POST /purge` (or `PURGE`) to answering it, fan-out
    /// included.
    pub duration: Histogram,
    /// `edgecache_purge_unconfirmed_total`: purges answered 202 (some node did not confirm in time).
    pub unconfirmed: IntCounter,
    /// `edgecache_purge_log_entries`: purges held in this node's log.
    pub log_entries: IntGauge,
    /// `edgecache_purge_tag_index_entries`: (tag, object) pairs in the tag index.
    pub tag_index_entries: IntGauge,
}

impl PurgeMetrics {
    /// Registers the series in `registry`.
    pub fn register(registry: &Registry) -> Result<PurgeMetrics, prometheus::Error> {
        let purges = IntCounterVec::new(
            Opts::new("edgecache_purges_total", "Purges applied by this node, by kind and softness."),
            &["kind", "soft"],
        )?;
        registry.register(Box::new(purges.clone()))?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "edgecache_purge_duration_seconds",
                "Time from receiving a purge to answering it, confirmation by every node included.",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(duration.clone()))?;
        let unconfirmed = IntCounter::new(
            "edgecache_purge_unconfirmed_total",
            "Purges answered 202: some node did not confirm within purge.fanout_timeout.",
        )?;
        registry.register(Box::new(unconfirmed.clone()))?;
        let log_entries = IntGauge::new("edgecache_purge_log_entries", "Purges held in this node's purge log.")?;
        registry.register(Box::new(log_entries.clone()))?;
        let tag_index_entries =
            IntGauge::new("edgecache_purge_tag_index_entries", "(tag, object) pairs held in the tag index.")?;
        registry.register(Box::new(tag_index_entries.clone()))?;
        Ok(PurgeMetrics { purges, duration, unconfirmed, log_entries, tag_index_entries })
    }
}
