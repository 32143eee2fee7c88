//! RFC 9110 §14 and §13.1.5: `Range` requests answered from a stored whole response (one range, several as
//! `multipart/byteranges`, 416 when none overlaps), invalid ranges ignored, `If-Range`, and range misses.

use std::time::Duration;

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client, header};

const BODY: &str = "0123456789";
const LAST_MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";

/// An origin serving `BODY` fresh for a minute, with a strong ETag and a Last-Modified, and ignoring `Range`.
async fn whole_origin() -> TestOrigin {
    TestOrigin::start(|_, _| {
        Reply::ok(
            BODY,
            &[
                ("cache-control", "max-age=60"),
                ("etag", "\"v1\""),
                ("last-modified", LAST_MODIFIED),
                ("content-type", "text/plain"),
            ],
        )
    })
    .await
}

/// A node with `/r` stored whole.
async fn node_with_stored(origin: &TestOrigin) -> TestNode {
    let node = TestNode::start(origin, |_| {}).await;
    let first = client().get(node.url("/r")).send().await.expect("fill");
    assert!(cache_status(&first).contains("stored"), "{}", cache_status(&first));
    first.bytes().await.expect("body");
    node
}

async fn get_range(node: &TestNode, fields: &[(&'static str, &str)]) -> reqwest::Response {
    let mut request = client().get(node.url("/r"));
    for (name, value) in fields {
        request = request.header(*name, *value);
    }
    request.send().await.expect("range request")
}

#[tokio::test]
async fn single_range_is_answered_206_from_the_stored_response() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let response = get_range(&node, &[("range", "bytes=2-5")]).await;
    assert_eq!(response.status(), 206);
    assert!(cache_status(&response).starts_with("test-edge; hit"), "{}", cache_status(&response));
    assert_eq!(header(&response, "content-range"), "bytes 2-5/10");
    assert_eq!(header(&response, "content-length"), "4");
    assert_eq!(header(&response, "content-type"), "text/plain");
    assert_eq!(header(&response, "etag"), "\"v1\"");
    assert!(!header(&response, "age").is_empty(), "a 206 from cache carries Age");
    assert_eq!(response.text().await.expect("body"), "2345");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn open_and_suffix_ranges_are_resolved_against_the_length() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    for (range, content_range, body) in [
        ("bytes=7-", "bytes 7-9/10", "789"),
        ("bytes=-3", "bytes 7-9/10", "789"),
        ("bytes=-50", "bytes 0-9/10", BODY),
        ("bytes=8-100", "bytes 8-9/10", "89"),
        ("bytes=0-0", "bytes 0-0/10", "0"),
    ] {
        let response = get_range(&node, &[("range", range)]).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(header(&response, "content-range"), content_range, "{range}");
        assert_eq!(response.text().await.expect("body"), body, "{range}");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn several_ranges_are_answered_as_multipart_byteranges() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let response = get_range(&node, &[("range", "bytes=0-1, 8-")]).await;
    assert_eq!(response.status(), 206);
    assert!(header(&response, "content-range").is_empty(), "the parts carry Content-Range, not the message");
    let content_type = header(&response, "content-type");
    let boundary = content_type.strip_prefix("multipart/byteranges; boundary=").expect("multipart").to_string();
    let length: usize = header(&response, "content-length").parse().expect("length");
    let body = response.text().await.expect("body");
    assert_eq!(body.len(), length);
    assert_eq!(
        body,
        format!(
            "--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
             --{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n--{boundary}--\r\n"
        )
    );
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn unsatisfiable_range_is_answered_416_with_the_length() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let response = get_range(&node, &[("range", "bytes=10-20")]).await;
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), "bytes */10");
    // Unsatisfiable ranges among satisfiable ones are dropped.
    let mixed = get_range(&node, &[("range", "bytes=50-60, 1-1")]).await;
    assert_eq!(mixed.status(), 206);
    assert_eq!(header(&mixed, "content-range"), "bytes 1-1/10");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn invalid_range_is_ignored_and_the_whole_response_sent() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    for range in ["bytes=5-2", "bytes=x-y", "lines=1-2", "bytes=", "bytes 1-2"] {
        let response = get_range(&node, &[("range", range)]).await;
        assert_eq!(response.status(), 200, "{range}");
        assert!(cache_status(&response).starts_with("test-edge; hit"), "{range}");
        assert_eq!(response.text().await.expect("body"), BODY, "{range}");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn if_range_with_the_stored_strong_etag_gives_the_range() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let response = get_range(&node, &[("range", "bytes=0-2"), ("if-range", "\"v1\"")]).await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.text().await.expect("body"), "012");
}

#[tokio::test]
async fn if_range_with_another_or_weak_etag_gives_the_whole_response() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    for condition in ["\"v0\"", "W/\"v1\""] {
        let response = get_range(&node, &[("range", "bytes=0-2"), ("if-range", condition)]).await;
        assert_eq!(response.status(), 200, "{condition}");
        assert_eq!(response.text().await.expect("body"), BODY, "{condition}");
    }
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn if_range_with_the_last_modified_date_gives_the_range_and_another_date_does_not() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let same = get_range(&node, &[("range", "bytes=0-2"), ("if-range", LAST_MODIFIED)]).await;
    assert_eq!(same.status(), 206);
    let other = get_range(&node, &[("range", "bytes=0-2"), ("if-range", "Tue, 02 Jan 2024 00:00:00 GMT")]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.text().await.expect("body"), BODY);
}

