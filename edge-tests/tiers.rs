//! Between pops: an edge pop fetches its misses from its parent (the shield), whose node is chosen by the same
//! hashing; coalescing holds at every tier; `Age` and `Cache-Status` stay right end to end; with every parent node
//! down the edge fetches from the origin or fails clearly (`parent_fallback`); hot keys are kept on non-owners.

use std::time::Duration;

use crate::support::cluster::{ClusterSpec, HOST, TestCluster, get};
use crate::support::{Reply, TestOrigin, client, header};

#[tokio::test]
async fn a_thousand_clients_over_three_edges_and_two_shields_make_one_origin_request() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok("the hot object", &[("cache-control", "max-age=60")]).delayed(Duration::from_millis(800))
    })
    .await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let mut requests = Vec::new();
    for i in 0..1000 {
        let request = http.get(cluster.edges[i % 3].url("/herd")).header("host", HOST).send();
        requests.push(tokio::spawn(async move {
            let response = request.await.expect("request");
            (response.status().as_u16(), response.text().await.expect("body"))
        }));
    }
    for request in requests {
        assert_eq!(request.await.expect("task"), (200, "the hot object".to_string()));
    }
    assert_eq!(origin.hits(), 1, "one origin request for 1,000 clients");
}

#[tokio::test]
async fn age_counts_every_tier_and_cache_status_lists_every_node_nearest_last() {
    let origin = TestOrigin::start(|_, _| Reply::ok("aged", &[("cache-control", "max-age=600"), ("age", "100")])).await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let path = "/aged";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    let first = get(&http, &cluster.edges[other], path).send().await.expect("first");
    let status = header(&first, "cache-status");
    let entries: Vec<&str> = status.split(", ").collect();
    assert_eq!(entries.len(), 3, "{status}");
    assert!(entries[0].starts_with("shield-") && entries[0].contains("fwd=uri-miss") && entries[0].contains("stored"));
    assert!(entries[1].starts_with(&format!("{}; fwd=uri-miss", cluster.edges[owner].id)), "{status}");
    assert!(entries[1].contains("stored"), "{status}");
    assert!(entries[2].starts_with(&format!("{}; fwd=uri-miss", cluster.edges[other].id)), "{status}");
    let age: u64 = header(&first, "age").parse().expect("age");
    assert!(age >= 100, "the origin's Age is counted in: {age}");
    let via: Vec<&str> = first.headers().get_all("via").iter().filter_map(|v| v.to_str().ok()).collect();
    let via = via.join(", ");
    for id in [cluster.edges[owner].id.as_str(), cluster.edges[other].id.as_str()] {
        assert!(via.contains(id), "Via names {id}: {via}");
    }

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = get(&http, &cluster.edges[owner], path).send().await.expect("again");
    let status = header(&again, "cache-status");
    assert!(status.ends_with(&format!("{}; hit; ttl={}", cluster.edges[owner].id, 600 - age_of(&again))), "{status}");
    assert!(age_of(&again) >= 101, "the owner's copy aged: {}", age_of(&again));
    assert_eq!(origin.hits(), 1);
}

fn age_of(response: &reqwest::Response) -> i64 {
    header(response, "age").parse().unwrap_or(-1)
}

#[tokio::test]
async fn with_every_shield_down_the_edges_fetch_from_the_origin_by_default() {
    let origin = TestOrigin::start(|_, _| Reply::ok("direct", &[("cache-control", "max-age=60")])).await;
    let spec = ClusterSpec { shields_absent: true, ..ClusterSpec::default() };
    let cluster = TestCluster::start(&origin, spec).await;
    let http = client();
    for i in 0..6 {
        let response = get(&http, &cluster.edges[i % 3], &format!("/direct/{i}")).send().await.expect("get");
        assert_eq!(response.status(), 200);
        let status = header(&response, "cache-status");
        assert!(!status.contains("shield-"), "{status}");
        assert_eq!(response.text().await.expect("body"), "direct");
    }
    assert_eq!(origin.hits(), 6);
    let mut origin_fetches = 0.0;
    for edge in &cluster.edges {
        origin_fetches += edge.metric("edgecache_upstream_requests_total", &["upstream=\"origin\""]).await;
    }
    assert_eq!(origin_fetches, 6.0);
}

