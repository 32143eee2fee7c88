//! The reverse proxy itself: what is forwarded, how, and the clear errors when the origin fails or the request is bad.

use std::time::{Duration, Instant};

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client, header};

#[tokio::test]
async fn post_passes_through_with_its_body() {
    let origin = TestOrigin::start(|seen, _| Reply::ok(seen.body.clone(), &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for _ in 0..2 {
        let response = http.post(node.url("/form")).body("a=1&b=2").send().await.expect("post");
        assert_eq!(response.status(), 200);
        assert!(cache_status(&response).contains("fwd=bypass"), "{}", cache_status(&response));
        assert_eq!(response.text().await.expect("body"), "a=1&b=2");
    }
    assert_eq!(origin.hits(), 2, "POST is never answered from cache");
    assert!(origin.seen().iter().all(|s| s.method == "POST"));
}

#[tokio::test]
async fn proxy_headers_are_rewritten() {
    let origin = TestOrigin::start(|_, _| {
        Reply::ok("x", &[("connection", "x-hop"), ("x-hop", "1"), ("cache-control", "no-store")])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let response = client()
        .get(node.url("/p"))
        .header("host", "www.example.test")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "secret")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .expect("get");
    assert!(header(&response, "via").ends_with("1.1 test-edge"), "{}", header(&response, "via"));
    assert!(response.headers().get("x-hop").is_none(), "hop-by-hop response fields are dropped");
    let seen = &origin.seen()[0];
    assert_eq!(seen.headers["host"], "www.example.test", "Host is kept");
    assert!(seen.headers.get("x-private").is_none(), "fields named in Connection are dropped");
    assert_eq!(seen.headers["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["via"], "1.1 test-edge");
}

#[tokio::test]
async fn origin_down_gives_a_fast_502() {
    // Reserve a port, then close it so that nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let origin = TestOrigin::start(|_, _| Reply::ok("unused", &[])).await;
    let node = TestNode::start(&origin, |config| {
        config.origin.url = Some(format!("http://{closed}").parse().expect("url"));
    })
    .await;
    let started = Instant::now();
    let response = client().get(node.url("/down")).send().await.expect("answer");
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(cache_status(&response).contains("detail=connect-error"), "{}", cache_status(&response));
    assert!(response.text().await.expect("body").contains("origin unreachable"));
}

#[tokio::test]
async fn a_status_outside_100_to_599_is_a_502_and_never_stored() {
    let origin = TestOrigin::start(|_, _| Reply::status(999, &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    for _ in 0..2 {
        let response = client().get(node.url("/odd-status")).send().await.expect("answer");
        assert_eq!(response.status(), 502);
        assert!(cache_status(&response).contains("detail=invalid-status"), "{}", cache_status(&response));
        assert!(response.text().await.expect("body").contains("status 999"));
    }
    assert_eq!(origin.hits(), 2, "the answer was not stored");
}

#[tokio::test]
async fn trace_and_connect_are_refused_with_405_and_never_forwarded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let response = client()
        .request(reqwest::Method::TRACE, node.url("/echo"))
        .header("cookie", "session=secret")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 405);
    assert!(header(&response, "allow").contains("GET"), "{}", header(&response, "allow"));
    assert!(!response.text().await.expect("body").contains("secret"));

    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    stream.write_all(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n").await.expect("request");
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answered in time");
    let answer = String::from_utf8_lossy(&buf[..read.expect("read")]).to_string();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn slow_origin_gives_a_504() {
    let origin = TestOrigin::start(|_, _| Reply::ok("late", &[]).delayed(Duration::from_secs(3))).await;
    let node = TestNode::start(&origin, |config| config.origin.response_timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = client().get(node.url("/slow")).send().await.expect("answer");
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn oversized_request_headers_get_431() {
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |config| config.server.max_header_size = 16 * 1024).await;
    let response = client().get(node.url("/big")).header("x-big", "a".repeat(32 * 1024)).send().await.expect("answer");
    assert_eq!(response.status(), 431);
    assert_eq!(origin.hits(), 0);
}

/// What the node answers on one connection to `requests` sent one after another: each answer's head and its
/// body of `content-length` bytes (the node closes the connection after a 400, 414 or 431).
async fn raw_answers(node: &TestNode, requests: &[Vec<u8>]) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    let mut answers = Vec::new();
    for request in requests {
        stream.write_all(request).await.expect("request");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    break;
                }
            }
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("in time");
            match read.expect("read") {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
        answers.push(String::from_utf8_lossy(&answer).to_string());
    }
    answers
}

#[tokio::test]
async fn a_request_with_two_host_lines_or_an_invalid_host_gets_400() {
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let cases: [&[u8]; 4] = [
        b"GET /h HTTP/1.1\r\nhost: a.test\r\nhost: b.test\r\n\r\n",
        b"GET /h HTTP/1.1\r\nhost: bad host\r\n\r\n",
        b"GET /h HTTP/1.1\r\nhost: a.test:99999\r\n\r\n",
        b"GET http://a.test/h HTTP/1.1\r\nhost: a/b\r\n\r\n",
    ];
    for case in cases {
        let answer = &raw_answers(&node, &[case.to_vec()]).await[0];
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("detail=invalid-host"), "{answer}");
    }
    let good = b"GET http://a.test/h HTTP/1.1\r\nhost: b.test:8080\r\n\r\n".to_vec();
    let answer = &raw_answers(&node, &[good]).await[0];
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(origin.hits(), 1, "only the valid request reached the origin");
    assert_eq!(origin.seen()[0].headers.get("host").map(|v| v.as_bytes()), Some(&b"a.test"[..]), "the target's host");
}

#[tokio::test]
async fn an_http10_request_without_host_is_addressed_to_the_origin_and_an_http11_one_gets_400() {
    let origin = TestOrigin::start(|_, _| Reply::ok("old", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let answers = raw_answers(&node, &[b"GET /old HTTP/1.0\r\n\r\n".to_vec()]).await;
    assert!(answers[0].starts_with("HTTP/1.0 200"), "{}", answers[0]);
    assert!(answers[0].ends_with("\r\n\r\nold"), "{}", answers[0]);
    let host = origin.seen()[0].headers.get("host").map(|v| v.as_bytes().to_vec());
    assert_eq!(host, Some(origin.addr.to_string().into_bytes()), "the origin's authority is the Host sent on");
    // The same key again: a hit.
    let answers = raw_answers(&node, &[b"GET /old HTTP/1.0\r\n\r\n".to_vec()]).await;
    assert!(answers[0].contains("test-edge; hit"), "{}", answers[0]);
    let answers = raw_answers(&node, &[b"GET /old HTTP/1.1\r\n\r\n".to_vec()]).await;
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{}", answers[0]);
    assert!(answers[0].contains("detail=no-host"), "{}", answers[0]);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn an_http10_origins_answer_goes_out_as_http11_and_via_names_the_version_it_came_in_with() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An HTTP/1.0 origin that closes after each answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let raw_origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            let answer = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nCache-Control: max-age=60\r\n\r\nold";
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let unused = TestOrigin::start(|_, _| Reply::status(500, &[])).await;
    let node = TestNode::start(&unused, |config| config.origin.url = Some(raw_origin.parse().expect("url"))).await;
    let get = b"GET /v HTTP/1.1\r\nhost: example.test\r\n\r\n".to_vec();
    let own = b"GET /own HTTP/1.1\r\nhost: example.test\r\ncache-control: no-store\r\n\r\n".to_vec();
    // Miss, hit, and a request whose answer streams through with the origin's own head, on one connection: it
    // stays open (HTTP/1.1's persistence).
    let answers = raw_answers(&node, &[get.clone(), get, own]).await;
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("\r\nvia: 1.0 test-edge\r\n"), "{answer}");
    }
    assert!(answers[1].contains("test-edge; hit"), "{}", answers[1]);
    assert_eq!(unused.hits(), 0);
}

#[tokio::test]
async fn a_request_line_longer_than_the_head_limit_gets_414_and_a_head_over_it_431_to_the_byte() {
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |config| config.server.max_header_size = 16 * 1024).await;
    let short = b"GET /short HTTP/1.1\r\nhost: example.test\r\n\r\n".to_vec();
    let long = format!("GET /{} HTTP/1.1\r\nhost: example.test\r\n\r\n", "a".repeat(20 * 1024)).into_bytes();
    let first = raw_answers(&node, std::slice::from_ref(&long)).await;
    assert!(first[0].starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{}", first[0]);
    let answers = raw_answers(&node, &[short.clone(), long]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{}", answers[1]);
    // A request line that fits, followed by header fields that do not: 431. One byte under the limit passes.
    let with_field = |len: usize| {
        let head = "GET /f HTTP/1.1\r\nhost: example.test\r\nx-big: \r\n\r\n";
        format!("GET /f HTTP/1.1\r\nhost: example.test\r\nx-big: {}\r\n\r\n", "b".repeat(len - head.len())).into_bytes()
    };
    let answers = raw_answers(&node, &[with_field(16 * 1024 + 1)]).await;
    assert!(answers[0].starts_with("HTTP/1.1 431"), "{}", answers[0]);
    let answers = raw_answers(&node, &[with_field(16 * 1024 - 1), with_field(16 * 1024 + 1)]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.1 431"), "{}", answers[1]);
    assert_eq!(origin.hits(), 2, "only the heads that fit reached the origin");
}

#[tokio::test]
async fn a_request_that_already_passed_this_node_is_a_loop() {
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let response =
        client().get(node.url("/loop")).header("via", "1.1 other, 1.1 test-edge").send().await.expect("answer");
    assert_eq!(response.status(), 508);
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn h2c_clients_share_the_cache_with_http1_clients() {
    let origin = TestOrigin::start(|_, _| Reply::ok("both", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    client().get(node.url("/shared")).send().await.expect("h1").bytes().await.expect("body");
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("h2 client");
    let response = h2.get(node.url("/shared")).send().await.expect("h2");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert!(cache_status(&response).contains("hit"), "{}", cache_status(&response));
    // Via names the protocol the response came in with: the origin's HTTP/1.1, whatever the client speaks.
    assert!(header(&response, "via").ends_with("1.1 test-edge"), "{}", header(&response, "via"));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_client_that_sends_its_head_too_slowly_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |config| config.server.header_read_timeout = Duration::from_millis(300)).await;
    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    stream.write_all(b"GET /slowloris HTTP/1.1\r\nHost: a\r\nX-Slow: ").await.expect("partial head");
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("closed in time");
    // hyper closes the connection (possibly after a 408); either way the request never reaches the origin.
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "unexpected answer"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(origin.hits(), 0);
}

#[tokio::test]
async fn a_slow_answer_is_spared_and_a_connection_left_idle_is_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The origin takes longer than both timeouts to answer: the request is in flight all that time.
    let origin = TestOrigin::start(|_, _| Reply::ok("late", &[]).delayed(Duration::from_millis(1000))).await;
    let node = TestNode::start(&origin, |config| {
        config.server.header_read_timeout = Duration::from_millis(400);
        config.server.idle_timeout = Duration::from_millis(800);
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    stream.write_all(b"GET /slow-answer HTTP/1.1\r\nHost: a\r\n\r\n").await.expect("head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"late") {
        let n =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answer").expect("read");
        assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    // Then the connection sits idle: it is closed after the idle timeout, not the (shorter) header one.
    let idle = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "nothing more is sent");
    let waited = idle.elapsed();
    assert!(waited >= Duration::from_millis(780) && waited < Duration::from_millis(2500), "closed after {waited:?}");
}

#[tokio::test]
async fn requests_that_keep_coming_keep_a_connection_open_past_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |config| config.server.header_read_timeout = Duration::from_millis(300)).await;
    // One connection, a request every 100 ms for four timeouts: never quiet for a whole timeout.
    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    let started = Instant::now();
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_millis(1200) {
        stream.write_all(b"GET /steady HTTP/1.1\r\nHost: a\r\n\r\n").await.expect("head");
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\nx") {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.expect("answer");
            let n = read.expect("read");
            assert!(n > 0, "closed after {answered} answers, {:?} in", started.elapsed());
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        answered += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered >= 8, "{answered} answers");
}

#[tokio::test]
async fn the_header_guard_closes_an_idle_http1_connection_and_leaves_an_idle_http2_one_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[("cache-control", "max-age=60")])).await;
    let node = TestNode::start(&origin, |config| {
        config.server.header_read_timeout = Duration::from_millis(200);
        config.server.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let h2 = reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("h2 client");
    let response = h2.get(node.url("/idle-h2")).send().await.expect("h2");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let mut h1 = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    h1.write_all(b"GET /idle-h1 HTTP/1.1\r\nHost: a\r\n\r\n").await.expect("head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.ends_with(b"\r\n\r\nx") {
        let n = tokio::time::timeout(Duration::from_secs(5), h1.read(&mut buf)).await.expect("answer").expect("read");
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
    // Both idle for three times the idle limit: the HTTP/1.1 one is closed, the HTTP/2 one is not.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let read = tokio::time::timeout(Duration::from_secs(2), h1.read(&mut buf)).await.expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "the idle HTTP/1.1 connection is closed");
    let metrics = client().get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let open: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("edgecache_open_connections{") && l.contains("listener=\"http\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(open, 1.0, "the idle HTTP/2 connection is still open");
    let again = h2.get(node.url("/idle-h2")).send().await.expect("h2 again");
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn options_with_no_hops_left_is_answered_here_and_with_some_goes_on_with_one_less() {
    let origin = TestOrigin::start(|_, _| Reply::ok("", &[("allow", "GET")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let here = http.request(reqwest::Method::OPTIONS, node.url("/o")).header("max-forwards", "0").send().await;
    let here = here.expect("answer");
    assert_eq!(here.status(), 200);
    assert!(header(&here, "allow").contains("OPTIONS"), "{}", header(&here, "allow"));
    assert!(cache_status(&here).contains("detail=max-forwards"), "{}", cache_status(&here));
    assert_eq!(origin.hits(), 0);
    let on = http.request(reqwest::Method::OPTIONS, node.url("/o")).header("max-forwards", "5").send().await;
    assert_eq!(on.expect("answer").status(), 200);
    assert_eq!(origin.hits(), 1);
    assert_eq!(origin.seen()[0].headers.get("max-forwards").map(|v| v.as_bytes()), Some(&b"4"[..]));
}

#[tokio::test]
async fn a_body_with_a_transfer_coding_other_than_chunked_gets_501() {
    let origin = TestOrigin::start(|_, _| Reply::ok("x", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let coded = b"POST /t HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let answer = &raw_answers(&node, &[coded.to_vec()]).await[0];
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    let plain = b"POST /t HTTP/1.1\r\nhost: a.test\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let answer = &raw_answers(&node, &[plain.to_vec()]).await[0];
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(origin.hits(), 1, "only the chunked body reached the origin");
}

#[tokio::test]
async fn an_origins_early_hints_reach_an_http11_client_at_once_and_are_not_stored() {
    use crate::support::hinting_origin::{HintingOrigin, read_until};
    use tokio::io::AsyncWriteExt;
    // The origin sends a 103, then holds its final answer until the test has seen the 103 arrive.
    let origin = HintingOrigin::start().await;
    let unused = TestOrigin::start(|_, _| Reply::status(500, &[])).await;
    let node = TestNode::start(&unused, |config| config.origin.url = Some(origin.url.parse().expect("url"))).await;

    let mut stream = tokio::net::TcpStream::connect(node.handle.http_addrs[0]).await.expect("connect");
    stream.write_all(b"GET /hinted HTTP/1.1\r\nhost: example.test\r\n\r\n").await.expect("request");
    let mut text = String::new();
    read_until(&mut stream, &mut text, "\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 103 Early Hints\r\n"), "the 103 before the final answer is made: {text}");
    let interim = text.to_ascii_lowercase();
    assert!(interim.contains("\r\nlink: </s.css>; rel=preload\r\n"), "{text}");
    assert!(interim.contains("\r\nvia: 1.1 test-edge\r\n"), "{text}");
    origin.release();
    read_until(&mut stream, &mut text, "\r\n\r\nok").await;
    let final_answer = &text[text.find("\r\n\r\n").map_or(0, |end| end + 4)..];
    assert!(final_answer.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!final_answer.to_ascii_lowercase().contains("x-hint"), "the interim's fields are its own: {text}");

    // The stored answer is served alone: no interim is kept with it. HTTP/1.0 clients never get one (RFC 9110
    // §15.2): a miss for one of them gets the final answer only.
    origin.release();
    let hit = b"GET /hinted HTTP/1.1\r\nhost: example.test\r\n\r\n".to_vec();
    let answers = raw_answers(&node, &[hit, b"GET /other HTTP/1.0\r\nhost: example.test\r\n\r\n".to_vec()]).await;
    assert!(answers[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", answers[0]);
    assert!(answers[0].contains("test-edge; hit"), "{}", answers[0]);
    assert!(answers[1].starts_with("HTTP/1.0 200 OK\r\n"), "{}", answers[1]);
    assert!(!answers[1].contains(" 103 "), "{}", answers[1]);
}
