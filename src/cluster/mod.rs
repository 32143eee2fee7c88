//! The cluster: the nodes of the topology (`[[pops]]`) acting as one cache per pop, under parent pops.
//!
//! - `ring`: rendezvous hashing, the ordered owners of a key among a pop's members.
//! - `topology`: the pops, this node's pop and its parent.
//! - `health`: which nodes are up (passive signals and probes), and the rings of healthy members.
//! - `route`: the decision for one request: here, forward to the owner, or fetch from the parent or the origin.
//! - `hot`: keys popular enough that a node that does not own them keeps a short copy.
//! - `peer_auth`: the proof that a request comes from a node of the cluster (`cluster.secret`).
//! - `view`: `GET /cluster`, the topology and each node's health as this node sees it.

pub mod health;
pub mod hot;
pub mod peer_auth;
pub mod ring;
pub mod route;
pub mod topology;
pub mod view;

use std::sync::Arc;

pub use health::{Health, NodeHealth};
pub use hot::HotKeys;
pub use peer_auth::{PEER_AUTH_HEADER, PEER_HEADER, PeerAuth};
pub use ring::{Member, Ring};
pub use route::{InPop, MAX_HOPS, RouteKey, UpstreamRoute};
pub use topology::Topology;

use crate::config::{Config, ParentFallback};

/// A request header a node sends to ask a peer whether it is up. Answered only when the request is signed.
pub const PROBE_HEADER: http::HeaderName = http::HeaderName::from_static("edgecache-probe");

/// Everything a node knows about the cluster, built once.
#[derive(Debug)]
pub struct Cluster {
    pub topology: Arc<Topology>,
    pub health: Arc<Health>,
    pub auth: PeerAuth,
    pub parent_fallback: ParentFallback,
    pub hot: HotKeys,
}

impl Cluster {
    /// The cluster of `config`; `on_health` hears each change of a watched node's health (the `peer_up` gauge).
    pub fn new(config: &Config, auth: PeerAuth, on_health: health::OnChange) -> Cluster {
        let topology = Arc::new(Topology::from_config(config));
        let health = Arc::new(Health::new(topology.clone(), on_health));
        let hot = HotKeys::new(config.cluster.hot_key_rate, config.cluster.hot_key_ttl);
        Cluster { topology, health, auth, parent_fallback: config.cluster.parent_fallback, hot }
    }

    /// A standalone node's: no pops, no peers.
    pub fn standalone(node_id: &str) -> Cluster {
        let topology = Arc::new(Topology::standalone(node_id));
        let health = Arc::new(Health::new(topology.clone(), Box::new(|_, _| {})));
        Cluster {
            topology,
            health,
            auth: PeerAuth::new(None),
            parent_fallback: ParentFallback::Origin,
            hot: HotKeys::new(0, std::time::Duration::ZERO),
        }
    }

    /// Whether this node has peers or a parent at all.
    pub fn is_clustered(&self) -> bool {
        self.topology.mine.is_some()
    }
}
