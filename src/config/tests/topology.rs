//! Checks of `[node]`, `[[pops]]` and the keys the topology makes required.

use super::*;

/// A two-tier topology: pop "edge" (two nodes) under pop "shield" (one node).
const POPS: &str = r#"
[[pops]]
name = "edge"
parent = "shield"
nodes = [
  { id = "edge-1", url = "http://127.0.0.1:8081" },
  { id = "edge-2", url = "http://127.0.0.1:8082" },
]

[[pops]]
name = "shield"
nodes = [ { id = "shield-1", url = "http://127.0.0.1:8181" } ]
"#;

/// `[node]` + `[cluster]` + optional extra + [`POPS`]; `[[pops]]` starts at line 5 + the extra's lines.
fn cluster(node: &str, extra: &str) -> String {
    format!("[node]\n{node}\n[cluster]\nsecret = \"s\"\n{extra}{POPS}")
}

#[test]
fn a_two_tier_cluster_is_read() {
    let c = ok(&cluster("id = \"edge-2\"\npop = \"edge\"", ""));
    assert_eq!((c.node.id.as_str(), c.node.pop.as_deref()), ("edge-2", Some("edge")));
    assert_eq!(c.pops.len(), 2);
    assert_eq!(c.pops[0].parent.as_deref(), Some("shield"));
    assert_eq!(c.pops[0].nodes[1].url.port_u16(), Some(8082));
    assert_eq!(c.pops[1].parent, None);
    assert_eq!(c.origin.url, None, "an edge under a parent needs no origin");
    assert_eq!(c.cluster.parent_fallback, ParentFallback::Error, "no origin to fall back to");
}

#[test]
fn node_pop_is_inferred_from_the_node_id() {
    let c = ok(&cluster("id = \"edge-1\"", ""));
    assert_eq!(c.node.pop.as_deref(), Some("edge"));
    let c = ok(&cluster("id = \"shield-1\"", ORIGIN));
    assert_eq!(c.node.pop.as_deref(), Some("shield"));
    let defaulted = one_err(&cluster("", ""), "t.toml:1: node.id: \"test-host\" is not a node of any [[pops]] entry");
    assert!(defaulted.contains("defaults to the host name"), "{defaulted}");
}

#[test]
fn node_must_belong_to_its_pop() {
    one_err(
        &cluster("id = \"edge-1\"\npop = \"nowhere\"", ""),
        "t.toml:3: node.pop: no [[pops]] entry is named \"nowhere\"",
    );
    let e = one_err(
        &cluster("id = \"shield-1\"\npop = \"edge\"", ""),
        "t.toml:2: node.id: \"shield-1\" is not among the nodes of pop \"edge\"",
    );
    assert!(e.contains("(edge-1, edge-2)"), "{e}");
    one_err(&format!("{ORIGIN}[node]\npop = \"edge\"\n"), "t.toml:4: node.pop: no [[pops]] are defined");
}

#[test]
fn origin_url_is_required_where_misses_go_to_the_origin() {
    one_err("[node]\nid = \"a\"\n", "t.toml:1: origin.url: required for a standalone node");
    one_err("[origin]\nconnect_timeout = \"1s\"\n", "t.toml:1: origin.url: required for a standalone node");
    one_err(&cluster("id = \"shield-1\"", ""), "t.toml:1: origin.url: required: pop \"shield\" has no parent");
    let c = ok(&cluster("id = \"edge-1\"", ORIGIN));
    assert_eq!(c.cluster.parent_fallback, ParentFallback::Origin, "the origin is there to fall back to");
}

#[test]
fn an_explicit_origin_fallback_needs_an_origin() {
    let text = cluster("id = \"edge-1\"", "parent_fallback = \"origin\"\n");
    one_err(&text, "t.toml:5: cluster.parent_fallback: \"origin\" needs origin.url");
}

#[test]
fn secret_is_required_when_nodes_talk_to_each_other() {
    let no_secret = format!("[node]\nid = \"edge-1\"\n{POPS}");
    one_err(&no_secret, "t.toml:4: cluster.secret: required");
    let with_cluster = format!("[node]\nid = \"edge-1\"\n[cluster]\nparent_fallback = \"error\"\n{POPS}");
    one_err(&with_cluster, "t.toml:3: cluster.secret: required");
    let single = format!(
        "[node]\nid = \"solo\"\n{ORIGIN}[[pops]]\nname = \"only\"\nnodes = [ {{ id = \"solo\", url = \"http://127.0.0.1:1\" }} ]\n"
    );
    let c = ok(&single);
    assert_eq!((c.node.pop.as_deref(), c.cluster.secret.as_deref()), (Some("only"), None));
}

