//! RFC 9111 §4.2 for a shared cache, one test per rule: which field gives the freshness lifetime, `Expires` in
//! every date format, `Date` and `Age`, heuristic freshness and which status codes may have it.

use crate::conformance_kit::{asctime, date, fixed, get, rfc850, setup, until_stale};
use crate::support::Reply;

#[tokio::test]
async fn s_maxage_wins_over_max_age_in_a_shared_cache() {
    let (origin, node) = fixed(&[("cache-control", "max-age=0, s-maxage=60")]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("stored; ttl=60"), "{}", first.cache);
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn max_age_wins_over_expires() {
    let (origin, node) = fixed(&[("cache-control", "max-age=60"), ("expires", &date(-3600))]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn expires_in_each_rfc9110_date_format_gives_freshness() {
    let now = date(0);
    let later = date(60);
    for (name, expires) in [("imf", later.clone()), ("rfc850", rfc850(&later)), ("asctime", asctime(&later))] {
        let (origin, node) = fixed(&[("date", now.as_str()), ("expires", expires.as_str())]).await;
        let first = get(&node, "/", &[]).await;
        assert!(first.cache.contains("stored"), "{name} ({expires}): {}", first.cache);
        assert!(get(&node, "/", &[]).await.is_hit(), "{name} ({expires})");
        assert_eq!(origin.hits(), 1, "{name}");
    }
}

#[tokio::test]
async fn invalid_expires_means_already_expired() {
    for expires in ["0", "-1", "soon"] {
        let (origin, node) = fixed(&[("expires", expires), ("etag", "\"v1\"")]).await;
        get(&node, "/", &[]).await;
        let second = get(&node, "/", &[]).await;
        assert!(second.cache.contains("fwd=stale"), "{expires}: {}", second.cache);
        assert_eq!(origin.hits(), 2, "{expires}");
    }
}

#[tokio::test]
async fn an_invalid_date_counts_as_the_receipt_time() {
    let (origin, node) = fixed(&[("date", "not a date"), ("cache-control", "max-age=60")]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("stored; ttl=60"), "{}", first.cache);
    assert!(!first.header("date").contains("not a date"), "a valid Date is supplied");
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn apparent_age_from_an_old_date_counts() {
    let (_origin, node) = fixed(&[("date", &date(-50)), ("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert!(hit.age() >= 50, "Age {}", hit.age());
}

#[tokio::test]
async fn a_date_in_the_future_counts_no_apparent_age_and_no_extra_freshness() {
    // RFC 9111 §4.2.3: apparent_age = max(0, response_time - date_value); `max-age` is counted from receipt.
    let (origin, node) = fixed(&[("date", &date(3600)), ("cache-control", "max-age=60")]).await;
    let first = get(&node, "/", &[]).await;
    let ttl: i64 = first.cache.split("ttl=").nth(1).and_then(|t| t.parse().ok()).expect("ttl");
    assert!((55..=60).contains(&ttl), "{}", first.cache);
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit(), "{}", hit.cache);
    assert!(hit.age() <= 5, "Age {}", hit.age());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn upstream_age_counts_into_age_and_freshness() {
    let (origin, node) = fixed(&[("age", "30"), ("cache-control", "max-age=60")]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.contains("ttl=30"), "{}", first.cache);
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert!((30..=32).contains(&hit.age()), "Age {}", hit.age());
    assert_eq!(origin.hits(), 1);

    // Older than its lifetime on arrival: stale at once.
    let (origin, node) = fixed(&[("age", "70"), ("cache-control", "max-age=60"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.cache.contains("fwd=stale"));
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn an_invalid_age_is_ignored() {
    for age in ["abc", "-10", "1.5"] {
        let (origin, node) = fixed(&[("age", age), ("cache-control", "max-age=60")]).await;
        get(&node, "/", &[]).await;
        let hit = get(&node, "/", &[]).await;
        assert!(hit.is_hit(), "{age}");
        assert!(hit.age() <= 1, "{age}: Age {}", hit.age());
        assert_eq!(origin.hits(), 1);
    }
}

#[tokio::test]
async fn a_list_based_age_counts_by_its_first_member() {
    // RFC 9111 §5.1: use the first member, discard the rest. 7200 first: stale at once; 5 first: fresh.
    let (origin, node) = fixed(&[("age", "7200, 5"), ("cache-control", "max-age=3600"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    let second = get(&node, "/", &[]).await;
    assert!(second.cache.contains("fwd=stale"), "{}", second.cache);
    assert_eq!(origin.hits(), 2);

    let (origin, node) = fixed(&[("age", "5, 7200"), ("cache-control", "max-age=3600")]).await;
    get(&node, "/", &[]).await;
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit(), "{}", hit.cache);
    assert!((5..=7).contains(&hit.age()), "Age {}", hit.age());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn a_huge_age_is_clamped_not_wrapped() {
    let (origin, node) =
        fixed(&[("age", "99999999999999999999"), ("cache-control", "max-age=60"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    let second = get(&node, "/", &[]).await;
    assert!(second.cache.contains("fwd=stale"), "{}", second.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn every_answer_from_cache_carries_a_growing_age() {
    let (_origin, node) = fixed(&[("cache-control", "max-age=60")]).await;
    get(&node, "/", &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let hit = get(&node, "/", &[]).await;
    assert!(hit.is_hit());
    assert!(hit.age() >= 1, "Age {}", hit.age());
}

#[tokio::test]
async fn a_response_goes_stale_when_its_lifetime_ends() {
    let (origin, node) = fixed(&[("cache-control", "max-age=2"), ("etag", "\"a\"")]).await;
    get(&node, "/", &[]).await;
    until_stale().await;
    let stale = get(&node, "/", &[]).await;
    assert!(stale.cache.starts_with("test-edge; fwd=stale"), "{}", stale.cache);
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn heuristic_freshness_from_last_modified() {
    let (origin, node) = fixed(&[("last-modified", &date(-10 * 86400))]).await;
    let first = get(&node, "/", &[]).await;
    // A second of apparent age may be counted when the origin's `Date` and the receipt straddle a second.
    let capped = first.cache.contains("stored; ttl=86400") || first.cache.contains("stored; ttl=86399");
    assert!(capped, "a tenth of 10 days, capped at a day: {}", first.cache);
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}

#[tokio::test]
async fn no_heuristic_freshness_without_last_modified() {
    let (origin, node) = fixed(&[]).await;
    let first = get(&node, "/", &[]).await;
    assert!(first.cache.ends_with("detail=no-freshness"), "{}", first.cache);
    get(&node, "/", &[]).await;
    assert_eq!(origin.hits(), 2);
}

#[tokio::test]
async fn heuristically_cacheable_status_codes_are_stored_with_last_modified() {
    for code in [200u16, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        let lm = date(-10_000);
        let (origin, node) = setup(move |_, _| Reply::status(code, &[("last-modified", lm.as_str())])).await;
        get(&node, "/", &[]).await;
        let second = get(&node, "/", &[]).await;
        assert_eq!(second.status, code);
        assert!(second.is_hit(), "{code}: {}", second.cache);
        assert_eq!(origin.hits(), 1, "{code}");
    }
}

#[tokio::test]
async fn other_status_codes_need_explicit_freshness() {
    for code in [302u16, 307, 400, 403, 500] {
        let lm = date(-10_000);
        let (origin, node) = setup(move |_, _| Reply::status(code, &[("last-modified", lm.as_str())])).await;
        let first = get(&node, "/", &[]).await;
        assert!(first.cache.ends_with("detail=status"), "{code}: {}", first.cache);
        get(&node, "/", &[]).await;
        assert_eq!(origin.hits(), 2, "{code}");
    }
    for code in [302u16, 307, 400, 403] {
        let (origin, node) = setup(move |_, _| Reply::status(code, &[("cache-control", "max-age=60")])).await;
        get(&node, "/", &[]).await;
        assert!(get(&node, "/", &[]).await.is_hit(), "{code}");
        assert_eq!(origin.hits(), 1, "{code}");
    }
}

#[tokio::test]
async fn public_allows_heuristic_freshness_for_any_status() {
    let lm = date(-10_000);
    let (origin, node) =
        setup(move |_, _| Reply::status(302, &[("last-modified", lm.as_str()), ("cache-control", "public")])).await;
    get(&node, "/", &[]).await;
    assert!(get(&node, "/", &[]).await.is_hit());
    assert_eq!(origin.hits(), 1);
}
