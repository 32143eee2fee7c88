//! Checks of the CDN's topology: `[node]`, the `[[pops]]` list, and the keys they make required
//! (`origin.url`, `cluster.secret`).
//!
//! Rules: pop names and node ids are unique across the topology; a parent names another existing pop and parents
//! form no cycle; with pops defined, this node belongs to exactly one pop (`node.pop`, or when it is omitted the pop
//! that lists `node.id`); `origin.url` is required for a standalone node and for a pop without parent; a cluster with
//! a multi-node pop or any parent needs `cluster.secret`.

use http::Uri;
use serde_spanned::Spanned;

use super::check::{Checker, is_name};
use super::file::{NodeFile, PopFile};
use super::model::{NodeConfig, ParentFallback, PopConfig, PopNodeConfig};

/// The node id used when `node.id` is absent and the host name is unknown or unusable as a name.
pub const FALLBACK_NODE_ID: &str = "edgecache";

/// What the topology checks read.
#[derive(Debug)]
pub struct Inputs {
    /// `[node]` and where it starts.
    pub node: (usize, NodeFile),
    /// The `[[pops]]` entries.
    pub pops: Vec<Spanned<PopFile>>,
    /// The host name, the default `node.id`.
    pub hostname: Option<String>,
    /// Where `[origin]` starts (0 when absent).
    pub origin_pos: usize,
    /// Whether `origin.url` is written in the file.
    pub origin_given: bool,
    /// Where `[cluster]` starts (0 when absent).
    pub cluster_pos: usize,
    /// Whether `cluster.secret` is written in the file.
    pub secret_given: bool,
    /// Where `cluster.parent_fallback` is written, if it is.
    pub fallback_pos: Option<usize>,
}

/// Checks the topology; returns this node, the pops, and the parent fallback in effect.
pub fn check(
    inp: Inputs,
    fallback: ParentFallback,
    ck: &mut Checker<'_>,
) -> (NodeConfig, Vec<PopConfig>, ParentFallback) {
    let (node_pos, node) = inp.node;
    let id = match &node.id {
        Some(v) => ck.name(v, "node.id"),
        None => inp.hostname.filter(|h| is_name(h)).unwrap_or_else(|| FALLBACK_NODE_ID.to_string()),
    };
    let pops = pops(&inp.pops, ck);
    let mine = membership(&node, node_pos, &id, &pops, ck);
    let parent = mine.and_then(|i| pops[i].parent.clone());

    let needs_origin = match mine {
        None if pops.is_empty() => Some("required for a standalone node (no [[pops]])".to_string()),
        Some(i) if parent.is_none() => {
            Some(format!("required: pop {:?} has no parent, so its nodes fetch misses from the origin", pops[i].name))
        }
        _ => None,
    };
    if let (Some(reason), false) = (needs_origin, inp.origin_given) {
        ck.report(inp.origin_pos, "origin.url", reason);
    }

    let mut fallback = fallback;
    if parent.is_some() && !inp.origin_given && fallback == ParentFallback::Origin {
        match inp.fallback_pos {
            Some(at) => ck.report(at, "cluster.parent_fallback", "\"origin\" needs origin.url, which is not set"),
            None => fallback = ParentFallback::Error,
        }
    }

    let authenticated = pops.iter().any(|p| p.nodes.len() > 1 || p.parent.is_some());
    if authenticated && !inp.secret_given {
        let at = if inp.cluster_pos > 0 { inp.cluster_pos } else { inp.pops.first().map_or(0, |p| p.span().start) };
        ck.report(
            at,
            "cluster.secret",
            "required: nodes of a pop with several nodes or a parent authenticate each other with it",
        );
    }

    (NodeConfig { id, pop: mine.map(|i| pops[i].name.clone()) }, pops, fallback)
}

