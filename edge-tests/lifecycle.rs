//! The process as an operator runs it: `edgecache --config FILE` serves until SIGTERM, then lets in-flight requests
//! finish before it exits 0.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::processes::Running;
use crate::support::{Reply, TestOrigin, client, free_port};

#[tokio::test]
async fn sigterm_drains_an_in_flight_request_then_exits_zero() {
    drains_on_sigterm(&[]).await;
}

/// With one CPU to run on, the node runs a single-threaded runtime: it must serve, cache and drain the same.
#[tokio::test]
async fn on_one_cpu_the_node_serves_from_cache_and_drains_on_sigterm() {
    let cpu = first_allowed_cpu();
    drains_on_sigterm(&["taskset", "-c", &cpu]).await;
}

/// The first CPU this process may run on (CPU 0 may not be in a CI runner's set), from `/proc/self/status`.
fn first_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list");
    let first = list.trim().split([',', '-']).next().unwrap_or("0");
    assert!(first.parse::<u32>().is_ok(), "a CPU number: {list}");
    first.to_string()
}

/// Starts the binary (behind `wrapper`, a command that runs it, if any), checks that a second request for a
/// cacheable URL is a hit, then sends SIGTERM while a slow request is in flight: it must finish, then the node
/// exits 0 and stops listening.
async fn drains_on_sigterm(wrapper: &[&str]) {
    let origin = TestOrigin::start(|seen, _| {
        if seen.path_and_query == "/cached" {
            return Reply::ok("kept", &[("cache-control", "max-age=60")]);
        }
        let reply = Reply::ok("finished", &[("cache-control", "no-store")]);
        if seen.path_and_query == "/slow" { reply.delayed(Duration::from_millis(1500)) } else { reply }
    })
    .await;
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edgecache.toml");
    let mut file = std::fs::File::create(&path).expect("config");
    write!(
        file,
        "[node]\nid = \"drain-test\"\n[server]\nlisten = [\"127.0.0.1:{port}\"]\ndrain_timeout = \"10s\"\n\
         [origin]\nurl = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        origin.url()
    )
    .expect("write config");

    let config = path.to_str().expect("a UTF-8 path");
    let argv: Vec<&str> =
        wrapper.iter().copied().chain([env!("CARGO_BIN_EXE_edgecache"), "--config", config]).collect();
    // Killed on drop: a failed assertion leaves no node running.
    let mut child = Running::spawn("edgecache", std::path::Path::new(argv[0]), &argv[1..], None);
    crate::support::wait_ready(admin).await;
    let http = client();
    for expected in ["fwd=uri-miss", "; hit"] {
        let answer = http.get(format!("http://127.0.0.1:{port}/cached")).send().await.expect("cached url");
        let status = answer.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(answer.text().await.expect("body"), "kept");
        assert!(status.contains(expected), "{expected}: {status}");
    }
    let fetched = origin.seen().iter().filter(|seen| seen.path_and_query == "/cached").count();
    assert_eq!(fetched, 1, "the second request was served from cache");

    let in_flight = tokio::spawn({
        let http = http.clone();
        async move { http.get(format!("http://127.0.0.1:{port}/slow")).send().await?.text().await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    assert!(killed.success());

    let body = in_flight.await.expect("task").expect("the in-flight request completes");
    assert_eq!(body, "finished");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.exited() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "node did not exit after draining");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer listening");
}
