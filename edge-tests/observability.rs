//! What an operator sees of a node: the delivery series on `/metrics` (bytes by source, stored sizes, freshness
//! left at hits) and the access log (`log.access`, `--log-format json`) of the real binary.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Reply, TestNode, TestOrigin, client, free_port};

/// The value of the sample of metric `name` with exactly `labels` (in any order) in a Prometheus text exposition.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    metrics.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        let mut have: Vec<String> =
            rest.strip_suffix('}')?.split(',').filter(|l| !l.is_empty()).map(str::to_string).collect();
        have.sort();
        (metric == name && have == want).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn delivery_series_count_bytes_by_source_stored_sizes_and_ttl_left() {
    let origin = TestOrigin::start(|seen, _| match seen.path_and_query.as_str() {
        "/private" => Reply::ok("p".repeat(300), &[("cache-control", "private")]),
        "/slow" => Reply::ok("s".repeat(500), &[("cache-control", "max-age=300")]).delayed(Duration::from_millis(500)),
        _ => Reply::ok("x".repeat(1000), &[("cache-control", "max-age=300")]),
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for path in ["/a", "/a", "/a", "/private"] {
        let body = http.get(node.url(path)).send().await.expect("request").bytes().await.expect("body");
        assert!(!body.is_empty());
    }
    // One fetch for three requests at once: the leader's bytes are its own fetch's, the waiters' are coalesced.
    let together = (0..3).map(|_| async { http.get(node.url("/slow")).send().await?.bytes().await });
    for body in futures_util::future::join_all(together).await {
        assert_eq!(body.expect("coalesced answer").len(), 500);
    }
    let missing = http.get(node.url("/nowhere")).header("cache-control", "only-if-cached").send().await;
    let missing = missing.expect("request");
    assert_eq!(missing.status(), 504);
    let _ = missing.bytes().await;

    // Bytes are counted when the server drops the body, just after the client has it: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let node_labels = [("node", "test-edge"), ("pop", "standalone")];
    let with = |extra: &[(&'static str, &'static str)]| [&node_labels[..], extra].concat();
    loop {
        let metrics = http.get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        let served = |source: &'static str| {
            sample(&metrics, "edgecache_served_bytes_total", &with(&[("source", source)])).unwrap_or(0.0)
        };
        let settled = served("cache") + served("coalesced") == 3000.0
            && served("upstream") == 1800.0
            && served("generated") > 0.0;
        if settled || Instant::now() > deadline {
            assert_eq!(served("upstream"), 1800.0, "misses of 1000 and 500 bytes, a private answer of 300\n{metrics}");
            // Two hits of 1000 bytes, and two waiters of 500 (a waiter that came late gets a hit instead).
            assert_eq!(served("cache") + served("coalesced"), 3000.0, "{metrics}");
            assert!(served("coalesced") >= 500.0, "{metrics}");
            assert!(served("generated") > 0.0, "the 504 page\n{metrics}");
            let size =
                |suffix: &str, extra| sample(&metrics, &format!("edgecache_object_size_bytes_{suffix}"), &with(extra));
            assert_eq!(size("count", &[]), Some(2.0), "two objects stored\n{metrics}");
            assert_eq!(size("sum", &[]), Some(1500.0), "{metrics}");
            assert_eq!(size("bucket", &[("le", "1024")]), Some(2.0), "{metrics}");
            assert_eq!(size("bucket", &[("le", "256")]), Some(0.0), "{metrics}");
            let ttl =
                |suffix: &str, extra| sample(&metrics, &format!("edgecache_hit_ttl_seconds_{suffix}"), &with(extra));
            let hits = 2.0 + (1000.0 - served("coalesced")) / 500.0;
            assert_eq!(ttl("count", &[]), Some(hits), "{metrics}");
            assert_eq!(ttl("bucket", &[("le", "300")]), Some(hits), "about 300 s left at every hit\n{metrics}");
            assert_eq!(ttl("bucket", &[("le", "60")]), Some(0.0), "{metrics}");
            let info = sample(&metrics, "edgecache_build_info", &with(&[("version", env!("CARGO_PKG_VERSION"))]));
            assert_eq!(info, Some(1.0), "{metrics}");
            let capacity = sample(&metrics, "edgecache_cache_capacity_bytes", &node_labels);
            assert_eq!(capacity, Some(256.0 * 1024.0 * 1024.0), "cache.memory\n{metrics}");
            let started = sample(&metrics, "edgecache_start_time_seconds", &node_labels);
            assert!(started.is_some_and(|t| t > 1e9), "{metrics}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the binary with `log_table` in its config and `--log-format json`, sends `paths`, stops it with SIGTERM
/// and returns its stderr lines that are JSON access records.
async fn access_lines(origin: &TestOrigin, log_table: &str, paths: &[&str]) -> Vec<serde_json::Value> {
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edgecache.toml");
    let mut file = std::fs::File::create(&path).expect("config");
    write!(
        file,
        "[node]\nid = \"log-test\"\n[server]\nlisten = [\"127.0.0.1:{port}\"]\n[origin]\nurl = \"{}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n{log_table}\n",
        origin.url()
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_edgecache"))
        .args(["--log-format", "json", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgecache");
    crate::support::wait_ready(admin).await;
    let http = client();
    for p in paths {
        let response = http.get(format!("http://127.0.0.1:{port}{p}")).header("user-agent", "obs-test/1").send();
        let _ = response.await.expect("request").bytes().await.expect("body");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    stderr
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|v| v["target"] == "access")
        .collect()
}

#[tokio::test]
async fn the_access_log_writes_one_json_line_per_request_with_cache_upstream_timings_and_bytes() {
    let origin = TestOrigin::start(|_, _| Reply::ok("y".repeat(2048), &[("cache-control", "max-age=60")])).await;
    let lines = access_lines(&origin, "[log]\naccess = true", &["/page?q=1", "/page?q=1"]).await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let (miss, hit) = (&lines[0], &lines[1]);
    for line in &lines {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "access");
        assert_eq!(line["node"], "log-test");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["uri"], "/page?q=1");
        assert_eq!(line["code"], 200);
        assert_eq!(line["bytes"], 2048);
        assert_eq!(line["complete"], true);
        assert_eq!(line["user_agent"], "obs-test/1");
        assert!(line["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")), "{line}");
        assert!(line["host"].as_str().is_some_and(|h| h.starts_with("127.0.0.1:")), "{line}");
        let (ttfb, total) = (line["ttfb_us"].as_u64().expect("ttfb"), line["total_us"].as_u64().expect("total"));
        assert!(ttfb <= total, "{line}");
    }
    assert_eq!(miss["cache"], "miss");
    assert_eq!(miss["upstream"], "origin");
    assert!(miss["upstream_us"].as_u64().is_some(), "{miss}");
    assert!(miss["cache_status"].as_str().is_some_and(|s| s.starts_with("log-test; fwd=uri-miss")), "{miss}");
    assert_eq!(hit["cache"], "hit");
    assert_eq!(hit["upstream"], "-");
    assert!(hit.get("upstream_us").is_none(), "nothing went upstream: {hit}");
    assert!(hit["cache_status"].as_str().is_some_and(|s| s.starts_with("log-test; hit")), "{hit}");
}

#[tokio::test]
async fn with_log_access_false_no_access_line_is_written_at_the_default_level() {
    let origin = TestOrigin::start(|_, _| Reply::ok("z", &[("cache-control", "max-age=60")])).await;
    let lines = access_lines(&origin, "[log]\naccess = false", &["/a", "/a"]).await;
    assert!(lines.is_empty(), "{lines:#?}");
}

#[test]
fn log_access_is_a_checked_config_key_shown_in_the_effective_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |text: &str| {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).expect("write config");
        let output = Command::new(env!("CARGO_BIN_EXE_edgecache")).arg("check").arg("--config").arg(&path).output();
        let output = output.expect("run edgecache check");
        (output.status.code(), String::from_utf8_lossy(&output.stdout).to_string(), {
            String::from_utf8_lossy(&output.stderr).to_string()
        })
    };
    let origin = "[origin]\nurl = \"http://127.0.0.1:9000\"\n";
    let (code, stdout, stderr) = run(&format!("{origin}[log]\naccess = true\n"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("[log]\naccess = true"), "{stdout}");
    let (code, stdout, _) = run(origin);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("[log]\naccess = false"), "off by default: {stdout}");
    let (code, _, stderr) = run(&format!("{origin}[log]\naccess = \"yes\"\nformat = \"json\"\n"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(":4: log.access: "), "{stderr}");
    assert!(stderr.contains(":5: log.format: "), "unknown keys are errors: {stderr}");
}
