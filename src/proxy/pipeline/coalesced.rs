//! Misses and revalidations through the in-flight table (request coalescing). The first request for a key leads:
//! its fetch runs in a task of its own, so it goes on for the others if the leader's client leaves. Every request
//! (the leader's too) then answers from the fetch's outcome: the response head and the body as it streams in, a
//! refreshed stored object after a 304, or, when the response must not be shared, a fetch of its own.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{Extensions, Method, Request, Response, StatusCode, header, request};
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::Instrument;

use super::{ClientConn, Proxy, content_length, may_serve_stale_on_error};
use crate::cache::{CachedObject, Lookup, PrimaryKey, VariantKey, VarySpec};
use crate::coalesce::{FailedFetch, LeaderGuard, Outcome, Role, SharedBody, SharedResponse};
use crate::policy::age::ensure_date;
use crate::policy::conditional::{
    NOT_MODIFIED_FIELDS, Precondition, add_revalidation_headers, evaluate_preconditions, not_modified_selects,
};
use crate::policy::directives::CacheControl;
use crate::policy::freshness::remove_unshareable_fields;
use crate::policy::{CacheStatus, Forward, Freshness, NotStorable, RequestDirectives, StoreDecision, Usability};
use crate::proxy::body::ProxyBody;
use crate::proxy::fetched_body::FetchedBody;
use crate::proxy::interim;
use crate::proxy::served::UpstreamTiming;
use crate::proxy::throttled::{ClientStage, may_stand_in_when_busy, origin_busy};
use crate::proxy::upstream::UpstreamError;
use crate::proxy::{forward, respond};
use crate::throttle::{OriginBusy, OriginPermit};

