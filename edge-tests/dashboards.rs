//! The dashboards and rules of `deploy/` against real data: a two-tier topology of real nodes (2 edges under a
//! shield, over the sample origin) and a real Prometheus scraping them with the rules of `deploy/prometheus/rules/`.
//! After some traffic (hits, misses, revalidations, bypass, coalescing, errors, throttling, compression, purges),
//! **every** panel query of every dashboard, every template variable and every recording rule must return data,
//! and every rule must evaluate without error.
//!
//! Needs `prometheus` on `PATH` (Debian's package; `.ci/run` installs it). Without it the test says so loudly and
//! passes, unless `EDGECACHE_REQUIRE_PROMETHEUS=1` (set by `.ci/run`), when it fails.
//!
//! Series that other parts produce ([`PENDING`]) are checked once any node exports them; until then the queries that
//! read them are listed as pending, by name, in the test's output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::support::client;
use crate::support::processes::{Prometheus, Topology, on_path};

/// Series produced by parts built on other branches, with the part: queries reading them are checked only once a
/// node exports them.
const PENDING: &[(&str, &str)] = &[
    ("edgecache_peer_up", "cluster"),
    ("edgecache_purges_total", "purge"),
    ("edgecache_purge_duration_seconds", "purge"),
    ("edgecache_purge_unconfirmed_total", "purge"),
    ("edgecache_purge_log_entries", "purge"),
    ("edgecache_purge_tag_index_entries", "purge"),
    ("edgecache_compressed_bytes_total", "compress"),
];

/// How long traffic runs before the queries (Prometheus scrapes and evaluates every second).
const WARM_UP: Duration = Duration::from_secs(12);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One query to check: where it comes from, its PromQL, and the text that says which series it reads (the query
/// itself, or a recording rule's expression).
struct Check {
    what: String,
    query: String,
    reads: String,
}

/// Every panel target of a dashboard (rows included), with Grafana's variables replaced, and its template
/// variables as queries (`label_values(m, l)` becomes `count by (l) (m)`).
fn dashboard_checks(path: &Path) -> Vec<Check> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let board: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let vars: Vec<&str> =
        board["templating"]["list"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    assert!(vars.contains(&"pop") && vars.contains(&"node"), "{name}: template variables pop and node: {vars:?}");
    let mut checks = Vec::new();
    let mut panels: Vec<&serde_json::Value> = board["panels"].as_array().into_iter().flatten().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{name}: a target without expr: {target}"));
            let title = panel["title"].as_str().unwrap_or("?");
            let query = grafana_to_promql(expr);
            checks.push(Check { what: format!("{name} panel {title:?}"), reads: query.clone(), query });
        }
    }
    for var in board["templating"]["list"].as_array().into_iter().flatten() {
        let Some(query) = var["query"]["query"].as_str() else { continue };
        let inner = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')).expect("label_values");
        let (metric, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        let query = grafana_to_promql(&format!("count by ({}) ({metric})", label.trim()));
        checks.push(Check { what: format!("{name} variable {}", var["name"]), reads: query.clone(), query });
    }
    checks
}

/// Grafana's variables as a dashboard with "All" selected sends them.
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "10s").replace("$__range", "1m").replace("$pop", ".*").replace("$node", ".*")
}

/// Every `record:` of a rules file, with the text of its rule (to see which series it reads).
fn recording_rules(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("- record:") {
            rules.push((name.trim().to_string(), String::new()));
        } else if trimmed.starts_with("- ") {
            // The next group or alert: not part of the last rule.
            rules.push((String::new(), String::new()));
        } else if let Some((_, body)) = rules.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    rules.into_iter().filter(|(name, _)| !name.is_empty()).collect()
}

