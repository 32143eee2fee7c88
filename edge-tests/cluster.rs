//! Inside a pop: each key has one owner among the healthy nodes, the others forward to it (one hop), so the pop
//! fetches each object once; a dead node's keys go to the next candidates within the same request; peers prove
//! who they are; loops end in 508.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::cluster::{ClusterSpec, HOST, SECRET, TestCluster, get};
use crate::support::origin::ReplyBody;
use crate::support::{Reply, TestOrigin, client};

fn cacheable_origin() -> impl Fn(&crate::support::origin::Seen, usize) -> Reply + Send + Sync + 'static {
    |seen, _| Reply::ok(format!("body of {}", seen.path_and_query), &[("cache-control", "max-age=300")])
}

/// A small deterministic generator, so that a failing run can be replayed.
fn lcg(state: &mut u64) -> usize {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*state >> 33) as usize
}

fn cache_status(response: &reqwest::Response) -> String {
    crate::support::header(response, "cache-status")
}

#[tokio::test]
async fn three_hundred_urls_through_random_edges_are_fetched_once_each_spread_over_the_owners() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let mut seed = 5;
    for i in 0..300 {
        let edge = &cluster.edges[lcg(&mut seed) % 3];
        let response = get(&http, edge, &format!("/obj/{i}")).send().await.expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), format!("body of /obj/{i}"));
    }
    assert_eq!(origin.hits(), 300, "each URL reached the origin once");
    let mut owner_fetches = Vec::new();
    for edge in &cluster.edges {
        owner_fetches.push(edge.metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]).await);
    }
    assert_eq!(owner_fetches.iter().sum::<f64>(), 300.0, "only owners fetch: {owner_fetches:?}");
    for (i, fetched) in owner_fetches.iter().enumerate() {
        assert!((60.0..=140.0).contains(fetched), "edge-{} fetched {fetched} of 300 (~100 expected)", i + 1);
        let expected = (0..300).filter(|k| cluster.edge_owner(&format!("/obj/{k}")) == i).count() as f64;
        assert_eq!(*fetched, expected, "edge-{} fetched exactly the keys it owns", i + 1);
    }
    let forwarded: f64 = {
        let mut sum = 0.0;
        for edge in &cluster.edges {
            sum += edge.metric("edgecache_upstream_requests_total", &["upstream=\"peer\""]).await;
        }
        sum
    };
    assert!(forwarded > 100.0, "non-owners forwarded to owners ({forwarded})");
}

#[tokio::test]
async fn every_url_asked_at_all_three_edges_is_one_origin_fetch_and_each_node_adds_its_cache_status() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    for i in 0..40 {
        let path = format!("/all/{i}");
        let owner = cluster.edge_owner(&path);
        for edge in &cluster.edges {
            let response = get(&http, edge, &path).send().await.expect("request");
            assert_eq!(response.status(), 200);
            let status = cache_status(&response);
            let last = status.rsplit(", ").next().unwrap_or_default().to_string();
            assert!(last.starts_with(&edge.id), "the receiving node's entry is last: {status}");
            if edge.id != cluster.edges[owner].id {
                assert!(last.contains("detail=peer"), "a non-owner forwards: {status}");
                assert!(status.contains(&format!("{}; ", cluster.edges[owner].id)), "owner's entry: {status}");
            }
            assert!(status.contains("shield-"), "the shield's entry comes first: {status}");
        }
    }
    assert_eq!(origin.hits(), 40);
}

