//! Purge on one node: each kind (url with every variant, prefix, tag from `Surrogate-Key` and `Cache-Tag`, host,
//! everything), hard and soft, the 400/401/403 answers (nothing applied), the `PURGE` method from allowed and
//! disallowed addresses, idempotence, and the node-to-node endpoints refusing clients. Topologies: purge_fanout.rs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::purge_nodes::{TOKEN, confirmations, metric, next_second, purge};
use crate::support::{Reply, TestNode, TestOrigin, cache_status, client, header};

/// An origin whose bodies say which version of the content it serves (`v1` until the test moves it on).
fn versioned(
    headers: &'static [(&'static str, &'static str)],
) -> (Arc<AtomicUsize>, impl Fn(&crate::support::origin::Seen, usize) -> Reply) {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let handler = move |seen: &crate::support::origin::Seen, _: usize| {
        Reply::ok(format!("v{} {}", v.load(Ordering::SeqCst), seen.path_and_query), headers)
    };
    (version, handler)
}

async fn node_with_token(origin: &TestOrigin) -> TestNode {
    TestNode::start(origin, |c| c.admin.token = Some(TOKEN.to_string())).await
}

async fn body(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.expect("get").text().await.expect("body")
}

#[tokio::test]
async fn a_url_purge_removes_every_vary_variant_and_the_head_answer() {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = TestOrigin::start(move |seen, _| {
        let lang = seen.headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
        let body = format!("v{} {lang}", v.load(Ordering::SeqCst));
        Reply::ok(body, &[("cache-control", "max-age=300"), ("vary", "Accept-Language")])
    })
    .await;
    let node = node_with_token(&origin).await;
    let http = client();
    let get = |lang: &'static str| http.get(node.url("/page")).header("accept-language", lang).send();
    for lang in ["fr", "de", "fr", "de"] {
        assert_eq!(get(lang).await.expect("get").text().await.expect("body"), format!("v1 {lang}"));
    }
    assert_eq!(origin.hits(), 2, "two variants, each fetched once");
    let head = http.head(node.url("/page")).header("accept-language", "fr").send().await.expect("head");
    assert!(cache_status(&head).contains("hit"), "HEAD is answered from the stored GET");

    version.store(2, Ordering::SeqCst);
    let url = node.url("/page");
    let (status, answer) = purge(&http, &node, &format!(r#"{{"urls": ["{url}"]}}"#)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(confirmations(&answer), [("test-edge".to_string(), true)]);
    assert!(answer["id"].as_str().is_some_and(|id| !id.is_empty()), "{answer}");

    let head = http.head(node.url("/page")).header("accept-language", "fr").send().await.expect("head");
    assert!(!cache_status(&head).contains("hit"), "HEAD is not answered from the purged GET: {}", cache_status(&head));
    for lang in ["fr", "de"] {
        assert_eq!(get(lang).await.expect("get").text().await.expect("body"), format!("v2 {lang}"));
    }
    assert_eq!(metric(&http, &node, "edgecache_purges_total", &["kind=\"url\"", "soft=\"false\""]).await, 1.0);
}

#[tokio::test]
async fn a_prefix_purge_removes_what_is_under_it_only() {
    let (version, handler) = versioned(&[("cache-control", "max-age=300")]);
    let origin = TestOrigin::start(handler).await;
    let node = node_with_token(&origin).await;
    let http = client();
    for path in ["/img/a.png", "/img/b.png", "/css/c.css"] {
        assert_eq!(body(&http, node.url(path)).await, format!("v1 {path}"));
    }
    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &node, &format!(r#"{{"prefixes": ["{}"]}}"#, node.url("/img/"))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(body(&http, node.url("/img/a.png")).await, "v2 /img/a.png");
    assert_eq!(body(&http, node.url("/img/b.png")).await, "v2 /img/b.png");
    assert_eq!(body(&http, node.url("/css/c.css")).await, "v1 /css/c.css", "outside the prefix: kept");
}

#[tokio::test]
async fn a_tag_purge_finds_surrogate_key_and_cache_tag_and_the_index_is_cleaned() {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = TestOrigin::start(move |seen, _| {
        let (name, tags) = match seen.path_and_query.as_str() {
            "/p1" => ("surrogate-key", "product-42 all"),
            "/p2" => ("cache-tag", "home,product-42"),
            _ => ("surrogate-key", "other all"),
        };
        let body = format!("v{} {}", v.load(Ordering::SeqCst), seen.path_and_query);
        Reply::ok(body, &[("cache-control", "max-age=300"), (name, tags)])
    })
    .await;
    let node = node_with_token(&origin).await;
    let http = client();
    for path in ["/p1", "/p2", "/p3"] {
        assert_eq!(body(&http, node.url(path)).await, format!("v1 {path}"));
    }
    assert_eq!(metric(&http, &node, "edgecache_purge_tag_index_entries", &[]).await, 6.0);
    version.store(2, Ordering::SeqCst);
    let (status, answer) = purge(&http, &node, r#"{"tags": ["product-42"]}"#).await;
    assert_eq!(status, 200, "{answer}");
    wait_for_pairs(&http, &node, 2.0).await;
    assert_eq!(body(&http, node.url("/p1")).await, "v2 /p1", "tagged by Surrogate-Key");
    assert_eq!(body(&http, node.url("/p2")).await, "v2 /p2", "tagged by Cache-Tag");
    assert_eq!(body(&http, node.url("/p3")).await, "v1 /p3", "not tagged product-42");

    // Everything tagged `all` goes too; once purged objects left the store, their index entries are gone.
    let (status, _) = purge(&http, &node, r#"{"tags": ["all"], "id": "all-1"}"#).await;
    assert_eq!(status, 200);
    // /p2 (v2, tags home + product-42) is the only tagged object left: two pairs.
    wait_for_pairs(&http, &node, 2.0).await;
    assert_eq!(body(&http, node.url("/p3")).await, "v2 /p3");
}

/// Waits until the tag index holds `pairs` (tag, object) pairs (purged objects are freed in the background).
async fn wait_for_pairs(http: &reqwest::Client, node: &TestNode, pairs: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = metric(http, node, "edgecache_purge_tag_index_entries", &[]).await;
        if held == pairs {
            return;
        }
        assert!(Instant::now() < deadline, "the tag index holds {held} pairs, not {pairs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn host_and_everything_purges() {
    let (version, handler) = versioned(&[("cache-control", "max-age=300")]);
    let origin = TestOrigin::start(handler).await;
    let node = node_with_token(&origin).await;
    let http = client();
    let (http, node) = (&http, &node);
    let get = |host: &'static str| async move {
        let response = http.get(node.url("/x")).header("host", host).send().await.expect("get");
        response.text().await.expect("body")
    };
    assert_eq!(get("a.example").await, "v1 /x");
    assert_eq!(get("b.example:8080").await, "v1 /x");
    version.store(2, Ordering::SeqCst);

    let (status, _) = purge(http, node, r#"{"hosts": ["A.example"]}"#).await;
    assert_eq!(status, 200);
    assert_eq!(get("a.example").await, "v2 /x");
    assert_eq!(get("b.example:8080").await, "v1 /x", "another host: kept");

    let (status, _) = purge(http, node, r#"{"hosts": ["b.example"]}"#).await;
    assert_eq!(status, 200, "a host without port selects every port");
    assert_eq!(get("b.example:8080").await, "v2 /x");

    version.store(3, Ordering::SeqCst);
    let (status, _) = purge(http, node, r#"{"everything": true}"#).await;
    assert_eq!(status, 200);
    assert_eq!(get("a.example").await, "v3 /x");
    assert_eq!(get("b.example:8080").await, "v3 /x");
    assert_eq!(metric(http, node, "edgecache_purges_total", &["kind=\"everything\""]).await, 1.0);
}

#[tokio::test]
async fn a_soft_purge_revalidates_with_a_conditional_request_and_a_304_refreshes() {
    let origin = TestOrigin::start(|seen, _| {
        let headers = [("cache-control", "max-age=300"), ("etag", "\"v1\"")];
        if seen.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304, &headers)
        } else {
            Reply::ok("content", &headers)
        }
    })
    .await;
    let node = node_with_token(&origin).await;
    let http = client();
    assert_eq!(body(&http, node.url("/s")).await, "content");
    assert_eq!(body(&http, node.url("/s")).await, "content");
    assert_eq!(origin.hits(), 1);

    let (status, answer) = purge(&http, &node, &format!(r#"{{"urls": ["{}"], "soft": true}}"#, node.url("/s"))).await;
    assert_eq!(status, 200, "{answer}");
    next_second().await;
    let revalidated = http.get(node.url("/s")).send().await.expect("get");
    assert!(cache_status(&revalidated).contains("fwd-status=304"), "{}", cache_status(&revalidated));
    assert_eq!(revalidated.text().await.expect("body"), "content", "the soft-purged copy is kept and reused");
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers.get("if-none-match").map(|v| v.as_bytes()), Some(&b"\"v1\""[..]));

    let hit = http.get(node.url("/s")).send().await.expect("get");
    assert!(cache_status(&hit).contains("hit"), "the 304 refreshed it: {}", cache_status(&hit));
    assert_eq!(origin.hits(), 2);
    assert_eq!(metric(&http, &node, "edgecache_purges_total", &["kind=\"url\"", "soft=\"true\""]).await, 1.0);
}

#[tokio::test]
async fn a_soft_purge_keeps_stale_while_revalidate_protecting_the_origin() {
    let (version, handler) = versioned(&[("cache-control", "max-age=300, stale-while-revalidate=60")]);
    let origin = TestOrigin::start(handler).await;
    let node = node_with_token(&origin).await;
    let http = client();
    assert_eq!(body(&http, node.url("/w")).await, "v1 /w");
    version.store(2, Ordering::SeqCst);
    let (status, _) = purge(&http, &node, r#"{"everything": true, "soft": true}"#).await;
    assert_eq!(status, 200);
    let stale = http.get(node.url("/w")).send().await.expect("get");
    assert!(header(&stale, "cache-status").contains("ttl=-"), "served stale: {}", header(&stale, "cache-status"));
    assert_eq!(stale.text().await.expect("body"), "v1 /w", "served at once while one refresh runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while body(&http, node.url("/w")).await != "v2 /w" {
        assert!(Instant::now() < deadline, "the background refresh never stored v2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(origin.hits() <= 3, "one refresh at a time: {} origin requests", origin.hits());
}

#[tokio::test]
async fn bad_requests_get_400_or_401_as_json_and_nothing_is_applied() {
    let origin = TestOrigin::start(|_, _| Reply::ok("kept", &[("cache-control", "max-age=300")])).await;
    let node = node_with_token(&origin).await;
    let http = client();
    assert_eq!(body(&http, node.url("/k")).await, "kept");

    let everything = r#"{"everything": true}"#;
    let no_token = http.post(node.admin_url("/purge")).body(everything).send().await.expect("post");
    assert_eq!(no_token.status(), 401);
    assert_eq!(header(&no_token, "www-authenticate"), "Bearer");
    let wrong = http.post(node.admin_url("/purge")).bearer_auth("guess").body(everything).send().await.expect("post");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.expect("body").contains("\"error\""));

    let many: Vec<String> = (0..1_001).map(|i| format!("\"t{i}\"")).collect();
    let too_many = format!(r#"{{"tags": [{}]}}"#, many.join(","));
    let huge = format!(r#"{{"everything": true, "tags": ["{}"]}}"#, "x".repeat((1 << 20) + 64));
    for bad in [
        "{not json",
        "{}",
        r#"{"soft": true}"#,
        r#"{"everything": true, "colour": "red"}"#,
        r#"{"urls": ["not a url"]}"#,
        too_many.as_str(),
        huge.as_str(),
    ] {
        let (status, answer) = purge(&http, &node, bad).await;
        assert_eq!(status, 400, "{}", &bad[..bad.len().min(60)]);
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    }
    let kept = http.get(node.url("/k")).send().await.expect("get");
    assert!(cache_status(&kept).contains("hit"), "nothing was purged: {}", cache_status(&kept));
    assert_eq!(origin.hits(), 1);
    assert_eq!(metric(&http, &node, "edgecache_purges_total", &[]).await, 0.0);

    let no_admin_token = TestNode::start(&origin, |_| {}).await;
    let (status, answer) = purge(&http, &no_admin_token, everything).await;
    assert_eq!(status, 403, "purging is refused without a configured token: {answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("admin.token")), "{answer}");
}

#[tokio::test]
async fn the_purge_method_needs_an_allowed_address_and_the_token() {
    let (version, handler) = versioned(&[("cache-control", "max-age=300")]);
    let origin = TestOrigin::start(handler).await;
    let allowed = TestNode::start(&origin, |c| {
        c.admin.token = Some(TOKEN.to_string());
        c.purge.allow = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let elsewhere = TestNode::start(&origin, |c| {
        c.admin.token = Some(TOKEN.to_string());
        c.purge.allow = vec!["10.0.0.0/8".parse().expect("net")];
    })
    .await;
    let http = client();
    let purge_method = reqwest::Method::from_bytes(b"PURGE").expect("method");
    assert_eq!(body(&http, allowed.url("/wp/post-1")).await, "v1 /wp/post-1");
    assert_eq!(body(&http, elsewhere.url("/wp/post-1")).await, "v1 /wp/post-1");
    version.store(2, Ordering::SeqCst);

    let refused = http.request(purge_method.clone(), elsewhere.url("/wp/post-1")).bearer_auth(TOKEN).send().await;
    assert_eq!(refused.expect("purge").status(), 403, "127.0.0.1 is not in purge.allow");
    assert_eq!(body(&http, elsewhere.url("/wp/post-1")).await, "v1 /wp/post-1");

    let no_token = http.request(purge_method.clone(), allowed.url("/wp/post-1")).send().await.expect("purge");
    assert_eq!(no_token.status(), 401);
    assert_eq!(body(&http, allowed.url("/wp/post-1")).await, "v1 /wp/post-1");

    let ok =
        http.request(purge_method.clone(), allowed.url("/wp/post-1")).bearer_auth(TOKEN).send().await.expect("purge");
    assert_eq!(ok.status(), 200);
    let answer: serde_json::Value = serde_json::from_str(&ok.text().await.expect("body")).expect("json");
    assert_eq!(confirmations(&answer), [("test-edge".to_string(), true)]);
    assert_eq!(body(&http, allowed.url("/wp/post-1")).await, "v2 /wp/post-1");
    assert!(!origin.seen().iter().any(|s| s.method.as_str() == "PURGE"), "PURGE never reaches the origin");
    let soft =
        http.request(purge_method, allowed.url("/wp/post-1")).bearer_auth(TOKEN).header("edgecache-soft-purge", "1");
    assert_eq!(soft.send().await.expect("purge").status(), 200);
    assert_eq!(metric(&http, &allowed, "edgecache_purges_total", &["kind=\"url\"", "soft=\"true\""]).await, 1.0);
    assert_eq!(metric(&http, &allowed, "edgecache_purges_total", &["kind=\"url\"", "soft=\"false\""]).await, 1.0);
}

#[tokio::test]
async fn the_same_purge_id_twice_is_applied_once() {
    let (version, handler) = versioned(&[("cache-control", "max-age=300")]);
    let origin = TestOrigin::start(handler).await;
    let node = node_with_token(&origin).await;
    let http = client();
    assert_eq!(body(&http, node.url("/r")).await, "v1 /r");
    version.store(2, Ordering::SeqCst);
    let request = r#"{"prefixes": ["http://127.0.0.1/"], "hosts": ["127.0.0.1"], "id": "release-7"}"#;
    let (status, first) = purge(&http, &node, request).await;
    assert_eq!((status, first["id"].as_str()), (200, Some("release-7")));
    next_second().await;
    assert_eq!(body(&http, node.url("/r")).await, "v2 /r");

    version.store(3, Ordering::SeqCst);
    let (status, second) = purge(&http, &node, request).await;
    assert_eq!((status, second["id"].as_str()), (200, Some("release-7")), "a retry is answered like the first");
    let after = http.get(node.url("/r")).send().await.expect("get");
    assert!(cache_status(&after).contains("hit"), "the retry purged nothing new: {}", cache_status(&after));
    assert_eq!(after.text().await.expect("body"), "v2 /r");
    assert_eq!(metric(&http, &node, "edgecache_purges_total", &["kind=\"host\""]).await, 1.0);
    assert_eq!(metric(&http, &node, "edgecache_purge_log_entries", &[]).await, 1.0);
}

#[tokio::test]
async fn clients_cannot_use_the_node_to_node_endpoints() {
    let origin = TestOrigin::start(|_, _| Reply::ok("kept", &[("cache-control", "max-age=300")])).await;
    let node = TestNode::start(&origin, |c| c.cluster.secret = Some("s3cret".to_string())).await;
    let http = client();
    assert_eq!(body(&http, node.url("/k")).await, "kept");
    let forged = r#"{"id": "x", "at": 99999999999999, "everything": true}"#;
    for secret in [None, Some("guess")] {
        let mut push = http.post(node.url("/.edgecache/purge")).header("edgecache-peer", "edge-2").body(forged);
        let mut pull = http.get(node.url("/.edgecache/purges?since=0")).header("edgecache-peer", "edge-2");
        if let Some(secret) = secret {
            push = push.header("edgecache-peer-auth", secret);
            pull = pull.header("edgecache-peer-auth", secret);
        }
        assert_eq!(push.send().await.expect("push").status(), 403);
        assert_eq!(pull.send().await.expect("pull").status(), 403);
    }
    let kept = http.get(node.url("/k")).send().await.expect("get");
    assert!(cache_status(&kept).contains("hit"));
    assert_eq!(origin.hits(), 1, "nothing reached the origin either");
}

#[tokio::test]
async fn a_request_after_a_purge_does_not_join_a_fetch_begun_before_it() {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = TestOrigin::start(move |_, _| {
        let body = format!("v{}", v.load(Ordering::SeqCst));
        Reply::ok(body, &[("cache-control", "max-age=300")]).delayed(Duration::from_millis(800))
    })
    .await;
    let node = node_with_token(&origin).await;
    let http = client();
    let before = tokio::spawn({
        let (http, url) = (http.clone(), node.url("/slow"));
        async move { http.get(url).send().await.expect("get").text().await.expect("body") }
    });
    // The first fetch is at the origin (it read v1); the content changes and is purged while it is in flight.
    let deadline = Instant::now() + Duration::from_secs(5);
    while origin.hits() == 0 {
        assert!(Instant::now() < deadline, "the first request never reached the origin");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    version.store(2, Ordering::SeqCst);
    let (status, _) = purge(&http, &node, &format!(r#"{{"urls": ["{}"]}}"#, node.url("/slow"))).await;
    assert_eq!(status, 200);
    let after = http.get(node.url("/slow")).send().await.expect("get");
    assert!(cache_status(&after).contains("detail=purged"), "{}", cache_status(&after));
    assert_eq!(after.text().await.expect("body"), "v2", "not the pre-purge fetch's answer");
    assert_eq!(before.await.expect("task"), "v1", "the request from before the purge got its own fetch");
}