#[test]
fn names_and_ids_are_unique_across_the_topology() {
    let text = cluster("id = \"edge-1\"", "")
        .replace("name = \"shield\"", "name = \"edge\"")
        .replace("\"shield-1\"", "\"edge-2\"");
    let errors = errs(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("t.toml:15: pops[1].name: duplicate pop name \"edge\", also used by pops[0]")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with(
            "t.toml:16: pops[1].nodes[0].id: duplicate node id \"edge-2\", also used by pops[0].nodes[1]"
        )),
        "{errors:#?}"
    );
    let text = cluster("id = \"edge-1\"", ORIGIN).replace("8082", "8081");
    one_err(&text, "t.toml:13: pops[0].nodes[1].url: http://127.0.0.1:8081/ is also the url of pops[0].nodes[0]");
}

#[test]
fn pop_entries_need_a_name_and_nodes_with_id_and_url() {
    let text = format!(
        "{ORIGIN}[cluster]\nsecret = \"s\"\n[node]\nid = \"a\"\n[[pops]]\nnodes = [ {{ url = \"http://127.0.0.1:1\" }}, {{ id = \"a\" }} ]\n[[pops]]\nname = \"x\"\n[[pops]]\nname = \"y\"\nnodes = []\n"
    );
    let errors = errs(&text);
    let keys: Vec<&str> = errors.iter().map(|e| e.split(": ").next().unwrap_or("")).collect();
    assert_eq!(keys, ["t.toml:7", "t.toml:8", "t.toml:8", "t.toml:9", "t.toml:13"], "{errors:#?}");
    assert!(errors[0].contains("pops[0].name: required"), "{}", errors[0]);
    assert!(errors[1].contains("pops[0].nodes[0].id: required"), "{}", errors[1]);
    assert!(errors[2].contains("pops[0].nodes[1].url: required"), "{}", errors[2]);
    assert!(errors[3].contains("pops[1].nodes: required"), "{}", errors[3]);
    assert!(errors[4].contains("pops[2].nodes: at least one node"), "{}", errors[4]);
}

#[test]
fn parents_name_another_pop() {
    let text = cluster("id = \"edge-1\"", ORIGIN).replace("parent = \"shield\"", "parent = \"nowhere\"");
    one_err(&text, "t.toml:10: pops[0].parent: no [[pops]] entry is named \"nowhere\"");
    let text = cluster("id = \"edge-1\"", ORIGIN).replace("parent = \"shield\"", "parent = \"edge\"");
    one_err(&text, "t.toml:10: pops[0].parent: must name another pop");
}

#[test]
fn parent_cycles_are_reported_once() {
    let text = cluster("id = \"edge-1\"", ORIGIN).replace("name = \"shield\"", "name = \"shield\"\nparent = \"edge\"");
    one_err(&text, "t.toml:10: pops[0].parent: parent cycle: edge -> shield -> edge");

    let three = r#"[node]
id = "a"
[cluster]
secret = "s"
[[pops]]
name = "top"
nodes = [ { id = "t", url = "http://127.0.0.1:3" } ]
[[pops]]
name = "a"
parent = "b"
nodes = [ { id = "a", url = "http://127.0.0.1:1" } ]
[[pops]]
name = "b"
parent = "c"
nodes = [ { id = "b", url = "http://127.0.0.1:2" } ]
[[pops]]
name = "c"
parent = "a"
nodes = [ { id = "c", url = "http://127.0.0.1:4" } ]
"#;
    one_err(three, "t.toml:10: pops[1].parent: parent cycle: a -> b -> c -> a");
}

#[test]
fn node_urls_are_base_urls() {
    let text = cluster("id = \"edge-1\"", ORIGIN).replace("http://127.0.0.1:8082", "127.0.0.1:8082");
    one_err(&text, "t.toml:13: pops[0].nodes[1].url: invalid URL");
}
