//! Compression end to end: a real origin, a real node, a client that decodes with flate2, brotli and zstd. What
//! is compressed and how it is negotiated, the encoded variant kept with the stored object (the encoder runs once
//! per coding), transformed ETags and conditional requests, HEAD, ranges, the origin's own coding.

use std::io::Read;

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client, header};

/// A page that compresses well and is larger than `compression.min_size`.
fn page() -> String {
    (0..1500).map(|i| format!("<li class=\"item\">item number {i} of a compressible page</li>\n")).collect()
}

fn html_origin_reply(body: String) -> Reply {
    Reply::ok(
        body,
        &[("cache-control", "max-age=60"), ("content-type", "text/html; charset=utf-8"), ("etag", "\"v1\"")],
    )
}

fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).map(|_| ()).expect("gunzip"),
        "br" => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).map(|_| ()).expect("unbrotli"),
        "zstd" => out = zstd::decode_all(bytes).expect("unzstd"),
        "" => out = bytes.to_vec(),
        other => panic!("unexpected coding {other}"),
    }
    out
}

/// `edgecache_compressed_bytes_total{encoding, direction}` as the node's /metrics shows it.
async fn compressed(node: &TestNode, encoding: &str, direction: &str) -> u64 {
    let text = client().get(node.admin_url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let wanted = [format!("direction=\"{direction}\""), format!("encoding=\"{encoding}\"")];
    text.lines()
        .filter(|l| l.starts_with("edgecache_compressed_bytes_total{") && wanted.iter().all(|w| l.contains(w.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

async fn get(node: &TestNode, path: &str, accept: &str) -> (reqwest::Response, Vec<u8>) {
    let response = client().get(node.url(path)).header("accept-encoding", accept).send().await.expect("response");
    let coding = header(&response, "content-encoding");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    let decoded = if status == 200 { decode(&coding, &body) } else { body.to_vec() };
    // Give the caller the head back, with the decoded body.
    let mut rebuilt = http::Response::builder().status(status);
    for (name, value) in &headers {
        rebuilt = rebuilt.header(name, value);
    }
    (reqwest::Response::from(rebuilt.body(body.to_vec()).expect("response")), decoded)
}

#[tokio::test]
async fn each_coding_decodes_to_the_original_and_is_encoded_once() {
    let origin = TestOrigin::start(|_, _| html_origin_reply(page())).await;
    let node =
        TestNode::start(&origin, |c| c.compression.algorithms = vec!["br".into(), "gzip".into(), "zstd".into()]).await;
    let original = page().into_bytes();

    for coding in ["br", "gzip", "zstd"] {
        let (first, body) = get(&node, "/page", coding).await;
        assert_eq!(header(&first, "content-encoding"), coding);
        assert_eq!(body, original, "{coding}: decoded body is byte-identical");
        assert!(header(&first, "vary").to_ascii_lowercase().contains("accept-encoding"));
        assert_eq!(header(&first, "etag"), format!("W/\"v1-{coding}\""));
        assert!(cache_status(&first).contains("detail=encoded"), "{}", cache_status(&first));

        for _ in 0..3 {
            let (again, body) = get(&node, "/page", coding).await;
            assert_eq!(header(&again, "content-encoding"), coding);
            assert_eq!(body, original);
            assert!(cache_status(&again).contains("hit") && cache_status(&again).contains("detail=encoded-hit"));
            assert_eq!(header(&again, "etag"), format!("W/\"v1-{coding}\""));
            assert!(!header(&again, "content-length").is_empty(), "a stored variant is sent with its length");
        }
        // The encoder read the page once for this coding, however many clients got it.
        assert_eq!(compressed(&node, coding, "in").await, original.len() as u64, "{coding}");
        assert!(compressed(&node, coding, "out").await < original.len() as u64 / 4);
    }
    let (plain, body) = get(&node, "/page", "identity").await;
    assert_eq!(header(&plain, "content-encoding"), "");
    assert!(header(&plain, "vary").to_ascii_lowercase().contains("accept-encoding"));
    assert_eq!(header(&plain, "etag"), "\"v1\"");
    assert_eq!(body, original);
    assert_eq!(origin.hits(), 1, "one origin fetch for every coding");
}

#[tokio::test]
async fn q_values_star_identity_and_case_choose_the_coding() {
    let origin = TestOrigin::start(|_, _| html_origin_reply(page())).await;
    let node = TestNode::start(&origin, |_| {}).await;
    for (accept, expected) in [
        ("gzip, deflate, br", "br"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("GZIP", "gzip"),
        ("*", "br"),
        ("br;q=0, *;q=0.5", "gzip"),
        ("identity", ""),
        ("br;q=0, gzip;q=0", ""),
        ("deflate", ""),
        ("zstd", ""),
    ] {
        let (response, body) = get(&node, "/q", accept).await;
        assert_eq!(header(&response, "content-encoding"), expected, "Accept-Encoding: {accept}");
        assert_eq!(body, page().into_bytes(), "Accept-Encoding: {accept}");
    }
    // No Accept-Encoding: sent as it is.
    let plain = client().get(node.url("/q")).send().await.expect("plain");
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn small_binary_no_transform_and_ranges_are_untouched() {
    let origin = TestOrigin::start(|seen, _| {
        let (ty, cc, body) = match seen.path_and_query.as_str() {
            "/small" => ("text/html", "max-age=60", "<p>tiny</p>".repeat(10)),
            "/binary" => ("image/png", "max-age=60", page()),
            "/no-transform" => ("text/html", "max-age=60, no-transform", page()),
            _ => ("text/html", "max-age=60", page()),
        };
        Reply::ok(body, &[("content-type", ty), ("cache-control", cc)])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    for path in ["/small", "/binary", "/no-transform"] {
        let response = client().get(node.url(path)).header("accept-encoding", "br, gzip").send().await.expect("get");
        assert_eq!(header(&response, "content-encoding"), "", "{path}");
        let length: usize = header(&response, "content-length").parse().expect("length");
        assert_eq!(response.bytes().await.expect("body").len(), length, "{path}");
    }
    // A range of a compressible page is cut from the identity body, never compressed.
    let ranged = client()
        .get(node.url("/page"))
        .header("accept-encoding", "br, gzip")
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(header(&ranged, "content-encoding"), "");
    assert_eq!(ranged.bytes().await.expect("body"), page().as_bytes()[..100]);
    let (whole, _) = get(&node, "/page", "br").await;
    assert_eq!(header(&whole, "content-encoding"), "br", "the same object is compressed for a whole GET");
}

#[tokio::test]
async fn conditional_requests_with_the_transformed_etag_get_304() {
    let origin = TestOrigin::start(|_, _| html_origin_reply(page())).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let conditional = |accept: &'static str, tag: &'static str| {
        http.get(node.url("/c")).header("accept-encoding", accept).header("if-none-match", tag).send()
    };
    // Before anything is stored (a miss), then from the stored variant.
    for round in 0..2 {
        let answer = conditional("br", "W/\"v1-br\"").await.expect("conditional");
        assert_eq!(answer.status(), 304, "round {round}");
        assert_eq!(header(&answer, "etag"), "W/\"v1-br\"");
        assert!(header(&answer, "vary").to_ascii_lowercase().contains("accept-encoding"));
        let (_, body) = get(&node, "/c", "br").await;
        assert_eq!(body, page().into_bytes());
    }
    for accept in ["gzip", "zstd, gzip"] {
        let answer = conditional(accept, "W/\"v1-gzip\"").await.expect("gzip");
        assert_eq!(answer.status(), 304, "{accept}");
    }
    // The br tag does not match a gzip answer, nor the identity one.
    let other = conditional("gzip", "W/\"v1-br\"").await.expect("other coding");
    assert_eq!(other.status(), 200);
    assert_eq!(header(&other, "content-encoding"), "gzip");
    let identity = conditional("identity", "\"v1\"").await.expect("identity");
    assert_eq!(identity.status(), 304);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn head_is_consistent_with_get() {
    let origin = TestOrigin::start(|_, _| html_origin_reply(page())).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let head = || http.head(node.url("/h")).header("accept-encoding", "gzip, br").send();
    let before = head().await.expect("head before");
    let (got, _) = get(&node, "/h", "gzip, br").await;
    let after = head().await.expect("head after");
    for name in ["content-encoding", "etag", "vary", "content-type"] {
        assert_eq!(header(&before, name), header(&got, name), "{name}");
        assert_eq!(header(&after, name), header(&got, name), "{name}");
    }
    assert_eq!(header(&got, "content-encoding"), "br");
    let (again, encoded) = {
        let r = http.get(node.url("/h")).header("accept-encoding", "gzip, br").send().await.expect("get");
        let length = header(&r, "content-length");
        (length, r.bytes().await.expect("body"))
    };
    assert_eq!(header(&after, "content-length"), again, "HEAD gives the stored variant's length");
    assert_eq!(again, encoded.len().to_string());
}

#[tokio::test]
async fn the_origin_coding_passes_through_or_is_decoded() {
    let gzipped = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        std::io::Write::write_all(&mut encoder, page().as_bytes()).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let served = gzipped.clone();
    let origin = TestOrigin::start(move |_, _| {
        Reply::ok(
            served.clone(),
            &[
                ("cache-control", "max-age=60"),
                ("content-type", "text/html"),
                ("content-encoding", "gzip"),
                ("etag", "\"g1\""),
            ],
        )
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;

    // A client that accepts gzip gets the origin's bytes: no second compression.
    let through = client().get(node.url("/g")).header("accept-encoding", "gzip, deflate").send().await.expect("gzip");
    assert_eq!(header(&through, "content-encoding"), "gzip");
    assert_eq!(header(&through, "etag"), "\"g1\"");
    assert_eq!(through.bytes().await.expect("body"), gzipped);
    assert_eq!(compressed(&node, "gzip", "in").await, 0);

    // One that accepts only identity gets it decoded.
    let (plain, body) = get(&node, "/g", "identity").await;
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(header(&plain, "etag"), "W/\"g1-identity\"");
    assert!(cache_status(&plain).contains("detail=decoded"), "{}", cache_status(&plain));
    assert_eq!(body, page().into_bytes());

    // One that accepts only br gets it re-encoded, once.
    for _ in 0..2 {
        let (br, body) = get(&node, "/g", "br").await;
        assert_eq!(header(&br, "content-encoding"), "br");
        assert_eq!(body, page().into_bytes());
    }
    assert_eq!(compressed(&node, "br", "in").await, page().len() as u64);
}

#[tokio::test]
async fn accept_encoding_values_map_onto_one_upstream_variant_per_class() {
    let origin = TestOrigin::start(|seen, _| {
        let accept = seen.headers.get("accept-encoding").and_then(|v| v.to_str().ok()).unwrap_or("none").to_string();
        Reply::ok(
            page(),
            &[
                ("cache-control", "max-age=60"),
                ("content-type", "text/html"),
                ("vary", "Accept-Encoding"),
                ("x-seen-accept-encoding", accept.as_str()),
            ],
        )
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    for accept in ["gzip, deflate, br", "br, gzip", "BR;q=1", "br;q=0.9, gzip;q=0.8, *;q=0.1"] {
        let (response, body) = get(&node, "/v", accept).await;
        assert_eq!(header(&response, "content-encoding"), "br", "{accept}");
        assert_eq!(header(&response, "x-seen-accept-encoding"), "br", "{accept}");
        assert_eq!(body, page().into_bytes());
    }
    assert_eq!(origin.hits(), 1, "every br client shares one stored variant");
    for accept in ["gzip", "gzip, deflate"] {
        let (response, _) = get(&node, "/v", accept).await;
        assert_eq!(header(&response, "content-encoding"), "gzip");
    }
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn invalidating_a_url_removes_its_encoded_variants() {
    let origin = TestOrigin::start(|seen, _| {
        if seen.method == http::Method::POST { Reply::ok("done", &[]) } else { html_origin_reply(page()) }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/p", "br").await;
    let (hit, _) = get(&node, "/p", "br").await;
    assert!(cache_status(&hit).contains("detail=encoded-hit"));
    let posted = client().post(node.url("/p")).body("x").send().await.expect("post");
    assert_eq!(posted.status(), 200);
    let (after, body) = get(&node, "/p", "br").await;
    assert!(cache_status(&after).contains("fwd=uri-miss"), "{}", cache_status(&after));
    assert!(cache_status(&after).contains("detail=encoded;") || cache_status(&after).ends_with("detail=encoded"));
    assert_eq!(body, page().into_bytes());
    assert_eq!(compressed(&node, "br", "in").await, 2 * page().len() as u64, "encoded again after the purge");
}

#[tokio::test]
async fn a_body_larger_than_the_store_is_compressed_as_it_streams() {
    let origin = TestOrigin::start(|_, _| {
        let mut reply = Reply::ok("", &[("cache-control", "max-age=60"), ("content-type", "text/plain")]);
        reply.body = crate::support::ReplyBody::Chunks { chunk: 64 * 1024, count: 32 };
        reply
    })
    .await;
    let node = TestNode::start(&origin, |c| c.cache.max_object_size = 256 * 1024).await;
    let expected: Vec<u8> = (0..32u8).flat_map(|i| std::iter::repeat_n(i, 64 * 1024)).collect();
    for _ in 0..2 {
        let (response, body) = get(&node, "/big", "gzip").await;
        assert_eq!(header(&response, "content-encoding"), "gzip");
        assert_eq!(body.len(), expected.len());
        assert!(body == expected, "decoded 2 MiB body is byte-identical");
    }
    assert_eq!(origin.hits(), 2, "too large to store: fetched and compressed each time");
    assert_eq!(compressed(&node, "gzip", "in").await, 2 * expected.len() as u64);
}

#[tokio::test]
async fn two_tiers_keep_one_variant_per_class_and_compress_once() {
    let origin = TestOrigin::start(|_, _| html_origin_reply(page())).await;
    let shield = TestNode::start(&origin, |c| c.node.id = "test-shield".into()).await;
    let shield_url = format!("http://{}", shield.handle.http_addrs[0]);
    let edge = TestNode::start(&origin, |c| c.origin.url = Some(shield_url.parse().expect("shield url"))).await;
    let original = page().into_bytes();
    for accept in ["gzip, br", "br", "gzip", "gzip;q=0.5, identity", "br, gzip"] {
        let (response, body) = get(&edge, "/t", accept).await;
        assert_eq!(body, original, "{accept}");
        let expected = if accept.starts_with("gzip") && !accept.contains("br") { "gzip" } else { "br" };
        assert_eq!(header(&response, "content-encoding"), expected, "{accept}");
        assert_eq!(header(&response, "etag"), format!("W/\"v1-{expected}\""), "{accept}");
    }
    // The shield fetched the page once and encoded it once per coding; the edge stored what it was sent.
    assert_eq!(origin.hits(), 1);
    assert_eq!(compressed(&shield, "br", "in").await, original.len() as u64);
    assert_eq!(compressed(&shield, "gzip", "in").await, original.len() as u64);
    assert_eq!(compressed(&edge, "br", "in").await, 0, "the edge passes the shield's br through");
    let (again, _) = get(&edge, "/t", "br, gzip").await;
    assert!(cache_status(&again).starts_with("test-edge; hit"), "{}", cache_status(&again));
}
