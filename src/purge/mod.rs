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
pub mod sync;
pub mod tags;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use http::Uri;
use tokio_util::sync::CancellationToken;

use crate::cache::{CachedObject, PrimaryKey, Screened, Store, StoreHooks, VariantKey};
use crate::cluster::PeerAuth;
use crate::config::{Config, PurgeConfig};
use crate::metrics::Metrics;
use fanout::{NodeAnswer, Peer, PeerClient};
use log::{Purge, PurgeLog, now_ms, unix_ms};
use matcher::{Clock, KeyParts, Verdict};
use metrics::PurgeMetrics;
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

/// What the store's hooks and the purge service share: everything a lookup needs to judge an object.
pub struct Screen {
    clock: RwLock<Clock>,
    /// Objects whose content left the origin before this (Unix ms) must be revalidated: entries the log's size
    /// cap dropped, or a catch-up that could not reach every peer.
    revalidate_before: AtomicU64,
    liveness: Liveness,
    tags: TagIndex,
    /// The longest lifetime (age at arrival + freshness + stale windows) of any object stored, in ms.
    longest_lifetime_ms: AtomicU64,
    /// `edgecache_purge_tag_index_entries`, kept current as objects come and go.
    tag_gauge: prometheus::IntGauge,
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
            client: PeerClient::new(&config.node.id, auth.clone())?,
            peers,
            metrics: purge_metrics,
            cursors: Mutex::new(std::collections::HashMap::new()),
            next_id: AtomicU64::new(1),
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
                    for key in screen.tags.keys(tag) {
                        // The index names the tag already: only the object's age is left to check.
                        if store.peek(&key).is_some_and(|object| origin_ms(&object) < purge.at) {
                            store.remove(&key);
                        }
                    }
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(free)),
            Err(_) => free(),
        }
    }

    /// Pulls every peer's log and applies what this node lacks; `true` if every peer answered.
    pub async fn catch_up(&self) -> bool {
        let pulls = self.peers.iter().map(|peer| self.catch_up_with(peer));
        let results = futures_util::future::join_all(pulls).await;
        results.into_iter().all(|ok| ok)
    }

    async fn catch_up_with(&self, peer: &Peer) -> bool {
        for _ in 0..1_000 {
            let (epoch, since) = self.cursors.lock().ok().and_then(|c| c.get(&peer.id).copied()).unzip();
            let page = match self.client.pull(peer, since.unwrap_or(0), epoch, self.config.fanout_timeout).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::debug!(peer = %peer.id, %error, "purge log not pulled");
                    return false;
                }
            };
            for purge in page.purges {
                if purge.selection.check().is_ok() && request::check_id(&purge.id).is_ok() && self.apply(purge) {
                    tracing::info!(peer = %peer.id, "applied a purge this node had missed");
                }
            }
            if let Ok(mut cursors) = self.cursors.lock() {
                cursors.insert(peer.id.clone(), (page.epoch, page.next));
            }
            if !page.more {
                return true;
            }
        }
        true
    }

    /// Runs the background work until `shutdown`: the liveness ticker, catch-ups (after a gap, and every
    /// `purge.sync_interval`), and pruning of the log.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        let me = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(sync::TICK);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = ticks.tick() => me.screen.liveness.tick(),
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            let mut last_prune = Instant::now();
            loop {
                if me.screen.liveness.needs_sync() || !me.peers.is_empty() {
                    let was_unsynced = me.screen.liveness.needs_sync();
                    let all = me.catch_up().await;
                    if was_unsynced {
                        let unsynced_at = me.screen.liveness.synced();
                        if !all {
                            me.screen.revalidate_before.fetch_max(unsynced_at, Ordering::SeqCst);
                            tracing::warn!(
                                "not every peer could be reached: objects stored before the pause will be revalidated"
                            );
                        }
                    }
                }
                if last_prune.elapsed() >= Duration::from_secs(10) {
                    me.prune();
                    last_prune = Instant::now();
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = me.screen.liveness.wake.notified() => {}
                    _ = tokio::time::sleep(me.config.sync_interval) => {}
                }
            }
        });
    }

    /// Drops log entries no stored object can still be invalidated by, and the oldest beyond the size cap.
    pub fn prune(&self) {
        let longest = Duration::from_millis(self.screen.longest_lifetime_ms.load(Ordering::Relaxed));
        let expire_after = longest.max(MIN_RETENTION);
        let pruned = self.log.prune(now_ms(), expire_after, self.config.log_max_age, self.config.log_max_entries);
        if let Some(until) = pruned.dropped_until {
            self.screen.revalidate_before.fetch_max(until + 1, Ordering::SeqCst);
        }
        if pruned.expired > 0 || pruned.dropped_until.is_some() {
            let clock = Clock::of(self.log.all().iter().map(|p| p.as_ref()));
            if let Ok(mut current) = self.screen.clock.write() {
                *current = clock;
            }
        }
        self.update_gauges();
    }

    fn update_gauges(&self) {
        self.metrics.log_entries.set(i64::try_from(self.log.len()).unwrap_or(i64::MAX));
        self.metrics.tag_index_entries.set(i64::try_from(self.screen.tags.len()).unwrap_or(i64::MAX));
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

/// When an object's content left the origin, in Unix ms: its received time minus its initial age (which includes
/// the `Age` of every tier above and the apparent age from `Date`; both are whole seconds, so this errs early).
pub fn origin_ms(object: &CachedObject) -> u64 {
    let f = &object.freshness;
    unix_ms(f.received.checked_sub(f.initial_age).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// The same object, stale since `since_ms` (or now, if that is later than now); `must_revalidate` also closes its
/// stale windows. Its lifetime is kept (what freshness loses goes to the initial age), so the `Age` it is served
/// with says it is stale since the purge: a tier below sees it stale too, whether or not it knows the purge.
fn stale_copy(object: &CachedObject, since_ms: u64, must_revalidate: bool) -> CachedObject {
    let mut copy = object.clone();
    let f = &mut copy.freshness;
    let received = unix_ms(f.received);
    let held = now_ms().saturating_sub(received);
    let fresh_ms = since_ms.saturating_sub(received).min(held.saturating_sub(1));
    let fresh_for = f.fresh_for.min(Duration::from_millis(fresh_ms));
    f.initial_age += f.fresh_for - fresh_for;
    f.fresh_for = fresh_for;
    f.must_revalidate |= must_revalidate;
    copy
}

/// The screen without the tag index, for stores other than the main one.
struct ScreenOnly(Arc<Screen>);

impl StoreHooks for ScreenOnly {
    fn screen(&self, key: &VariantKey, object: &Arc<CachedObject>) -> Screened {
        self.0.screen(key, object)
    }

    fn stored(&self, _: &VariantKey, _: &CachedObject) {}

    fn left(&self, _: &VariantKey, _: &CachedObject, _: bool) {}
}

impl StoreHooks for Screen {
    fn screen(&self, key: &VariantKey, object: &Arc<CachedObject>) -> Screened {
        let unsynced = self.liveness.unsynced_before();
        let floor = self.revalidate_before.load(Ordering::Relaxed);
        let Ok(clock) = self.clock.read() else { return Screened::Keep };
        if unsynced.is_none() && floor == 0 && clock.is_empty() {
            return Screened::Keep;
        }
        let origin = origin_ms(object);
        let tagged = clock.has_tags() && tags::has_tags(&object.headers);
        let tags = tagged.then(|| tags::iter(&object.headers)).into_iter().flatten();
        match clock.verdict(&KeyParts::of(key.as_str()), tags, origin) {
            Verdict::Purged => Screened::Remove,
            Verdict::StaleSince(at) => Screened::Replace(Arc::new(stale_copy(object, at, false))),
            Verdict::Valid => {
                let before = floor.max(unsynced.unwrap_or(0));
                if origin < before {
                    Screened::Replace(Arc::new(stale_copy(object, before, true)))
                } else {
                    Screened::Keep
                }
            }
        }
    }

    fn stored(&self, key: &VariantKey, object: &CachedObject) {
        let f = &object.freshness;
        let lifetime = f.initial_age + f.fresh_for + f.stale_while_revalidate.max(f.stale_if_error);
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.longest_lifetime_ms.fetch_max(lifetime_ms, Ordering::Relaxed);
        if tags::has_tags(&object.headers) {
            self.tags.add(key, &tags::of(&object.headers));
            self.tag_gauge.set(i64::try_from(self.tags.len()).unwrap_or(i64::MAX));
        }
    }

    fn left(&self, key: &VariantKey, object: &CachedObject, replaced: bool) {
        // A replaced object's key stays in the index for the object that took its place.
        if !replaced && tags::has_tags(&object.headers) {
            self.tags.remove(key, &tags::of(&object.headers));
            self.tag_gauge.set(i64::try_from(self.tags.len()).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Freshness;
    use http::{HeaderMap, StatusCode};

    fn object(received_ago: u64, initial_age: u64, fresh_for: u64) -> CachedObject {
        let freshness = Freshness {
            received: SystemTime::now() - Duration::from_secs(received_ago),
            initial_age: Duration::from_secs(initial_age),
            fresh_for: Duration::from_secs(fresh_for),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            immutable: false,
        };
        CachedObject { status: StatusCode::OK, headers: HeaderMap::new(), body: "b".into(), freshness }
    }

    #[test]
    fn the_origin_time_counts_the_age_it_arrived_with() {
        let o = object(10, 5, 100);
        let expected = now_ms() - 15_000;
        assert!(origin_ms(&o).abs_diff(expected) < 50, "{} vs {expected}", origin_ms(&o));
    }

    #[test]
    fn a_stale_copy_says_so_in_its_age_and_keeps_its_lifetime() {
        let o = object(10, 5, 100);
        let now = SystemTime::now();
        let purged_at = now_ms() - 2_000;
        let copy = stale_copy(&o, purged_at, false);
        assert!(!copy.freshness.is_fresh(now));
        let lifetime = Duration::from_secs(105);
        let age = copy.freshness.age(now);
        assert!(age >= lifetime + Duration::from_millis(1_900), "served with Age {age:?}: stale to a tier below");
        assert!(copy.freshness.staleness(now) >= Duration::from_millis(1_900), "stale since the purge");
        assert_eq!(copy.freshness.initial_age + copy.freshness.fresh_for, lifetime);
        assert!(stale_copy(&o, purged_at, true).freshness.must_revalidate);
        // A purge "in the future" (a clock ahead) still makes it stale now.
        assert!(!stale_copy(&o, now_ms() + 60_000, false).freshness.is_fresh(SystemTime::now()));
    }

    #[test]
    fn url_keys_cover_both_schemes() {
        let keys: Vec<String> = url_keys("example.com:8080/a?b").iter().map(|k| k.as_str().to_string()).collect();
        assert_eq!(keys, ["http://example.com:8080/a?b", "https://example.com:8080/a?b"]);
    }
}
