//! May a response be stored by a shared cache, and for how long is it fresh (RFC 9111 §3, §4.2, RFC 5861,
//! RFC 8246, RFC 9213)? Judged once when a response (or a 304 refreshing one) arrives; each stored object keeps
//! only a compact [`Freshness`].
//!
//! Our own module rather than `http-cache-semantics`, which follows RFC 7234: it has no stale-while-revalidate or
//! stale-if-error, no targeted fields, no `must-understand`, treats invalid `max-age` as absent, and calls
//! zero-lifetime `Set-Cookie` answers storable. The rules below are short enough to own outright.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderName};
use http::{HeaderMap, Method, StatusCode, Uri};

use super::age;
use super::directives::{CacheControl, Delta};
use super::targeted::{self, Source};
use crate::cache::VarySpec;

/// Heuristic freshness is this fraction of the time since `Last-Modified` (RFC 9111 §4.2.2)...
const HEURISTIC_FRACTION: u32 = 10;
/// ...and never more than a day.
pub const HEURISTIC_CAP: Duration = Duration::from_secs(24 * 3600);

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
    MustUnderstand,
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
            NotStorable::MustUnderstand => "must-understand",
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
    /// `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`: once stale, never served without
    /// revalidating — not under a client's `max-stale`, not within `stale-while-revalidate`/`stale-if-error`.
    pub must_revalidate: bool,
    /// `immutable` (RFC 8246): while fresh, a client's `max-age` (a reload) does not force a revalidation.
    pub immutable: bool,
}

impl Freshness {
    /// This freshness seen at `now`: the time since it was received is worked out once, for every question asked
    /// of that instant.
    pub fn at(&self, now: SystemTime) -> FreshnessAt<'_> {
        FreshnessAt { freshness: self, elapsed: now.duration_since(self.received).unwrap_or_default() }
    }

    /// The `Age` of the stored response at `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.at(now).age()
    }

    /// Seconds of freshness left at `now`; negative once stale (RFC 9211 `ttl`). See [`FreshnessAt::ttl_secs`].
    pub fn ttl_secs(&self, now: SystemTime) -> i64 {
        self.at(now).ttl_secs()
    }

    /// How long it has been stale at `now` (zero while fresh).
    pub fn staleness(&self, now: SystemTime) -> Duration {
        self.at(now).staleness()
    }

    /// Whether the response is fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.at(now).is_fresh()
    }

    /// Freshness left at `now` (zero once stale).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.at(now).remaining()
    }

    /// How long the object is worth keeping at `now`: fresh time left plus the longest stale window, and a
    /// floor that keeps validators around for a 304.
    pub fn keep_for(&self, now: SystemTime, has_validators: bool) -> Duration {
        let stale_window = self.stale_while_revalidate.max(self.stale_if_error);
        let floor = if has_validators { Duration::from_secs(3600) } else { Duration::ZERO };
        (self.remaining(now) + stale_window).max(floor)
    }
}

/// A [`Freshness`] seen at one instant (from [`Freshness::at`]): `Age`, TTL and the stale windows of a hit all
/// come from one reading of the time since the response was received.
#[derive(Debug, Clone, Copy)]
pub struct FreshnessAt<'a> {
    freshness: &'a Freshness,
    /// Time since the response (or the 304 that last refreshed it) was received; zero if the clock went back.
    elapsed: Duration,
}

