//! Which nodes are up, as this node sees them, and the rings of healthy members built from that.
//!
//! Two signals: passive (a request to a peer whose connection is refused marks it down at once) and
//! active (a probe every `cluster.probe_interval` to each watched node: a node that answers is up, one that fails
//! two probes in a row is down). Nodes start up, so a cluster that starts in any order routes at once. Each change rebuilds the
//! ring of healthy members of that pop and swaps it in atomically (arc-swap); this node is always a member of its
//! own pop's ring, so it never routes around itself. `edgecache_peer_up{peer}` follows every watched node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::ring::{Member, Ring};
use super::topology::Topology;

/// Called with a node id and whether it is now up, on every change (and once per node at start).
pub type OnChange = Box<dyn Fn(&str, bool) + Send + Sync>;

/// How one node looks from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHealth {
    /// This node itself.
    Myself,
    Up,
    Down {
        /// Why it was marked down (the last failure).
        reason: String,
    },
    /// Neither in this node's pop nor in its parent: not probed from here.
    NotWatched,
}

#[derive(Debug)]
struct PeerState {
    up: AtomicBool,
    /// Probes failed in a row (a probe marks a node down only at the second, so one slow answer does not flap).
    failed_probes: std::sync::atomic::AtomicU32,
    /// When it last changed, and the reason it went down.
    change: Mutex<(SystemTime, Option<String>)>,
}

/// The health of every watched node and the healthy rings of the watched pops.
pub struct Health {
    topology: Arc<Topology>,
    peers: HashMap<Arc<str>, PeerState>,
    /// One per pop; pops that are not watched keep every member.
    healthy: Vec<ArcSwap<Ring>>,
    on_change: OnChange,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("peers", &self.peers).finish_non_exhaustive()
    }
}

impl Health {
    /// Every watched node up.
    pub fn new(topology: Arc<Topology>, on_change: OnChange) -> Health {
        let peers: HashMap<Arc<str>, PeerState> = topology
            .watched_members()
            .into_iter()
            .map(|m| {
                on_change(&m.id, true);
                let state = PeerState {
                    up: AtomicBool::new(true),
                    failed_probes: 0.into(),
                    change: Mutex::new((SystemTime::now(), None)),
                };
                (m.id, state)
            })
            .collect();
        let healthy = topology.pops.iter().map(|p| ArcSwap::from_pointee(p.all.clone())).collect();
        Health { topology, peers, healthy, on_change }
    }

    /// The members of pop `index` that are up (this node always counts as up).
    pub fn healthy(&self, index: usize) -> Arc<Ring> {
        self.healthy.get(index).map(|r| r.load_full()).unwrap_or_default()
    }

    /// Whether `id` is up as far as this node knows (nodes it does not watch count as up).
    pub fn is_up(&self, id: &str) -> bool {
        self.peers.get(id).is_none_or(|p| p.up.load(Ordering::Acquire))
    }

    /// How `id` looks from here.
    pub fn of(&self, id: &str) -> NodeHealth {
        if id == &*self.topology.node_id {
            return NodeHealth::Myself;
        }
        match self.peers.get(id) {
            None => NodeHealth::NotWatched,
            Some(p) if p.up.load(Ordering::Acquire) => NodeHealth::Up,
            Some(p) => {
                let reason = p.change.lock().ok().and_then(|c| c.1.clone()).unwrap_or_default();
                NodeHealth::Down { reason }
            }
        }
    }

    /// Marks `id` down (a refused connection, a failed probe): its keys go to the next candidates at once.
    pub fn mark_down(&self, id: &str, reason: &str) {
        self.set(id, false, Some(reason));
    }

    /// Marks `id` up (it answered): its keys come back to it.
    pub fn mark_up(&self, id: &str) {
        if let Some(peer) = self.peers.get(id) {
            peer.failed_probes.store(0, Ordering::Relaxed);
        }
        self.set(id, true, None);
    }

    /// A probe of `id` failed: the second failure in a row marks it down.
    pub fn probe_failed(&self, id: &str, reason: &str) {
        let Some(peer) = self.peers.get(id) else { return };
        if peer.failed_probes.fetch_add(1, Ordering::Relaxed) >= 1 {
            self.mark_down(id, reason);
        }
    }

