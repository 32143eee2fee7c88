//! What a client's request allows: its `Cache-Control` directives (and `Pragma: no-cache`), judged against a stored
//! response's freshness the way a shared cache must.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::cache_status::Forward;
use super::directives::CacheControl;
use super::freshness::{Freshness, FreshnessAt};
use crate::cache::map_lookup;

/// The caching directives of a client's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    pub no_cache: bool,
    pub no_store: bool,
    pub only_if_cached: bool,
    pub max_age: Option<u64>,
    pub min_fresh: Option<u64>,
    /// `Some(None)`: any staleness accepted.
    pub max_stale: Option<Option<u64>>,
    /// `stale-if-error=N` (RFC 5861 §4): the client accepts a response up to N seconds stale if the upstream fails.
    pub stale_if_error: Option<u64>,
}

/// Whether a stored response may answer a request without going upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    /// Fresh enough for this request.
    Fresh,
    /// Stale but inside `stale-while-revalidate`: serve it and refresh in the background.
    StaleWhileRevalidate,
    /// Must be revalidated (or refetched) first.
    Revalidate,
}

impl RequestDirectives {
    /// Reads a request's directives.
    pub fn of(headers: &HeaderMap) -> RequestDirectives {
        if !map_lookup::holds(headers, &http::header::CACHE_CONTROL)
            && !map_lookup::holds(headers, &http::header::PRAGMA)
        {
            // Most requests say nothing about caching.
            return RequestDirectives::default();
        }
        let cc = CacheControl::of(headers);
        let pragma_no_cache = !headers.contains_key(http::header::CACHE_CONTROL)
            && headers
                .get_all(http::header::PRAGMA)
                .iter()
                .any(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase().contains("no-cache"));
        RequestDirectives {
            no_cache: cc.has("no-cache") || pragma_no_cache,
            no_store: cc.has("no-store"),
            only_if_cached: cc.has("only-if-cached"),
            max_age: cc.seconds("max-age"),
            min_fresh: cc.seconds("min-fresh"),
            max_stale: cc.optional_seconds("max-stale"),
            stale_if_error: cc.seconds("stale-if-error"),
        }
    }

    /// Judges a stored response for this request at `now`.
    ///
    /// A client's `max-stale` never unlocks a response whose origin forbade serving it stale (`must-revalidate`,
    /// `proxy-revalidate`, `s-maxage`, `no-cache`); `stale-while-revalidate` is bounded by the origin's window only.
    /// While an `immutable` response is fresh, a client's `max-age` (a browser reload) does not force a
    /// revalidation; `no-cache` (a forced reload) still does (RFC 8246 §2).
    pub fn usability(&self, freshness: &Freshness, now: SystemTime) -> Usability {
        self.usability_at(&freshness.at(now))
    }

    /// [`RequestDirectives::usability`] for a freshness already seen at the instant in question.
    pub fn usability_at(&self, at: &FreshnessAt<'_>) -> Usability {
        if self.no_cache {
            return Usability::Revalidate;
        }
        let freshness = at.freshness();
        let fresh = at.is_fresh();
        let immutable = freshness.immutable && fresh;
        if !immutable && self.max_age.is_some_and(|max| at.age() > Duration::from_secs(max)) {
            return Usability::Revalidate;
        }
        if self.min_fresh.is_some_and(|min| at.remaining() < Duration::from_secs(min)) {
            return Usability::Revalidate;
        }
        if fresh {
            return Usability::Fresh;
        }
        if freshness.must_revalidate {
            return Usability::Revalidate;
        }
        let staleness = at.staleness();
        match self.max_stale {
            Some(None) => return Usability::Fresh,
            Some(Some(max)) if staleness <= Duration::from_secs(max) => return Usability::Fresh,
            _ => {}
        }
        if staleness <= freshness.stale_while_revalidate && !freshness.stale_while_revalidate.is_zero() {
            return Usability::StaleWhileRevalidate;
        }
        Usability::Revalidate
    }

    /// Whether a stale stored response may stand in for an upstream failure or 5xx at `now` (RFC 5861 §4): within
    /// the origin's `stale-if-error` window or the client's own (`stale-if-error` on the request), whichever is
    /// longer. Never when the origin forbade serving it stale (`must-revalidate`, `proxy-revalidate`, `s-maxage`,
    /// `no-cache`), nor for a client's `no-cache` (RFC 9111 §5.2.1.4: no stored response without successful
    /// validation) unless that client also sent `stale-if-error` itself.
    pub fn may_serve_stale_on_error(&self, freshness: &Freshness, now: SystemTime) -> bool {
        if freshness.must_revalidate || (self.no_cache && self.stale_if_error.is_none()) {
            return false;
        }
        let window = freshness.stale_if_error.max(Duration::from_secs(self.stale_if_error.unwrap_or(0)));
        !window.is_zero() && freshness.staleness(now) <= window
    }

