//! Purge across a topology of real nodes: fan-out to every node (200 listing all; 202 naming a node that is down),
//! a node that starts late pulling the log, tiers (an edge whose upstream is a shield node) including the refill
//! race, and a node SIGSTOPped during a purge that must not serve the old content once resumed.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::processes::Running;
use crate::support::purge_nodes::{
    Planned, SECRET, TOKEN, config_of, confirmations, free_port, metric, next_second, plan, purge, start,
};
use crate::support::{Reply, TestNode, TestOrigin, cache_status, client};

fn versioned(cache_control: &'static str) -> (Arc<AtomicUsize>, TestOriginHandler) {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let handler: TestOriginHandler = Box::new(move |seen, _| {
        Reply::ok(format!("v{} {}", v.load(Ordering::SeqCst), seen.path_and_query), &[("cache-control", cache_control)])
    });
    (version, handler)
}

type TestOriginHandler = Box<dyn Fn(&crate::support::origin::Seen, usize) -> Reply + Send + Sync>;

async fn body(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.expect("get").text().await.expect("body")
}

fn ids(plan: &[Planned]) -> Vec<String> {
    plan.iter().map(|n| n.id.clone()).collect()
}

#[tokio::test]
async fn a_purge_is_confirmed_by_every_node_of_every_pop() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let plan = plan(&[("edge", 2), ("shield", 1)]);
    let mut nodes = Vec::new();
    for node in &plan {
        nodes.push(start(config_of(&plan, node, &origin.url())).await);
    }
    let http = client();
    for node in &plan {
        assert_eq!(body(&http, node.url("/x")).await, "v1 /x");
    }
    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &nodes[1], r#"{"urls": ["http://127.0.0.1/x"], "hosts": ["127.0.0.1"]}"#).await;
    assert_eq!(status, 200, "{answer}");
    let mut confirmed: Vec<String> =
        confirmations(&answer).into_iter().filter(|(_, ok)| *ok).map(|(id, _)| id).collect();
    confirmed.sort();
    assert_eq!(confirmed, ids(&plan), "{answer}");
    for node in &plan {
        assert_eq!(body(&http, node.url("/x")).await, "v2 /x", "{}", node.id);
    }
    for node in &nodes {
        assert_eq!(metric(&http, node, "edgecache_purges_total", &["kind=\"url\""]).await, 1.0);
    }
}

#[tokio::test]
async fn a_node_that_is_down_is_named_in_a_202_and_pulls_the_purge_when_it_starts() {
    let (_, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let plan = plan(&[("edge", 3)]);
    let first = start(config_of(&plan, &plan[0], &origin.url())).await;
    let second = start(config_of(&plan, &plan[1], &origin.url())).await;
    let http = client();
    let (status, answer) = purge(&http, &first, r#"{"tags": ["t"], "id": "while-3-was-down"}"#).await;
    assert_eq!(status, 202, "{answer}");
    let answers = confirmations(&answer);
    assert!(answers.contains(&("edge-1".to_string(), true)) && answers.contains(&("edge-2".to_string(), true)));
    assert!(answers.contains(&("edge-3".to_string(), false)), "the down node is named: {answer}");
    assert_eq!(metric(&http, &first, "edgecache_purge_unconfirmed_total", &[]).await, 1.0);
    assert_eq!(metric(&http, &second, "edgecache_purge_log_entries", &[]).await, 1.0);

    let third = start(config_of(&plan, &plan[2], &origin.url())).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&http, &third, "edgecache_purge_log_entries", &[]).await != 1.0 {
        assert!(Instant::now() < deadline, "the late node never pulled the purge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&http, &third, "edgecache_purges_total", &["kind=\"tag\""]).await, 1.0);
}

/// An edge whose upstream is a shield node of the same topology, and the shield in front of the origin.
async fn two_tiers(origin: &TestOrigin) -> (Vec<Planned>, TestNode, TestNode) {
    let plan = plan(&[("edge", 1), ("shield", 1)]);
    let shield = start(config_of(&plan, &plan[1], &origin.url())).await;
    let edge = start(config_of(&plan, &plan[0], &plan[1].url(""))).await;
    (plan, edge, shield)
}

/// Sends `purge` to one node only, as a peer would.
async fn push_to(http: &reqwest::Client, node: &Planned, purge: &str) {
    let response = http
        .post(node.url("/.edgecache/purge"))
        .header("edgecache-peer", "test-peer")
        .header("edgecache-peer-auth", SECRET)
        .body(purge.to_string())
        .send()
        .await
        .expect("push");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

#[tokio::test]
async fn a_purge_goes_through_every_tier() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let (plan, edge, _shield) = two_tiers(&origin).await;
    let http = client();
    assert_eq!(body(&http, plan[0].url("/t")).await, "v1 /t");
    let hit = http.get(plan[0].url("/t")).send().await.expect("get");
    assert!(cache_status(&hit).contains("hit"));
    assert_eq!(origin.hits(), 1, "the shield fetched it once; the edge has it from the shield");

    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &edge, r#"{"prefixes": ["http://127.0.0.1/"], "hosts": ["127.0.0.1"]}"#).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body(&http, plan[0].url("/t")).await, "v2 /t", "neither tier serves the old copy");
    next_second().await;
    assert_eq!(body(&http, plan[0].url("/t")).await, "v2 /t");
    let hit = http.get(plan[0].url("/t")).send().await.expect("get");
    assert!(cache_status(&hit).contains("hit"), "refilled once: {}", cache_status(&hit));
}

