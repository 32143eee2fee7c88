//! The topology as the data plane reads it: every pop of `[[pops]]` with its members, this node's pop and its
//! parent pop. Built once from the validated config; health (which members are up) lives in `health`.

use std::sync::Arc;

use super::ring::{Member, Ring};
use crate::config::Config;

/// One pop: its name, its parent (an index into [`Topology::pops`]) and every member.
#[derive(Debug, Clone)]
pub struct Pop {
    pub name: String,
    pub parent: Option<usize>,
    /// Every node of the pop, up or not.
    pub all: Ring,
}

/// The whole CDN as this node sees it.
#[derive(Debug, Clone)]
pub struct Topology {
    /// This node's id.
    pub node_id: Arc<str>,
    /// Every pop, in the file's order.
    pub pops: Vec<Pop>,
    /// This node's pop; `None` for a standalone node.
    pub mine: Option<usize>,
}

impl Topology {
    /// The topology of `config` (already validated: names are unique and parents exist).
    pub fn from_config(config: &Config) -> Topology {
        let index = |name: &str| config.pops.iter().position(|p| p.name == name);
        let pops = config
            .pops
            .iter()
            .map(|p| Pop {
                name: p.name.clone(),
                parent: p.parent.as_deref().and_then(index),
                all: Ring::new(p.nodes.iter().map(|n| Member::new(&n.id, n.url.clone())).collect()),
            })
            .collect();
        Topology { node_id: config.node.id.as_str().into(), pops, mine: config.node.pop.as_deref().and_then(index) }
    }

    /// A standalone node: no pops.
    pub fn standalone(node_id: &str) -> Topology {
        Topology { node_id: node_id.into(), pops: Vec::new(), mine: None }
    }

    /// This node's pop, if it has one.
    pub fn my_pop(&self) -> Option<&Pop> {
        self.pops.get(self.mine?)
    }

    /// The index of the pop this node fetches its misses from, if any.
    pub fn parent_index(&self) -> Option<usize> {
        self.my_pop()?.parent
    }

    /// The index of the pop that lists `node_id`.
    pub fn pop_of(&self, node_id: &str) -> Option<usize> {
        self.pops.iter().position(|p| p.all.members().iter().any(|m| &*m.id == node_id))
    }

    /// Whether `node_id` is another node of this node's own pop.
    pub fn is_pop_peer(&self, node_id: &str) -> bool {
        node_id != &*self.node_id && self.mine.is_some() && self.pop_of(node_id) == self.mine
    }

    /// The pops whose health this node follows: its own and its parent.
    pub fn watched_pops(&self) -> Vec<usize> {
        self.mine.into_iter().chain(self.parent_index()).collect()
    }

    /// The nodes this node probes: the others of its pop, and its parent pop's.
    pub fn watched_members(&self) -> Vec<Member> {
        self.watched_pops()
            .into_iter()
            .flat_map(|i| self.pops[i].all.members().iter().cloned())
            .filter(|m| m.id != self.node_id)
            .collect()
    }
}