#[tokio::test]
async fn with_every_shield_down_and_parent_fallback_error_the_answer_is_a_clear_502() {
    let origin = TestOrigin::start(|_, _| Reply::ok("never", &[])).await;
    let spec = ClusterSpec {
        shields_absent: true,
        cluster_toml: "parent_fallback = \"error\"".to_string(),
        ..ClusterSpec::default()
    };
    let cluster = TestCluster::start(&origin, spec).await;
    let response = get(&client(), &cluster.edges[0], "/fails").send().await.expect("get");
    assert_eq!(response.status(), 502);
    assert!(header(&response, "cache-status").contains("detail=parent-down"));
    let body = response.text().await.expect("body");
    assert!(body.contains("parent pop \"shield\" is down"), "{body}");
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn a_hot_key_is_also_kept_for_a_short_time_by_the_nodes_that_do_not_own_it() {
    let origin = TestOrigin::start(|_, _| Reply::ok("popular", &[("cache-control", "max-age=60")])).await;
    let spec = ClusterSpec {
        tweak: |config| {
            config.cluster.hot_key_rate = 5;
            config.cluster.hot_key_ttl = Duration::from_secs(30);
        },
        ..ClusterSpec::default()
    };
    let cluster = TestCluster::start(&origin, spec).await;
    let http = client();
    let path = "/popular";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    let mut details = Vec::new();
    for _ in 0..20 {
        let response = get(&http, &cluster.edges[other], path).send().await.expect("get");
        assert_eq!(response.status(), 200);
        let status = header(&response, "cache-status");
        details.push(status.rsplit(", ").next().unwrap_or_default().to_string());
        assert_eq!(response.text().await.expect("body"), "popular");
    }
    assert!(details[0].ends_with("detail=peer"), "{details:?}");
    let hot_hits = details.iter().filter(|d| d.contains("; hit;") && d.ends_with("detail=hot")).count();
    assert!(hot_hits >= 10, "the non-owner answered from its own hot copy: {details:?}");
    let forwarded = cluster.edges[other].metric("edgecache_upstream_requests_total", &["upstream=\"peer\""]).await;
    assert!(forwarded < 10.0, "the owner was spared ({forwarded} forwards of 20)");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn fields_for_the_cdn_travel_between_tiers_and_never_reach_a_client() {
    // The browser may keep it 10 s, edgecache 300 s; the tags are for purging. The edge must see the shield's
    // Edgecache-Cache-Control (or it would store for 10 s) and the tags (or it could not be purged by tag:
    // `purge_tiers.rs`).
    let origin = TestOrigin::start(|_, _| {
        Reply::ok(
            "for the cdn",
            &[
                ("cache-control", "max-age=10"),
                ("edgecache-cache-control", "max-age=300"),
                ("surrogate-key", "product-7 all"),
                ("cache-tag", "home"),
            ],
        )
    })
    .await;
    let cluster = TestCluster::start(&origin, ClusterSpec::default()).await;
    let http = client();
    let path = "/for-the-cdn";
    let owner = cluster.edge_owner(path);
    for round in 0..2 {
        let response = get(&http, &cluster.edges[owner], path).send().await.expect("get");
        let status = header(&response, "cache-status");
        // The edge's own entry is last; its ttl comes from Edgecache-Cache-Control as the shield passed it on.
        let edge_entry = status.rsplit(", ").next().unwrap_or_default().to_string();
        let ttl: i64 = edge_entry
            .split("; ")
            .find_map(|p| p.strip_prefix("ttl="))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("a ttl in the edge's entry: {status}"));
        assert!(ttl > 250, "round {round}: the edge stored by Edgecache-Cache-Control: {status}");
        if round == 1 {
            assert!(edge_entry.contains("; hit"), "{status}");
        }
        for field in ["edgecache-cache-control", "surrogate-key", "cache-tag"] {
            assert!(response.headers().get(field).is_none(), "round {round}: {field} reached the client");
        }
        assert_eq!(header(&response, "cache-control"), "max-age=10", "the browser's own field is kept");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn an_origins_early_hints_reach_the_client_through_the_shield_and_the_owner_as_they_arrive() {
    use crate::support::hinting_origin::{HintingOrigin, read_until};
    use tokio::io::AsyncWriteExt;
    let origin = HintingOrigin::start().await;
    let cluster = TestCluster::start_before(&origin.url, ClusterSpec { shields: 1, ..ClusterSpec::default() }).await;
    let path = "/hinted-tiers";
    let owner = cluster.edge_owner(path);
    let other = (owner + 1) % 3;
    let mut stream = tokio::net::TcpStream::connect(cluster.edges[other].http).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {HOST}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut text = String::new();
    // The origin holds its final answer until the 103 has come through the three nodes.
    read_until(&mut stream, &mut text, "\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{text}");
    let via: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("via: ")).collect();
    let expected = ["shield-1", cluster.edges[owner].id.as_str(), cluster.edges[other].id.as_str()];
    assert_eq!(via, expected.map(|id| format!("1.1 {id}")), "each node added its Via: {text}");
    origin.release();
    read_until(&mut stream, &mut text, "\r\n\r\nok").await;
    assert!(text.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
}
