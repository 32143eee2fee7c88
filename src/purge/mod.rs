//! Purge and invalidation across every node of every tier.
//!
//! A purge (`POST /purge` on the admin listener, or `PURGE <url>` on the data plane) gets an id and a time at the
//! node that receives it. That node applies it and sends it to every other node of the topology at once
//! (`fanout`), then answers 200 when all confirmed or 202 naming those that did not. Applying means: record it in
//! the purge log (`log`, a grow-only set: applying twice is harmless) and in the purge clock (`matcher`), then free
//! what it selects (hard purges). From then on, every lookup screens the object it finds (the store's hooks,
//! [`Screen`]): an object whose content left the origin (received time minus its initial age, which `Age`
//! carries across tiers) before a purge that selects it is removed (hard) or served only after revalidation
//! (soft). A node that was paused or down pulls what it missed from its peers before it serves from its cache
//! again (`sync`).

pub mod endpoints;
pub mod fanout;
pub mod log;
pub mod matcher;
pub mod metrics;
pub mod request;
mod screen;
pub mod sync;
pub mod tags;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use http::Uri;

use crate::cache::{CachedObject, PrimaryKey, Store, VariantKey};
use crate::cluster::PeerAuth;
use crate::config::{Config, PurgeConfig};
use crate::metrics::Metrics;
use fanout::{NodeAnswer, Peer, PeerClient};
use log::{Purge, PurgeLog, now_ms};
use matcher::{Clock, KeyParts};
use metrics::PurgeMetrics;
use screen::ScreenOnly;
pub use screen::{Screen, origin_ms};
use sync::Liveness;
use tags::TagIndex;

/// A purge log entry is kept at least this long (objects may be refilled from a tier above for a while).
const MIN_RETENTION: Duration = Duration::from_secs(600);

/// Why the purge service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PurgeSetupError {
    #[error("purge metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("purge fan-out client: {0}")]
    Client(#[from] fanout::FanoutError),
}

/// The purge service of one node.
pub struct Purger {
    node_id: String,
    token: Option<String>,
    config: PurgeConfig,
    store: Arc<Store>,
    /// Other stores whose lookups are screened and whose objects purges free (the hot copies of a non-owner).
    also: RwLock<Vec<Arc<Store>>>,
    log: PurgeLog,
    screen: Arc<Screen>,
    peers: Vec<Peer>,
    client: PeerClient,
    metrics: PurgeMetrics,
    /// Per peer: the epoch and cursor of its log already pulled.
    cursors: Mutex<std::collections::HashMap<String, (u64, u64)>>,
    next_id: AtomicU64,
    /// When (Unix ms, this node's clock) the last purge was applied here.
    last_applied_ms: AtomicU64,
}

/// The answer to a purge: its id, and every node with whether it confirmed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PurgeAnswer {
    pub id: String,
    pub nodes: Vec<NodeAnswer>,
}

impl PurgeAnswer {
    /// Whether every node confirmed (200; else 202).
    pub fn confirmed(&self) -> bool {
        self.nodes.iter().all(|n| n.ok)
    }
}

impl Purger {
    /// Builds the service of a node and attaches its hooks to `store`.
    pub fn new(config: &Config, store: Arc<Store>, metrics: &Metrics) -> Result<Arc<Purger>, PurgeSetupError> {
        let peers: Vec<Peer> = config
            .pops
            .iter()
            .flat_map(|pop| pop.nodes.iter())
            .filter(|node| node.id != config.node.id)
            .map(|node| Peer { id: node.id.clone(), url: node.url.clone() })
            .collect();
        let auth = PeerAuth::new(config.cluster.secret.as_deref());
        let purge_metrics = PurgeMetrics::register(metrics.registry())?;
        let screen = Arc::new(Screen {
            clock: RwLock::new(Clock::default()),
            revalidate_before: AtomicU64::new(0),
            liveness: Liveness::new(!peers.is_empty()),
            tags: TagIndex::new(config.purge.tag_index_max),
            longest_lifetime_ms: AtomicU64::new(0),
            tag_gauge: purge_metrics.tag_index_entries.clone(),
        });
        store.set_hooks(screen.clone());
        Ok(Arc::new(Purger {
            node_id: config.node.id.clone(),
            token: config.admin.token.clone(),
            config: config.purge.clone(),
            store,
            also: RwLock::new(Vec::new()),
            log: PurgeLog::new(),
            screen,
            client: PeerClient::new(&config.node.id, auth.clone(), config.origin.ca_file.as_deref())?,
            peers,
            metrics: purge_metrics,
            cursors: Mutex::new(std::collections::HashMap::new()),
            next_id: AtomicU64::new(1),
            last_applied_ms: AtomicU64::new(0),
        }))
    }

    /// Screens the lookups of another store too, and frees its objects on hard purges (its tags are not indexed:
    /// its tagged objects are freed by a scan).
    pub fn also_screen(&self, store: Arc<Store>) {
        store.set_hooks(Arc::new(ScreenOnly(self.screen.clone())));
        if let Ok(mut also) = self.also.write() {
            also.push(store);
        }
    }

    fn stores(&self) -> Vec<Arc<Store>> {
        let mut stores = vec![self.store.clone()];
        stores.extend(self.also.read().map(|also| also.clone()).unwrap_or_default());
        stores
    }

