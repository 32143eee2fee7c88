//! Bodies stream both ways: large downloads and uploads pass through intact; bodies under the object size limit
//! are stored whole and served byte for byte.

use futures_util::StreamExt;

use crate::support::{Reply, ReplyBody, TestNode, TestOrigin, cache_status, client};

const MIB: usize = 1024 * 1024;

/// What `ReplyBody::Chunks` sends: chunk i is `chunk` bytes of value i.
fn expected_byte(offset: usize, chunk: usize) -> u8 {
    (offset / chunk) as u8
}

async fn assert_streamed_intact(response: reqwest::Response, chunk: usize, count: usize) {
    let mut stream = response.bytes_stream();
    let mut offset = 0;
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("body chunk");
        for (i, byte) in piece.iter().enumerate() {
            assert_eq!(*byte, expected_byte(offset + i, chunk), "byte {} differs", offset + i);
        }
        offset += piece.len();
    }
    assert_eq!(offset, chunk * count);
}

/// An origin answering every request with `count` cacheable chunks of `chunk` bytes.
async fn chunked_origin(chunk: usize, count: usize) -> TestOrigin {
    TestOrigin::start(move |_, _| Reply {
        body: ReplyBody::Chunks { chunk, count },
        ..Reply::ok("", &[("cache-control", "max-age=60")])
    })
    .await
}

#[tokio::test]
async fn a_24_mib_body_streams_through_intact_and_uncached() {
    let (chunk, count) = (64 * 1024, 24 * 16);
    let origin = chunked_origin(chunk, count).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    for _ in 0..2 {
        let response = http.get(node.url("/big")).send().await.expect("get");
        assert_eq!(response.status(), 200);
        assert_streamed_intact(response, chunk, count).await;
    }
    assert_eq!(origin.hits(), 2, "larger than cache.max_object_size: not stored");
}

#[tokio::test]
async fn a_body_under_the_limit_is_stored_and_served_byte_for_byte() {
    let (chunk, count) = (64 * 1024, 8 * 16);
    let origin = chunked_origin(chunk, count).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let first = http.get(node.url("/8mib")).send().await.expect("first");
    assert_streamed_intact(first, chunk, count).await;
    let second = http.get(node.url("/8mib")).send().await.expect("second");
    assert!(cache_status(&second).contains("hit"), "{}", cache_status(&second));
    assert_streamed_intact(second, chunk, count).await;
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_24_mib_upload_reaches_the_origin_intact() {
    let origin = TestOrigin::start(|seen, _| Reply::ok(format!("{}", seen.body.len()), &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let body: Vec<u8> = (0..24 * MIB).map(|i| (i % 251) as u8).collect();
    let response = client().put(node.url("/upload")).body(body.clone()).send().await.expect("put");
    assert_eq!(response.text().await.expect("body"), (24 * MIB).to_string());
    assert_eq!(origin.seen()[0].body.as_ref(), body.as_slice());
}
