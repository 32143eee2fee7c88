//! RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the stored responses of its target URI and
//! of the same-origin URIs in its `Location` and `Content-Location`; an error answer invalidates nothing.

use http::Method;

use crate::support::{Reply, TestNode, TestOrigin, cache_status, client};

/// An origin whose GETs are fresh for a minute and count up (`/path v0`, `/path v1`, …), and whose other methods
/// answer with `unsafe_reply(path)`.
async fn origin(unsafe_reply: fn(&str) -> Reply) -> TestOrigin {
    TestOrigin::start(move |seen, index| {
        if seen.method == Method::GET {
            let body = format!("{} #{index}", seen.path_and_query);
            let lang = seen.headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
            Reply::ok(format!("{body} {lang}"), &[("cache-control", "max-age=60"), ("vary", "accept-language")])
        } else {
            unsafe_reply(&seen.path_and_query)
        }
    })
    .await
}

/// GETs `path` through the node and returns its `Cache-Status`.
async fn get(node: &TestNode, path: &str) -> String {
    let response = client().get(node.url(path)).send().await.expect("get");
    let status = cache_status(&response);
    response.bytes().await.expect("body");
    status
}

/// Sends `method path` through the node and returns its `Cache-Status`.
async fn send(node: &TestNode, method: &str, path: &str) -> String {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let response = client().request(method, node.url(path)).body("x").send().await.expect("unsafe request");
    let status = cache_status(&response);
    response.bytes().await.expect("body");
    status
}

fn is_hit(status: &str) -> bool {
    status.starts_with("test-edge; hit")
}

#[tokio::test]
async fn successful_post_invalidates_the_target_uri() {
    let origin = origin(|_| Reply::ok("done", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/doc").await;
    assert!(is_hit(&get(&node, "/doc").await));

    let post = send(&node, "POST", "/doc").await;
    assert_eq!(post, "test-edge; fwd=bypass; fwd-status=200; detail=invalidated");
    let after = get(&node, "/doc").await;
    assert!(after.starts_with("test-edge; fwd=uri-miss"), "{after}");
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn put_delete_and_patch_invalidate_the_target_uri() {
    let origin = origin(|_| Reply::status(204, &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    for method in ["PUT", "DELETE", "PATCH"] {
        let path = format!("/{}", method.to_lowercase());
        get(&node, &path).await;
        assert!(is_hit(&get(&node, &path).await), "{method}: stored before");
        assert!(send(&node, method, &path).await.ends_with("detail=invalidated"), "{method}");
        let after = get(&node, &path).await;
        assert!(after.starts_with("test-edge; fwd=uri-miss"), "{method}: {after}");
    }
}

#[tokio::test]
async fn unknown_method_invalidates_the_target_uri() {
    let origin = origin(|_| Reply::ok("frobbed", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/thing").await;
    assert!(send(&node, "FROB", "/thing").await.ends_with("detail=invalidated"));
    assert!(get(&node, "/thing").await.starts_with("test-edge; fwd=uri-miss"));
}

#[tokio::test]
async fn redirect_answer_to_post_invalidates() {
    let origin = origin(|_| Reply::status(303, &[("location", "/elsewhere")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/form").await;
    assert_eq!(send(&node, "POST", "/form").await, "test-edge; fwd=bypass; fwd-status=303; detail=invalidated");
    assert!(get(&node, "/form").await.starts_with("test-edge; fwd=uri-miss"));
}

#[tokio::test]
async fn error_answer_to_post_invalidates_nothing() {
    for code in [400, 404, 500, 503] {
        let origin = TestOrigin::start(move |seen, _| {
            if seen.method == Method::GET {
                Reply::ok("kept", &[("cache-control", "max-age=60")])
            } else {
                Reply::status(code, &[("location", "/other")])
            }
        })
        .await;
        let node = TestNode::start(&origin, |_| {}).await;
        get(&node, "/doc").await;
        let post = send(&node, "POST", "/doc").await;
        assert_eq!(post, format!("test-edge; fwd=bypass; fwd-status={code}; detail=method"));
        assert!(is_hit(&get(&node, "/doc").await), "a {code} answer left the stored response alone");
    }
}

#[tokio::test]
async fn safe_methods_do_not_invalidate() {
    let origin = origin(|_| Reply::ok("options", &[("allow", "GET, POST")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/doc").await;
    assert_eq!(send(&node, "OPTIONS", "/doc").await, "test-edge; fwd=bypass; fwd-status=200; detail=method");
    assert!(is_hit(&get(&node, "/doc").await));
}

#[tokio::test]
async fn every_vary_variant_of_the_target_is_invalidated() {
    let origin = origin(|_| Reply::ok("done", &[])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    let (http, url) = (client(), node.url("/v"));
    let get_lang = |lang: &'static str| {
        let request = http.get(&url).header("accept-language", lang);
        async move {
            let response = request.send().await.expect("get");
            let status = cache_status(&response);
            let body = response.text().await.expect("body");
            (status, body)
        }
    };
    get_lang("fr").await;
    get_lang("de").await;
    assert!(is_hit(&get_lang("fr").await.0) && is_hit(&get_lang("de").await.0));

    send(&node, "POST", "/v").await;
    for lang in ["fr", "de"] {
        let (status, body) = get_lang(lang).await;
        assert!(status.starts_with("test-edge; fwd=") && status.contains("-miss"), "{lang}: {status}");
        assert!(body.ends_with(lang), "{body}");
        // Re-storing one variant must not bring the other old one back.
        assert!(is_hit(&get_lang(lang).await.0), "{lang} stored again");
    }
    assert_eq!(origin.hits(), 5);
}

#[tokio::test]
async fn location_of_the_same_origin_is_invalidated() {
    let origin = origin(|_| Reply::status(201, &[("location", "../items/42?full=1")])).await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/items/42?full=1").await;
    get(&node, "/items/new").await;
    send(&node, "POST", "/items/new").await;
    let item = get(&node, "/items/42?full=1").await;
    assert!(item.starts_with("test-edge; fwd=uri-miss"), "relative Location resolved and invalidated: {item}");
}

#[tokio::test]
async fn content_location_of_the_same_origin_is_invalidated() {
    let origin = TestOrigin::start(|seen, index| {
        if seen.method == Method::GET {
            Reply::ok(format!("#{index}"), &[("cache-control", "max-age=60")])
        } else {
            Reply::ok("updated", &[("content-location", "/docs/current")])
        }
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    get(&node, "/docs/current").await;
    assert!(is_hit(&get(&node, "/docs/current").await));
    send(&node, "PUT", "/docs/v2").await;
    assert!(get(&node, "/docs/current").await.starts_with("test-edge; fwd=uri-miss"));
}

#[tokio::test]
async fn location_of_another_origin_is_not_invalidated() {
    let origin = origin(|path| {
        let location = if path.starts_with("/port") { "http://127.0.0.1:1/x" } else { "http://other.example/x" };
        Reply::status(201, &[("location", location)])
    })
    .await;
    let node = TestNode::start(&origin, |_| {}).await;
    let http = client();
    let get_other = || async {
        let response = http.get(node.url("/x")).header("host", "other.example").send().await.expect("get");
        let status = cache_status(&response);
        response.bytes().await.expect("body");
        status
    };
    get_other().await;
    assert!(is_hit(&get_other().await));
    send(&node, "POST", "/form").await;
    send(&node, "POST", "/port").await;
    assert!(is_hit(&get_other().await), "another host's response survives");
    get(&node, "/x").await;
    send(&node, "POST", "/port").await;
    assert!(is_hit(&get(&node, "/x").await), "another port is another origin");
}