/// Traffic of every kind the dashboards show, to every node, until `until`.
async fn traffic(topology: &Topology, until: Instant) -> usize {
    let http = client();
    let edges: Vec<String> = topology.edges.iter().map(|n| format!("http://127.0.0.1:{}", n.port)).collect();
    let mut sent = 0;
    let mut round = 0usize;
    while Instant::now() < until {
        round += 1;
        let edge = &edges[round % edges.len()];
        let mut requests = Vec::new();
        for i in 0..4 {
            requests.push(http.get(format!("{edge}/static/{i}.css")));
            requests.push(http.get(format!("{edge}/bytes/{}", 512 << (i % 6))));
        }
        requests.push(http.get(format!("{edge}/static/0.css")).header("cache-control", "max-age=0"));
        requests.push(http.get(format!("{edge}/html/")).header("accept-encoding", "br, gzip"));
        // A new page each round: compression runs once per object (then its variant is a hit), so the
        // compression ratio needs new objects to have data.
        requests.push(http.get(format!("{edge}/html/?round={round}")).header("accept-encoding", "gzip"));
        requests.push(http.get(format!("{edge}/bytes/4096")).header("range", "bytes=0-99"));
        requests.push(http.get(format!("{edge}/private")));
        requests.push(http.post(format!("{edge}/api/x")).body("x"));
        requests.push(http.get(format!("{edge}/status/503")));
        requests.push(http.get(format!("{edge}/status/404")));
        requests.push(http.get(format!("{edge}/unknown/{round}")).header("cache-control", "only-if-cached"));
        requests.push(http.get(format!("{edge}/static/new-{round}.css")));
        // Coalescing: requests for one slow, new URL at once.
        for _ in 0..3 {
            requests.push(http.get(format!("{edge}/slow/100?round={round}")));
        }
        let answers = join_all(requests.into_iter().map(|r| async move {
            if let Ok(response) = r.send().await {
                let _ = response.bytes().await;
            }
        }))
        .await;
        sent += answers.len();
        if round.is_multiple_of(5) {
            let node = &topology.edges[round % topology.edges.len()];
            let purge = http
                .post(format!("http://127.0.0.1:{}/purge", node.admin_port))
                .bearer_auth(&topology.token)
                .header("content-type", "application/json")
                .body(format!("{{\"urls\": [\"http://127.0.0.1:{}/static/new-{}.css\"]}}", node.port, round - 1));
            // Answered 404 until the purge part is merged.
            let _ = purge.send().await;
        }
        // Light: the other tests run beside this one on a 2-core machine.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    sent
}

/// Whether a query answer holds at least one sample with a number (not NaN): what a panel can draw.
fn has_data(data: &serde_json::Value) -> bool {
    let value_ok = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).is_some_and(|f| !f.is_nan());
    data["result"].as_array().into_iter().flatten().any(|sample| value_ok(&sample["value"][1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_and_recording_rule_returns_data_from_a_real_topology() {
    let required = std::env::var("EDGECACHE_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1");
    let Some(prometheus_bin) = on_path("prometheus") else {
        assert!(!required, "EDGECACHE_REQUIRE_PROMETHEUS=1 but `prometheus` is not on PATH");
        eprintln!(
            "\n{}\nSKIPPED: `prometheus` is not installed (apt-get install prometheus); the dashboards and",
            "!".repeat(78)
        );
        eprintln!("rules of deploy/ were NOT checked against real data. .ci/run installs it.\n{}\n", "!".repeat(78));
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut topology = Topology::new(2, 1);
    // edge-2 throttles clients, so the throttling panels and rules see refusals.
    topology.edges[1].extra = "[throttle]\nclient_rate = 30\nclient_burst = 30\n".to_string();
    let _nodes = topology.start(dir.path()).await;
    let targets: Vec<String> = topology.nodes().map(|n| format!("127.0.0.1:{}", n.admin_port)).collect();
    let rules_dir = repo().join("deploy/prometheus/rules");
    let rule_files = vec![rules_dir.join("recording.yml"), rules_dir.join("alerts.yml")];
    let prometheus = Prometheus::start(&prometheus_bin, dir.path(), &targets, &rule_files).await;

    let warm_until = Instant::now() + WARM_UP;
    let load = {
        let topology = topology.clone();
        tokio::spawn(async move {
            let until = Instant::now() + WARM_UP + Duration::from_secs(60);
            traffic(&topology, until).await
        })
    };
    tokio::time::sleep_until(warm_until.into()).await;

    // What the nodes export: the pending series that exist are checked like the others.
    let http = client();
    let mut exported = String::new();
    for target in &targets {
        let text = http.get(format!("http://{target}/metrics")).send().await.expect("metrics").text().await;
        exported.push_str(&text.expect("metrics text"));
    }
    let missing_part =
        |query: &str| PENDING.iter().find(|(name, _)| query.contains(name) && !exported.contains(&format!("\n{name}")));

    let mut checks = Vec::new();
    for name in ["edgecache-overview.json", "edgecache-nodes.json", "edgecache-cluster.json"] {
        checks.extend(dashboard_checks(&repo().join("deploy/grafana/dashboards").join(name)));
    }
    for (record, body) in recording_rules(&rule_files[0]) {
        checks.push(Check { what: format!("recording rule {record}"), query: record, reads: body });
    }
    assert!(checks.len() > 60, "only {} queries found", checks.len());

    let (mut failed, mut pending, mut passed) = (Vec::new(), Vec::new(), 0);
    for check in &checks {
        if let Some((name, part)) = missing_part(&check.reads) {
            pending.push(format!("{} (reads {name}, from the {part} part)", check.what));
            continue;
        }
        // A series that only a recent scrape or rule evaluation has: try a few times.
        let mut last = String::new();
        let mut ok = false;
        for _ in 0..10 {
            match prometheus.query(&check.query).await {
                Ok(data) if has_data(&data) => {
                    ok = true;
                    break;
                }
                Ok(data) => last = format!("no data: {data}"),
                Err(error) => last = format!("error: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if ok {
            passed += 1;
        } else {
            failed.push(format!("{}\n    query: {}\n    {last}", check.what, check.query));
        }
    }
    // Every rule, recording or alerting, evaluates without error.
    let groups = prometheus.api("rules").await;
    let mut rules = 0;
    for group in groups["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            rules += 1;
            if rule["health"] != "ok" {
                failed.push(format!("rule {} is unhealthy: {}", rule["name"], rule["lastError"]));
            }
        }
    }
    load.abort();
    eprintln!(
        "dashboards and rules: {passed} queries returned data, {} pending, {} failed, {rules} rules evaluated",
        pending.len(),
        failed.len()
    );
    if !pending.is_empty() {
        eprintln!("PENDING (checked once the part that exports the series is merged):\n  {}", pending.join("\n  "));
    }
    assert!(rules >= 25, "the rules were not loaded: {groups}");
    assert!(failed.is_empty(), "{} queries returned no data or failed:\n{}", failed.len(), failed.join("\n"));
}
