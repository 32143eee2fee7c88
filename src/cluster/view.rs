//! `GET /cluster` on the admin listener: this node, its pop, and every node of the topology with its health as
//! this node sees it (`self`, `up`, `down` with the reason, or `not-watched` for pops it neither belongs to nor
//! fetches from).

use serde_json::{Value, json};

use super::{Cluster, NodeHealth};

impl Cluster {
    /// The JSON document of `GET /cluster`.
    pub fn view(&self) -> Value {
        let topology = &self.topology;
        let pops: Vec<Value> = topology
            .pops
            .iter()
            .map(|pop| {
                let nodes: Vec<Value> = pop
                    .all
                    .members()
                    .iter()
                    .map(|m| {
                        let mut node = json!({ "id": &*m.id, "url": m.url.to_string() });
                        let health = match self.health.of(&m.id) {
                            NodeHealth::Myself => "self",
                            NodeHealth::Up => "up",
                            NodeHealth::NotWatched => "not-watched",
                            NodeHealth::Down { reason } => {
                                node["reason"] = Value::from(reason);
                                "down"
                            }
                        };
                        node["health"] = Value::from(health);
                        node
                    })
                    .collect();
                let parent = pop.parent.map(|i| topology.pops[i].name.clone());
                json!({ "name": pop.name, "parent": parent, "nodes": nodes })
            })
            .collect();
        json!({
            "node": &*topology.node_id,
            "pop": topology.my_pop().map(|p| p.name.clone()),
            "parent": topology.parent_index().map(|i| topology.pops[i].name.clone()),
            "parent_fallback": self.parent_fallback,
            "pops": pops,
        })
    }
}
