//! The routing decision for one request: serve it here, forward it to the node of this pop that owns its key,
//! and, for what this node fetches, which upstream: the parent pop's node chosen by the same hashing, or the
//! origin.
//!
//! Inside a pop a request takes at most one hop: a request that comes from a proven peer of this pop is served
//! here whoever owns it (the sender chose this node as the owner, or as the next candidate when the owner is
//! down). A request from a child pop's node, or from a client, goes to its owner.

use http::HeaderMap;
use http::header;

use super::Cluster;
use super::ring::{Member, key_hash};
use crate::cache::map_lookup;
use crate::config::ParentFallback;

/// Most edgecache hops (`Via` entries) a request may already have passed; one more is answered 508.
pub const MAX_HOPS: usize = 8;

/// Where a request is answered inside this node's pop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InPop {
    /// This node does the caching work.
    Here,
    /// Forward to these nodes in order (the owner first); if every one fails, this node serves it.
    Forward(Vec<Member>),
}

/// Where this node sends what it fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamRoute {
    /// `[origin]`: this pop has no parent (or this node is standalone).
    Origin,
    /// The parent pop's healthy nodes in order (its owner of the key first); `then` says what follows when every
    /// one fails.
    Parent { pop: String, nodes: Vec<Member>, then: ParentFallback },
}

/// The key a request is routed by: its cache key without the `Vary` part, so every variant has one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey(pub u64);

impl RouteKey {
    /// The routing key of a primary cache key (`scheme://host/path?query`).
    pub fn of(primary: &str) -> RouteKey {
        RouteKey(key_hash(primary))
    }
}

impl Cluster {
    /// Where a request for `key` is served in this pop; `from_peer` is the proven sender, if a node sent it.
    pub fn in_pop(&self, key: &RouteKey, from_peer: Option<&str>) -> InPop {
        let Some(mine) = self.pop_sharing_work(from_peer) else { return InPop::Here };
        let ring = self.health.healthy(mine);
        let before_me: Vec<Member> =
            ring.candidates(key.0).into_iter().take_while(|m| m.id != self.topology.node_id).cloned().collect();
        if before_me.is_empty() { InPop::Here } else { InPop::Forward(before_me) }
    }

    /// This node's pop, if a request `from_peer` (the proven sender, if a node sent it) may be served by another
    /// node of it: a pop of two or more nodes, and a request that no node of the same pop has forwarded already.
    /// `None`: every such request is served here, whatever its key (no need to hash one).
    pub fn pop_sharing_work(&self, from_peer: Option<&str>) -> Option<usize> {
        let mine = self.topology.mine?;
        let shared =
            self.topology.pops[mine].all.len() >= 2 && !from_peer.is_some_and(|p| self.topology.is_pop_peer(p));
        shared.then_some(mine)
    }

    /// Where this node fetches `key` from.
    pub fn upstream(&self, key: &RouteKey) -> UpstreamRoute {
        let Some(parent) = self.topology.parent_index() else { return UpstreamRoute::Origin };
        let nodes = self.health.healthy(parent).candidates(key.0).into_iter().cloned().collect();
        UpstreamRoute::Parent { pop: self.topology.pops[parent].name.clone(), nodes, then: self.parent_fallback }
    }
}

