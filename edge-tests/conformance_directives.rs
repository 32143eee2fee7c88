//! RFC 9111 §5.2.2 response directives (and RFC 8246, RFC 9213) as a shared cache obeys them, one test per rule.

use crate::conformance_kit::{date, fixed, get, setup, until_stale};
use crate::support::Reply;

async fn stored_and_hit(cache_control: &str) {
    let (origin, node) = fixed(&[("cache-control", cache_control)]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("stored"), "{cache_control}: {}", first.cache);
    let second = get(&node, "/", &[]).await;
    assert!(second.is_hit(), "{cache_control}: {}", second.cache);
    assert_eq!(origin.hits(), 1, "{cache_control}");
}

#[tokio::test]
async fn directive_names_are_case_insensitive() {
    stored_and_hit("MAX-AGE=60").await;
    stored_and_hit("Max-Age=60").await;
}

#[tokio::test]
async fn quoted_values_are_accepted() {
    stored_and_hit("max-age=\"60\"").await;
}

#[tokio::test]
async fn leading_zeros_are_accepted() {
    stored_and_hit("max-age=0060").await;
}

#[tokio::test]
async fn the_first_of_duplicate_directives_wins() {
    stored_and_hit("max-age=60, max-age=0").await;
    let (origin, node) = fixed(&[("cache-control", "max-age=0, max-age=60"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.cache.contains("fwd=stale"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn huge_values_are_clamped_not_rejected() {
    stored_and_hit("max-age=99999999999999999999").await;
}

#[tokio::test]
async fn extensions_and_stray_commas_are_ignored() {
    stored_and_hit("foo=\"bar, max-age=0\", max-age=60, baz").await;
    stored_and_hit(" ,, max-age=60 ,").await;
}

#[tokio::test]
async fn invalid_max_age_means_stale_even_with_expires() {
    for cc in ["max-age=-1", "max-age=1.5", "max-age=abc", "max-age"] {
        let (origin, node) = fixed(&[("cache-control", cc), ("expires", &date(3600)), ("etag", "\"a\"")]).await;
        get(&node, "/", &[]).await;
        let second = get(&node, "/", &[]).await;
        assert!(second.cache.contains("fwd=stale"), "{cc}: {}", second.cache);
        assert_eq!(origin.hits(), 2, "{cc}");
    }
}

#[tokio::test]
async fn no_store_is_not_stored() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60, no-store")]).await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=no-store"));
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn no_cache_is_stored_but_revalidated_every_time() {
    let (origin, node) = setup(|seen, _| {
        if seen.headers.contains_key("if-none-match") {
            Reply::status(304, &[("etag", "\"v1\""), ("cache-control", "no-cache, max-age=60")])
        } else {
            Reply::ok("v1", &[("etag", "\"v1\""), ("cache-control", "no-cache, max-age=60")])
        }
    })
    .await;
    assert!(get(&node, "/", &[]).await.cache.contains("stored"));
    for _ in 0..2 {
        let again = get(&node, "/", &[]).await;
        assert!(again.cache.starts_with("test-edge; fwd=stale; fwd-status=304"), "{}", again.cache);
        assert_eq!(again.body, "v1");
    }
    assert_eq!(origin.hits(), 3);
}

#[tokio::test]
async fn qualified_no_cache_reuses_without_the_named_fields() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60, no-cache=\"x-secret\""), ("x-secret", "s")]).await;
    assert_eq!(get(&node, "/", &[]).await.header("x-secret"), "s");
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert_eq!(hit.header("x-secret"), "", "the withheld field is not served from cache");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn private_is_not_stored_by_a_shared_cache() {
    let (origin, node) = fixed(&[("cache-control", "private, max-age=60")]).await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=private"));
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn qualified_private_stores_the_rest() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60, private=\"x-user\""), ("x-user", "alice")]).await;
    assert_eq!(get(&node, "/", &[]).await.header("x-user"), "alice");
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert_eq!(hit.header("x-user"), "");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn qualified_private_without_a_valid_field_name_is_not_stored() {
    // No member names a field, so the restriction cannot be confined to fields: it applies to the whole response.
    let (origin, node) = fixed(&[("cache-control", "max-age=60, private=\"{user}, \""), ("x-user", "alice")]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("detail=private"), "{}", first.cache);
    let again = get(&node, "/", &[]).await;
    assert!(!again.is_hit(), "{}", again.cache);
    assert_eq!(again.header("x-user"), "alice");
    assert_eq!(origin.hits(), 2);
}