/// Reads every pop and checks names, ids, URLs and parents.
fn pops(entries: &[Spanned<PopFile>], ck: &mut Checker<'_>) -> Vec<PopConfig> {
    let mut out: Vec<PopConfig> = Vec::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut urls: Vec<(Uri, String)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (at, pop) = (entry.span().start, entry.get_ref());
        let name = match &pop.name {
            Some(v) => {
                let name = ck.name(v, &format!("pops[{i}].name"));
                if let Some(j) = out.iter().position(|p| p.name == name) {
                    ck.report(
                        v.span().start,
                        format!("pops[{i}].name"),
                        format!("duplicate pop name {name:?}, also used by pops[{j}]"),
                    );
                }
                name
            }
            None => {
                ck.report(at, format!("pops[{i}].name"), "required");
                String::new()
            }
        };
        let nodes: &[Spanned<_>] = match &pop.nodes {
            None => {
                ck.report(at, format!("pops[{i}].nodes"), "required: at least one node");
                &[]
            }
            Some(list) if list.get_ref().is_empty() => {
                ck.report(list.span().start, format!("pops[{i}].nodes"), "at least one node is required");
                &[]
            }
            Some(list) => list.get_ref(),
        };
        let mut pop_nodes = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            let key = format!("pops[{i}].nodes[{n}]");
            let id = match &node.get_ref().id {
                Some(v) => {
                    let id = ck.name(v, &format!("{key}.id"));
                    if let Some((_, other)) = ids.iter().find(|(seen, _)| *seen == id) {
                        ck.report(
                            v.span().start,
                            format!("{key}.id"),
                            format!("duplicate node id {id:?}, also used by {other}"),
                        );
                    }
                    ids.push((id.clone(), key.clone()));
                    id
                }
                None => {
                    ck.report(node.span().start, format!("{key}.id"), "required");
                    String::new()
                }
            };
            let url = match &node.get_ref().url {
                Some(v) => ck.base_url(v, &format!("{key}.url")).inspect(|url| {
                    if let Some((_, other)) = urls.iter().find(|(seen, _)| seen == url) {
                        ck.report(v.span().start, format!("{key}.url"), format!("{url} is also the url of {other}"));
                    }
                    urls.push((url.clone(), key.clone()));
                }),
                None => {
                    ck.report(node.span().start, format!("{key}.url"), "required: where peers reach this node");
                    None
                }
            };
            pop_nodes.push(PopNodeConfig { id, url: url.unwrap_or_default() });
        }
        let parent = pop.parent.as_ref().map(|p| p.get_ref().clone());
        out.push(PopConfig { name, parent, nodes: pop_nodes });
    }
    parents(entries, &out, ck);
    out
}

/// Every parent names another existing pop, and following parents never comes back to a pop.
fn parents(entries: &[Spanned<PopFile>], pops: &[PopConfig], ck: &mut Checker<'_>) {
    let mut up: Vec<Option<usize>> = vec![None; pops.len()];
    for (i, entry) in entries.iter().enumerate() {
        let Some(parent) = &entry.get_ref().parent else {
            continue;
        };
        let (at, key, name) = (parent.span().start, format!("pops[{i}].parent"), parent.get_ref());
        match pops.iter().position(|p| p.name == *name) {
            Some(j) if j == i => ck.report(at, key, "must name another pop, not this one"),
            Some(j) => up[i] = Some(j),
            None => ck.report(at, key, format!("no [[pops]] entry is named {name:?}")),
        }
    }
    let mut in_reported_cycle = vec![false; pops.len()];
    for start in 0..pops.len() {
        let mut chain = vec![start];
        let mut next = up[start];
        while let Some(j) = next {
            if let Some(k) = chain.iter().position(|&c| c == j) {
                let cycle = &chain[k..];
                if !cycle.iter().any(|&c| in_reported_cycle[c]) {
                    cycle.iter().for_each(|&c| in_reported_cycle[c] = true);
                    let first = cycle.iter().copied().min().unwrap_or(j);
                    let names: Vec<&str> = cycle.iter().chain([&j]).map(|&c| pops[c].name.as_str()).collect();
                    let at = entries[first].get_ref().parent.as_ref().map_or(0, |p| p.span().start);
                    ck.report(at, format!("pops[{first}].parent"), format!("parent cycle: {}", names.join(" -> ")));
                }
                break;
            }
            chain.push(j);
            next = up[j];
        }
    }
}

/// The index of this node's pop, checked against `node.pop` and `node.id`.
fn membership(node: &NodeFile, node_pos: usize, id: &str, pops: &[PopConfig], ck: &mut Checker<'_>) -> Option<usize> {
    let listed = |p: &PopConfig| p.nodes.iter().any(|n| n.id == id);
    let id_at = node.id.as_ref().map_or(node_pos, |v| v.span().start);
    let defaulted = if node.id.is_none() { " (node.id is not set; it defaults to the host name)" } else { "" };
    if pops.is_empty() {
        if let Some(v) = &node.pop {
            ck.report(v.span().start, "node.pop", "no [[pops]] are defined; omit node.pop for a standalone node");
        }
        return None;
    }
    match &node.pop {
        Some(v) => {
            let Some(i) = pops.iter().position(|p| p.name == *v.get_ref()) else {
                ck.report(v.span().start, "node.pop", format!("no [[pops]] entry is named {:?}", v.get_ref()));
                return None;
            };
            if !listed(&pops[i]) {
                let members: Vec<&str> = pops[i].nodes.iter().map(|n| n.id.as_str()).collect();
                let reason = format!(
                    "{id:?} is not among the nodes of pop {:?} ({}){defaulted}",
                    pops[i].name,
                    members.join(", ")
                );
                ck.report(id_at, "node.id", reason);
            }
            Some(i)
        }
        None => {
            let found = pops.iter().position(listed);
            if found.is_none() {
                ck.report(id_at, "node.id", format!("{id:?} is not a node of any [[pops]] entry{defaulted}"));
            }
            found
        }
    }
}
