//! May a response be stored, and for how long is it fresh? Wraps `http-cache-semantics` for the RFC rules it
//! gets right and keeps only a compact [`Freshness`] with each stored object.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_cache_semantics::{CacheOptions, CachePolicy};

use super::directives::CacheControl;
use crate::cache::VarySpec;

/// Why a response is not stored. Its text is the `detail` of `Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.as_str())]
pub enum NotStorable {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    SetCookie,
    NoFreshness,
    TooLarge,
    Uncacheable,
}

impl NotStorable {
    /// The reason as it appears in `Cache-Status; detail=`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStorable::Method => "method",
            NotStorable::Status => "status",
            NotStorable::NoStore => "no-store",
            NotStorable::Private => "private",
            NotStorable::Authorization => "authorization",
            NotStorable::VaryStar => "vary-star",
            NotStorable::SetCookie => "set-cookie",
            NotStorable::NoFreshness => "no-freshness",
            NotStorable::TooLarge => "too-large",
            NotStorable::Uncacheable => "uncacheable",
        }
    }
}

/// How fresh a stored response is, compactly: enough to compute `Age`, TTL and the stale windows at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// When this node received the response (or the 304 that last refreshed it).
    pub received: SystemTime,
    /// The response's age when it was received (from the upstream's `Age`).
    pub initial_age: Duration,
    /// How long it was still fresh when it was received.
    pub fresh_for: Duration,
    /// `stale-while-revalidate`: how long after going stale it may be served while one refresh runs.
    pub stale_while_revalidate: Duration,
    /// `stale-if-error`: how long after going stale it may be served when the upstream fails.
    pub stale_if_error: Duration,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: once stale, never served without revalidating.
    pub must_revalidate: bool,
}

impl Freshness {
    /// The `Age` of the stored response at `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.initial_age + now.duration_since(self.received).unwrap_or_default()
    }

    /// Seconds of freshness left at `now`; negative once stale (RFC 9211 `ttl`).
    pub fn ttl_secs(&self, now: SystemTime) -> i64 {
        let elapsed = now.duration_since(self.received).unwrap_or_default();
        self.fresh_for.as_secs() as i64 - elapsed.as_secs() as i64
    }

    /// How long it has been stale at `now` (zero while fresh).
    pub fn staleness(&self, now: SystemTime) -> Duration {
        let elapsed = now.duration_since(self.received).unwrap_or_default();
        elapsed.saturating_sub(self.fresh_for)
    }

    /// Whether the response is fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now.duration_since(self.received).unwrap_or_default() < self.fresh_for
    }

    /// Freshness left at `now` (zero once stale).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        let elapsed = now.duration_since(self.received).unwrap_or_default();
        self.fresh_for.saturating_sub(elapsed)
    }

    /// How long the object is worth keeping at `now`: fresh time left plus the longest stale window, and a
    /// floor that keeps validators around for a 304.
    pub fn keep_for(&self, now: SystemTime, has_validators: bool) -> Duration {
        let stale_window = self.stale_while_revalidate.max(self.stale_if_error);
        let floor = if has_validators { Duration::from_secs(3600) } else { Duration::ZERO };
        (self.remaining(now) + stale_window).max(floor)
    }
}

/// The decision, taken once when a response arrives, whether and how to store it.
pub struct StoreDecision;

