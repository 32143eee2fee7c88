//! What answers from cache carry and what they never carry: `Age` (RFC 9111 §5.1), no hop-by-hop or
//! `Connection`-named fields (RFC 9110 §7.6.1), no targeted cache-control fields (RFC 9213); which status codes are
//! stored and served (RFC 9111 §3, RFC 9110 §15); HEAD misses; interim 1xx answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client, header};

fn is_hit(response: &reqwest::Response) -> bool {
    cache_status(response).starts_with("test-edge; hit")
}

#[tokio::test]
async fn age_is_sent_on_every_answer_from_cache() {
    let origin = TestOrigin::start(|seen, _| {
        if seen.headers.contains_key("if-none-match") {
            Reply::status(304, &[("cache-control", "max-age=60"), ("etag", "\"a\"")])
        } else {
            let cc = if seen.path_and_query == "/stale" { "max-age=0" } else { "max-age=60" };
            Reply::ok("0123456789", &[("cache-control", cc), ("etag", "\"a\"")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for path in ["/fresh", "/stale"] {
        http.get(node.url(path)).send().await.expect("fill").bytes().await.expect("body");
    }
    let answers = [
        ("hit", http.get(node.url("/fresh")).send().await.expect("hit")),
        ("head", http.head(node.url("/fresh")).send().await.expect("head")),
        ("304", http.get(node.url("/fresh")).header("if-none-match", "\"a\"").send().await.expect("304")),
        ("206", http.get(node.url("/fresh")).header("range", "bytes=0-1").send().await.expect("206")),
        ("revalidated", http.get(node.url("/stale")).send().await.expect("revalidated")),
    ];
    for (what, response) in answers {
        let age = header(&response, "age");
        assert!(age.parse::<u64>().is_ok_and(|age| age < 5), "{what}: Age {age:?} ({})", cache_status(&response));
    }
}

#[tokio::test]
async fn age_counts_the_upstream_age_and_the_time_in_cache() {
    let origin = TestOrigin::start(|_, _| Reply::ok("aged", &[("cache-control", "max-age=60"), ("age", "30")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    http.get(node.url("/aged")).send().await.expect("fill").bytes().await.expect("body");
    let hit = http.get(node.url("/aged")).send().await.expect("hit");
    assert!(is_hit(&hit));
    assert_eq!(header(&hit, "age"), "30");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = http.get(node.url("/aged")).send().await.expect("later");
    assert_eq!(header(&later, "age"), "31");
    assert_eq!(cache_status(&later), "test-edge; hit; ttl=29");
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_fields_are_neither_stored_nor_served() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok(
            "hop",
            &[
                ("cache-control", "max-age=60"),
                ("connection", "x-private-hop, keep-alive"),
                ("x-private-hop", "secret"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("proxy-authenticate", "Basic realm=\"origin\""),
                ("proxy-authentication-info", "nextnonce=\"abc\""),
                ("trailer", "x-checksum"),
                ("upgrade", "h2c"),
                ("x-end-to-end", "kept"),
            ],
        )
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let miss = http.get(node.url("/hop")).send().await.expect("miss");
    miss.bytes().await.expect("body");
    let hit = http.get(node.url("/hop")).send().await.expect("hit");
    assert!(is_hit(&hit));
    for name in [
        "x-private-hop",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authentication-info",
        "trailer",
        "upgrade",
    ] {
        assert!(!hit.headers().contains_key(name), "{name} was stored and served");
    }
    assert_eq!(header(&hit, "x-end-to-end"), "kept");
}

#[tokio::test]
async fn hop_by_hop_fields_are_not_passed_on_a_miss() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok("hop", &[("connection", "x-private-hop"), ("x-private-hop", "secret"), ("keep-alive", "timeout=5")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let miss = client().get(node.url("/hop")).send().await.expect("miss");
    assert!(!miss.headers().contains_key("x-private-hop"));
    assert!(!miss.headers().contains_key("keep-alive"));
}

#[tokio::test]
async fn this_cdns_own_cache_control_fields_are_not_sent_downstream_and_cdn_cache_control_is() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok(
            "targeted",
            &[
                ("cache-control", "max-age=60"),
                ("cdn-cache-control", "max-age=60"),
                ("edgecache-cache-control", "max-age=60"),
                ("surrogate-control", "max-age=60"),
            ],
        )
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let miss = http.get(node.url("/t")).send().await.expect("miss");
    assert!(cache_status(&miss).contains("stored"), "{}", cache_status(&miss));
    let miss_headers = miss.headers().clone();
    miss.bytes().await.expect("body");
    let hit = http.get(node.url("/t")).send().await.expect("hit");
    assert!(is_hit(&hit));
    for name in ["edgecache-cache-control", "surrogate-control"] {
        assert!(!miss_headers.contains_key(name), "{name} on a miss");
        assert!(!hit.headers().contains_key(name), "{name} on a hit");
    }
    // RFC 9213 §3: for every CDN cache on the way, so a CDN downstream of this one can obey it too.
    assert_eq!(miss_headers.get("cdn-cache-control").map(|v| v.as_bytes()), Some(&b"max-age=60"[..]));
    assert_eq!(header(&hit, "cdn-cache-control"), "max-age=60");
    assert_eq!(header(&hit, "cache-control"), "max-age=60");
}

/// An origin answering `/CODE` with that status, a body naming it, and `cache_control`.
async fn status_origin(cache_control: &'static str) -> TestOrigin {
    TestOrigin::start(move |seen, _| {
        let code: u16 = seen.path_and_query.trim_start_matches('/').parse().expect("status path");
        let mut reply = Reply::ok(format!("status {code}"), &[("cache-control", cache_control)]);
        if code == 204 {
            reply = Reply::ok("", &[("cache-control", cache_control)]);
        }
        if (300..400).contains(&code) {
            reply.headers.push(("location", "/elsewhere".to_string()));
        }
        reply.status = http::StatusCode::from_u16(code).expect("status");
        reply
    })
    .await
}

async fn stored_and_served(node: &TestNode, code: u16) {
    let http = client();
    let path = format!("/{code}");
    let miss = http.get(node.url(&path)).send().await.expect("miss");
    assert_eq!(miss.status().as_u16(), code);
    assert!(cache_status(&miss).contains("stored"), "{code}: {}", cache_status(&miss));
    miss.bytes().await.expect("body");
    let hit = http.get(node.url(&path)).send().await.expect("hit");
    assert_eq!(hit.status().as_u16(), code);
    assert!(is_hit(&hit), "{code}: {}", cache_status(&hit));
    if (300..400).contains(&code) {
        assert_eq!(header(&hit, "location"), "/elsewhere");
    }
    let expected = if code == 204 { String::new() } else { format!("status {code}") };
    assert_eq!(hit.text().await.expect("body"), expected, "{code}");
}

#[tokio::test]
async fn default_cacheable_status_codes_are_stored_and_served_with_their_bodies() {
    let origin = status_origin("max-age=60").await;
    let node = TestNode::start(&origin, |_| {}).await;
    for code in [200, 203, 300, 301, 308, 404, 405, 410, 414, 501] {
        stored_and_served(&node, code).await;
    }
}

#[tokio::test]
async fn no_content_is_served_from_cache_without_a_body() {
    let origin = status_origin("max-age=60").await;
    let node = TestNode::start(&origin, |_| {}).await;
    stored_and_served(&node, 204).await;
    let hit = client().get(node.url("/204")).send().await.expect("hit");
    assert!(header(&hit, "content-length").is_empty() || header(&hit, "content-length") == "0");
}

#[tokio::test]
async fn other_status_codes_are_stored_with_explicit_freshness() {
    let origin = status_origin("max-age=60").await;
    let node = TestNode::start(&origin, |_| {}).await;
    for code in [302, 307] {
        stored_and_served(&node, code).await;
    }
}

#[tokio::test]
async fn head_miss_is_fetched_as_get_stored_and_answered_with_its_head() {
    let origin = TestOrigin::start(|seen, _| {
        let cache_control = if seen.path_and_query == "/private" { "private" } else { "max-age=60" };
        Reply::ok("full body", &[("cache-control", cache_control)])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let head = http.head(node.url("/h")).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(cache_status(&head), "test-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60");
    assert_eq!(header(&head, "content-length"), "9", "the GET's length");
    assert_eq!(head.bytes().await.expect("no body").len(), 0);
    assert_eq!(origin.seen()[0].method, "GET", "the HEAD went upstream as a GET");
    let get = http.get(node.url("/h")).send().await.expect("get");
    assert!(is_hit(&get), "{}", cache_status(&get));
    assert_eq!(get.text().await.expect("body"), "full body");
    let head_again = http.head(node.url("/h")).send().await.expect("head");
    assert!(is_hit(&head_again), "HEAD is answered from the stored GET");
    assert_eq!(origin.hits(), 1);

    // A response that may not be stored: the first HEAD learns it (as a GET), the next goes up as a HEAD.
    for _ in 0..2 {
        let head = http.head(node.url("/private")).send().await.expect("head");
        assert_eq!(head.status(), 200);
        assert!(!cache_status(&head).contains("stored"), "{}", cache_status(&head));
        assert_eq!(head.bytes().await.expect("no body").len(), 0);
    }
    let methods: Vec<String> = origin.seen()[1..].iter().map(|seen| seen.method.to_string()).collect();
    assert_eq!(methods, ["GET", "HEAD"]);
}

/// Reads from `stream` until `needle` has arrived (bounded), returning everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await.expect("in time").expect("read");
        assert!(read > 0, "closed before {needle:?}: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn expect_100_continue_gets_the_interim_answer_before_the_body_is_sent() {
    let origin =
        TestOrigin::start(|seen, _| Reply::ok(format!("got {}", String::from_utf8_lossy(&seen.body)), &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let mut stream = TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    let head = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue\r\n"), "{interim}");
    stream.write_all(b"hello").await.expect("body");
    let last = read_until(&mut stream, "got hello").await;
    assert!(last.starts_with("HTTP/1.1 200 OK\r\n"), "{last}");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn interim_103_from_the_origin_is_dropped_and_the_final_answer_served_and_stored() {
    // hyper's server cannot send a 1xx other than 100 Continue, so a 103 cannot be passed on; it must not break
    // the exchange either. A raw origin sends one before its 200.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_origin = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            read_until(&mut stream, "\r\n\r\n").await;
            let answer = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
                          HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\
                          Link: </style.css>; rel=preload\r\nConnection: close\r\n\r\nhello";
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let unused = TestOrigin::start(|_, _| Reply::status(500, &[])).await;
    let node = TestNode::start(&unused, |config| config.origin.url = Some(raw_origin.parse().expect("url"))).await;
    let http = client();
    let miss = http.get(node.url("/hints")).send().await.expect("miss");
    assert_eq!(miss.status(), 200);
    assert!(cache_status(&miss).contains("stored"), "{}", cache_status(&miss));
    assert_eq!(miss.text().await.expect("body"), "hello");
    let hit = http.get(node.url("/hints")).send().await.expect("hit");
    assert!(is_hit(&hit));
    assert_eq!(header(&hit, "link"), "</style.css>; rel=preload");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(unused.hits(), 0);
}

#[tokio::test]
async fn head_answer_with_matching_validators_freshens_the_stored_get() {
    // An origin that ignores conditionals on HEAD and answers 200 with the same ETag and new fields.
    let origin = TestOrigin::start(|seen, _| {
        if seen.method == http::Method::HEAD {
            let etag = if seen.path_and_query == "/changed" { "\"b\"" } else { "\"a\"" };
            Reply::ok("", &[("cache-control", "max-age=60"), ("etag", etag), ("x-from-head", "yes")])
        } else {
            Reply::ok("get body", &[("cache-control", "max-age=1"), ("etag", "\"a\"")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for path in ["/same", "/changed"] {
        http.get(node.url(path)).send().await.expect("fill").bytes().await.expect("body");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let head = http.head(node.url("/same")).send().await.expect("head");
    assert_eq!(cache_status(&head), "test-edge; fwd=stale; fwd-status=200; ttl=60; detail=head-update");
    let get = http.get(node.url("/same")).send().await.expect("get");
    assert!(is_hit(&get), "the HEAD made the stored GET fresh: {}", cache_status(&get));
    assert_eq!(header(&get, "x-from-head"), "yes");
    assert_eq!(get.text().await.expect("body"), "get body");

    let head = http.head(node.url("/changed")).send().await.expect("head");
    assert!(!cache_status(&head).contains("head-update"), "{}", cache_status(&head));
    let get = http.get(node.url("/changed")).send().await.expect("get");
    assert!(cache_status(&get).starts_with("test-edge; fwd=stale"), "a different ETag left it stale");
}
