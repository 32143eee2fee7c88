//! Request coalescing under herds: concurrent requests for one key make one origin request and read its body as it
//! streams in; the fetch outlives its leader's client; failures, lock timeouts, uncacheable answers and variants
//! send requests to the origin on their own, in parallel.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Reply, ReplyBody, TestNode, TestOrigin, cache_status, client};

/// What one client of a herd got.
struct Got {
    status: u16,
    cache_status: String,
    body: Result<bytes::Bytes, String>,
    took: Duration,
}

/// `n` clients asking for `url` at the same moment, each on its own connection.
async fn herd(n: usize, url: &str, headers: &[(&'static str, &'static str)]) -> Vec<Got> {
    // One client per request (one connection each, as in a real herd), built before the herd starts.
    let clients: Vec<reqwest::Client> = (0..n).map(|_| client()).collect();
    let requests = clients.into_iter().map(|http| async move {
        let started = Instant::now();
        let mut request = http.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the node answers");
        let (status, cache_status) = (response.status().as_u16(), cache_status(&response));
        let body = response.bytes().await.map_err(|e| e.to_string());
        Got { status, cache_status, body, took: started.elapsed() }
    });
    join_all(requests).await
}

fn collapsed(got: &[Got]) -> usize {
    got.iter().filter(|g| g.cache_status.contains("collapsed")).count()
}

