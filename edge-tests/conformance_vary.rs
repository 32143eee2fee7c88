//! RFC 9111 §4.1 `Vary`: `*`, several fields, the field list's syntax, and which request values count as equal.

use crate::conformance_kit::{get, setup};
use crate::support::Reply;

async fn varying(vary: &'static str) -> (crate::support::TestOrigin, crate::support::TestNode) {
    setup(move |_, n| Reply::ok(format!("variant {n}"), &[("cache-control", "max-age=60"), ("vary", vary)])).await
}

#[tokio::test]
async fn vary_star_is_never_stored() {
    let (origin, node) = varying("*").await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=vary-star"));
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn vary_star_among_fields_is_never_stored() {
    let (origin, node) = varying("accept, *").await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=vary-star"));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn several_fields_must_all_match() {
    let (origin, node) = varying("Accept-Language, X-Device").await;
    get(&node, "/", &[("accept-language", "en"), ("x-device", "phone")]).await;
    assert!(get(&node, "/", &[("accept-language", "en"), ("x-device", "phone")]).await.is_hit());
    let other = get(&node, "/", &[("accept-language", "en"), ("x-device", "tablet")]).await;
    assert!(other.cache.contains("fwd=vary-miss"), "{}", other.cache);
    assert!(get(&node, "/", &[("accept-language", "fr"), ("x-device", "phone")]).await.cache.contains("vary-miss"));
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn field_list_case_whitespace_and_duplicates_do_not_matter() {
    let (origin, node) = varying(" ACCEPT-language ,, x-device , Accept-Language").await;
    get(&node, "/", &[("accept-language", "en"), ("x-device", "phone")]).await;
    assert!(get(&node, "/", &[("Accept-Language", "en"), ("X-Device", "phone")]).await.is_hit());
    assert!(get(&node, "/", &[("accept-language", "de"), ("x-device", "phone")]).await.cache.contains("vary-miss"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn whitespace_around_commas_in_values_is_normalised() {
    let (origin, node) = varying("accept-language").await;
    get(&node, "/", &[("accept-language", "en, fr")]).await;
    assert!(get(&node, "/", &[("accept-language", "en,fr")]).await.is_hit());
    assert!(get(&node, "/", &[("accept-language", " en ,  fr ")]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn values_are_otherwise_compared_exactly() {
    let (origin, node) = varying("accept-language").await;
    get(&node, "/", &[("accept-language", "en")]).await;
    assert!(get(&node, "/", &[("accept-language", "fr, en")]).await.cache.contains("vary-miss"));
    assert_eq!(origin.hits(), 2);
    // A field this cache does not know might be case-sensitive.
    let (origin, node) = varying("x-token").await;
    get(&node, "/", &[("x-token", "abc")]).await;
    assert!(get(&node, "/", &[("x-token", "ABC")]).await.cache.contains("vary-miss"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn language_tags_select_their_variant_whatever_their_case() {
    // RFC 9111 §4.1: values may be case-normalised where the field defines them case-insensitive (RFC 4647 §2).
    let (origin, node) = varying("accept-language").await;
    get(&node, "/", &[("accept-language", "en-US, de;q=0.5")]).await;
    assert!(get(&node, "/", &[("accept-language", "EN-us, DE;q=0.5")]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn languages_of_equal_weight_select_one_variant_in_any_order_and_weights_still_count() {
    // RFC 9110 §12.4.2: a weighted list says what is acceptable and how much; equal weights have no order.
    let (origin, node) = varying("accept-language").await;
    get(&node, "/", &[("accept-language", "en, de")]).await;
    assert!(get(&node, "/", &[("accept-language", "de, en")]).await.is_hit());
    assert!(get(&node, "/", &[("accept-language", "de;q=1.0, EN")]).await.is_hit());
    get(&node, "/", &[("accept-language", "en, de;q=0.5")]).await;
    assert!(get(&node, "/", &[("accept-language", "en,de; q=0.50")]).await.is_hit());
    let preferred_other = get(&node, "/", &[("accept-language", "de, en;q=0.5")]).await;
    assert!(preferred_other.cache.contains("vary-miss"), "{}", preferred_other.cache);
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn an_absent_field_matches_only_an_absent_field() {
    let (origin, node) = varying("x-flag").await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.is_hit());
    assert!(get(&node, "/", &[("x-flag", "")]).await.cache.contains("vary-miss"));
    assert_eq!(origin.hits(), 2);
}
