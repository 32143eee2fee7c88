//! The shipped example files, and `to_effective_toml` read back by `parse`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;

const REFERENCE: &str = include_str!("../../../config/edgecache.toml");
const CLUSTER_EXAMPLE: &str = include_str!("../../../config/cluster-example.toml");

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// A file that sets every key; certificate paths are relative to the folder it is parsed in.
const EVERYTHING: &str = r#"
[node]
id = "edge-1"
pop = "edge"
[server]
listen = ["127.0.0.1:8080", "[::1]:8080"]
tls_listen = ["127.0.0.1:8443"]
max_header_size = "32KiB"
max_headers = 64
header_read_timeout = "5s"
idle_timeout = "2m"
drain_timeout = "1m30s"
[[server.tls]]
cert = "a.pem"
key = "a.key"
[[server.tls]]
cert = "b.pem"
key = "b.key"
[origin]
url = "https://origin.example.com:8443"
connect_timeout = "500ms"
response_timeout = "1m"
pool_idle_timeout = "45s"
pool_max_idle_per_host = 0
ca_file = "ca.pem"
[cache]
memory = "1GiB"
max_object_size = "1500"
[cluster]
secret = "s3cret"
parent_fallback = "error"
probe_interval = "5s"
hot_key_rate = 0
hot_key_ttl = "500ms"
[compression]
algorithms = ["zstd", "gzip", "br"]
min_size = 0
[throttle]
client_rate = 100
client_burst = 200
origin_rate = 500
origin_burst = 100
origin_max_inflight = 64
origin_queue_timeout = "500ms"
exempt_hits = true
trusted_proxies = ["10.0.0.0/8", "::1"]
[admin]
listen = "off"
token = "t0ken"
[[pops]]
name = "edge"
parent = "shield"
nodes = [ { id = "edge-1", url = "http://127.0.0.1:8081" }, { id = "edge-2", url = "http://127.0.0.1:8082" } ]
[[pops]]
name = "shield"
nodes = [ { id = "shield-1", url = "https://127.0.0.1:8181" } ]
"#;

/// A folder holding the files [`EVERYTHING`] names.
fn everything_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for name in ["a.pem", "a.key", "b.pem", "b.key", "ca.pem"] {
        std::fs::write(dir.path().join(name), "pem")?;
    }
    Ok(dir)
}

#[test]
fn the_reference_file_parses_and_its_values_are_the_defaults() {
    let reference = match parse_in(REFERENCE, &config_dir()) {
        Ok(c) => c,
        Err(e) => panic!("config/edgecache.toml must be valid:\n{e}"),
    };
    assert_eq!(
        to_effective_toml(&reference),
        to_effective_toml(&ok(ORIGIN)),
        "a value in edgecache.toml is not the default"
    );
}

#[test]
fn the_cluster_example_parses() {
    let c = match parse_in(CLUSTER_EXAMPLE, &config_dir()) {
        Ok(c) => c,
        Err(e) => panic!("config/cluster-example.toml must be valid:\n{e}"),
    };
    assert_eq!((c.node.id.as_str(), c.node.pop.as_deref()), ("edge-eu-1", Some("edge-eu")));
    assert_eq!(c.pops.len(), 2);
    assert_eq!(c.cluster.secret.as_deref(), Some("change-me"));
}

/// `section.key` for every key written (or commented out) in `text`; keys of inline tables in an array of a
/// section count as `section.array.key` (`pops.nodes.id`).
fn keys_in(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut array = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| c == '#' || c.is_whitespace());
        if line.starts_with('[') {
            section = line.split('#').next().unwrap_or("").trim().trim_matches(['[', ']']).to_string();
            continue;
        }
        let inline = line.starts_with('{');
        for part in line.trim_start_matches('{').split(',') {
            let Some((key, _)) = part.split_once(" = ") else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            if inline {
                keys.insert(format!("{section}.{array}.{key}"));
            } else {
                keys.insert(format!("{section}.{key}"));
                array = key.to_string();
                break;
            }
        }
    }
    keys
}

#[test]
fn the_examples_document_every_key() -> std::io::Result<()> {
    let dir = everything_dir()?;
    let everything = parse_in(EVERYTHING, dir.path()).map_err(|e| std::io::Error::other(e.to_string()))?;
    let effective = keys_in(&to_effective_toml(&everything));
    assert!(effective.len() > 30, "{effective:?}");
    assert!(effective.contains("pops.nodes.url") && effective.contains("server.tls.key"), "{effective:?}");
    let documented = keys_in(&format!("{REFERENCE}\n{CLUSTER_EXAMPLE}"));
    let missing: Vec<&String> = effective.difference(&documented).collect();
    assert!(missing.is_empty(), "keys the example files do not document: {missing:?}");
    Ok(())
}

/// `cfg` as `parse` reads it back from `to_effective_toml`: secrets masked.
fn masked(cfg: &Config) -> String {
    let mut cfg = cfg.clone();
    cfg.cluster.secret = cfg.cluster.secret.map(|_| "<set>".to_string());
    cfg.admin.token = cfg.admin.token.map(|_| "<set>".to_string());
    format!("{cfg:?}")
}

fn round_trip(cfg: &Config, dir: &Path) {
    let once = to_effective_toml(cfg);
    let again = match parse_in(&once, dir) {
        Ok(c) => c,
        Err(e) => panic!("parse rejects the effective config:\n{e}\n--- text:\n{once}"),
    };
    assert_eq!(masked(&again), masked(cfg), "--- text:\n{once}");
    assert_eq!(to_effective_toml(&again), once);
}

#[test]
fn the_effective_config_reads_back_the_same() -> std::io::Result<()> {
    let dir = everything_dir()?;
    let everything = parse_in(EVERYTHING, dir.path()).map_err(|e| std::io::Error::other(e.to_string()))?;
    round_trip(&everything, dir.path());
    round_trip(&ok(ORIGIN), dir.path());
    for text in [REFERENCE, CLUSTER_EXAMPLE] {
        let c = parse_in(text, &config_dir()).map_err(|e| std::io::Error::other(e.to_string()))?;
        round_trip(&c, dir.path());
    }
    let text = to_effective_toml(&everything);
    assert!(!text.contains("s3cret") && !text.contains("t0ken"), "secrets must not be printed:\n{text}");
    assert!(text.contains("listen = \"off\""), "{text}");
    Ok(())
}

#[test]
fn the_effective_config_of_a_defaulted_edge_keeps_its_fallback() {
    let c =
        ok(&CLUSTER_EXAMPLE.replace("url = \"http://127.0.0.1:9000\"", "").replace("parent_fallback = \"origin\"", ""));
    assert_eq!(c.cluster.parent_fallback, ParentFallback::Error);
    let text = to_effective_toml(&c);
    assert!(text.contains("parent_fallback = \"error\""), "{text}");
    round_trip(&c, Path::new("/"));
}