/// The value of a metric series without labels beyond `node` and `pop`.
async fn metric(node: &TestNode, name: &str) -> f64 {
    let text = client().get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find(|line| line.starts_with(name) && !line.starts_with('#'))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_misses_make_one_origin_request() {
    let origin = TestOrigin::start(|_, index| {
        Reply::ok(format!("the one answer #{index}"), &[("cache-control", "max-age=60")])
            .delayed(Duration::from_millis(300))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let got = herd(50, &node.url("/viral"), &[]).await;
    assert_eq!(origin.hits(), 1, "the origin sees one request");
    for g in &got {
        assert_eq!(g.status, 200);
        assert_eq!(g.body.as_deref().ok(), Some(&b"the one answer #0"[..]));
    }
    assert_eq!(collapsed(&got), 49, "every request but the leader's waited on its fetch");
    let leader = got.iter().find(|g| !g.cache_status.contains("collapsed")).expect("a leader");
    assert!(leader.cache_status.contains("fwd=uri-miss; fwd-status=200; stored"), "{}", leader.cache_status);
    assert_eq!(metric(&node, "edgecache_coalesced_requests_total").await, 49.0);
    let slowest = got.iter().map(|g| g.took).max().expect("50 clients");
    assert!(slowest < Duration::from_secs(3), "not one after another (that takes 15 s): slowest {slowest:?}");
}

/// Reads a response's body chunk by chunk: when the first byte came, and the whole body.
async fn first_byte_and_body(response: reqwest::Response) -> (Instant, Vec<u8>) {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    let mut first = None;
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("body chunk");
        if !piece.is_empty() {
            first.get_or_insert_with(Instant::now);
        }
        body.extend_from_slice(&piece);
    }
    (first.expect("a non-empty body"), body)
}

/// What `ReplyBody::Paced` sends: chunk i is `chunk` bytes of value i.
fn paced_body(chunk: usize, count: usize) -> Vec<u8> {
    (0..count).flat_map(|i| vec![i as u8; chunk]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_joining_mid_stream_gets_its_first_byte_at_once() {
    // 15 chunks, one every 100 ms: the body takes ~1.5 s to arrive.
    let (chunk, count, every) = (1024, 15, Duration::from_millis(100));
    let origin = TestOrigin::start(move |_, _| Reply {
        body: ReplyBody::Paced { chunk, count, every },
        ..Reply::ok("", &[("cache-control", "max-age=60")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let started = Instant::now();
    let leader = tokio::spawn(client().get(node.url("/slow-body")).send());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let joined = Instant::now();
    let waiter = client().get(node.url("/slow-body")).send().await.expect("waiter");
    assert!(cache_status(&waiter).contains("collapsed"), "{}", cache_status(&waiter));
    let (waiter_first, waiter_body) = first_byte_and_body(waiter).await;
    let (_, leader_body) = first_byte_and_body(leader.await.expect("task").expect("leader")).await;
    let done = started.elapsed();
    assert_eq!(waiter_body, paced_body(chunk, count));
    assert_eq!(leader_body, paced_body(chunk, count));
    let first_byte = waiter_first - joined;
    assert!(first_byte < Duration::from_millis(300), "the waiter's first byte came {first_byte:?} after it joined");
    assert!(waiter_first - started < done - Duration::from_millis(500), "first byte long before the body ended");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_gets_the_first_byte_about_when_the_leader_does() {
    let (chunk, count, every) = (512, 8, Duration::from_millis(100));
    let origin = TestOrigin::start(move |_, _| Reply {
        body: ReplyBody::Paced { chunk, count, every },
        ..Reply::ok("", &[("cache-control", "max-age=60")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/together");
    let readers = (0..10).map(|i| {
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            first_byte_and_body(client().get(url).send().await.expect("answer")).await
        }
    });
    let got = join_all(readers).await;
    let firsts: Vec<Instant> = got.iter().map(|(first, _)| *first).collect();
    let spread = *firsts.iter().max().expect("10") - *firsts.iter().min().expect("10");
    // The body takes 800 ms to stream: a reader that waited for the whole object would get its first byte at
    // least ~700 ms after the first reader. The bound leaves room for a loaded machine, not for that.
    assert!(spread < Duration::from_millis(450), "first bytes spread over {spread:?}");
    assert!(got.iter().all(|(_, body)| *body == paced_body(chunk, count)));
    assert_eq!(origin.hits(), 1);
}

/// A raw HTTP/1.1 client that sends a GET, reads until some of the body has arrived, then disconnects.
async fn leave_mid_body(addr: std::net::SocketAddr, path: &str) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") || received.len() < 600 {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the node closed before the body began");
        received.extend_from_slice(&buf[..n]);
    }
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetch_goes_on_when_the_leaders_client_disconnects() {
    let (chunk, count, every) = (256, 10, Duration::from_millis(60));
    let origin = TestOrigin::start(move |_, _| Reply {
        body: ReplyBody::Paced { chunk, count, every },
        ..Reply::ok("", &[("cache-control", "max-age=60")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/leader-leaves");
    let waiters = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let got = herd(5, &url, &[]).await;
        got.into_iter().map(|g| (g.cache_status, g.body.expect("a whole body"))).collect::<Vec<_>>()
    });
    leave_mid_body(node.handle.http_addrs[0], "/leader-leaves").await;
    for (status, body) in waiters.await.expect("waiters") {
        assert!(status.contains("collapsed"), "{status}");
        assert_eq!(body.as_ref(), paced_body(chunk, count).as_slice());
    }
    let after = client().get(node.url("/leader-leaves")).send().await.expect("after");
    assert!(cache_status(&after).contains("hit"), "stored although its leader left: {}", cache_status(&after));
    assert_eq!(after.bytes().await.expect("body").as_ref(), paced_body(chunk, count).as_slice());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fetch_goes_on_when_the_leaders_client_leaves_before_the_head() {
    let origin = TestOrigin::start(|_, _| {
        // Long enough that the waiters (sent at 100 ms) arrive before the answer does, even on a loaded machine.
        Reply::ok("worth the wait", &[("cache-control", "max-age=60")]).delayed(Duration::from_millis(1000))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let addr = node.handle.http_addrs[0];
    let mut leader = tokio::net::TcpStream::connect(addr).await.expect("connect");
    leader.write_all(format!("GET /early-leave HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiter = tokio::spawn({
        let url = node.url("/early-leave");
        async move { herd(3, &url, &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(leader);
    for g in waiter.await.expect("waiters") {
        assert_eq!((g.status, g.body.as_deref().ok()), (200, Some(&b"worth the wait"[..])));
        assert!(g.cache_status.contains("collapsed"), "{}", g.cache_status);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = client().get(node.url("/early-leave")).send().await.expect("after");
    assert!(cache_status(&after).contains("hit"), "{}", cache_status(&after));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_origin_fails_the_leader_a_waiter_takes_over() {
    let origin = TestOrigin::start(|_, index| {
        if index == 0 {
            Reply { body: ReplyBody::Reset, ..Reply::ok("", &[]) }.delayed(Duration::from_millis(200))
        } else {
            Reply::ok("second time lucky", &[("cache-control", "max-age=60")]).delayed(Duration::from_millis(100))
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let got = herd(10, &node.url("/flaky"), &[]).await;
    let failed: Vec<&Got> = got.iter().filter(|g| g.status != 200).collect();
    assert_eq!(failed.len(), 1, "only the leader whose fetch failed gets an error");
    assert_eq!(failed[0].status, 502);
    assert!(failed[0].cache_status.contains("detail=upstream-reset"), "{}", failed[0].cache_status);
    for g in got.iter().filter(|g| g.status == 200) {
        assert_eq!(g.body.as_deref().ok(), Some(&b"second time lucky"[..]));
    }
    assert_eq!(collapsed(&got), 8, "one waiter took over, the others waited on it");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_error_answer_reaches_every_waiter() {
    let origin = TestOrigin::start(|_, index| {
        Reply { status: http::StatusCode::SERVICE_UNAVAILABLE, ..Reply::ok(format!("down #{index}"), &[]) }
            .delayed(Duration::from_millis(200))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let got = herd(10, &node.url("/down"), &[]).await;
    assert!(got.iter().all(|g| g.status == 503 && g.body.as_deref().ok() == Some(&b"down #0"[..])));
    assert_eq!(collapsed(&got), 9);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_mid_stream_aborts_every_reader_and_is_not_stored() {
    let origin = TestOrigin::start(|_, _| {
        Reply {
            body: ReplyBody::CutShort { declared: 1000, sent: bytes::Bytes::from(vec![b'a'; 400]) },
            ..Reply::ok("", &[("cache-control", "max-age=60")])
        }
        .delayed(Duration::from_millis(150))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let got = herd(5, &node.url("/cut"), &[]).await;
    assert!(got.iter().all(|g| g.body.is_err()), "no reader may see the cut body as complete");
    assert_eq!(collapsed(&got), 4);
    let _ = client().get(node.url("/cut")).send().await.expect("again").bytes().await;
    assert_eq!(origin.hits(), 2, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_goes_to_the_origin_itself_after_the_lock_timeout() {
    let origin = TestOrigin::start(|_, index| {
        let delay = if index == 0 { Duration::from_millis(1500) } else { Duration::ZERO };
        Reply::ok(format!("answer #{index}"), &[("cache-control", "max-age=60")]).delayed(delay)
    })
    .await;
    let node = TestNode::start(&origin, |config| config.cache.lock_timeout = Duration::from_millis(200)).await;
    let leader = tokio::spawn(client().get(node.url("/stuck")).send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let waiter = client().get(node.url("/stuck")).send().await.expect("waiter");
    let took = started.elapsed();
    let status = cache_status(&waiter);
    assert_eq!(waiter.text().await.expect("body"), "answer #1");
    assert!(status.contains("detail=lock-timeout") && !status.contains("collapsed"), "{status}");
    assert!(took >= Duration::from_millis(180) && took < Duration::from_millis(1000), "waited {took:?}");
    let leader = leader.await.expect("task").expect("leader");
    assert_eq!(leader.text().await.expect("body"), "answer #0");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncacheable_answer_under_a_herd_goes_through_in_parallel() {
    let hold = Duration::from_millis(300);
    let origin = TestOrigin::start(move |_, index| {
        Reply::ok(format!("for one user #{index}"), &[("cache-control", "private")]).delayed(hold)
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let n = 20;

    // A cold herd: the leader learns the answer is private; every waiter then fetches its own, all at once.
    let started = Instant::now();
    let got = herd(n, &node.url("/account"), &[]).await;
    let took = started.elapsed();
    assert_eq!(origin.hits(), n, "nobody was given another's private answer");
    assert_eq!(collapsed(&got), 0);
    let mut bodies: Vec<_> = got.iter().map(|g| g.body.clone().expect("body")).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), n, "each client got its own answer");
    assert!(origin.peak_concurrency() >= n / 2, "waiters went in parallel: peak {}", origin.peak_concurrency());
    assert!(took < hold * 10, "two origin round trips, not {n} in a row: {took:?}");

    // While the key is remembered as uncacheable (hit-for-miss), a herd goes straight through, in parallel.
    let started = Instant::now();
    let got = herd(n, &node.url("/account"), &[]).await;
    assert!(started.elapsed() < hold * 10, "not {n} round trips in a row: {:?}", started.elapsed());
    assert_eq!(origin.hits(), 2 * n);
    assert!(origin.peak_concurrency() >= n - 2, "a whole herd at once: peak {}", origin.peak_concurrency());
    assert!(got.iter().all(|g| g.status == 200 && g.cache_status.contains("detail=private")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_selecting_another_variant_does_not_get_the_leaders_body() {
    let origin = TestOrigin::start(|seen, _| {
        let lang = seen.headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
        Reply::ok(format!("language {lang}"), &[("cache-control", "max-age=60"), ("vary", "Accept-Language")])
            .delayed(Duration::from_millis(200))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/greeting");
    let (en, de) =
        tokio::join!(herd(5, &url, &[("accept-language", "en")]), herd(5, &url, &[("accept-language", "de")]));
    assert!(en.iter().all(|g| g.body.as_deref().ok() == Some(&b"language en"[..])));
    assert!(de.iter().all(|g| g.body.as_deref().ok() == Some(&b"language de"[..])));
    assert_eq!(origin.hits(), 2, "one fetch per variant");
}

/// An origin with validators whose revalidations take `slow` to answer (304 when the ETag matches).
async fn revalidating_origin(cache_control: &'static str, slow: Duration) -> TestOrigin {
    TestOrigin::start(move |seen, index| {
        let headers = [("cache-control", cache_control), ("etag", "\"v1\"")];
        if seen.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304, &headers).delayed(slow)
        } else {
            Reply::ok(format!("version {index}"), &headers)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_hot_object_is_revalidated_once_for_a_herd() {
    // The 304 makes the object fresh for a minute (its own `Cache-Control` refreshes the stored one), so the
    // request after the herd is a hit however long the herd took to be answered on a busy machine.
    let origin = TestOrigin::start(move |seen, index| {
        if seen.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")])
                .delayed(Duration::from_millis(300))
        } else {
            Reply::ok(format!("version {index}"), &[("cache-control", "max-age=1"), ("etag", "\"v1\"")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/hot");
    client().get(&url).send().await.expect("prime").bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = herd(20, &url, &[]).await;
    assert_eq!(origin.hits(), 2, "one revalidation for the whole herd");
    for g in &got {
        assert_eq!((g.status, g.body.as_deref().ok()), (200, Some(&b"version 0"[..])));
        assert!(g.cache_status.contains("fwd=stale; fwd-status=304"), "{}", g.cache_status);
    }
    assert_eq!(collapsed(&got), 19);
    let after = client().get(&url).send().await.expect("after");
    assert!(cache_status(&after).contains("hit"), "the 304 refreshed it for everyone: {}", cache_status(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_a_herd_at_once_with_one_refresh() {
    let origin = revalidating_origin("max-age=1, stale-while-revalidate=30", Duration::from_secs(2)).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/swr");
    client().get(&url).send().await.expect("prime").bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = herd(20, &url, &[]).await;
    for g in &got {
        assert_eq!(g.body.as_deref().ok(), Some(&b"version 0"[..]));
        assert!(g.cache_status.contains("; hit"), "{}", g.cache_status);
        assert!(g.took < Duration::from_secs(1), "served stale without waiting for the 2 s refresh: {:?}", g.took);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(origin.hits(), 2, "one background refresh for the herd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_becomes_cacheable_again_is_coalesced_again() {
    let origin = TestOrigin::start(|_, index| {
        let cache_control = if index == 0 { "private" } else { "max-age=60" };
        Reply::ok(format!("answer #{index}"), &[("cache-control", cache_control)])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/was-private");
    let first = client().get(&url).send().await.expect("first");
    assert!(cache_status(&first).contains("detail=private"), "{}", cache_status(&first));
    let second = client().get(&url).send().await.expect("second");
    assert!(cache_status(&second).contains("stored"), "hit-for-miss, then stored: {}", cache_status(&second));
    let got = herd(10, &url, &[]).await;
    assert!(got.iter().all(|g| g.body.as_deref().ok() == Some(&b"answer #1"[..]) && g.cache_status.contains("hit")));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_object_under_steady_load_is_fetched_once_per_expiry() {
    let origin = TestOrigin::start(|_, index| {
        Reply::ok(format!("edition {index}"), &[("cache-control", "max-age=1")]).delayed(Duration::from_millis(50))
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let url = node.url("/ticker");
    let run_for = Duration::from_secs(3);
    let started = Instant::now();
    // 20 clients asking back to back for 3 s (hundreds of requests a second on this machine).
    let loops = (0..20).map(|_| {
        let (http, url) = (client(), url.clone());
        async move {
            let mut answered = 0;
            while started.elapsed() < run_for {
                let response = http.get(&url).send().await.expect("answer");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("body");
                answered += 1;
            }
            answered
        }
    });
    let answered: usize = join_all(loops).await.into_iter().sum();
    assert!(answered > 100, "only {answered} requests in {run_for:?}");
    // One fetch when it starts and at most one per second of expiry after that (plus one at the edge).
    assert!(origin.hits() <= 5, "{} origin fetches for {answered} requests over 3 s", origin.hits());
}
