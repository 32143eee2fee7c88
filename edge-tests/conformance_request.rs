//! RFC 9111 §5.2.1 request directives from clients, with the care a shared cache needs; one test per rule.

use crate::conformance_kit::{fixed, get, until_stale};

#[tokio::test]
async fn client_max_age_sends_an_old_enough_response_upstream() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[("cache-control", "max-age=30")]).await.is_hit());
    let forced = get(&node, "/", &[("cache-control", "max-age=0")]).await;
    assert!(forced.cache.starts_with("test-edge; fwd=request"), "{}", forced.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn client_min_fresh_needs_enough_freshness_left() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[("cache-control", "min-fresh=10")]).await.is_hit());
    let forced = get(&node, "/", &[("cache-control", "min-fresh=120")]).await;
    assert!(forced.cache.starts_with("test-edge; fwd=request"), "{}", forced.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn client_max_stale_accepts_stale_within_its_bound() {
    let (origin, node) = fixed(&[("cache-control", "max-age=2"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let stale = get(&node, "/", &[("cache-control", "max-stale=60")]).await;
    assert!(stale.is_hit(), "{}", stale.cache);
    assert!(stale.cache.contains("ttl=-"), "a stale answer has a negative ttl: {}", stale.cache);
    let too_stale = get(&node, "/", &[("cache-control", "max-stale=0")]).await;
    assert!(too_stale.cache.starts_with("test-edge; fwd=stale"), "{}", too_stale.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn client_no_cache_revalidates() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    let forced = get(&node, "/", &[("cache-control", "no-cache")]).await;
    assert!(forced.cache.starts_with("test-edge; fwd=request"), "{}", forced.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn pragma_no_cache_counts_only_without_cache_control() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[("pragma", "no-cache"), ("cache-control", "max-stale=1")]).await.is_hit());
    assert_eq!(origin.hits(), 1);
    let forced = get(&node, "/", &[("pragma", "no-cache")]).await;
    assert!(forced.cache.starts_with("test-edge; fwd=request"), "{}", forced.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn client_no_store_keeps_the_response_out_of_the_cache() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    let first = get(&node, "/", &[("cache-control", "no-store")]).await;
    assert!(first.cache.ends_with("detail=no-store"), "{}", first.cache);
    let second = get(&node, "/", &[]).await;
    assert!(second.cache.contains("fwd=uri-miss"), "{}", second.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn only_if_cached_answers_504_when_nothing_usable_is_stored() {
    let (origin, node) = fixed(&[("cache-control", "max-age=2"), ("etag", "\"a\"")]).await;
    let only = [("cache-control", "only-if-cached")];
    let miss = get(&node, "/", &only).await;
    assert_eq!(miss.status, 504);
    assert_eq!(origin.hits(), 0);
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &only).await.is_hit());
    until_stale().await;
    let stale = get(&node, "/", &only).await;
    assert_eq!(stale.status, 504, "a stale response is not usable without going upstream");
    assert_eq!(origin.hits(), 1);
}
