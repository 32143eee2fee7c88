//! The shipped configs pass `edgecache check`: every `*.toml` under `config/` and `deploy/`. A file without a
//! `[node]` table (the Kubernetes one: `node.id` is the pod's host name) is checked once as each node of its
//! topology reads it. The Kubernetes ConfigMap carries exactly `deploy/k8s/edgecache.toml`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// Runs `edgecache check` on `path`; the failure text, if it fails.
fn check(path: &Path) -> Result<(), String> {
    let output = Command::new(env!("CARGO_BIN_EXE_edgecache"))
        .args(["check", "--config"])
        .arg(path)
        .env_remove("EDGECACHE_ADMIN_TOKEN")
        .output()
        .expect("run edgecache check");
    match output.status.success() {
        true => Ok(()),
        false => Err(format!("{}: {}", path.display(), String::from_utf8_lossy(&output.stderr))),
    }
}

/// The ids of the `[[pops]]` nodes of a config text (`{ id = "...", url = "..." }` entries).
fn topology_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("{ id = \""))
        .filter_map(|rest| rest.split_once('"').map(|(id, _)| id.to_string()))
        .collect()
}

#[test]
fn every_shipped_config_passes_check() {
    let mut files = Vec::new();
    toml_files(&repo().join("config"), &mut files);
    toml_files(&repo().join("deploy"), &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read config");
        if text.lines().any(|l| l.trim() == "[node]") {
            checked += 1;
            failures.extend(check(path).err());
            continue;
        }
        let ids = topology_ids(&text);
        assert!(!ids.is_empty(), "{}: no [node] and no topology to take a node from", path.display());
        for id in ids {
            // The same folder name, so relative paths in the file resolve alike.
            let copy = dir.path().join(format!("{id}.toml"));
            std::fs::write(&copy, format!("[node]\nid = \"{id}\"\n\n{text}")).expect("write copy");
            checked += 1;
            failures.extend(check(&copy).err().map(|e| format!("{} as node {id}: {e}", path.display())));
        }
    }
    assert!(failures.is_empty(), "{} of {checked} failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_kubernetes_configmap_carries_the_checked_config() {
    let k8s = repo().join("deploy/k8s");
    let config = std::fs::read_to_string(k8s.join("edgecache.toml")).expect("edgecache.toml");
    let map = std::fs::read_to_string(k8s.join("configmap.yaml")).expect("configmap.yaml");
    let (_, block) = map.split_once("  edgecache.toml: |\n").expect("the edgecache.toml key");
    let embedded: String =
        block.lines().map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l.trim_start()))).collect();
    assert_eq!(embedded, config, "deploy/k8s/configmap.yaml differs from deploy/k8s/edgecache.toml");
}

#[test]
fn every_file_the_compose_stack_mounts_exists() {
    let deploy = repo().join("deploy");
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).expect("docker-compose.yml");
    let mounts: Vec<&str> = compose
        .split(['"', ' ', '['])
        .filter_map(|word| word.strip_prefix("./"))
        .filter_map(|mount| mount.split_once(':').map(|(path, _)| path))
        .collect();
    assert!(mounts.len() >= 9, "{mounts:?}");
    for path in &mounts {
        assert!(deploy.join(path).exists(), "docker-compose.yml mounts ./{path}, which does not exist");
    }
    for node in ["edge-1", "edge-2", "edge-3", "shield-1", "shield-2"] {
        assert!(mounts.contains(&format!("compose/{node}.toml").as_str()), "{node} has its config mounted");
    }
    // The dashboards Grafana is told to load, and its home dashboard.
    let provisioning = std::fs::read_to_string(deploy.join("grafana/provisioning/dashboards/edgecache.yml"));
    assert!(provisioning.expect("provisioning").contains("path: /var/lib/grafana/dashboards/edgecache"));
    assert!(compose.contains("./grafana/dashboards:/var/lib/grafana/dashboards/edgecache:ro"));
    assert!(deploy.join("grafana/dashboards/edgecache-overview.json").exists());
}