/// How many edgecache hops a request has passed (its `Via` entries).
pub fn hop_count(headers: &HeaderMap) -> usize {
    map_lookup::all(headers, &header::VIA).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::PeerAuth;
    use crate::config::{Config, PopConfig, PopNodeConfig};

    fn cluster(me: &str, fallback: ParentFallback) -> Cluster {
        let origin = "http://127.0.0.1:9".parse().expect("url");
        let mut config = Config::standalone(me, "127.0.0.1:0".parse().expect("addr"), origin);
        let node = |id: &str, port: u16| PopNodeConfig {
            id: id.into(),
            url: format!("http://127.0.0.1:{port}").parse().expect("url"),
        };
        config.pops = vec![
            PopConfig {
                name: "edge".into(),
                parent: Some("shield".into()),
                nodes: vec![node("e1", 1), node("e2", 2), node("e3", 3)],
            },
            PopConfig { name: "shield".into(), parent: None, nodes: vec![node("s1", 4), node("s2", 5)] },
        ];
        config.node.pop = Some(if me.starts_with('e') { "edge" } else { "shield" }.into());
        config.cluster.parent_fallback = fallback;
        Cluster::new(&config, PeerAuth::new(Some("s")), Box::new(|_, _| {}))
    }

    #[test]
    fn each_key_is_served_by_its_owner_and_forwarded_by_the_others() {
        let nodes = ["e1", "e2", "e3"].map(|id| cluster(id, ParentFallback::Origin));
        for k in 0..200 {
            let key = RouteKey::of(&format!("http://example.com/{k}"));
            let here: Vec<usize> = (0..3).filter(|&i| nodes[i].in_pop(&key, None) == InPop::Here).collect();
            assert_eq!(here.len(), 1, "exactly one owner for key {k}");
            for (i, node) in nodes.iter().enumerate() {
                if let InPop::Forward(to) = node.in_pop(&key, None) {
                    assert_eq!(&*to[0].id, ["e1", "e2", "e3"][here[0]]);
                    assert!(to.iter().all(|m| &*m.id != ["e1", "e2", "e3"][i]), "never forwards to itself");
                }
            }
        }
    }

    #[test]
    fn a_request_from_a_peer_of_the_pop_is_served_here_but_one_from_a_child_pop_is_routed() {
        let e1 = cluster("e1", ParentFallback::Origin);
        let s1 = cluster("s1", ParentFallback::Origin);
        for k in 0..50 {
            let key = RouteKey::of(&format!("/{k}"));
            assert_eq!(e1.in_pop(&key, Some("e3")), InPop::Here);
            assert_eq!(e1.in_pop(&key, Some("unknown")), e1.in_pop(&key, None));
            assert_eq!(s1.in_pop(&key, Some("e1")), s1.in_pop(&key, None));
        }
    }

    #[test]
    fn work_is_shared_only_in_a_pop_of_several_nodes_and_not_again_for_a_peer() {
        let e1 = cluster("e1", ParentFallback::Origin);
        let e1_pop = e1.topology.mine;
        assert!(e1_pop.is_some());
        assert_eq!(e1.pop_sharing_work(None), e1_pop);
        assert_eq!(e1.pop_sharing_work(Some("s1")), e1_pop, "a child or parent node is not a peer of the pop");
        assert_eq!(e1.pop_sharing_work(Some("e2")), None);
        let origin = "http://127.0.0.1:9".parse().expect("url");
        let config = Config::standalone("solo", "127.0.0.1:0".parse().expect("addr"), origin);
        let solo = Cluster::new(&config, PeerAuth::new(Some("s")), Box::new(|_, _| {}));
        assert_eq!(solo.pop_sharing_work(None), None);
        assert_eq!(solo.in_pop(&RouteKey::of("http://example.com/x"), None), InPop::Here);
    }

    #[test]
    fn the_parent_node_follows_the_same_hashing_and_skips_dead_nodes() {
        let e1 = cluster("e1", ParentFallback::Error);
        let s1 = cluster("s1", ParentFallback::Origin);
        let key = RouteKey::of("http://example.com/x");
        let UpstreamRoute::Parent { nodes, then, .. } = e1.upstream(&key) else { panic!("parent expected") };
        assert_eq!(then, ParentFallback::Error);
        assert_eq!(nodes.len(), 2);
        // The shield's own routing agrees on the owner.
        let owner_here = s1.in_pop(&key, None) == InPop::Here;
        assert_eq!(owner_here, &*nodes[0].id == "s1");
        e1.health.mark_down(&nodes[0].id, "refused");
        let UpstreamRoute::Parent { nodes: left, .. } = e1.upstream(&key) else { panic!("parent expected") };
        assert_eq!(left, nodes[1..].to_vec());
        assert_eq!(s1.upstream(&key), UpstreamRoute::Origin);
    }

    #[test]
    fn hops_are_counted_from_via() {
        let mut headers = HeaderMap::new();
        headers.append(header::VIA, "1.1 e1, 1.1 s1".parse().expect("value"));
        headers.append(header::VIA, "2 x".parse().expect("value"));
        assert_eq!(hop_count(&headers), 3);
    }
}