#[tokio::test]
async fn a_sigkilled_edge_under_load_costs_no_client_errors_on_the_others_and_only_its_keys_move() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let spec = ClusterSpec { child_edges: vec![2], ..ClusterSpec::default() };
    let mut cluster = TestCluster::start(&origin, spec).await;
    let http = client();
    let paths: Arc<Vec<String>> = Arc::new((0..300).map(|i| format!("/load/{i}")).collect());
    for path in paths.iter() {
        assert_eq!(get(&http, &cluster.edges[0], path).send().await.expect("warm").status(), 200);
    }
    assert_eq!(origin.hits(), 300);
    let parent_before = cluster.edges[0].metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]).await
        + cluster.edges[1].metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]).await;

    // Load on edge-1 and edge-2 while edge-3 (a child process) is killed.
    let (errors, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop_at = Instant::now() + Duration::from_millis(2500);
    let mut workers = Vec::new();
    for w in 0..8 {
        let (http, paths, errors, done) = (http.clone(), paths.clone(), errors.clone(), done.clone());
        let url = cluster.edges[w % 2].url("");
        workers.push(tokio::spawn(async move {
            let mut seed = w as u64 + 1;
            while Instant::now() < stop_at {
                let path = &paths[lcg(&mut seed) % paths.len()];
                if !answered_whole(&http, &url, path).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.edges[2].kill().await;
    for worker in workers {
        worker.await.expect("worker");
    }
    assert!(done.load(Ordering::Relaxed) > 100, "load ran ({} requests)", done.load(Ordering::Relaxed));
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no client request failed on the surviving edges");

    // Every key once more through both survivors: only edge-3's keys were fetched again, from the shield.
    for path in paths.iter() {
        for edge in &cluster.edges[..2] {
            assert_eq!(get(&http, edge, path).send().await.expect("after").status(), 200);
        }
    }
    let parent_after = cluster.edges[0].metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]).await
        + cluster.edges[1].metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]).await;
    let owned_by_3 = paths.iter().filter(|p| cluster.edge_owner(p) == 2).count() as f64;
    assert_eq!(parent_after - parent_before, owned_by_3, "refetched from the shield: edge-3's keys only");
    assert_eq!(origin.hits(), 300, "the shield still had them all");
    let view: serde_json::Value = http
        .get(cluster.edges[0].admin_url("/cluster"))
        .send()
        .await
        .expect("view")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("text");
    let edge3 = &view["pops"][0]["nodes"][2];
    assert_eq!((edge3["id"].as_str(), edge3["health"].as_str()), (Some("edge-3"), Some("down")), "{view:#}");
}

#[tokio::test]
async fn a_sigkilled_shield_node_under_load_hands_its_keys_to_the_other_without_client_errors() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let spec = ClusterSpec { child_shields: vec![0], ..ClusterSpec::default() };
    let mut cluster = TestCluster::start(&origin, spec).await;
    let http = client();
    // Misses under load (every request a new URL, so every one goes through a shield) while shield-1 is killed.
    let (errors, done, next) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop_at = Instant::now() + Duration::from_millis(2000);
    let mut workers = Vec::new();
    for w in 0..6 {
        let (http, errors, done, next) = (http.clone(), errors.clone(), done.clone(), next.clone());
        let url = cluster.edges[w % 3].url("");
        workers.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let path = format!("/miss/{}", next.fetch_add(1, Ordering::Relaxed));
                if !answered_whole(&http, &url, &path).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    cluster.shields[0].kill().await;
    for worker in workers {
        worker.await.expect("worker");
    }
    assert!(done.load(Ordering::Relaxed) > 50, "load ran ({} requests)", done.load(Ordering::Relaxed));
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no client request failed while shield-1 died");
    for i in 0..30 {
        let response = get(&http, &cluster.edges[i % 3], &format!("/after-shield/{i}")).send().await.expect("get");
        assert_eq!(response.status(), 200);
        let status = cache_status(&response);
        assert!(status.starts_with("shield-2; fwd=uri-miss"), "shield-2 took the key: {status}");
    }
    let up = cluster.edges[0].metric("edgecache_peer_up", &["peer=\"shield-1\""]).await;
    assert_eq!(up, 0.0, "edgecache_peer_up{{peer=\"shield-1\"}} is 0");
    assert_eq!(cluster.edges[0].metric("edgecache_peer_up", &["peer=\"shield-2\""]).await, 1.0);
}

#[tokio::test]
async fn a_shield_killed_between_its_response_head_and_its_body_is_retried_on_the_other_shield() {
    // The origin sends its head at once and its body 600 ms later; shield-1 dies in between.
    let origin = TestOrigin::start(|_: &crate::support::origin::Seen, _| Reply {
        body: ReplyBody::Paced { chunk: 64, count: 1, every: Duration::from_millis(600) },
        ..Reply::ok("", &[("cache-control", "max-age=300")])
    })
    .await;
    let spec = ClusterSpec { child_shields: vec![0], ..ClusterSpec::default() };
    let mut cluster = TestCluster::start(&origin, spec).await;
    let path = (0..).map(|i| format!("/cut-between/{i}")).find(|p| cluster.shield_owner(p) == 0).expect("a path");
    let edge = cluster.edge_owner(&path);
    let request = get(&client(), &cluster.edges[edge], &path).send();
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.shields[0].kill().await;
    };
    let (response, ()) = tokio::join!(request, killer);
    let response = response.expect("an answer");
    assert_eq!(response.status(), 200);
    let status = cache_status(&response);
    let body = response.bytes().await.expect("the whole body, not one cut short");
    assert_eq!(&body[..], &[0u8; 64][..]);
    assert!(status.contains("shield-2; fwd=uri-miss"), "shield-2 answered after shield-1 died: {status}");
    assert_eq!(origin.hits(), 2, "shield-1's fetch and shield-2's");
}

