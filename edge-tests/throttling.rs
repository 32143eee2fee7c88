//! Throttling end to end: client token buckets (429 with `Retry-After`, hit exemption, trusted `X-Forwarded-For`)
//! and the origin budget (at most N requests open at the origin, a bounded queue, stale or 503 beyond it, hits on
//! other keys unaffected).

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::support::{Reply, ReplyBody, TestNode, TestOrigin, cache_status, client, header};

/// The value of the series `name` (with `label`, e.g. `scope="client"`, if not empty), or None.
async fn metric(node: &TestNode, name: &str, label: &str) -> Option<f64> {
    let text = client().get(node.admin_url("/metrics")).send().await.ok()?.text().await.ok()?;
    let line = text
        .lines()
        .find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])) && l.contains(label))?;
    line.rsplit(' ').next()?.parse().ok()
}

fn cacheable_origin_reply(path: &str) -> Reply {
    Reply::ok(format!("body of {path}"), &[("cache-control", "max-age=60")])
}

#[tokio::test]
async fn a_burst_then_429_with_retry_after_then_served_again() {
    let origin = TestOrigin::start(|seen, _| cacheable_origin_reply(&seen.path_and_query)).await;
    let node = TestNode::start(&origin, |c| {
        c.throttle.client_rate = Some(1);
        c.throttle.client_burst = Some(3);
    })
    .await;
    let http = client();

    for i in 0..3 {
        let ok = http.get(node.url("/a")).send().await.expect("request");
        assert_eq!(ok.status(), 200, "request {i} is within the burst");
    }
    let refused = http.get(node.url("/a")).send().await.expect("request");
    assert_eq!(refused.status(), 429);
    // One token a second: the next one is due within a second.
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(cache_status(&refused), "test-edge; detail=throttled");
    assert_eq!(header(&refused, "cache-control"), "no-store");
    assert!(refused.text().await.expect("body").contains("too many requests"));
    assert_eq!(metric(&node, "edgecache_throttled_requests_total", "scope=\"client\"").await, Some(1.0));

    // Retry-After is honest: after waiting that long, the client is served.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = http.get(node.url("/a")).send().await.expect("request");
    assert_eq!(again.status(), 200);
    assert_eq!(origin.hits(), 1, "only the first request was a miss");
}

