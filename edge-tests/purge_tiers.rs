//! Purge through the tiers of a real cluster (3 edges routing to their key's owner, under 2 shields that fetch from
//! the origin): every tier drops the old content, the refill race (the purge reaches the edges before the shields),
//! and a soft purge whose stale shield copy is never taken as fresh by an edge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::cluster::{ClusterNode, ClusterSpec, HOST, SECRET, TestCluster, get};
use crate::support::purge_nodes::{TOKEN, confirmations};
use crate::support::{Reply, TestOrigin, client};

type Handler = Box<dyn Fn(&crate::support::origin::Seen, usize) -> Reply + Send + Sync>;

fn versioned(cache_control: &'static str) -> (Arc<AtomicUsize>, Handler) {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let handler: Handler = Box::new(move |seen, _| {
        Reply::ok(format!("v{} {}", v.load(Ordering::SeqCst), seen.path_and_query), &[("cache-control", cache_control)])
    });
    (version, handler)
}

fn spec() -> ClusterSpec {
    ClusterSpec { tweak: |c| c.admin.token = Some(TOKEN.to_string()), ..ClusterSpec::default() }
}

async fn body(http: &reqwest::Client, node: &ClusterNode, path: &str) -> String {
    get(http, node, path).send().await.expect("get").text().await.expect("body")
}

async fn purge(http: &reqwest::Client, node: &ClusterNode, body: &str) -> (u16, serde_json::Value) {
    let response =
        http.post(node.admin_url("/purge")).bearer_auth(TOKEN).body(body.to_string()).send().await.expect("purge");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.expect("answer")).expect("json"))
}

/// Sends a purge record to one node only, as a peer would.
async fn push_to(http: &reqwest::Client, node: &ClusterNode, record: &str) {
    let response = http
        .post(node.url("/.edgecache/purge"))
        .header("edgecache-peer", "a-peer")
        .header("edgecache-peer-auth", SECRET)
        .body(record.to_string())
        .send()
        .await
        .expect("push");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

#[tokio::test]
async fn a_purge_reaches_every_node_of_every_tier() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let cluster = TestCluster::start(&origin, spec()).await;
    let http = client();
    for edge in &cluster.edges {
        assert_eq!(body(&http, edge, "/p").await, "v1 /p");
    }
    assert_eq!(origin.hits(), 1, "one origin fetch for the whole cluster");
    version.store(2, Ordering::SeqCst);

    let (status, answer) = purge(&http, &cluster.edges[2], &format!(r#"{{"urls": ["http://{HOST}/p"]}}"#)).await;
    assert_eq!(status, 200, "{answer}");
    let mut confirmed: Vec<String> =
        confirmations(&answer).into_iter().filter(|(_, ok)| *ok).map(|(id, _)| id).collect();
    confirmed.sort();
    assert_eq!(confirmed, ["edge-1", "edge-2", "edge-3", "shield-1", "shield-2"]);
    for edge in &cluster.edges {
        assert_eq!(body(&http, edge, "/p").await, "v2 /p", "{}", edge.id);
    }
}

#[tokio::test]
async fn the_refill_race_a_purge_that_reaches_the_edges_before_the_shields() {
    let (version, handler) = versioned("max-age=300");
    let origin = TestOrigin::start(handler).await;
    let cluster = TestCluster::start(&origin, spec()).await;
    let http = client();
    assert_eq!(body(&http, &cluster.edges[0], "/race").await, "v1 /race");
    version.store(2, Ordering::SeqCst);
    // Let the stored copies' second pass, so that they are older than the purge by more than Date's resolution.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let record = format!(r#"{{"id": "race", "at": {at}, "urls": ["{HOST}/race"]}}"#);
    for edge in &cluster.edges {
        push_to(&http, edge, &record).await;
    }
    // The owner edge refills from its shield, which has not applied the purge: the old copy comes back down.
    assert_eq!(body(&http, &cluster.edges[0], "/race").await, "v1 /race", "the shields still have v1");
    for shield in &cluster.shields {
        push_to(&http, shield, &record).await;
    }
    // Every node has it now (what a 200 means): the copy the edge refilled is older than the purge, so no edge
    // serves it, and the shield fetches v2.
    for edge in &cluster.edges {
        assert_eq!(body(&http, edge, "/race").await, "v2 /race", "{}", edge.id);
    }
}

#[tokio::test]
async fn a_soft_purge_is_never_served_as_fresh_by_any_tier() {
    let (version, handler) = versioned("max-age=300, stale-while-revalidate=30");
    let origin = TestOrigin::start(handler).await;
    let cluster = TestCluster::start(&origin, spec()).await;
    let http = client();
    assert_eq!(body(&http, &cluster.edges[0], "/soft").await, "v1 /soft");
    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &cluster.shields[0], r#"{"hosts": ["cdn.test"], "soft": true}"#).await;
    assert_eq!(status, 200, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(10);
    for edge in &cluster.edges {
        loop {
            let response = get(&http, edge, "/soft").send().await.expect("get");
            let entries =
                response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let text = response.text().await.expect("body");
            if text == "v2 /soft" {
                break;
            }
            // v1 may still be served stale (stale-while-revalidate) while the refresh runs, never as a fresh hit.
            for entry in entries.split(", ") {
                assert!(!entry.contains("hit") || entry.contains("ttl=-"), "v1 served as fresh: {entries}");
            }
            assert!(Instant::now() < deadline, "{} never got v2 ({entries})", edge.id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