/// What waiting on a fetch gave a request.
#[expect(clippy::large_enum_variant, reason = "a short-lived return value, moved once")]
enum Joined {
    /// The answer, from the shared fetch.
    Answer(Response<ProxyBody>, CacheStatus),
    /// This request goes to the origin on its own; the reason becomes its `Cache-Status; detail=` if it has none.
    Alone(&'static str),
    /// This request would lead the fetch, but the origin budget has no room for it.
    Busy(OriginBusy),
}

/// Whether a request may share a fetch: a `GET` whose answer depends on nothing but the URL and `Vary`. A request
/// with credentials or its own `no-store` is fetched on its own (and cannot mark the key uncacheable for others).
fn may_coalesce<B>(request: &Request<B>) -> bool {
    request.method() == Method::GET
        && !request.headers().contains_key(header::AUTHORIZATION)
        && !request.headers().contains_key(header::RANGE)
        && !CacheControl::of(request.headers()).has("no-store")
}

/// An origin error answer that is not stored but may still be given to every request waiting for it.
fn shared_unstored(status: StatusCode, reason: NotStorable) -> bool {
    status.is_server_error()
        && matches!(reason, NotStorable::NoFreshness | NotStorable::Status | NotStorable::Uncacheable)
}

fn with_detail(
    (response, mut status): (Response<ProxyBody>, CacheStatus),
    detail: &'static str,
) -> (Response<ProxyBody>, CacheStatus) {
    status.detail.get_or_insert(detail);
    (response, status)
}

/// How far (bytes) the slowest reader of a body too large to store may fall behind the origin before the fetch
/// waits for it: what bounds the memory of a large download on the coalesced path.
const STREAMING_WINDOW: u64 = 1 << 20;

/// The answer to a client's preconditions evaluated against a fetched 200 (RFC 9110 §13.2.2): a 304 with the
/// fields a 304 carries, or a 412; `None` when the body is to be sent.
fn precondition_answer(parts: &request::Parts, shared: &SharedResponse) -> Option<Response<ProxyBody>> {
    preconditions_on_fetched(parts, shared.status, &shared.headers)
}

/// [`precondition_answer`] for any fetched response head (the client's preconditions were not sent upstream).
fn preconditions_on_fetched(
    parts: &request::Parts,
    status: StatusCode,
    headers: &http::HeaderMap,
) -> Option<Response<ProxyBody>> {
    if status != StatusCode::OK {
        return None;
    }
    match evaluate_preconditions(&parts.method, &parts.headers, headers) {
        Precondition::Proceed => None,
        Precondition::Failed => Some(respond::error(StatusCode::PRECONDITION_FAILED, "precondition failed")),
        Precondition::NotModified => {
            let mut response = Response::new(ProxyBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            for name in NOT_MODIFIED_FIELDS.iter().chain([&header::LAST_MODIFIED, &header::AGE]) {
                for value in headers.get_all(name) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            Some(response)
        }
    }
}

/// A fetch that got no response: the leader's client gets the error, a waiter takes over.
fn settle_failed(guard: LeaderGuard, error: &UpstreamError) {
    tracing::warn!(error = %error, "upstream request failed");
    let failed = FailedFetch { status: error.status(), detail: error.detail(), message: error.to_string() };
    guard.settle(Outcome::Failed(failed));
}

impl Proxy {
    /// A miss: joins the fetch of `key` in flight, or leads it. A `HEAD` miss is fetched as a `GET` (as nginx's
    /// `proxy_cache_convert_head` and Varnish do), so that what it fetches is stored for the `GET`s and `HEAD`s
    /// after it; its client gets the head of that answer. Where the `GET` could not be shared (credentials,
    /// `Range`, a key known to be uncacheable) the `HEAD` goes upstream as it is.
    pub(super) async fn miss_coalesced(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        reason: Forward,
    ) -> (Response<ProxyBody>, CacheStatus) {
        if let Some(refused) = self.throttle_client(&request, conn, ClientStage::NotAHit) {
            return refused;
        }
        let head = request.method() == Method::HEAD;
        if head {
            *request.method_mut() = Method::GET;
        }
        if !may_coalesce(&request) || (head && self.coalescing.uncacheable.contains(&key)) {
            if head {
                *request.method_mut() = Method::HEAD;
            }
            return self.miss(request, conn, primary, reason).await;
        }
        if !head && self.coalescing.uncacheable.contains(&key) {
            let answer = self.miss(request, conn, primary, reason).await;
            if answer.1.stored {
                // Cacheable again: the next requests coalesce.
                self.coalescing.uncacheable.forget(&key);
                return answer;
            }
            return with_detail(answer, "hit-for-miss");
        }
        let (mut parts, body) = request.into_parts();
        match self.join(&parts, conn, &primary, key, None, reason).await {
            // The fetch goes on for the store and the other readers when a HEAD's client drops its body.
            Joined::Answer(response, status) if head => (response.map(|_| ProxyBody::empty()), status),
            Joined::Answer(response, status) => (response, status),
            Joined::Busy(busy) => origin_busy(busy, CacheStatus::forwarded(reason)),
            Joined::Alone(detail) => {
                if head {
                    parts.method = Method::HEAD;
                }
                with_detail(self.miss(Request::from_parts(parts, body), conn, primary, reason).await, detail)
            }
        }
    }

    /// A stale object to revalidate: joins the revalidation of `key` in flight, or leads it.
    pub(super) async fn revalidate_coalesced(
        self: &Arc<Self>,
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        object: Arc<CachedObject>,
        reason: Forward,
    ) -> (Response<ProxyBody>, CacheStatus) {
        if let Some(refused) = self.throttle_client(&request, conn, ClientStage::NotAHit) {
            return refused;
        }
        if !may_coalesce(&request) || self.coalescing.uncacheable.contains(&key) {
            return self.revalidate(request, conn, primary, key, object, reason).await;
        }
        let (parts, body) = request.into_parts();
        match self.join(&parts, conn, &primary, key.clone(), Some(&object), reason).await {
            Joined::Answer(response, status) => (response, status),
            Joined::Busy(_) if may_stand_in_when_busy(&object, &parts.headers) => {
                self.serve_stale_when_busy(&Request::from_parts(parts, ()), &object)
            }
            Joined::Busy(busy) => origin_busy(busy, CacheStatus::forwarded(reason)),
            Joined::Alone(detail) => with_detail(
                self.revalidate(Request::from_parts(parts, body), conn, primary, key, object, reason).await,
                detail,
            ),
        }
    }

    /// Waits on the fetch of `key` (leading it if nobody is fetching it) and answers from its outcome. `stale` is
    /// the stored object being revalidated, if any.
    async fn join(
        self: &Arc<Self>,
        parts: &request::Parts,
        conn: ClientConn,
        primary: &PrimaryKey,
        mut key: VariantKey,
        stale: Option<&Arc<CachedObject>>,
        reason: Forward,
    ) -> Joined {
        let deadline = Instant::now() + self.coalescing.lock_timeout;
        loop {
            let (flight, leader) = match self.coalescing.in_flight.join(&key) {
                Role::Leader(guard) => {
                    if let Some(object) = self.fresh_in_store(primary, parts) {
                        // A fetch of this key ended between this request's lookup and now: use what it stored.
                        guard.settle(Outcome::Stored(object.clone()));
                        return self.answer_stored(parts, &object);
                    }
                    // The leader's fetch takes a place in the origin budget (waiters take none).
                    let permit = match self.throttle.origin.acquire().await {
                        Ok(permit) => permit,
                        // Dropping the guard sends the waiters to lead (and queue) in turn.
                        Err(busy) => return Joined::Busy(busy),
                    };
                    let flight = guard.flight().clone();
                    let mut own = parts.clone();
                    own.extensions = Extensions::new();
                    let (proxy, primary, stale) = (self.clone(), primary.clone(), stale.cloned());
                    let (timing, interim) = (UpstreamTiming::current(), interim::current());
                    let lead = async move { proxy.lead(guard, permit, own, conn, primary, stale).await };
                    tokio::spawn(UpstreamTiming::carry(timing, interim::carry(interim, lead).in_current_span()));
                    (flight, true)
                }
                // A fetch begun before a purge this node has applied since may bring what the purge removed.
                Role::Waiter(flight) if self.purge.as_ref().is_some_and(|p| p.applied_since(flight.started)) => {
                    return Joined::Alone("purged");
                }
                Role::Waiter(flight) => (flight, false),
            };
            let Some(outcome) = flight.wait((!leader).then_some(deadline)).await else {
                return Joined::Alone("lock-timeout");
            };
            let now = SystemTime::now();
            match &*outcome {
                Outcome::Shared(shared) => {
                    let own = VariantKey::new(primary, &shared.vary, &parts.headers);
                    if own == shared.variant {
                        return self.answer_shared(parts, shared, stale, leader, reason, now);
                    }
                    // This request selects another variant than the leader's: fetch that one (coalesced with
                    // the requests that select it too).
                    match own {
                        Some(own) if own != key => key = own,
                        _ => return Joined::Alone("vary-mismatch"),
                    }
                }
                Outcome::Refreshed(object) => {
                    let mut status = CacheStatus::forwarded(reason);
                    status.hit = true;
                    status.forward_status = Some(304);
                    status.ttl = Some(object.freshness().ttl_secs(now));
                    self.mark_collapsed(&mut status, leader);
                    let request = Request::from_parts(parts.clone(), ());
                    return Joined::Answer(
                        self.answer_from_cache(&request, object, object.freshness().age(now)),
                        status,
                    );
                }
                Outcome::Stored(object) => return self.answer_stored(parts, object),
                Outcome::Unshareable(answer) => {
                    let taken = if leader { answer.lock().ok().and_then(|mut a| a.take()) } else { None };
                    let Some((response, mut status)) = taken else { return Joined::Alone("uncacheable") };
                    status.forward = Some(reason);
                    if let Some(object) = stale
                        && response.status().is_server_error()
                        && may_serve_stale_on_error(object, &parts.headers, now)
                    {
                        let (response, status) = self.serve_stale_on_error(parts, object, status, "upstream-error");
                        return Joined::Answer(response, status);
                    }
                    // The leader's preconditions were not sent upstream: they are evaluated on its own answer.
                    if let Some(answer) = preconditions_on_fetched(parts, response.status(), response.headers()) {
                        return Joined::Answer(answer, status);
                    }
                    let (head, body) = response.into_parts();
                    return Joined::Answer(Response::from_parts(head, ProxyBody::stream(body)), status);
                }
                Outcome::Failed(failed) => {
                    if let Some(object) = stale
                        && may_serve_stale_on_error(object, &parts.headers, now)
                    {
                        let status = CacheStatus::forwarded(reason);
                        let (response, status) = self.serve_stale_on_error(parts, object, status, failed.detail);
                        return Joined::Answer(response, status);
                    }
                    if leader {
                        let status =
                            CacheStatus { error: true, detail: Some(failed.detail), ..CacheStatus::forwarded(reason) };
                        return Joined::Answer(respond::error(failed.status, &failed.message), status);
                    }
                    if Instant::now() >= deadline {
                        return Joined::Alone("lock-timeout");
                    }
                    // Take over: join again; the first waiter back leads a new fetch.
                }
            }
        }
    }

    /// A request's answer from a shared response: the head at once, the body as it streams in.
    fn answer_shared(
        &self,
        parts: &request::Parts,
        shared: &SharedResponse,
        stale: Option<&Arc<CachedObject>>,
        leader: bool,
        reason: Forward,
        now: SystemTime,
    ) -> Joined {
        let mut status = shared.cache_status.clone();
        status.forward = Some(reason);
        if let Some(object) = stale
            && shared.status.is_server_error()
            && may_serve_stale_on_error(object, &parts.headers, now)
        {
            let (response, status) = self.serve_stale_on_error(parts, object, status, "upstream-error");
            return Joined::Answer(response, status);
        }
        self.mark_collapsed(&mut status, leader);
        if let Some(answer) = precondition_answer(parts, shared) {
            // The client's conditional holds for the fetched response: it needs no body (the fetch goes on
            // for the store and the other readers).
            return Joined::Answer(answer, status);
        }
        let mut response = Response::new(ProxyBody::Shared(shared.body.reader(shared.expected_len)));
        *response.status_mut() = shared.status;
        *response.version_mut() = shared.version;
        *response.headers_mut() = if leader { shared.leader_headers.clone() } else { shared.headers.clone() };
        Joined::Answer(response, status)
    }

    /// The stored object for this request, if it may be served without going upstream.
    fn fresh_in_store(&self, primary: &PrimaryKey, parts: &request::Parts) -> Option<Arc<CachedObject>> {
        let Lookup::Found(_, object) = self.store.lookup(primary, &parts.headers) else { return None };
        let usability = RequestDirectives::of(&parts.headers).usability(&object.freshness(), SystemTime::now());
        (usability == Usability::Fresh).then_some(object)
    }

    /// A hit on an object stored by a fetch that ended just before this request joined the table.
    fn answer_stored(&self, parts: &request::Parts, object: &CachedObject) -> Joined {
        let now = SystemTime::now();
        let status = CacheStatus::hit(object.freshness().ttl_secs(now));
        Joined::Answer(
            self.answer_from_cache(&Request::from_parts(parts.clone(), ()), object, object.freshness().age(now)),
            status,
        )
    }

    /// A waiter's answer came from another request's fetch: say so and count it.
    fn mark_collapsed(&self, status: &mut CacheStatus, leader: bool) {
        if !leader {
            status.collapsed = true;
            self.metrics.coalesced.inc();
        }
    }

    /// The leader's fetch, in a task of its own: publishes the outcome as soon as the response head is known, then
    /// writes the body into the shared buffer and stores it if it may and it arrived whole.
    async fn lead(
        &self,
        guard: LeaderGuard,
        // Held until the body has been read to the end (or the fetch is over).
        _permit: OriginPermit,
        parts: request::Parts,
        conn: ClientConn,
        primary: PrimaryKey,
        stale: Option<Arc<CachedObject>>,
    ) {
        let mut upstream_request = self.upstream_request(&parts, Either::Right(Empty::new()), conn);
        let conditional = match &stale {
            Some(object) => add_revalidation_headers(&object.headers, upstream_request.headers_mut()),
            None => {
                // Ask for the whole representation so that it can be stored and shared.
                for name in
                    [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE]
                {
                    upstream_request.headers_mut().remove(name);
                }
                false
            }
        };
        let mut response = match self.fetch(upstream_request).await {
            Ok(response) => response,
            Err(error) => return settle_failed(guard, &error),
        };
        forward::strip_hop_by_hop(response.headers_mut());
        if let Some(object) = &stale
            && conditional
            && response.status() == StatusCode::NOT_MODIFIED
        {
            if not_modified_selects(&object.headers, response.headers()) {
                let refreshed = self.refresh(&parts, guard.key().clone(), object, response.headers());
                guard.settle(Outcome::Refreshed(Arc::new(refreshed)));
                return;
            }
            // The 304 is about another representation: ours cannot be reused, fetch it whole.
            self.store.remove(guard.key());
            let mut unconditional = self.upstream_request(&parts, Either::Right(Empty::new()), conn);
            for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
                unconditional.headers_mut().remove(name);
            }
            response = match self.fetch(unconditional).await {
                Ok(response) => response,
                Err(error) => return settle_failed(guard, &error),
            };
            forward::strip_hop_by_hop(response.headers_mut());
        }
        let (mut head, body) = response.into_parts();

        let received = SystemTime::now();
        ensure_date(&mut head.headers, received);
        let mut status = CacheStatus { forward_status: Some(head.status.as_u16()), ..CacheStatus::default() };
        let expected_len = content_length(&head.headers);
        let limit = self.store.max_object_size();
        let decision =
            StoreDecision::evaluate(&parts.method, &parts.uri, &parts.headers, head.status, &head.headers, received);
        let freshness = match decision {
            Ok(_) if expected_len.is_some_and(|n| n > limit) => Err(NotStorable::TooLarge),
            Ok(freshness) => Ok(Some(freshness)),
            Err(reason) if shared_unstored(head.status, reason) => {
                status.detail = Some(reason.as_str());
                Ok(None)
            }
            Err(reason) => Err(reason),
        };
        let freshness = match freshness {
            Ok(freshness) => freshness,
            Err(reason) => {
                // Not to be shared: the leader's client gets it alone, the waiters fetch their own, and requests
                // for this key skip the queue for a while (hit-for-miss).
                self.coalescing.uncacheable.mark(guard.key().clone());
                if stale.is_some() {
                    // A newer full response superseded the stale one, which must not stand in for it later.
                    self.store.remove(guard.key());
                }
                status.detail = Some(reason.as_str());
                let answer = (Response::from_parts(head, body), status);
                guard.settle(Outcome::Unshareable(Mutex::new(Some(answer))));
                return;
            }
        };
        if let Some(freshness) = &freshness {
            status.stored = true;
            status.ttl = Some(freshness.ttl_secs(received));
        }
        let shared_body = SharedBody::new();
        let vary = VarySpec::from_response(&head.headers);
        let variant = VariantKey::new(&primary, &vary, &parts.headers);
        let leader_headers = head.headers.clone();
        remove_unshareable_fields(&mut head.headers);
        guard.publish(Outcome::Shared(SharedResponse {
            status: head.status,
            version: head.version,
            headers: head.headers.clone(),
            leader_headers,
            body: shared_body.clone(),
            expected_len,
            vary,
            variant,
            cache_status: status,
        }));
        let Some((freshness, last)) = self.pump(body, &shared_body, &guard, freshness, expected_len).await else {
            return;
        };
        let total = shared_body.len() + last.as_ref().map_or(0, |last| last.len() as u64);
        if expected_len.is_none_or(|n| n == total) {
            let object =
                CachedObject::new(head.status, &head.headers, shared_body.concat_with(last.as_ref()), freshness)
                    .received_with(head.version);
            let len = object.body.len();
            if self.store.insert(&primary, &parts.headers, object) {
                self.metrics.delivery.stored(len);
            }
        }
        // Stored first, then the last bytes, then finished and out of the table: a client that has read the whole
        // answer finds it stored, and a request arriving meanwhile finds the object or this body.
        if let Some(last) = last {
            shared_body.push(last);
        }
        shared_body.finish();
        drop(guard);
    }

    /// Writes the origin's body into the shared buffer as it arrives. Returns the freshness to store the body with,
    /// or `None` when it must not be stored (not storable, outgrew the store's limit, failed mid-stream: the
    /// readers then end with an error). The last bytes of a body to store whose length is announced are held back
    /// and returned: with them a client has its whole answer, so they go out once the object is stored.
    async fn pump(
        &self,
        mut body: FetchedBody,
        shared_body: &SharedBody,
        guard: &LeaderGuard,
        mut freshness: Option<Freshness>,
        expected_len: Option<u64>,
    ) -> Option<(Freshness, Option<Bytes>)> {
        let mut last = None;
        let limit = self.store.max_object_size();
        let mut joinable = true;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::warn!(error = %error, "origin body failed mid-stream");
                    shared_body.fail();
                    return None;
                }
            };
            // Trailers are not passed on to coalesced readers.
            let Ok(data) = frame.into_data() else { continue };
            if joinable && shared_body.len() + data.len() as u64 > limit {
                // Too large to store: later requests fetch their own rather than read a body this large from
                // memory; the readers already here read it to the end.
                joinable = false;
                guard.withdraw();
                shared_body.stream_only();
                if freshness.take().is_some() {
                    self.coalescing.uncacheable.mark(guard.key().clone());
                }
            }
            if !joinable && !shared_body.room(STREAMING_WINDOW).await {
                // Every reader has left a body nobody stores: stop fetching it.
                return None;
            }
            if freshness.is_some() && expected_len == Some(shared_body.len() + data.len() as u64) {
                last = Some(data);
                continue;
            }
            shared_body.push(data);
        }
        let Some(freshness) = freshness else {
            shared_body.finish();
            return None;
        };
        Some((freshness, last))
    }
}