#[tokio::test]
async fn hits_take_no_token_when_exempted() {
    let origin = TestOrigin::start(|seen, _| cacheable_origin_reply(&seen.path_and_query)).await;
    let exempt = TestNode::start(&origin, |c| {
        c.throttle.client_rate = Some(1);
        c.throttle.client_burst = Some(1);
        c.throttle.exempt_hits = true;
    })
    .await;
    let counting = TestNode::start(&origin, |c| {
        c.throttle.client_rate = Some(1);
        c.throttle.client_burst = Some(1);
    })
    .await;
    let http = client();

    assert_eq!(http.get(exempt.url("/h")).send().await.expect("miss").status(), 200);
    for _ in 0..5 {
        let hit = http.get(exempt.url("/h")).send().await.expect("hit");
        assert_eq!(hit.status(), 200);
        assert!(cache_status(&hit).contains("; hit"), "{}", cache_status(&hit));
    }
    // A second miss needs a token, and the only one went to the first miss.
    let miss = http.get(exempt.url("/other")).send().await.expect("miss");
    assert_eq!(miss.status(), 429);

    // By default every request counts, hits included.
    assert_eq!(http.get(counting.url("/h")).send().await.expect("miss").status(), 200);
    assert_eq!(http.get(counting.url("/h")).send().await.expect("hit").status(), 429);
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let origin = TestOrigin::start(|seen, _| cacheable_origin_reply(&seen.path_and_query)).await;
    let limits = |c: &mut edgecache::config::Config| {
        c.throttle.client_rate = Some(1);
        c.throttle.client_burst = Some(1);
    };
    let trusting = TestNode::start(&origin, |c| {
        limits(c);
        c.throttle.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let untrusting = TestNode::start(&origin, limits).await;
    let http = client();
    let get = |node: &TestNode, xff: &str| http.get(node.url("/x")).header("x-forwarded-for", xff).send();

    // Behind a trusted proxy (our loopback client), each forwarded address has its own bucket; the rightmost
    // untrusted entry counts, whatever a client wrote further left.
    assert_eq!(get(&trusting, "198.51.100.1").await.expect("a").status(), 200);
    assert_eq!(get(&trusting, "198.51.100.2").await.expect("b").status(), 200);
    assert_eq!(get(&trusting, "6.6.6.6, 198.51.100.3").await.expect("c").status(), 200);
    let again = get(&trusting, "7.7.7.7, 198.51.100.1").await.expect("a again");
    assert_eq!(again.status(), 429, "198.51.100.1 has spent its token");

    // From an untrusted peer the header is ignored: every request is the peer's.
    assert_eq!(get(&untrusting, "198.51.100.1").await.expect("a").status(), 200);
    assert_eq!(get(&untrusting, "198.51.100.2").await.expect("b").status(), 429);
}

#[tokio::test]
async fn the_origin_never_sees_more_than_max_inflight_at_once() {
    let origin =
        TestOrigin::start(|seen, _| cacheable_origin_reply(&seen.path_and_query).delayed(Duration::from_millis(150)))
            .await;
    let node = TestNode::start(&origin, |c| c.throttle.origin_max_inflight = Some(4)).await;
    let http = client();

    let started = Instant::now();
    let answers = join_all((0..40).map(|i| {
        let http = http.clone();
        let url = node.url(&format!("/k{i}"));
        async move { http.get(url).send().await.expect("request") }
    }))
    .await;
    let elapsed = started.elapsed();

    assert_eq!(origin.max_concurrent(), 4, "the origin saw more (or fewer) than 4 at once");
    let mut served = 0;
    for answer in answers {
        match answer.status().as_u16() {
            200 => served += 1,
            503 => {
                let seconds: u64 = header(&answer, "retry-after").parse().expect("Retry-After in seconds");
                assert!(seconds >= 1);
                assert!(cache_status(&answer).contains("detail=origin-busy"), "{}", cache_status(&answer));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(served >= 4, "only {served} served");
    assert_eq!(origin.hits(), served, "a refused request never reached the origin");
    // Everyone had an answer within the queue timeout (2 s) plus one origin round.
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(metric(&node, "edgecache_origin_queue_length", "").await, Some(0.0));
    assert_eq!(metric(&node, "edgecache_origin_inflight", "").await, Some(0.0));
    let waited = metric(&node, "edgecache_origin_queue_wait_seconds_count", "").await.expect("histogram");
    assert_eq!(waited, 40.0, "every origin request passed the budget");
}

#[tokio::test]
async fn a_stale_copy_answers_when_the_origin_budget_is_exhausted() {
    let origin = TestOrigin::start(|seen, _| match seen.path_and_query.as_str() {
        "/slow" => cacheable_origin_reply("/slow").delayed(Duration::from_millis(1500)),
        "/strict" => Reply::ok("strict", &[("cache-control", "max-age=1, must-revalidate"), ("etag", "\"s\"")]),
        path => Reply::ok(format!("body of {path}"), &[("cache-control", "max-age=1"), ("etag", "\"v\"")]),
    })
    .await;
    let node = TestNode::start(&origin, |c| {
        c.throttle.origin_max_inflight = Some(1);
        c.throttle.origin_queue_timeout = Duration::from_millis(300);
    })
    .await;
    let http = client();
    assert_eq!(http.get(node.url("/s")).send().await.expect("store /s").status(), 200);
    assert_eq!(http.get(node.url("/strict")).send().await.expect("store /strict").status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The only place in the budget is taken by a slow miss.
    let slow = tokio::spawn({
        let (http, url) = (http.clone(), node.url("/slow"));
        async move { http.get(url).send().await.expect("slow").status() }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;

    // /s is stale and has no stale-while-revalidate or stale-if-error: the stale copy answers anyway, saying so.
    let stale = http.get(node.url("/s")).send().await.expect("stale");
    assert_eq!(stale.status(), 200);
    let entry = cache_status(&stale);
    // (`ttl` counts whole seconds: 1.25 s into a 1 s lifetime it still prints 0.)
    assert!(entry.starts_with("test-edge; hit; ttl=") && entry.ends_with("; detail=origin-busy"), "{entry}");
    assert_eq!(stale.text().await.expect("body"), "body of /s");

    // No copy to fall back on (a miss), or one that must not be served stale: 503 with Retry-After.
    for path in ["/new", "/strict"] {
        let refused = http.get(node.url(path)).send().await.expect("refused");
        assert_eq!(refused.status(), 503, "{path}");
        assert!(header(&refused, "retry-after").parse::<u64>().expect("seconds") >= 1);
        assert!(cache_status(&refused).ends_with("; detail=origin-busy"), "{}", cache_status(&refused));
    }
    assert_eq!(slow.await.expect("task"), 200);
    let seen: Vec<String> = origin.seen().into_iter().map(|s| s.path_and_query).collect();
    assert_eq!(seen, ["/s", "/strict", "/slow"], "nothing went to the origin while it was busy");
    assert_eq!(metric(&node, "edgecache_throttled_requests_total", "scope=\"origin\"").await, Some(3.0));
}

#[tokio::test]
async fn hits_on_other_keys_stay_fast_while_misses_queue() {
    let origin = TestOrigin::start(|seen, _| {
        let reply = cacheable_origin_reply(&seen.path_and_query);
        if seen.path_and_query.starts_with("/miss") { reply.delayed(Duration::from_millis(400)) } else { reply }
    })
    .await;
    let node = TestNode::start(&origin, |c| {
        c.throttle.origin_max_inflight = Some(2);
        c.throttle.origin_queue_timeout = Duration::from_secs(5);
    })
    .await;
    let http = client();
    assert_eq!(http.get(node.url("/hot")).send().await.expect("warm").status(), 200);

    let misses = tokio::spawn({
        let http = http.clone();
        let urls: Vec<String> = (0..12).map(|i| node.url(&format!("/miss{i}"))).collect();
        async move { join_all(urls.into_iter().map(|url| http.get(url).send())).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let queued = metric(&node, "edgecache_origin_queue_length", "").await.expect("gauge");
    assert!(queued >= 5.0, "misses are queued meanwhile ({queued})");

    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let hit = http.get(node.url("/hot")).send().await.expect("hit");
        assert!(cache_status(&hit).contains("; hit"), "{}", cache_status(&hit));
        hit.bytes().await.expect("body");
        slowest = slowest.max(started.elapsed());
    }
    // A miss waits 400 ms per round in the queue; a hit waits for nothing.
    assert!(slowest < Duration::from_millis(150), "slowest hit {slowest:?}");
    assert!(metric(&node, "edgecache_origin_queue_length", "").await.expect("gauge") >= 1.0, "still queued");

    for answer in misses.await.expect("misses") {
        assert_eq!(answer.expect("miss").status(), 200);
    }
    assert_eq!(origin.max_concurrent(), 2);
}

#[tokio::test]
async fn a_place_in_the_origin_budget_is_held_until_the_body_has_streamed() {
    let origin = TestOrigin::start(|seen, _| match seen.path_and_query.as_str() {
        // 32 MiB, far more than the socket buffers between origin, node and client hold.
        "/big" => Reply {
            status: http::StatusCode::OK,
            headers: vec![("cache-control", "max-age=60".to_string())],
            body: ReplyBody::Chunks { chunk: 64 * 1024, count: 512 },
            delay: Duration::ZERO,
        },
        path => cacheable_origin_reply(path),
    })
    .await;
    let node = TestNode::start(&origin, |c| {
        c.throttle.origin_max_inflight = Some(1);
        c.throttle.origin_queue_timeout = Duration::from_millis(300);
    })
    .await;
    let http = client();

    // The head has arrived; the body has not been read, so it cannot have finished streaming.
    let big = http.get(node.url("/big")).send().await.expect("head of /big");
    assert_eq!(big.status(), 200);
    let refused = http.get(node.url("/other")).send().await.expect("other");
    assert_eq!(refused.status(), 503, "the only place is still held by /big's body");
    assert_eq!(metric(&node, "edgecache_origin_inflight", "").await, Some(1.0));

    // The client leaves mid-body: the place comes back.
    drop(big);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = http.get(node.url("/other")).send().await.expect("other");
        if answer.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&node, "edgecache_origin_inflight", "").await, Some(0.0));
}

#[tokio::test]
async fn background_refreshes_take_a_free_place_or_none_and_never_hold_up_a_client() {
    let origin = TestOrigin::start(|seen, _| match seen.path_and_query.as_str() {
        "/slow" => cacheable_origin_reply("/slow").delayed(Duration::from_millis(800)),
        _ => Reply::ok("swr", &[("cache-control", "max-age=1, stale-while-revalidate=30"), ("etag", "\"w\"")]),
    })
    .await;
    let node = TestNode::start(&origin, |c| c.throttle.origin_max_inflight = Some(1)).await;
    let http = client();
    assert_eq!(http.get(node.url("/swr")).send().await.expect("store").status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let slow = tokio::spawn({
        let (http, url) = (http.clone(), node.url("/slow"));
        async move { http.get(url).send().await.expect("slow").status() }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Stale within stale-while-revalidate: answered at once; the refresh finds no free place and is skipped.
    let started = Instant::now();
    let stale = http.get(node.url("/swr")).send().await.expect("stale");
    assert!(started.elapsed() < Duration::from_millis(150), "{:?}", started.elapsed());
    assert!(cache_status(&stale).starts_with("test-edge; hit"), "{}", cache_status(&stale));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paths = |origin: &TestOrigin| origin.seen().into_iter().map(|s| s.path_and_query).collect::<Vec<_>>();
    assert_eq!(paths(&origin), ["/swr", "/slow"], "no refresh while the budget was full");
    assert_eq!(metric(&node, "edgecache_origin_queue_length", "").await, Some(0.0), "the refresh did not queue");

    // Once the place is free, the next stale hit's refresh goes.
    assert_eq!(slow.await.expect("task"), 200);
    http.get(node.url("/swr")).send().await.expect("stale again");
    let deadline = Instant::now() + Duration::from_secs(2);
    while paths(&origin).len() < 3 {
        assert!(Instant::now() < deadline, "the refresh never went: {:?}", paths(&origin));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(paths(&origin), ["/swr", "/slow", "/swr"]);
}