#[tokio::test]
async fn a_forged_peer_header_is_not_trusted_and_the_proof_never_reaches_the_origin() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let path = "/forged";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    let third = (owner + 2) % 3;
    // Posing as a peer of the pop would make the node serve (and fetch) the key itself; a wrong proof does not.
    let response = get(&http, &cluster.edges[other], path)
        .header("edgecache-peer", cluster.edges[third].id.as_str())
        .header("edgecache-peer-auth", "a guess")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let status = cache_status(&response);
    assert!(status.contains(&format!("{}; fwd=uri-miss", cluster.edges[owner].id)), "the owner fetched: {status}");
    assert!(status.ends_with("detail=peer"), "the receiver forwarded to the owner: {status}");
    // A probe without the proof is an ordinary request, not "up".
    let probe = get(&http, &cluster.edges[other], "/probe-me").header("edgecache-probe", "1").send().await.expect("p");
    assert!(!cache_status(&probe).contains("detail=probe"), "{}", cache_status(&probe));
    // With the real secret a client could pose as a peer; without it nothing of the proof travels on.
    for seen in origin.seen() {
        assert!(!seen.headers.contains_key("edgecache-peer-auth"), "the secret never reaches the origin");
        assert!(!seen.headers.contains_key("edgecache-peer"));
        assert!(!seen.headers.contains_key("edgecache-probe"), "a client's probe field is dropped");
    }
    assert!(origin.seen().iter().all(|s| s.headers.get("edgecache-peer-auth").is_none_or(|v| v != SECRET)));
}

#[tokio::test]
async fn a_loop_through_the_pop_is_answered_508() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let path = "/loop";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    // The request claims to have passed the owner already: the owner sees itself in Via when it is forwarded there.
    let via = format!("1.1 {}", cluster.edges[owner].id);
    let response = get(&http, &cluster.edges[other], path).header("via", via).send().await.expect("request");
    assert_eq!(response.status(), 508);
    assert!(cache_status(&response).contains(&format!("{}; detail=loop", cluster.edges[owner].id)));
    // Too many hops: 508 at once.
    let hops: Vec<String> = (0..8).map(|i| format!("1.1 far-{i}")).collect();
    let response = get(&http, &cluster.edges[other], path).header("via", hops.join(", ")).send().await.expect("r");
    assert_eq!(response.status(), 508);
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn cluster_view_shows_this_node_its_pop_and_every_nodes_health() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let view: serde_json::Value = client()
        .get(cluster.edges[1].admin_url("/cluster"))
        .send()
        .await
        .expect("view")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("json"))
        .expect("text");
    assert_eq!(view["node"], "edge-2");
    assert_eq!(view["pop"], "edge");
    assert_eq!(view["parent"], "shield");
    let health: Vec<(String, String)> = view["pops"]
        .as_array()
        .expect("pops")
        .iter()
        .flat_map(|p| p["nodes"].as_array().cloned().unwrap_or_default())
        .map(|n| (n["id"].as_str().unwrap_or("").to_string(), n["health"].as_str().unwrap_or("").to_string()))
        .collect();
    let expected = [("edge-1", "up"), ("edge-2", "self"), ("edge-3", "up"), ("shield-1", "up"), ("shield-2", "up")];
    assert_eq!(health, expected.map(|(a, b)| (a.to_string(), b.to_string())));
}

