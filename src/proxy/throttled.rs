//! The answers the throttles give, for the pipeline: 429 to a client over its rate, 503 when the origin budget has
//! no room and no stale copy may stand in, and which stale copies may; plus when a client is charged a token.

use http::header::{self, HeaderMap};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::respond;
use crate::cache::CachedObject;
use crate::policy::{CacheStatus, RequestDirectives};
use crate::throttle::{ClientThrottled, OriginBusy, OriginPermit, retry_after};

/// When a request is charged a client token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStage {
    /// As soon as it is admitted (every request counts).
    Admitted,
    /// Once it is known to need the origin (`throttle.exempt_hits`).
    NotAHit,
}

/// 429 for a client whose bucket is empty, with `Retry-After` (whole seconds until its next token).
pub fn client_throttled(throttled: ClientThrottled) -> (Response<ProxyBody>, CacheStatus) {
    let status = CacheStatus { detail: Some("throttled"), error: true, ..CacheStatus::default() };
    let mut response = respond::error(StatusCode::TOO_MANY_REQUESTS, "too many requests from this client: slow down");
    response.headers_mut().insert(header::RETRY_AFTER, retry_after(throttled.retry_after));
    (response, status)
}

/// 503 for a request the origin budget has no room for and no stale copy can answer, with `Retry-After`.
pub fn origin_busy(busy: OriginBusy, mut status: CacheStatus) -> (Response<ProxyBody>, CacheStatus) {
    status.error = true;
    status.detail = Some("origin-busy");
    let mut response = respond::error(StatusCode::SERVICE_UNAVAILABLE, "the origin is busy: try again later");
    response.headers_mut().insert(header::RETRY_AFTER, retry_after(busy.retry_after));
    (response, status)
}

/// The response keeps `permit` until its body has streamed.
pub fn holding(
    (response, status): (Response<ProxyBody>, CacheStatus),
    permit: OriginPermit,
) -> (Response<ProxyBody>, CacheStatus) {
    (response.map(|body| body.holding(permit)), status)
}

/// Whether a stored object may stand in when the origin budget is exhausted: whatever its stale windows, unless the
/// origin (`must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`) or the client (`no-cache`, `max-age`,
/// `min-fresh`) asked for a validated answer.
pub fn may_stand_in_when_busy(object: &CachedObject, request: &HeaderMap) -> bool {
    let client = RequestDirectives::of(request);
    !object.freshness().must_revalidate && !client.no_cache && client.max_age.is_none() && client.min_fresh.is_none()
}