impl FreshnessAt<'_> {
    /// The freshness this is a view of.
    pub fn freshness(&self) -> &Freshness {
        self.freshness
    }

    /// The `Age` of the stored response.
    pub fn age(&self) -> Duration {
        self.freshness.initial_age + self.elapsed
    }

    /// Seconds of freshness left; negative once stale (RFC 9211 `ttl`). Counted in whole seconds as `Age` is, so
    /// that `ttl` + `Age` is the freshness lifetime; at most -1 once stale.
    pub fn ttl_secs(&self) -> i64 {
        let lifetime = (self.freshness.fresh_for + self.freshness.initial_age).as_secs() as i64;
        let ttl = lifetime - self.age().as_secs() as i64;
        if self.is_fresh() { ttl } else { ttl.min(-1) }
    }

    /// How long it has been stale (zero while fresh).
    pub fn staleness(&self) -> Duration {
        self.elapsed.saturating_sub(self.freshness.fresh_for)
    }

    /// Whether the response is fresh.
    pub fn is_fresh(&self) -> bool {
        self.elapsed < self.freshness.fresh_for
    }

    /// Freshness left (zero once stale).
    pub fn remaining(&self) -> Duration {
        self.freshness.fresh_for.saturating_sub(self.elapsed)
    }
}

/// The decision, taken once when a response arrives, whether and how to store it.
pub struct StoreDecision;

impl StoreDecision {
    /// Judges a response to `method uri` (with the request's headers) received at `received`, taking the request
    /// to have been sent at the same instant (see [`StoreDecision::evaluate_exchange`]).
    pub fn evaluate(
        method: &Method,
        _uri: &Uri,
        request: &HeaderMap,
        status: StatusCode,
        response: &HeaderMap,
        received: SystemTime,
    ) -> Result<Freshness, NotStorable> {
        StoreDecision::evaluate_exchange(method, request, status, response, received, received)
    }

    /// Judges a response to a request sent at `requested` and received at `received` (the difference counts into
    /// the response's age, RFC 9111 §4.2.3).
    pub fn evaluate_exchange(
        method: &Method,
        request: &HeaderMap,
        status: StatusCode,
        response: &HeaderMap,
        requested: SystemTime,
        received: SystemTime,
    ) -> Result<Freshness, NotStorable> {
        if method != Method::GET {
            return Err(NotStorable::Method);
        }
        let code = status.as_u16();
        // Interim answers are never stored; 304 only updates what is stored; 206 is the range layer's business.
        if code < 200 || code == 304 || code == 206 {
            return Err(NotStorable::Status);
        }
        let (cc, source) = targeted::effective(response);
        let must_understand = cc.has("must-understand");
        if must_understand && !is_understood(status) {
            return Err(NotStorable::MustUnderstand);
        }
        // `must-understand` with an understood status overrides `no-store` (RFC 9111 §5.2.2.3).
        if cc.has("no-store") && !must_understand {
            return Err(NotStorable::NoStore);
        }
        if CacheControl::of(request).has("no-store") {
            return Err(NotStorable::NoStore);
        }
        // Qualified `private="field"` only withholds those fields (see `unshareable_fields`).
        if cc.has_unqualified("private") {
            return Err(NotStorable::Private);
        }
        let public = cc.has("public");
        let s_maxage = cc.delta("s-maxage") != Delta::Absent;
        if request.contains_key(header::AUTHORIZATION) && !(public || s_maxage || cc.has("must-revalidate")) {
            return Err(NotStorable::Authorization);
        }
        if VarySpec::from_response(response) == VarySpec::Any {
            return Err(NotStorable::VaryStar);
        }
        let withheld = withheld_fields(&cc);
        if response.contains_key(header::SET_COOKIE) && !(public || s_maxage || withheld.contains(&header::SET_COOKIE))
        {
            return Err(NotStorable::SetCookie);
        }

        let date = age::date_or_received(response, received);
        let lifetime = match explicit_lifetime(&cc, source, response, date) {
            Some(lifetime) => lifetime,
            None if is_heuristically_cacheable(status) || public => heuristic_lifetime(response, date),
            None => return Err(NotStorable::Status),
        };
        let no_cache = cc.has_unqualified("no-cache");
        let lifetime = if no_cache { Duration::ZERO } else { lifetime };
        let initial_age = age::initial_age(response, requested, received);
        let fresh_for = lifetime.saturating_sub(initial_age);
        let must_revalidate = cc.has("must-revalidate") || cc.has("proxy-revalidate") || s_maxage || no_cache;
        let (stale_while_revalidate, stale_if_error) = if must_revalidate {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (secs(cc.seconds("stale-while-revalidate")), secs(cc.seconds("stale-if-error")))
        };
        let has_validators = response.contains_key(header::ETAG) || response.contains_key(header::LAST_MODIFIED);
        if fresh_for.is_zero() && !has_validators && stale_while_revalidate.is_zero() && stale_if_error.is_zero() {
            return Err(NotStorable::NoFreshness);
        }
        Ok(Freshness {
            received,
            initial_age,
            fresh_for,
            stale_while_revalidate,
            stale_if_error,
            must_revalidate,
            immutable: cc.has("immutable"),
        })
    }
}