#[tokio::test]
async fn head_with_range_is_answered_whole_from_cache() {
    let origin = whole_origin().await;
    let node = node_with_stored(&origin).await;
    let response = client().head(node.url("/r")).header("range", "bytes=0-2").send().await.expect("head");
    assert_eq!(response.status(), 200, "Range is defined for GET only");
    assert!(cache_status(&response).starts_with("test-edge; hit"), "{}", cache_status(&response));
    assert_eq!(header(&response, "content-length"), "10");
    assert!(response.bytes().await.expect("no body").is_empty());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn range_miss_answered_200_by_the_origin_is_stored_and_cut() {
    let origin = whole_origin().await;
    let node = TestNode::start(&origin, |_| {}).await;
    let response = get_range(&node, &[("range", "bytes=3-4")]).await;
    assert_eq!(response.status(), 206);
    assert_eq!(cache_status(&response), "test-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60");
    assert_eq!(header(&response, "content-range"), "bytes 3-4/10");
    assert_eq!(response.text().await.expect("body"), "34");

    let whole = client().get(node.url("/r")).send().await.expect("whole");
    assert!(cache_status(&whole).starts_with("test-edge; hit"), "{}", cache_status(&whole));
    assert_eq!(whole.text().await.expect("body"), BODY);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn range_miss_answered_206_by_the_origin_is_passed_on_unstored() {
    let origin = TestOrigin::start(|seen, _| {
        if seen.headers.contains_key("range") {
            let mut reply = Reply::ok("34", &[("cache-control", "max-age=60"), ("content-range", "bytes 3-4/10")]);
            reply.status = http::StatusCode::PARTIAL_CONTENT;
            reply
        } else {
            Reply::ok(BODY, &[("cache-control", "max-age=60")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let response = get_range(&node, &[("range", "bytes=3-4")]).await;
    assert_eq!(response.status(), 206);
    assert_eq!(cache_status(&response), "test-edge; fwd=uri-miss; fwd-status=206; detail=partial-content");
    assert_eq!(header(&response, "content-range"), "bytes 3-4/10");
    assert_eq!(response.text().await.expect("body"), "34");
    assert_eq!(origin.seen()[0].headers.get("range").expect("range forwarded"), "bytes=3-4");

    let whole = client().get(node.url("/r")).send().await.expect("whole");
    assert!(cache_status(&whole).starts_with("test-edge; fwd=uri-miss"), "the 206 was not stored as the whole");
    assert_eq!(whole.text().await.expect("body"), BODY);
}

#[tokio::test]
async fn range_on_a_stale_response_revalidates_the_whole_and_cuts_the_range() {
    let origin = TestOrigin::start(|seen, _| {
        if seen.headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") {
            Reply::status(304, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")])
        } else {
            Reply::ok(BODY, &[("cache-control", "max-age=1"), ("etag", "\"v1\"")])
        }
    })
    .await;
    let node = node_with_stored(&origin).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = get_range(&node, &[("range", "bytes=1-2")]).await;
    assert_eq!(response.status(), 206);
    assert!(cache_status(&response).starts_with("test-edge; fwd=stale; fwd-status=304"), "{}", cache_status(&response));
    assert_eq!(response.text().await.expect("body"), "12");
    let revalidation = &origin.seen()[1];
    assert!(!revalidation.headers.contains_key("range"), "the revalidation asks for the whole response");
}

#[tokio::test]
async fn range_on_a_stored_non_200_response_is_ignored() {
    let origin = TestOrigin::start(|_, _| {
        let mut reply = Reply::ok("not here", &[("cache-control", "max-age=60")]);
        reply.status = http::StatusCode::NOT_FOUND;
        reply
    })
    .await;
    let node = node_with_stored(&origin).await;
    let response = get_range(&node, &[("range", "bytes=0-2")]).await;
    assert_eq!(response.status(), 404);
    assert!(cache_status(&response).starts_with("test-edge; hit"));
    assert_eq!(response.text().await.expect("body"), "not here");
}