    /// Why a stored response that [`usability`](Self::usability) sent upstream went there (RFC 9211 `fwd`): the
    /// client's directives (`request`) when it was fresh, else its staleness (`stale`).
    pub fn forward_reason(&self, freshness: &Freshness, now: SystemTime) -> Forward {
        if freshness.is_fresh(now) { Forward::Request } else { Forward::Stale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn fresh(fresh_for: u64, swr: u64, must_revalidate: bool) -> Freshness {
        Freshness {
            received: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            initial_age: Duration::ZERO,
            fresh_for: Duration::from_secs(fresh_for),
            stale_while_revalidate: Duration::from_secs(swr),
            stale_if_error: Duration::ZERO,
            must_revalidate,
            immutable: false,
        }
    }

    #[test]
    fn stale_if_error_takes_the_longer_window_and_respects_no_cache() {
        let mut f = fresh(10, 0, false);
        f.stale_if_error = Duration::from_secs(5);
        let at = |secs| f.received + Duration::from_secs(secs);
        assert!(req("max-age=0, x").may_serve_stale_on_error(&f, at(14)));
        assert!(!req("x").may_serve_stale_on_error(&f, at(20)));
        assert!(req("stale-if-error=30").may_serve_stale_on_error(&f, at(20)));
        assert!(!req("no-cache").may_serve_stale_on_error(&f, at(14)));
        assert!(req("no-cache, stale-if-error=30").may_serve_stale_on_error(&f, at(14)));
        let strict = fresh(10, 0, true);
        assert!(!req("stale-if-error=30").may_serve_stale_on_error(&strict, strict.received + Duration::from_secs(12)));
    }

    fn req(cc: &'static str) -> RequestDirectives {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static(cc));
        RequestDirectives::of(&h)
    }

    #[test]
    fn fresh_stale_and_swr() {
        let f = fresh(10, 20, false);
        let none = RequestDirectives::default();
        assert_eq!(none.usability(&f, f.received + Duration::from_secs(5)), Usability::Fresh);
        assert_eq!(none.usability(&f, f.received + Duration::from_secs(15)), Usability::StaleWhileRevalidate);
        assert_eq!(none.usability(&f, f.received + Duration::from_secs(31)), Usability::Revalidate);
    }

    #[test]
    fn client_directives() {
        let f = fresh(100, 0, false);
        let at = f.received + Duration::from_secs(50);
        assert_eq!(req("no-cache").usability(&f, at), Usability::Revalidate);
        assert_eq!(req("max-age=10").usability(&f, at), Usability::Revalidate);
        assert_eq!(req("min-fresh=60").usability(&f, at), Usability::Revalidate);
        assert_eq!(req("max-age=60").usability(&f, at), Usability::Fresh);
        let later = f.received + Duration::from_secs(120);
        assert_eq!(req("max-stale=30").usability(&f, later), Usability::Fresh);
        assert_eq!(req("max-stale=10").usability(&f, later), Usability::Revalidate);
        let strict = fresh(100, 0, true);
        assert_eq!(req("max-stale").usability(&strict, later), Usability::Revalidate);
    }

    #[test]
    fn max_stale_never_unlocks_revalidate_responses_and_swr_is_bounded() {
        let strict = fresh(10, 100, true);
        let later = strict.received + Duration::from_secs(20);
        assert_eq!(req("max-stale=1000").usability(&strict, later), Usability::Revalidate);
        let swr = fresh(10, 5, false);
        assert_eq!(RequestDirectives::default().usability(&swr, later), Usability::Revalidate);
    }

    #[test]
    fn immutable_ignores_reload_max_age_but_not_no_cache() {
        let mut f = fresh(100, 0, false);
        f.immutable = true;
        let at = f.received + Duration::from_secs(50);
        assert_eq!(req("max-age=0").usability(&f, at), Usability::Fresh);
        assert_eq!(req("no-cache").usability(&f, at), Usability::Revalidate);
        let stale = f.received + Duration::from_secs(150);
        assert_eq!(req("max-age=0").usability(&f, stale), Usability::Revalidate);
    }

    #[test]
    fn forward_reason_separates_request_from_stale() {
        let f = fresh(100, 0, false);
        assert_eq!(req("no-cache").forward_reason(&f, f.received), Forward::Request);
        assert_eq!(req("no-cache").forward_reason(&f, f.received + Duration::from_secs(200)), Forward::Stale);
    }

    #[test]
    fn pragma_no_cache_only_without_cache_control() {
        let mut h = HeaderMap::new();
        h.insert("pragma", HeaderValue::from_static("no-cache"));
        assert!(RequestDirectives::of(&h).no_cache);
        h.insert("cache-control", HeaderValue::from_static("max-age=5"));
        assert!(!RequestDirectives::of(&h).no_cache);
    }
}