    /// A new purge of `selection` received now, with the client's id or a new one.
    pub fn new_purge(&self, selection: request::Selection, id: Option<String>) -> Purge {
        let id = id.unwrap_or_else(|| {
            format!("{}-{:x}-{}", self.node_id, now_ms(), self.next_id.fetch_add(1, Ordering::Relaxed))
        });
        Purge { id, at: now_ms(), selection }
    }

    /// Applies a purge here and at every other node; answers once all confirmed or the deadline passed. A purge
    /// whose id is already known is not applied again (its first time is kept) but is still sent to every node.
    pub async fn purge_everywhere(&self, purge: Purge) -> PurgeAnswer {
        let started = Instant::now();
        let purge = match self.log.get(&purge.id) {
            Some(known) => Purge::clone(&known),
            None => {
                self.apply(purge.clone());
                purge
            }
        };
        let mut nodes = vec![NodeAnswer { id: self.node_id.clone(), ok: true, error: None }];
        nodes.extend(self.client.fan_out(&self.peers, &purge, self.config.fanout_timeout).await);
        let answer = PurgeAnswer { id: purge.id, nodes };
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        if !answer.confirmed() {
            self.metrics.unconfirmed.inc();
        }
        answer
    }

    /// Applies a purge on this node; `false` if it was applied before.
    pub fn apply(&self, purge: Purge) -> bool {
        if !self.log.insert(purge.clone()) {
            return false;
        }
        if let Ok(mut clock) = self.screen.clock.write() {
            clock.record(&purge);
        }
        self.last_applied_ms.fetch_max(now_ms(), Ordering::SeqCst);
        let soft = if purge.selection.soft { "true" } else { "false" };
        for kind in purge.selection.kinds() {
            self.metrics.purges.with_label_values(&[kind, soft]).inc();
        }
        tracing::info!(id = %purge.id, kinds = ?purge.selection.kinds().collect::<Vec<_>>(), soft, "purge applied");
        if !purge.selection.soft {
            self.free(&purge);
        }
        self.update_gauges();
        true
    }

    /// Frees the memory of what a hard purge selects. Lookups already refuse it (the clock has the purge), so the
    /// scans that cost more than a few lookups run on a blocking thread.
    fn free(&self, purge: &Purge) {
        let s = &purge.selection;
        let stores = self.stores();
        if s.everything {
            stores.iter().for_each(|store| store.clear());
            return;
        }
        for rest in &s.urls {
            for key in url_keys(rest) {
                for store in &stores {
                    store.invalidate_uri(&key);
                }
            }
        }
        if s.prefixes.is_empty() && s.hosts.is_empty() && s.tags.is_empty() {
            return;
        }
        // A tag purge that selects nothing stored needs no blocking thread (the common case under many purges).
        let tags_only = s.prefixes.is_empty() && s.hosts.is_empty() && !self.screen.tags.overflowed();
        let nothing_indexed = s.tags.iter().all(|tag| !self.screen.tags.has(tag));
        if tags_only && nothing_indexed && stores.iter().skip(1).all(|store| store.object_count() == 0) {
            return;
        }
        let screen = self.screen.clone();
        let purge = purge.clone();
        let free = move || {
            let s = &purge.selection;
            let selects = |key: &VariantKey, object: &CachedObject| {
                s.matches(&KeyParts::of(key.as_str()), || tags::of(&object.headers)) && origin_ms(object) < purge.at
            };
            let scan_main = !s.prefixes.is_empty() || !s.hosts.is_empty() || screen.tags.overflowed();
            for (i, store) in stores.iter().enumerate() {
                // Only the main store's tags are indexed.
                if scan_main || i > 0 {
                    store.remove_matching(selects);
                    continue;
                }
                for tag in &s.tags {
                    // Lookups refuse these already; this frees them. An object refilled since the purge may be
                    // freed with them: it is only fetched again.
                    let keys = screen.tags.keys(tag);
                    let (first, second) = keys.split_at(keys.len() / 2);
                    let remove = |keys: &[VariantKey]| keys.iter().for_each(|key| store.remove(key));
                    if keys.len() < 10_000 {
                        remove(&keys);
                    } else {
                        // Many objects: two threads (the store's map is sharded, each shard locked on its own).
                        std::thread::scope(|scope| {
                            scope.spawn(|| remove(first));
                            remove(second);
                        });
                    }
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(free)),
            Err(_) => free(),
        }
    }

    fn update_gauges(&self) {
        self.metrics.log_entries.set(i64::try_from(self.log.len()).unwrap_or(i64::MAX));
        self.metrics.tag_index_entries.set(i64::try_from(self.screen.tags.len()).unwrap_or(i64::MAX));
    }

    /// Whether a purge was applied here after `t` (then a fetch begun at `t` must not be shared with requests
    /// that arrive now: it may bring what the purge removed).
    pub fn applied_since(&self, t: SystemTime) -> bool {
        log::unix_ms(t) <= self.last_applied_ms.load(Ordering::SeqCst)
    }

    /// The purge log.
    pub fn log(&self) -> &PurgeLog {
        &self.log
    }
}

/// The cache keys of a purged URL (`host/path?query`), for both schemes.
fn url_keys(rest: &str) -> Vec<PrimaryKey> {
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Ok(uri) = path.parse::<Uri>() else { return Vec::new() };
    ["http", "https"].iter().map(|scheme| PrimaryKey::new(scheme, host, &uri)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keys_cover_both_schemes() {
        let keys: Vec<String> = url_keys("example.com:8080/a?b").iter().map(|k| k.as_str().to_string()).collect();
        assert_eq!(keys, ["http://example.com:8080/a?b", "https://example.com:8080/a?b"]);
    }
}