async fn max_stale_cannot_unlock(cache_control: &'static str) {
    let (origin, node) = fixed(&[("cache-control", cache_control), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let again = get(&node, "/", &[("cache-control", "max-stale=600")]).await;
    assert!(again.cache.contains("fwd=stale"), "{cache_control}: {}", again.cache);
    assert_eq!(origin.hits(), 2, "{cache_control}");
}

#[tokio::test]
async fn must_revalidate_forbids_serving_stale() {
    max_stale_cannot_unlock("max-age=2, must-revalidate, stale-while-revalidate=60").await;
}

#[tokio::test]
async fn proxy_revalidate_applies_to_a_shared_cache() {
    max_stale_cannot_unlock("max-age=2, proxy-revalidate").await;
}

#[tokio::test]
async fn s_maxage_implies_proxy_revalidate() {
    max_stale_cannot_unlock("s-maxage=2, stale-while-revalidate=60").await;
}

#[tokio::test]
async fn without_revalidate_directives_max_stale_serves_stale() {
    let (origin, node) = fixed(&[("cache-control", "max-age=2"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let stale = get(&node, "/", &[("cache-control", "max-stale=600")]).await;
    assert!(stale.is_hit(), "{}", stale.cache);
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn must_understand_stores_understood_codes_despite_no_store() {
    stored_and_hit("max-age=60, no-store, must-understand").await;
    let (origin, node) =
        setup(|_, _| Reply::status(299, &[("cache-control", "max-age=60, no-store, must-understand")])).await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=must-understand"));
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn immutable_skips_revalidation_on_reload_but_not_on_forced_reload() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60, immutable")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[("cache-control", "max-age=0")]).await.is_hit());
    assert_eq!(origin.hits(), 1);
    let forced = get(&node, "/", &[("cache-control", "no-cache")]).await;
    assert!(forced.cache.starts_with("test-edge; fwd=request"), "{}", forced.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn authorization_requires_public_s_maxage_or_must_revalidate() {
    let auth = [("authorization", "Basic YTpi")];
    let (origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    assert!(get(&node, "/", &auth).await.cache.ends_with("detail=authorization"));
    get(&node, "/", &auth).await;
    assert_eq!(origin.hits(), 2);
    for cc in ["public, max-age=60", "s-maxage=60", "max-age=60, must-revalidate"] {
        let (origin, node) = fixed(&[("cache-control", cc)]).await;
        assert!(get(&node, "/", &auth).await.cache.contains("stored"), "{cc}");
        assert!(get(&node, "/", &auth).await.is_hit(), "{cc}");
        assert_eq!(origin.hits(), 1, "{cc}");
    }
}

#[tokio::test]
async fn set_cookie_is_never_shared_unless_the_origin_allows_it() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60"), ("set-cookie", "session=1")]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.ends_with("detail=set-cookie"), "{}", first.cache);
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);

    let (origin, node) = fixed(&[("cache-control", "public, max-age=60"), ("set-cookie", "theme=dark")]).await;
    get(&node, "/", &[]).await;
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert_eq!(hit.header("set-cookie"), "theme=dark");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn cdn_cache_control_overrides_cache_control() {
    let (origin, node) = fixed(&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60")]).await;
    assert!(get(&node, "/", &[]).await.cache.contains("stored; ttl=60"));
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn edgecache_cache_control_is_the_most_specific() {
    let (origin, node) = fixed(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "max-age=60"),
        ("edgecache-cache-control", "no-store"),
    ])
    .await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=no-store"));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn surrogate_control_overrides_cache_control() {
    let (origin, node) = fixed(&[("cache-control", "private"), ("surrogate-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn surrogate_control_directives_are_obeyed_when_they_name_the_token_announced_upstream() {
    let (origin, node) = setup(|seen, n| {
        // The origin targets the device token the cache announced, as Edge Architecture origins do.
        let announced = seen.headers.get("surrogate-capability").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = announced.split('=').next().unwrap_or_default().to_string();
        Reply::ok(
            format!("body {n}"),
            &[("cache-control", "no-store"), ("surrogate-control", &format!("max-age=60;{token}"))],
        )
    })
    .await;
    get(&node, "/ours", &[]).await;
    assert!(get(&node, "/ours", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
    assert_eq!(origin.seen()[0].headers["surrogate-capability"], "edgecache=\"Surrogate/1.0\"");

    let (origin, node) = fixed(&[("cache-control", "no-store"), ("surrogate-control", "max-age=60;othercdn")]).await;
    assert!(get(&node, "/theirs", &[]).await.cache.ends_with("detail=no-store"), "only Cache-Control is for us");
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn an_invalid_targeted_field_is_ignored() {
    let (origin, node) = fixed(&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60,")]).await;
    assert!(get(&node, "/", &[]).await.cache.ends_with("detail=no-store"));
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn targeted_fields_ignore_expires() {
    let (origin, node) =
        fixed(&[("cdn-cache-control", "must-revalidate"), ("expires", &date(3600)), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.cache.contains("fwd=stale"));
    assert_eq!(origin.hits(), 2);
}