#[tokio::test]
async fn the_refill_race_an_edge_purged_before_its_shield_does_not_keep_the_shields_old_copy() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let (plan, _edge, _shield) = two_tiers(&origin).await;
    let http = client();
    assert_eq!(body(&http, plan[0].url("/race")).await, "v1 /race");
    version.store(2, Ordering::SeqCst);
    next_second().await;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let record = format!(r#"{{"id": "race-1", "at": {now}, "urls": ["127.0.0.1:{}/race"]}}"#, plan[0].port);
    // The purge reaches the edge first: the edge refills from the shield, which still has the old copy.
    push_to(&http, &plan[0], &record).await;
    assert_eq!(body(&http, plan[0].url("/race")).await, "v1 /race", "before the shield has it: its old copy");
    // Now the shield applies it too (the moment the purge is confirmed): the old copy the edge took from the shield
    // is older than the purge, so the edge does not serve it.
    push_to(&http, &plan[1], &record).await;
    assert_eq!(body(&http, plan[0].url("/race")).await, "v2 /race");
    assert_eq!(body(&http, plan[0].url("/race")).await, "v2 /race");
}

#[tokio::test]
async fn a_soft_purge_is_not_handed_down_as_fresh_by_a_shield() {
    let (version, handler) = versioned("max-age=300, stale-while-revalidate=30");
    let origin = TestOrigin::start(handler).await;
    let (plan, edge, _shield) = two_tiers(&origin).await;
    let http = client();
    assert_eq!(body(&http, plan[0].url("/soft")).await, "v1 /soft");
    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &edge, r#"{"everything": true, "soft": true}"#).await;
    assert_eq!(status, 200, "{answer}");
    // The shield may answer with its stale copy (stale-while-revalidate) but the edge knows the copy is older than
    // the purge: it never counts it as fresh, and v2 arrives within a few requests.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = http.get(plan[0].url("/soft")).send().await.expect("get");
        let status = cache_status(&response);
        let text = response.text().await.expect("body");
        if text == "v2 /soft" {
            break;
        }
        assert!(!status.contains("hit") || status.contains("ttl=-"), "old copy served as fresh: {status}");
        assert!(Instant::now() < deadline, "v2 never reached the edge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child `edgecache` process for `node` of `plan`, with its admin listener on `admin`.
fn spawn_child(plan: &[Planned], node: &Planned, origin_url: &str, admin: u16, dir: &std::path::Path) -> Running {
    let path = dir.join(format!("{}.toml", node.id));
    let mut file = std::fs::File::create(&path).expect("config");
    let mut text = format!(
        "[node]\nid = \"{}\"\npop = \"{}\"\n[server]\nlisten = [\"127.0.0.1:{}\"]\n[origin]\nurl = \"{origin_url}\"\n\
         [cluster]\nsecret = \"{SECRET}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n\
         [purge]\nfanout_timeout = \"1s\"\n",
        node.id, node.pop, node.port
    );
    let mut pops: Vec<&str> = plan.iter().map(|n| n.pop.as_str()).collect();
    pops.dedup();
    for pop in pops {
        text.push_str(&format!("[[pops]]\nname = \"{pop}\"\nnodes = [\n"));
        for n in plan.iter().filter(|n| n.pop == pop) {
            text.push_str(&format!("  {{ id = \"{}\", url = \"{}\" }},\n", n.id, n.url("")));
        }
        text.push_str("]\n");
    }
    file.write_all(text.as_bytes()).expect("write config");
    // Killed on drop, stopped or not: a failed assertion leaves no node behind.
    let config = path.to_str().expect("a UTF-8 path");
    Running::spawn("edgecache", &crate::support::processes::edgecache_bin(), &["--config", config], None)
}

fn signal(child: &Running, signal: &str) {
    let sent = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().expect("kill");
    assert!(sent.success(), "kill -{signal}");
}

/// Waits until the kernel reports `child` stopped (`State: T`).
async fn stopped(child: &Running) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        if status.lines().any(|l| l.starts_with("State:") && l.contains("T (stopped)")) {
            return;
        }
        assert!(Instant::now() < deadline, "the child did not stop: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_node_stopped_during_a_purge_does_not_serve_the_old_content_once_resumed() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    // Two pops of one node each: the stopped node owns every key it is asked for (no routing to its peer).
    let plan = plan(&[("edge", 1), ("other", 1)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = free_port();
    let child = spawn_child(&plan, &plan[1], &origin.url(), admin, dir.path());
    let mut config = config_of(&plan, &plan[0], &origin.url());
    config.purge.fanout_timeout = Duration::from_secs(1);
    let running = start(config).await;
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http.get(format!("http://127.0.0.1:{admin}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "child node did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body(&http, plan[1].url("/stop")).await, "v1 /stop");
    assert!(cache_status(&http.get(plan[1].url("/stop")).send().await.expect("get")).contains("hit"));
    version.store(2, Ordering::SeqCst);

    signal(&child, "STOP");
    stopped(&child).await;
    let (status, answer) = purge(&http, &running, r#"{"everything": true}"#).await;
    // Stopped well beyond the pause a node notices (1 s), as a frozen VM or a long GC would be.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    signal(&child, "CONT");
    assert_eq!(status, 202, "{answer}");
    assert!(confirmations(&answer).contains(&("other-1".to_string(), false)), "{answer}");
    let served = body(&http, plan[1].url("/stop")).await;
    signal(&child, "TERM");
    drop(child);
    assert_eq!(served, "v2 /stop", "the resumed node caught up before serving from its cache");
}
