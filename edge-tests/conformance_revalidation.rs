//! Conditional requests both ways (RFC 9111 §4.3, RFC 9110 §13) and the stale windows of RFC 5861, one test per
//! rule: validating stale entries, what a 304 updates and which stored response it selects, answering clients'
//! preconditions from cache.

use std::time::Duration;

use crate::conformance_kit::{date, fixed, get, request, setup, until_stale};
use crate::support::Reply;

#[tokio::test]
async fn a_stale_entry_is_validated_with_if_none_match() {
    let (origin, node) = fixed(&[("cache-control", "max-age=0"), ("etag", "\"v1\"")]).await;
    get(&node, "/", &[]).await;
    get(&node, "/", &[]).await;
    assert_eq!(origin.seen()[1].headers.get("if-none-match").expect("conditional"), "\"v1\"");
}

#[tokio::test]
async fn a_stale_entry_is_validated_with_if_modified_since() {
    let lm = date(-3600);
    let (origin, node) = fixed(&[("cache-control", "max-age=0"), ("last-modified", lm.as_str())]).await;
    get(&node, "/", &[]).await;
    get(&node, "/", &[]).await;
    assert_eq!(origin.seen()[1].headers.get("if-modified-since").expect("conditional"), lm.as_str());
}

#[tokio::test]
async fn a_304_updates_stored_headers_and_freshness() {
    let (origin, node) = setup(|seen, _| {
        if seen.headers.contains_key("if-none-match") {
            Reply::status(304, &[("etag", "\"v1\""), ("cache-control", "max-age=60"), ("x-version", "new")])
        } else {
            Reply::ok("body one", &[("etag", "\"v1\""), ("cache-control", "max-age=0"), ("x-version", "old")])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    let revalidated = get(&node, "/", &[]).await;
    assert!(revalidated.cache.starts_with("test-edge; fwd=stale; fwd-status=304"), "{}", revalidated.cache);
    assert_eq!(revalidated.header("x-version"), "new");
    assert_eq!(revalidated.header("content-length"), "8", "Content-Length is never taken from a 304");
    assert_eq!(revalidated.body, "body one");
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit(), "freshness is recomputed from the merged headers: {}", hit.cache);
    assert_eq!(hit.header("x-version"), "new");
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn a_304_without_date_or_age_makes_the_entry_young_again() {
    let (origin, node) = setup(|seen, _| {
        if seen.headers.contains_key("if-none-match") {
            Reply::status(304, &[("etag", "\"v1\""), ("cache-control", "max-age=60")])
        } else {
            Reply::ok("b", &[("etag", "\"v1\""), ("cache-control", "max-age=100"), ("age", "100")])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    get(&node, "/", &[]).await;
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit(), "{}", hit.cache);
    assert!(hit.age() <= 2, "the old Age is not kept: Age {}", hit.age());
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn a_304_for_another_etag_does_not_refresh_the_stored_response() {
    let (origin, node) = setup(|seen, n| {
        if n > 0 && seen.headers.contains_key("if-none-match") {
            Reply::status(304, &[("etag", "\"v2\""), ("cache-control", "max-age=60")])
        } else {
            Reply::ok(
                format!("body {n}"),
                &[("etag", format!("\"v{}\"", n + 1).as_str()), ("cache-control", "max-age=0")],
            )
        }
    })
    .await;
    assert_eq!(get(&node, "/", &[]).await.body, "body 0");
    let second = get(&node, "/", &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, "body 2", "the stored body (v1) is not served under v2's 304; it is fetched whole");
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn stale_while_revalidate_is_bounded_by_its_window() {
    let (origin, node) = fixed(&[("cache-control", "max-age=1, stale-while-revalidate=1")]).await;
    get(&node, "/", &[]).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let late = get(&node, "/", &[]).await;
    assert!(!late.is_hit() && late.cache.contains("fwd="), "past the window: {}", late.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn stale_if_error_serves_stale_when_the_origin_fails() {
    let (_origin, node) = setup(|_, n| {
        if n == 0 {
            Reply::ok("good", &[("cache-control", "max-age=2, stale-if-error=60")])
        } else {
            Reply::status(503, &[])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let stale = get(&node, "/", &[]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, "good");
    assert!(stale.cache.contains("fwd=stale") && stale.cache.contains("fwd-status=503"), "{}", stale.cache);
}

#[tokio::test]
async fn stale_if_error_is_bounded_by_its_window() {
    let (_origin, node) = setup(|_, n| {
        if n == 0 {
            Reply::ok("good", &[("cache-control", "max-age=1, stale-if-error=1")])
        } else {
            Reply::status(503, &[])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(get(&node, "/", &[]).await.status, 503);
}

#[tokio::test]
async fn client_stale_if_error_accepts_stale_when_the_origin_fails() {
    // RFC 5861 §4: the request directive alone allows it; without it, the origin's error is passed on.
    let (_origin, node) = setup(|_, n| {
        if n == 0 {
            Reply::ok("good", &[("cache-control", "max-age=1"), ("etag", "\"v1\"")])
        } else {
            Reply::status(503, &[])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    until_stale().await;
    assert_eq!(get(&node, "/", &[]).await.status, 503);
    let stale = get(&node, "/", &[("cache-control", "stale-if-error=60")]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, "good");
    assert!(stale.cache.contains("fwd-status=503"), "{}", stale.cache);
    assert_eq!(get(&node, "/", &[("cache-control", "stale-if-error=1")]).await.status, 503);
}

#[tokio::test]
async fn client_no_cache_is_not_answered_stale_on_error() {
    // RFC 9111 §5.2.1.4: no stored response without successful validation, whatever the origin's window.
    let (_origin, node) = setup(|_, n| {
        if n == 0 {
            Reply::ok("good", &[("cache-control", "max-age=1, stale-if-error=60")])
        } else {
            Reply::status(503, &[])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    until_stale().await;
    assert_eq!(get(&node, "/", &[("cache-control", "no-cache")]).await.status, 503);
    assert_eq!(get(&node, "/", &[]).await.body, "good");
}

#[tokio::test]
async fn preconditions_do_not_apply_to_a_stored_non_2xx_response() {
    // RFC 9110 §13.2.1: the answer without the preconditions would be a 404, so they are ignored: no 304, no 412.
    let (origin, node) = setup(|_, _| {
        let mut reply = Reply::ok("gone", &[("cache-control", "max-age=60"), ("etag", "\"v1\"")]);
        reply.status = http::StatusCode::NOT_FOUND;
        reply
    })
    .await;
    assert_eq!(get(&node, "/", &[]).await.status, 404);
    let inm = get(&node, "/", &[("if-none-match", "\"v1\"")]).await;
    assert!(inm.is_hit(), "{}", inm.cache);
    assert_eq!((inm.status, inm.body.as_str()), (404, "gone"));
    let if_match = get(&node, "/", &[("if-match", "\"other\"")]).await;
    assert_eq!((if_match.status, if_match.body.as_str()), (404, "gone"));
    assert_eq!(origin.hits(), 1);
}

/// An origin whose answers are never stored (`private`) and that evaluates preconditions itself.
async fn unstored_origin_evaluating_preconditions() -> (crate::support::TestOrigin, crate::support::TestNode) {
    setup(|seen, _| {
        let header = |name: &str| seen.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let headers = [("cache-control", "private, max-age=60"), ("etag", "\"p1\"")];
        if header("if-match").is_some_and(|tag| tag != "\"p1\"") {
            Reply::status(412, &headers)
        } else if header("if-none-match").as_deref() == Some("\"p1\"") {
            Reply::status(304, &headers)
        } else {
            Reply::ok("personal", &headers)
        }
    })
    .await
}

#[tokio::test]
async fn preconditions_for_an_unstored_resource_go_to_the_origin() {
    // RFC 9111 §4.3.2: with no stored response, the client's preconditions are the origin's to evaluate.
    let (origin, node) = unstored_origin_evaluating_preconditions().await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("detail=private"), "{}", first.cache);
    let conditional = get(&node, "/", &[("if-none-match", "\"p1\"")]).await;
    assert_eq!(conditional.status, 304, "{}", conditional.cache);
    assert_eq!(conditional.body, "");
    let failed = get(&node, "/", &[("if-match", "\"p0\"")]).await;
    assert_eq!(failed.status, 412, "{}", failed.cache);
    assert_eq!(get(&node, "/", &[]).await.body, "personal");
    let seen = origin.seen();
    assert_eq!(seen[1].headers.get("if-none-match").expect("forwarded"), "\"p1\"");
    assert_eq!(seen[2].headers.get("if-match").expect("forwarded"), "\"p0\"");
}

#[tokio::test]
async fn preconditions_are_evaluated_on_an_unstored_answer_fetched_whole() {
    // The first request shares its fetch, so its preconditions are not sent; they hold against the origin's 200.
    let (origin, node) = unstored_origin_evaluating_preconditions().await;
    let conditional = get(&node, "/", &[("if-none-match", "\"p1\"")]).await;
    assert_eq!(conditional.status, 304, "{}", conditional.cache);
    assert!(conditional.cache.contains("detail=private"), "{}", conditional.cache);
    assert_eq!(conditional.header("etag"), "\"p1\"");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn an_unstorable_full_response_to_a_revalidation_supersedes_the_stale_one() {
    // RFC 9111 §4.3.3: the full response shows the stored one unsuitable; a client's max-stale must not bring it back.
    let (origin, node) = setup(|_, n| {
        if n == 0 {
            Reply::ok("old", &[("cache-control", "max-age=1"), ("etag", "\"v1\"")])
        } else {
            Reply::ok(format!("new {n}"), &[("cache-control", "no-store"), ("etag", "\"v2\"")])
        }
    })
    .await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let replaced = get(&node, "/", &[]).await;
    assert_eq!(replaced.body, "new 1");
    assert!(replaced.cache.contains("detail=no-store"), "{}", replaced.cache);
    let again = get(&node, "/", &[("cache-control", "max-stale=600")]).await;
    assert_eq!(again.body, "new 2", "{}", again.cache);
    assert_eq!(origin.hits(), 3);
}

async fn stored_etag(etag: &'static str) -> (crate::support::TestOrigin, crate::support::TestNode) {
    let lm = date(-3600);
    let (origin, node) =
        fixed(&[("cache-control", "max-age=60"), ("etag", etag), ("last-modified", lm.as_str())]).await;
    get(&node, "/", &[]).await;
    (origin, node)
}

#[tokio::test]
async fn client_if_none_match_uses_weak_comparison_lists_and_star() {
    let (origin, node) = stored_etag("W/\"v1\"").await;
    for inm in ["\"v1\"", "W/\"v1\"", "\"x\", W/\"v1\"", "*"] {
        let answer = get(&node, "/", &[("if-none-match", inm)]).await;
        assert_eq!(answer.status, 304, "{inm}");
        assert!(answer.is_hit(), "{inm}");
        assert_eq!(answer.header("etag"), "W/\"v1\"");
    }
    assert_eq!(get(&node, "/", &[("if-none-match", "\"v2\"")]).await.status, 200);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn client_if_modified_since_only_without_if_none_match() {
    let (origin, node) = stored_etag("\"v1\"").await;
    assert_eq!(get(&node, "/", &[("if-modified-since", &date(0))]).await.status, 304);
    assert_eq!(get(&node, "/", &[("if-modified-since", &date(-7200))]).await.status, 200);
    let both = [("if-none-match", "\"other\""), ("if-modified-since", &date(0) as &str)];
    assert_eq!(get(&node, "/", &both).await.status, 200, "If-None-Match decides");
    assert_eq!(get(&node, "/", &[("if-modified-since", "not a date")]).await.status, 200, "invalid: ignored");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn client_if_match_and_if_unmodified_since_fail_with_412() {
    let (origin, node) = stored_etag("\"v1\"").await;
    assert_eq!(get(&node, "/", &[("if-match", "\"v1\"")]).await.status, 200);
    assert_eq!(get(&node, "/", &[("if-match", "\"v2\"")]).await.status, 412);
    assert_eq!(get(&node, "/", &[("if-unmodified-since", &date(0))]).await.status, 200);
    assert_eq!(get(&node, "/", &[("if-unmodified-since", &date(-7200))]).await.status, 412);
    assert_eq!(origin.hits(), 1);
    let (_origin, node) = stored_etag("W/\"v1\"").await;
    assert_eq!(get(&node, "/", &[("if-match", "W/\"v1\"")]).await.status, 412, "If-Match compares strongly");
}

#[tokio::test]
async fn head_conditionals_get_304_too() {
    let (_origin, node) = stored_etag("\"v1\"").await;
    let answer = request(&node, reqwest::Method::HEAD, "/", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(answer.status, 304);
}

#[tokio::test]
async fn a_conditional_miss_is_answered_304_when_the_fetched_response_matches_and_the_body_is_still_stored() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60"), ("etag", "\"v1\"")]).await;
    let miss = get(&node, "/", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(miss.status, 304, "{}", miss.cache);
    assert_eq!(miss.header("etag"), "\"v1\"");
    assert!(miss.body.is_empty());
    assert_eq!(origin.seen()[0].headers.get("if-none-match"), None, "the whole response was asked for");
    let mut hit = get(&node, "/", &[]).await;
    for _ in 0..50 {
        if hit.is_hit() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        hit = get(&node, "/", &[]).await;
    }
    assert!(hit.is_hit(), "the fetched body was stored: {}", hit.cache);
    assert_eq!(hit.status, 200);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_conditional_miss_that_does_not_match_gets_the_whole_response() {
    let (_origin, node) = fixed(&[("cache-control", "max-age=60"), ("etag", "\"v2\"")]).await;
    let miss = get(&node, "/", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(miss.status, 200, "{}", miss.cache);
    assert!(!miss.body.is_empty());
}