    fn set(&self, id: &str, up: bool, reason: Option<&str>) {
        let Some(peer) = self.peers.get(id) else { return };
        if peer.up.swap(up, Ordering::AcqRel) == up {
            return;
        }
        if let Ok(mut change) = peer.change.lock() {
            *change = (SystemTime::now(), reason.map(str::to_string));
        }
        if up {
            tracing::info!(peer = id, "peer is up");
        } else {
            tracing::warn!(peer = id, reason = reason.unwrap_or(""), "peer is down");
        }
        (self.on_change)(id, up);
        if let Some(index) = self.topology.pop_of(id) {
            self.rebuild(index);
        }
    }

    /// Builds pop `index`'s ring of healthy members from the current states and swaps it in.
    fn rebuild(&self, index: usize) {
        let Some(pop) = self.topology.pops.get(index) else { return };
        let ring = pop.all.filtered(|m| m.id == self.topology.node_id || self.is_up(&m.id));
        self.healthy[index].store(Arc::new(ring));
    }

    /// The nodes probed from here.
    pub fn watched(&self) -> Vec<Member> {
        self.topology.watched_members()
    }
}

/// Probes every watched node each `interval` until `shutdown`; `probe` answers `Err(reason)` when a node does not
/// answer in time. Probes of one round run at once, so a dead node delays no other.
pub async fn run_prober<F, Fut>(health: Arc<Health>, interval: Duration, probe: F, shutdown: CancellationToken)
where
    F: Fn(Member) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let members = health.watched();
    if members.is_empty() {
        return;
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let round = members.iter().cloned().map(|member| {
            let (health, id) = (health.clone(), member.id.clone());
            let probed = probe(member);
            async move {
                match probed.await {
                    Ok(()) => health.mark_up(&id),
                    Err(reason) => health.probe_failed(&id, &reason),
                }
            }
        });
        futures_util::future::join_all(round).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PopConfig, PopNodeConfig};

    fn topology() -> Arc<Topology> {
        let origin = "http://127.0.0.1:9".parse().expect("url");
        let mut config = Config::standalone("e1", "127.0.0.1:0".parse().expect("addr"), origin);
        let node = |id: &str, port: u16| PopNodeConfig {
            id: id.into(),
            url: format!("http://127.0.0.1:{port}").parse().expect("url"),
        };
        config.pops = vec![
            PopConfig { name: "edge".into(), parent: Some("shield".into()), nodes: vec![node("e1", 1), node("e2", 2)] },
            PopConfig { name: "shield".into(), parent: None, nodes: vec![node("s1", 3), node("s2", 4)] },
            PopConfig { name: "other".into(), parent: None, nodes: vec![node("o1", 5)] },
        ];
        config.node.pop = Some("edge".into());
        Arc::new(Topology::from_config(&config))
    }

    use crate::config::Config;

    #[test]
    fn a_node_marked_down_leaves_its_pops_ring_and_comes_back() {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let seen = changes.clone();
        let health =
            Health::new(topology(), Box::new(move |id, up| seen.lock().expect("lock").push((id.to_string(), up))));
        assert_eq!(health.healthy(1).len(), 2);
        health.mark_down("s1", "connection refused");
        health.mark_down("s1", "again");
        assert_eq!(health.healthy(1).members().iter().map(|m| &*m.id).collect::<Vec<_>>(), ["s2"]);
        assert_eq!(health.of("s1"), NodeHealth::Down { reason: "connection refused".into() });
        health.mark_up("s1");
        assert_eq!(health.healthy(1).len(), 2);
        assert_eq!(health.of("e1"), NodeHealth::Myself);
        assert_eq!(health.of("o1"), NodeHealth::NotWatched);
        health.probe_failed("s2", "probe-timeout");
        assert_eq!(health.of("s2"), NodeHealth::Up, "one failed probe is not enough");
        health.probe_failed("s2", "probe-timeout");
        assert_eq!(health.of("s2"), NodeHealth::Down { reason: "probe-timeout".into() });
        let changes = changes.lock().expect("lock");
        assert_eq!(changes.iter().filter(|(id, _)| id == "s1").count(), 3, "start, down, up: {changes:?}");
        assert_eq!(changes.iter().filter(|(id, _)| id == "s2").count(), 2, "start, down: {changes:?}");
    }

    #[test]
    fn this_node_stays_in_its_own_ring() {
        let health = Health::new(topology(), Box::new(|_, _| {}));
        health.mark_down("e1", "ignored");
        health.mark_down("e2", "refused");
        assert_eq!(health.healthy(0).members().iter().map(|m| &*m.id).collect::<Vec<_>>(), ["e1"]);
    }
}
