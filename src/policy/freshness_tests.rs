//! Unit tests of the store decision and the freshness lifetime, one per RFC 9111 rule.

use super::*;
use http::HeaderValue;

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn date(offset: i64) -> String {
    let t = if offset >= 0 {
        at() + Duration::from_secs(offset as u64)
    } else {
        at() - Duration::from_secs((-offset) as u64)
    };
    httpdate::fmt_http_date(t)
}

fn judge_full(
    status: u16,
    request: &[(&'static str, &str)],
    response: &[(&'static str, &str)],
) -> Result<Freshness, NotStorable> {
    let mut req = HeaderMap::new();
    for (k, v) in request {
        req.append(*k, HeaderValue::from_str(v).expect("value"));
    }
    let mut res = HeaderMap::new();
    for (k, v) in response {
        res.append(*k, HeaderValue::from_str(v).expect("value"));
    }
    let status = StatusCode::from_u16(status).expect("status");
    StoreDecision::evaluate(&Method::GET, &Uri::from_static("/"), &req, status, &res, at())
}

fn judge(cc: &str, extra: &[(&'static str, &str)]) -> Result<Freshness, NotStorable> {
    let mut response = extra.to_vec();
    if !cc.is_empty() {
        response.push(("cache-control", cc));
    }
    judge_full(200, &[], &response)
}

fn lifetime(cc: &str, extra: &[(&'static str, &str)]) -> u64 {
    judge(cc, extra).map(|f| f.fresh_for.as_secs()).unwrap_or_else(|e| panic!("not storable: {e}"))
}

const ETAG: (&str, &str) = ("etag", "\"v1\"");

#[test]
fn s_maxage_wins_over_max_age_and_implies_proxy_revalidate() {
    assert_eq!(lifetime("max-age=60", &[]), 60);
    let f = judge("max-age=60, s-maxage=10", &[]).expect("storable");
    assert_eq!(f.fresh_for.as_secs(), 10);
    assert!(f.must_revalidate);
}

#[test]
fn max_age_wins_over_expires() {
    assert_eq!(lifetime("max-age=60", &[("date", &date(0)), ("expires", &date(600))]), 60);
}

#[test]
fn expires_minus_date_in_every_format() {
    let date_h = ("date", "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_eq!(lifetime("", &[date_h, ("expires", "Tue, 14 Nov 2023 22:14:20 GMT")]), 60);
    assert_eq!(lifetime("", &[date_h, ("expires", "Tuesday, 14-Nov-23 22:14:20 GMT")]), 60);
    assert_eq!(lifetime("", &[date_h, ("expires", "Tue Nov 14 22:14:20 2023")]), 60);
}

#[test]
fn invalid_expires_means_already_expired() {
    for bad in ["0", "-1", "never", ""] {
        let f = judge("", &[("date", &date(0)), ("expires", bad), ETAG]).expect("storable");
        assert_eq!(f.fresh_for, Duration::ZERO, "{bad}");
    }
    // Not even heuristic freshness: Expires was given.
    let f = judge("", &[("expires", "0"), ("last-modified", &date(-100_000))]).expect("storable");
    assert_eq!(f.fresh_for, Duration::ZERO);
}

#[test]
fn expires_without_date_counts_from_receipt() {
    assert_eq!(lifetime("", &[("expires", &date(30))]), 30);
}

#[test]
fn invalid_max_age_means_stale_not_absent() {
    for bad in ["max-age=-1", "max-age=1.5", "max-age=abc", "max-age"] {
        let f = judge(bad, &[("expires", &date(600)), ETAG]).expect("storable");
        assert_eq!(f.fresh_for, Duration::ZERO, "{bad}");
    }
    assert_eq!(judge("max-age=abc", &[]), Err(NotStorable::NoFreshness));
}

#[test]
fn upstream_age_counts() {
    let f = judge("max-age=60", &[("age", "50")]).expect("storable");
    assert_eq!(f.fresh_for, Duration::from_secs(10));
    assert_eq!(f.initial_age, Duration::from_secs(50));
    let f = judge("max-age=60", &[("age", "abc"), ETAG]).expect("storable");
    assert_eq!(f.initial_age, Duration::ZERO);
}

#[test]
fn apparent_age_from_date() {
    let f = judge("max-age=60", &[("date", &date(-20))]).expect("storable");
    assert_eq!(f.initial_age, Duration::from_secs(20));
    assert_eq!(f.fresh_for, Duration::from_secs(40));
}

#[test]
fn heuristic_is_a_tenth_of_last_modified_capped() {
    assert_eq!(lifetime("", &[("date", &date(0)), ("last-modified", &date(-1000))]), 100);
    assert_eq!(lifetime("", &[("last-modified", &date(-100_000_000))]), HEURISTIC_CAP.as_secs());
}

#[test]
fn heuristic_never_without_last_modified() {
    assert_eq!(judge("", &[]), Err(NotStorable::NoFreshness));
    assert_eq!(judge("public", &[]), Err(NotStorable::NoFreshness));
}

#[test]
fn heuristic_only_for_heuristically_cacheable_codes_or_public() {
    let lm = ("last-modified", date(-1000));
    for code in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        let f = judge_full(code, &[], &[(lm.0, &lm.1)]).unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(f.fresh_for.as_secs(), 100, "{code}");
    }
    for code in [302, 307, 400, 403, 500, 503] {
        assert_eq!(judge_full(code, &[], &[(lm.0, &lm.1)]), Err(NotStorable::Status), "{code}");
    }
    let f = judge_full(302, &[], &[(lm.0, &lm.1), ("cache-control", "public")]).expect("public");
    assert_eq!(f.fresh_for.as_secs(), 100);
}

#[test]
fn other_codes_only_with_explicit_freshness() {
    for code in [302, 307, 400, 500, 503, 599, 299] {
        let f = judge_full(code, &[], &[("cache-control", "max-age=30")]).unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(f.fresh_for.as_secs(), 30);
    }
}

#[test]
fn interim_partial_and_not_modified_are_never_stored_as_objects() {
    for code in [100, 206, 304] {
        assert_eq!(judge_full(code, &[], &[("cache-control", "max-age=30")]), Err(NotStorable::Status), "{code}");
    }
}

#[test]
fn refusals_name_their_reason() {
    assert_eq!(judge("no-store, max-age=60", &[]), Err(NotStorable::NoStore));
    assert_eq!(judge("private, max-age=60", &[]), Err(NotStorable::Private));
    assert_eq!(judge("max-age=60", &[("vary", "*")]), Err(NotStorable::VaryStar));
    assert_eq!(judge("max-age=60", &[("set-cookie", "a=b")]), Err(NotStorable::SetCookie));
    assert_eq!(judge("", &[]), Err(NotStorable::NoFreshness));
}

#[test]
fn request_no_store_prevents_storing() {
    assert_eq!(
        judge_full(200, &[("cache-control", "no-store")], &[("cache-control", "max-age=60")]),
        Err(NotStorable::NoStore)
    );
}

#[test]
fn set_cookie_is_stored_only_when_explicitly_shared() {
    assert!(judge("public, max-age=60", &[("set-cookie", "a=b")]).is_ok());
    assert!(judge("s-maxage=60", &[("set-cookie", "a=b")]).is_ok());
    assert!(judge("max-age=60, private=\"set-cookie\"", &[("set-cookie", "a=b")]).is_ok());
}

#[test]
fn authorization_needs_public_s_maxage_or_must_revalidate() {
    let auth = [("authorization", "Basic YTpi")];
    let res = |cc: &'static str| judge_full(200, &auth, &[("cache-control", cc)]);
    assert_eq!(res("max-age=60"), Err(NotStorable::Authorization));
    assert!(res("public, max-age=60").is_ok());
    assert!(res("s-maxage=60").is_ok());
    assert!(res("max-age=60, must-revalidate").is_ok());
}

#[test]
fn must_understand_overrides_no_store_only_for_understood_codes() {
    let f = judge_full(200, &[], &[("cache-control", "max-age=60, no-store, must-understand")]).expect("understood");
    assert_eq!(f.fresh_for.as_secs(), 60);
    let unknown = judge_full(299, &[], &[("cache-control", "max-age=60, no-store, must-understand")]);
    assert_eq!(unknown, Err(NotStorable::MustUnderstand));
}

#[test]
fn no_cache_is_stored_but_always_revalidated() {
    let f = judge("no-cache, max-age=60", &[ETAG]).expect("storable");
    assert!(!f.is_fresh(f.received));
    assert!(f.must_revalidate);
}

#[test]
fn qualified_no_cache_and_private_withhold_fields() {
    let f = judge("no-cache=\"x-secret\", max-age=60", &[]).expect("storable");
    assert_eq!(f.fresh_for.as_secs(), 60);
    assert!(!f.must_revalidate);
    let mut h = HeaderMap::new();
    h.insert("cache-control", HeaderValue::from_static("max-age=60, private=\"X-Secret\", no-cache=x-other"));
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("x-other", HeaderValue::from_static("1"));
    h.insert("x-kept", HeaderValue::from_static("1"));
    remove_unshareable_fields(&mut h);
    assert!(!h.contains_key("x-secret") && !h.contains_key("x-other") && h.contains_key("x-kept"));
}

#[test]
fn revalidate_directives_forbid_stale_windows() {
    for cc in ["max-age=1, must-revalidate", "max-age=1, proxy-revalidate", "s-maxage=1"] {
        let f = judge(&format!("{cc}, stale-while-revalidate=30, stale-if-error=30"), &[]).expect("storable");
        assert!(f.must_revalidate, "{cc}");
        assert_eq!(f.stale_while_revalidate, Duration::ZERO, "{cc}");
        assert_eq!(f.stale_if_error, Duration::ZERO, "{cc}");
    }
}

#[test]
fn stale_windows_are_read() {
    let f = judge("max-age=1, stale-while-revalidate=30, stale-if-error=300", &[]).expect("storable");
    assert_eq!(f.stale_while_revalidate, Duration::from_secs(30));
    assert_eq!(f.stale_if_error, Duration::from_secs(300));
    let later = f.received + Duration::from_secs(5);
    assert_eq!(f.ttl_secs(later), -4);
    assert_eq!(f.staleness(later), Duration::from_secs(4));
    // A response stale on arrival is still worth keeping for its stale-if-error window.
    assert!(judge("max-age=0, stale-if-error=60", &[]).is_ok());
}

#[test]
fn immutable_is_recorded() {
    assert!(judge("max-age=60, immutable", &[]).expect("storable").immutable);
}

#[test]
fn targeted_fields_override_cache_control_and_expires() {
    let f = judge("no-store", &[("cdn-cache-control", "max-age=30")]).expect("cdn-cache-control decides");
    assert_eq!(f.fresh_for.as_secs(), 30);
    assert_eq!(judge("max-age=60", &[("edgecache-cache-control", "no-store")]), Err(NotStorable::NoStore));
    // Expires is ignored when a targeted field decides.
    let f = judge("", &[("cdn-cache-control", "public"), ("expires", &date(600)), ("last-modified", &date(-1000))]);
    assert_eq!(f.expect("storable").fresh_for.as_secs(), 100);
    // An invalid targeted field is ignored.
    assert_eq!(lifetime("max-age=60", &[("cdn-cache-control", "max-age=30,")]), 60);
}