/// The freshness lifetime the origin gave explicitly (RFC 9111 §4.2.1), for a shared cache: `s-maxage`, else
/// `max-age`, else `Expires` − `Date` (not when a targeted field decides). A present but invalid value (or an
/// invalid `Expires`, such as `0`) is a lifetime of zero: already stale. `None` when nothing explicit is given.
fn explicit_lifetime(cc: &CacheControl, source: Source, response: &HeaderMap, date: SystemTime) -> Option<Duration> {
    for name in ["s-maxage", "max-age"] {
        match cc.delta(name) {
            Delta::Seconds(s) => return Some(Duration::from_secs(s)),
            Delta::Invalid => return Some(Duration::ZERO),
            Delta::Absent => {}
        }
    }
    if source != Source::CacheControl || !response.contains_key(header::EXPIRES) {
        return None;
    }
    let expires = age::date_field(response, &header::EXPIRES);
    Some(expires.map_or(Duration::ZERO, |expires| expires.duration_since(date).unwrap_or_default()))
}

/// Heuristic freshness (RFC 9111 §4.2.2): a tenth of the time since `Last-Modified`, capped at
/// [`HEURISTIC_CAP`]; zero without a valid `Last-Modified` in the past.
fn heuristic_lifetime(response: &HeaderMap, date: SystemTime) -> Duration {
    let Some(modified) = age::date_field(response, &header::LAST_MODIFIED) else { return Duration::ZERO };
    let since = date.duration_since(modified).unwrap_or_default();
    (since / HEURISTIC_FRACTION).min(HEURISTIC_CAP)
}

fn secs(v: Option<u64>) -> Duration {
    Duration::from_secs(v.unwrap_or(0))
}

/// Status codes that may be given heuristic freshness (RFC 9110 §15.1 "heuristically cacheable").
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

/// Status codes whose caching requirements this cache implements (for `must-understand`): every final status
/// RFC 9110 defines, except 206 (partial content is the range layer's) and 304.
pub fn is_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=205 | 300..=303 | 305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// Header fields a shared cache must not store with this response: those named by a qualified `private="…"`
/// (RFC 9111 §5.2.2.7) or `no-cache="…"` (§5.2.2.4; the rest may then be reused without revalidation).
pub fn unshareable_fields(response: &HeaderMap) -> Vec<HeaderName> {
    withheld_fields(&targeted::effective(response).0)
}

fn withheld_fields(cc: &CacheControl) -> Vec<HeaderName> {
    let mut fields = cc.field_names("private");
    fields.extend(cc.field_names("no-cache"));
    fields
}

/// Fields specific to the proxy a response came through, never stored (RFC 9111 §3.1); `Proxy-Authenticate` and
/// `Proxy-Authorization` are already gone with the hop-by-hop fields.
const PROXY_SPECIFIC_FIELDS: [&str; 1] = ["proxy-authentication-info"];

/// Removes the [`unshareable_fields`] and the proxy-specific fields from the stored copy of a response.
pub fn remove_unshareable_fields(headers: &mut HeaderMap) {
    for name in unshareable_fields(headers) {
        headers.remove(name);
    }
    for name in PROXY_SPECIFIC_FIELDS {
        headers.remove(name);
    }
}

#[cfg(test)]
#[path = "freshness_tests.rs"]
mod tests;