impl StoreDecision {
    /// Judges a response to `method uri` (with the request's headers) received at `received`.
    pub fn evaluate(
        method: &Method,
        uri: &Uri,
        request: &HeaderMap,
        status: StatusCode,
        response: &HeaderMap,
        received: SystemTime,
    ) -> Result<Freshness, NotStorable> {
        if method != Method::GET {
            return Err(NotStorable::Method);
        }
        let response_cc = CacheControl::of(response);
        let request_cc = CacheControl::of(request);
        if response_cc.has("no-store") || request_cc.has("no-store") {
            return Err(NotStorable::NoStore);
        }
        if response_cc.has("private") {
            return Err(NotStorable::Private);
        }
        if VarySpec::from_response(response) == VarySpec::Any {
            return Err(NotStorable::VaryStar);
        }
        let explicitly_shared = response_cc.has("public") || response_cc.has("s-maxage");
        if response.contains_key(http::header::SET_COOKIE) && !explicitly_shared {
            return Err(NotStorable::SetCookie);
        }
        if request.contains_key(http::header::AUTHORIZATION)
            && !(explicitly_shared || response_cc.has("must-revalidate"))
        {
            return Err(NotStorable::Authorization);
        }

        let policy = library_policy(method, uri, request, status, response, received);
        if !policy.is_storable() {
            return Err(if is_understood(status) { NotStorable::Uncacheable } else { NotStorable::Status });
        }
        let initial_age = policy.age(received);
        let fresh_for = if response_cc.has("no-cache") { Duration::ZERO } else { policy.time_to_live(received) };
        let has_validators =
            response.contains_key(http::header::ETAG) || response.contains_key(http::header::LAST_MODIFIED);
        if fresh_for.is_zero() && !has_validators {
            return Err(NotStorable::NoFreshness);
        }
        Ok(Freshness {
            received,
            initial_age,
            fresh_for,
            stale_while_revalidate: secs(response_cc.seconds("stale-while-revalidate")),
            stale_if_error: secs(response_cc.seconds("stale-if-error")),
            must_revalidate: response_cc.has("must-revalidate")
                || response_cc.has("proxy-revalidate")
                || response_cc.has("s-maxage")
                || response_cc.has("no-cache"),
        })
    }
}

fn secs(v: Option<u64>) -> Duration {
    Duration::from_secs(v.unwrap_or(0))
}

/// Status codes whose caching rules this cache understands (RFC 9110 §15).
fn is_understood(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200 | 203 | 204 | 300 | 301 | 302 | 303 | 307 | 308 | 404 | 405 | 410 | 414 | 501)
}

fn library_policy(
    method: &Method,
    uri: &Uri,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    received: SystemTime,
) -> CachePolicy {
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = request.clone();
    let mut res = Response::new(());
    *res.status_mut() = status;
    *res.headers_mut() = response.clone();
    let options = CacheOptions { shared: true, ..CacheOptions::default() };
    CachePolicy::new_options(&req, &res, received, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn judge(cc: &'static str, extra: &[(&'static str, &'static str)]) -> Result<Freshness, NotStorable> {
        let mut res = HeaderMap::new();
        if !cc.is_empty() {
            res.insert("cache-control", HeaderValue::from_static(cc));
        }
        for (k, v) in extra {
            res.append(*k, HeaderValue::from_static(v));
        }
        let now = SystemTime::now();
        StoreDecision::evaluate(&Method::GET, &Uri::from_static("/"), &HeaderMap::new(), StatusCode::OK, &res, now)
    }

    #[test]
    fn max_age_and_s_maxage() {
        let f = judge("max-age=60", &[]).expect("storable");
        assert_eq!(f.fresh_for, Duration::from_secs(60));
        let f = judge("max-age=60, s-maxage=10", &[]).expect("storable");
        assert_eq!(f.fresh_for, Duration::from_secs(10));
        assert!(f.must_revalidate);
    }

    #[test]
    fn upstream_age_counts() {
        let f = judge("max-age=60", &[("age", "50")]).expect("storable");
        assert_eq!(f.fresh_for, Duration::from_secs(10));
        assert_eq!(f.initial_age, Duration::from_secs(50));
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
    fn no_cache_with_validator_is_stored_but_always_revalidated() {
        let f = judge("no-cache", &[("etag", "\"v1\"")]).expect("storable");
        assert!(!f.is_fresh(f.received));
        assert!(f.must_revalidate);
    }

    #[test]
    fn stale_windows_are_read() {
        let f = judge("max-age=1, stale-while-revalidate=30, stale-if-error=300", &[]).expect("storable");
        assert_eq!(f.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(f.stale_if_error, Duration::from_secs(300));
        let later = f.received + Duration::from_secs(5);
        assert_eq!(f.ttl_secs(later), -4);
        assert_eq!(f.staleness(later), Duration::from_secs(4));
    }
}