#[tokio::test]
async fn a_node_that_comes_back_gets_only_its_own_keys_back() {
    let origin = TestOrigin::start(cacheable_origin()).await;
    let mut cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let paths: Vec<String> = (0..150).map(|i| format!("/back/{i}")).collect();
    cluster.edges[2].kill().await;
    for path in &paths {
        assert_eq!(get(&http, &cluster.edges[0], path).send().await.expect("while down").status(), 200);
    }
    cluster.edges[2].restart().await;
    // Until edge-1 and edge-2 have seen edge-3 answer a probe, they keep its keys.
    let deadline = Instant::now() + Duration::from_secs(10);
    for edge in &cluster.edges[..2] {
        while edge.metric("edgecache_peer_up", &["peer=\"edge-3\""]).await != 1.0 {
            assert!(Instant::now() < deadline, "edge-3 is seen up again");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let parent = |i: usize| cluster.edges[i].metric("edgecache_upstream_requests_total", &["upstream=\"parent\""]);
    let before = (parent(0).await, parent(1).await);
    for path in &paths {
        assert_eq!(get(&http, &cluster.edges[0], path).send().await.expect("after").status(), 200);
    }
    assert_eq!((parent(0).await, parent(1).await), before, "edge-1's and edge-2's keys stayed where they were");
    let owned_by_3 = paths.iter().filter(|p| cluster.edge_owner(p) == 2).count() as f64;
    assert_eq!(parent(2).await, owned_by_3, "edge-3 fetched its own keys again, and only those");
    assert_eq!(origin.hits(), 150, "from the shield, which had them all");
}

#[tokio::test]
async fn an_unsafe_method_at_any_edge_invalidates_the_copy_its_owner_and_the_shield_hold() {
    let origin = TestOrigin::start(|seen, _| match seen.method.as_str() {
        "POST" => Reply::ok("done", &[("cache-control", "no-store")]),
        _ => Reply::ok("document", &[("cache-control", "max-age=300")]),
    })
    .await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let path = "/doc";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    let gets = || origin.seen().iter().filter(|s| s.method == "GET").count();
    for _ in 0..2 {
        assert_eq!(get(&http, &cluster.edges[other], path).send().await.expect("get").status(), 200);
    }
    assert_eq!(gets(), 1);
    let post = http.post(cluster.edges[other].url(path)).header("host", HOST).body("x").send().await.expect("post");
    assert_eq!(post.status(), 200);
    let status = cache_status(&post);
    assert!(status.ends_with("fwd=bypass; fwd-status=200; detail=peer"), "passed on by the owner: {status}");
    assert!(status.contains(&format!("{}; fwd=bypass; fwd-status=200; detail=invalidated", cluster.edges[owner].id)));
    let after = get(&http, &cluster.edges[other], path).send().await.expect("get");
    assert_eq!(after.text().await.expect("body"), "document");
    assert_eq!(gets(), 2, "the owner's and the shield's copies were invalidated");
}

/// Whether `path` through the node at `url` is answered 200 with the body the test origin gives it.
async fn answered_whole(http: &reqwest::Client, url: &str, path: &str) -> bool {
    match http.get(format!("{url}{path}")).header("host", HOST).send().await {
        Ok(r) if r.status() == 200 => r.text().await.is_ok_and(|b| b == format!("body of {path}")),
        _ => false,
    }
}
