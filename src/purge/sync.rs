//! Catching up: a node that was stopped, paused or just started may have missed purges, so it must not serve from
//! its cache until it has pulled its peers' logs. A ticker notes every 100 ms that the process runs; a gap longer
//! than [`GAP`] (SIGSTOP, a frozen VM, a start) marks the node unsynced. While unsynced, every object stored before
//! the gap is revalidated upstream instead of served; the catch-up task pulls every peer's log at once, applies
//! what it lacks, and marks the node synced. If some peer cannot be reached, the objects stored before the gap stay
//! marked for revalidation (nothing is lost by it, and no purge it may have missed is served around).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::fanout::Peer;
use super::log::now_ms;
use super::matcher::Clock;
use super::{MIN_RETENTION, Purger, request};

/// A pause longer than this means purges may have been missed.
pub const GAP: Duration = Duration::from_millis(1_000);
/// How often the ticker runs.
pub const TICK: Duration = Duration::from_millis(100);

/// Whether this node may trust its cache: it has been running continuously since its last catch-up.
pub struct Liveness {
    /// Whether there is anyone to catch up from (a standalone node is always synced).
    enabled: bool,
    started: Instant,
    /// Milliseconds since `started` at the last tick.
    last_tick: AtomicU64,
    needs_sync: AtomicBool,
    /// When (Unix ms) the node was found unsynced: objects older than this must be revalidated until synced (0 at
    /// start).
    unsynced_at: AtomicU64,
    /// Wakes the catch-up task.
    pub wake: Notify,
}

impl Liveness {
    /// Unsynced from the start when `enabled` (a node with peers pulls their logs first).
    pub fn new(enabled: bool) -> Liveness {
        Liveness {
            enabled,
            started: Instant::now(),
            last_tick: AtomicU64::new(0),
            needs_sync: AtomicBool::new(enabled),
            // At start the cache is empty: nothing stored before needs revalidating while the first catch-up runs.
            unsynced_at: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes that the process runs; finds a gap since the last tick.
    pub fn tick(&self) {
        if !self.enabled {
            return;
        }
        let now = self.elapsed_ms();
        if now.saturating_sub(self.last_tick.load(Ordering::SeqCst)) > gap_ms() {
            self.mark_unsynced();
        }
        // After the mark: whoever sees this tick also sees the mark.
        self.last_tick.store(now, Ordering::SeqCst);
    }

    /// `None` when the cache may be trusted; else the time (Unix ms) before which stored objects must be
    /// revalidated.
    pub fn unsynced_before(&self) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        // The tick first, then the flag (the ticker writes them in the other order).
        let last_tick = self.last_tick.load(Ordering::SeqCst);
        if self.elapsed_ms().saturating_sub(last_tick) > gap_ms() {
            self.mark_unsynced();
        }
        self.needs_sync.load(Ordering::SeqCst).then(|| self.unsynced_at.load(Ordering::SeqCst))
    }

    fn mark_unsynced(&self) {
        // The time first, then the flag: whoever sees the flag sees the time.
        self.unsynced_at.fetch_max(now_ms(), Ordering::SeqCst);
        if !self.needs_sync.swap(true, Ordering::SeqCst) {
            tracing::info!("this node was paused or partitioned: catching up on purges before serving from cache");
        }
        self.wake.notify_one();
    }

    /// Whether a catch-up is due.
    pub fn needs_sync(&self) -> bool {
        self.needs_sync.load(Ordering::SeqCst)
    }

    /// The catch-up finished; `unsynced_at` is returned so that, when some peer was not reached, the caller can
    /// keep objects older than it marked for revalidation.
    pub fn synced(&self) -> u64 {
        let at = self.unsynced_at.swap(0, Ordering::SeqCst);
        self.needs_sync.store(false, Ordering::SeqCst);
        at
    }
}

impl Purger {
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
        // A node with no one to catch up from never needs to notice a pause: no ticker (no wakeup every tick).
        if self.screen.liveness.enabled {
            let me = self.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(TICK);
                // A late tick is one tick: it is the gap before it that counts, not how many ticks it stood for.
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = ticks.tick() => me.screen.liveness.tick(),
                    }
                }
            });
        }
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
}

fn gap_ms() -> u64 {
    u64::try_from(GAP.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_node_is_always_synced() {
        let l = Liveness::new(false);
        assert_eq!(l.unsynced_before(), None);
    }

    #[test]
    fn a_node_with_peers_starts_unsynced_until_it_caught_up() {
        let l = Liveness::new(true);
        l.tick();
        assert!(l.unsynced_before().is_some());
        l.synced();
        l.tick();
        assert_eq!(l.unsynced_before(), None);
    }

    #[test]
    fn a_gap_between_ticks_marks_it_unsynced() {
        let l = Liveness::new(true);
        l.synced();
        l.tick();
        // A tick far in the past: as if the process had been stopped since.
        l.last_tick.store(0, Ordering::SeqCst);
        std::thread::sleep(GAP + Duration::from_millis(50));
        assert!(l.unsynced_before().is_some());
        assert!(l.needs_sync());
    }
}
