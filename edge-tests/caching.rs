//! The shared cache end to end: hits after misses, Vary, revalidation, what must not be stored, HEAD and
//! conditional requests from cache.

use std::time::Duration;

use crate::support::{Reply, ReplyBody, TestNode, TestOrigin, cache_status, client, header};

/// The last bytes of a stored answer go out only once it is stored: a client that has read its whole answer and
/// asks again gets a hit, not a share of the fetch still finishing (on two threads, the fetch and the client's
/// connection run side by side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_right_after_a_whole_answer_is_a_hit() {
    let origin = TestOrigin::start(|_, _| Reply::ok("a whole answer", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for i in 0..100 {
        let path = format!("/whole/{i}");
        let miss = http.get(node.url(&path)).send().await.expect("miss");
        assert!(cache_status(&miss).contains("stored"), "{}", cache_status(&miss));
        assert_eq!(miss.text().await.expect("body"), "a whole answer");
        let again = http.get(node.url(&path)).send().await.expect("again");
        assert!(cache_status(&again).contains("; hit"), "request {i}: {}", cache_status(&again));
        assert_eq!(again.text().await.expect("body"), "a whole answer");
    }
    assert_eq!(origin.hits(), 100);
}

#[tokio::test]
async fn hit_after_miss_fetches_the_origin_once() {
    let origin = TestOrigin::start(|_, _| Reply::ok("hello", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();

    let first = http.get(node.url("/a?x=1")).send().await.expect("first");
    assert_eq!(first.status(), 200);
    assert_eq!(cache_status(&first), "test-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60");
    assert_eq!(first.text().await.expect("body"), "hello");

    let second = http.get(node.url("/a?x=1")).send().await.expect("second");
    assert!(cache_status(&second).starts_with("test-edge; hit; ttl="), "{}", cache_status(&second));
    assert!(!header(&second, "age").is_empty(), "a hit carries Age");
    assert_eq!(second.text().await.expect("body"), "hello");
    assert_eq!(origin.hits(), 1);

    // A different query is a different object.
    http.get(node.url("/a?x=2")).send().await.expect("third");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn vary_keeps_one_variant_per_header_value() {
    let origin = TestOrigin::start(|seen, _| {
        let lang = seen.headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
        Reply::ok(format!("lang={lang}"), &[("cache-control", "max-age=60"), ("vary", "Accept-Language")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let get = |lang: &'static str| http.get(node.url("/v")).header("accept-language", lang).send();

    assert_eq!(get("fr").await.expect("fr").text().await.expect("body"), "lang=fr");
    let de = get("de").await.expect("de");
    assert_eq!(cache_status(&de), "test-edge; fwd=vary-miss; fwd-status=200; stored; ttl=60");
    assert_eq!(de.text().await.expect("body"), "lang=de");
    let fr = get("fr").await.expect("fr again");
    assert!(cache_status(&fr).contains("hit"));
    assert_eq!(fr.text().await.expect("body"), "lang=fr");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn stale_entry_is_revalidated_and_a_304_refreshes_it() {
    let origin = TestOrigin::start(|seen, _| {
        if seen.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304, &[("cache-control", "max-age=60"), ("etag", "\"v1\""), ("x-refreshed", "yes")])
        } else {
            Reply::ok("version one", &[("cache-control", "max-age=0"), ("etag", "\"v1\"")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();

    let first = http.get(node.url("/r")).send().await.expect("first");
    assert!(cache_status(&first).contains("stored"));
    let second = http.get(node.url("/r")).send().await.expect("second");
    assert_eq!(second.status(), 200);
    assert!(cache_status(&second).starts_with("test-edge; fwd=stale; fwd-status=304"), "{}", cache_status(&second));
    assert_eq!(header(&second, "x-refreshed"), "yes", "the 304's headers update the stored ones");
    assert_eq!(second.text().await.expect("body"), "version one");
    let seen = origin.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers.get("if-none-match").expect("conditional"), "\"v1\"");

    // The 304 made it fresh for 60 s: the third request is a hit.
    let third = http.get(node.url("/r")).send().await.expect("third");
    assert!(cache_status(&third).starts_with("test-edge; hit"), "{}", cache_status(&third));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn no_store_and_private_are_not_stored() {
    let origin = TestOrigin::start(|seen, _| {
        let cc = if seen.path_and_query.starts_with("/private") { "private, max-age=60" } else { "no-store" };
        Reply::ok("secret", &[("cache-control", cc)])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for path in ["/private", "/nostore"] {
        for _ in 0..2 {
            let response = http.get(node.url(path)).send().await.expect("get");
            assert!(!cache_status(&response).contains("stored"), "{}", cache_status(&response));
        }
    }
    assert_eq!(origin.hits(), 4);
    let private = http.get(node.url("/private")).send().await.expect("get");
    assert!(cache_status(&private).ends_with("detail=private"), "{}", cache_status(&private));
}

#[tokio::test]
async fn a_body_cut_short_is_never_stored() {
    let origin = TestOrigin::start(|_, _| Reply {
        body: ReplyBody::CutShort { declared: 1000, sent: bytes::Bytes::from(vec![b'a'; 400]) },
        ..Reply::ok("", &[("cache-control", "max-age=60")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for _ in 0..2 {
        let response = http.get(node.url("/cut")).send().await.expect("head arrives");
        assert!(response.bytes().await.is_err(), "the client sees the body fail too");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(origin.hits(), 2, "the truncated body was not served from cache");
}

#[tokio::test]
async fn head_is_served_from_a_cached_get_and_conditionals_get_304() {
    let origin =
        TestOrigin::start(|_, _| Reply::ok("0123456789", &[("cache-control", "max-age=60"), ("etag", "\"abc\"")]))
            .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    http.get(node.url("/h")).send().await.expect("get").bytes().await.expect("body");

    let head = http.head(node.url("/h")).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert!(cache_status(&head).contains("hit"));
    assert_eq!(header(&head, "content-length"), "10");

    let conditional = http.get(node.url("/h")).header("if-none-match", "W/\"abc\"").send().await.expect("inm");
    assert_eq!(conditional.status(), 304);
    assert_eq!(header(&conditional, "etag"), "\"abc\"");
    assert!(conditional.bytes().await.expect("empty").is_empty());

    let other = http.get(node.url("/h")).header("if-none-match", "\"zzz\"").send().await.expect("inm");
    assert_eq!(other.status(), 200);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn cache_counts_show_in_metrics() {
    let origin = TestOrigin::start(|_, _| Reply::ok("m", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for _ in 0..3 {
        http.get(node.url("/m")).send().await.expect("get");
    }
    let metrics = http.get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = |prefix: &str| metrics.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    let hits = line("edgecache_requests_total{cache_status=\"hit\",code=\"200\",method=\"GET\"").expect("hit series");
    assert!(hits.ends_with(" 2"), "{hits}");
    assert!(line("edgecache_cache_objects").expect("objects").ends_with(" 1"));
    assert!(line("edgecache_upstream_requests_total{code=\"200\"").is_some());
    let health = http.get(node.admin_url("/readyz")).send().await.expect("readyz");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_at_once_and_refreshes_in_the_background() {
    let origin = TestOrigin::start(|_, index| {
        Reply::ok(format!("version {index}"), &[("cache-control", "max-age=1, stale-while-revalidate=30")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    http.get(node.url("/swr")).send().await.expect("first").bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let stale = http.get(node.url("/swr")).send().await.expect("stale");
    assert!(cache_status(&stale).contains("hit; ttl=-"), "{}", cache_status(&stale));
    assert_eq!(stale.text().await.expect("body"), "version 0");

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = http.get(node.url("/swr")).send().await.expect("refreshed");
        if response.text().await.expect("body") == "version 1" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the background refresh never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(origin.hits(), 2, "one background refresh");
}
