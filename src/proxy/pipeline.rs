//! The life of a request, read top to bottom:
//! admit → key → lookup (fresh hit / stale / miss) → fetch from the origin → store if RFC 9111 allows → encode
//! (the client's content coding, `pipeline/encode.rs`) → respond (`Cache-Status`, `Age`, `Via`) → metrics and log.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, request};
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;

mod coalesced;
mod encode;
mod peering;

use super::body::ProxyBody;
use super::forward;
use super::head_update;
use super::host_field::addressed_host;
use super::invalidate::{self, InvalidationTarget};
use super::max_forwards::MaxForwards;
use super::range::{self, RangeAnswer};
use super::respond;
use super::served::{Observed, ServedBody};
use super::throttled::{ClientStage, client_throttled, holding, may_stand_in_when_busy, origin_busy};
use super::transfer_coding;
use super::upstream::{Upstream, UpstreamBody, UpstreamError};
use crate::cache::{CachedObject, FoundAt, Lookup, PrimaryKey, Store, VariantKey, map_lookup};
use crate::cluster::Cluster;
use crate::coalesce::Coalescer;
use crate::compress::{Compression, HeadVerdict};
use crate::metrics::Metrics;
use crate::policy::conditional::{
    Precondition, add_revalidation_headers, evaluate_for_stored, merge_not_modified, not_modified_selects,
};
use crate::policy::{CacheStatus, Forward, RequestDirectives, StoreDecision, Usability};
use crate::proxy::fetched_body::FetchedBody;
use crate::purge::Purger;
use crate::throttle::Throttle;
use peering::InPopStep;

/// The methods a client may send (`Allow` of a 405): every method but `CONNECT` and `TRACE`, which are refused.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// How a client reached this node.
#[derive(Debug, Clone, Copy)]
pub struct ClientConn {
    pub peer: std::net::SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// Where misses go: the origin's scheme and authority (its path, if any, is not used).
#[derive(Debug, Clone)]
pub struct OriginTarget {
    pub scheme: Scheme,
    pub authority: Authority,
}

/// What the front of the pipeline ([`Proxy::decide`]) leaves to do: nothing (answered from memory), or one step
/// that needs the network.
enum Step {
    Answered((Response<ProxyBody>, CacheStatus)),
    /// `PURGE` or a node-to-node purge endpoint.
    Purge {
        purge: Arc<Purger>,
        request: Request<Incoming>,
        conn: ClientConn,
        from_peer: Option<Arc<str>>,
    },
    /// A method other than `GET`/`HEAD`: passed on (by the owner of the URL, in a pop).
    Pass {
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        from_peer: Option<Arc<str>>,
        invalidation: Option<InvalidationTarget>,
    },
    /// Another node of this pop owns the key.
    ToOwner {
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        owners: peering::OwnersOf,
    },
    /// A stored copy that must be revalidated.
    Revalidate {
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        object: Arc<CachedObject>,
        reason: Forward,
    },
    /// Nothing usable stored.
    Miss {
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        reason: Forward,
    },
}

/// What `Proxy::handle` gives the connection: the response now, or the future that makes it.
#[expect(clippy::large_enum_variant, reason = "a hit's response is moved once; boxing it would allocate per hit")]
pub enum Answering {
    /// Answered from memory.
    Now(Response<ServedBody>),
    /// The steps that need the network.
    Later(Pin<Box<dyn Future<Output = Response<ServedBody>> + Send>>),
}

/// What the end of `handle` needs of the request once it has been given to the pipeline.
struct Finishing {
    started: Instant,
    method: Method,
    wants: Option<encode::Wants>,
    observed: Observed,
    to_client: bool,
}

/// Everything the data plane needs, built once per node and shared by every connection.
pub struct Proxy {
    pub node_id: Arc<str>,
    /// This node's `Via` entries, built once.
    via: forward::ViaEntries,
    pub store: Arc<Store>,
    pub upstream: Upstream,
    pub origin: OriginTarget,
    pub metrics: Arc<Metrics>,
    /// Variants being refreshed in the background (stale-while-revalidate), so one refresh runs per variant.
    refreshing: Mutex<HashSet<VariantKey>>,
    /// Fetches in flight that concurrent requests for the same key wait on, and keys known to be uncacheable.
    coalescing: Coalescer,
    /// Client token buckets and the origin budget (unlimited unless `with_throttle` gives limits).
    throttle: Arc<Throttle>,
    /// The topology, peer health and routing (standalone unless `with_cluster` gives one).
    cluster: Arc<Cluster>,
    /// Short copies of hot keys this node does not own.
    hot_store: Arc<Store>,
    /// `[compression]` (the defaults unless `with_compression` gives others).
    compression: Compression,
    /// `log.access`: write an access line per request at INFO (else at DEBUG, when the filter lets it through).
    access_log: bool,
    /// Answers `PURGE` and the node-to-node purge endpoints (`None`: they are forwarded like any request).
    purge: Option<Arc<Purger>>,
}

impl Proxy {
    /// Assembles the data plane.
    pub fn new(
        node_id: &str,
        store: Arc<Store>,
        upstream: Upstream,
        origin: OriginTarget,
        metrics: Arc<Metrics>,
    ) -> Proxy {
        Proxy {
            node_id: node_id.into(),
            via: forward::ViaEntries::new(node_id),
            store,
            upstream,
            origin,
            throttle: Arc::new(Throttle::unlimited(&metrics)),
            metrics,
            refreshing: Mutex::new(HashSet::new()),
            coalescing: Coalescer::new(crate::coalesce::DEFAULT_LOCK_TIMEOUT),
            cluster: Arc::new(Cluster::standalone(node_id)),
            hot_store: Arc::new(Store::new(1 << 20, 1 << 20, Box::new(|_| {}))),
            compression: Compression::default(),
            access_log: false,
            purge: None,
        }
    }

    /// The same data plane as a node of this cluster, keeping hot copies in `hot_store`.
    pub fn with_cluster(mut self, cluster: Arc<Cluster>, hot_store: Arc<Store>) -> Proxy {
        self.cluster = cluster;
        self.hot_store = hot_store;
        self
    }

    /// The same data plane with these compression settings (`[compression]`).
    pub fn with_compression(mut self, compression: Compression) -> Proxy {
        self.compression = compression;
        self
    }

    /// Writes an access line per request at INFO level (`log.access = true`).
    pub fn with_access_log(mut self, on: bool) -> Proxy {
        self.access_log = on;
        self
    }

    /// The same data plane answering `PURGE` and the node-to-node purge endpoints with `purge`.
    pub fn with_purge(mut self, purge: Arc<Purger>) -> Proxy {
        self.purge = Some(purge);
        self
    }

    /// Sets how long a request waits on another request's fetch before it goes to the origin itself.
    pub fn with_lock_timeout(mut self, lock_timeout: std::time::Duration) -> Proxy {
        self.coalescing.lock_timeout = lock_timeout;
        self
    }

    /// The same data plane with these throttles (`[throttle]`).
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Proxy {
        self.throttle = throttle;
        self
    }

    /// Answers one client request, start to end: at once when memory answers it (errors, hot copies, fresh and
    /// stale-while-revalidate hits), else through one boxed future for the steps that need the network. A hit
    /// never builds, moves or polls the network steps' state.
    pub fn handle(self: &Arc<Self>, mut request: Request<Incoming>, conn: ClientConn) -> Answering {
        let started = Instant::now();
        if request.version() < http::Version::HTTP_11 {
            self.address_to_origin(&mut request);
        }
        let method = request.method().clone();
        let wants = self.negotiate(&mut request, conn);
        let observed = Observed::start(&request, started, conn.peer, &self.node_id, self.access_log);
        let from_peer = self.admit_peer(&mut request);
        let to_client = from_peer.is_none();
        let step = observed.in_span(|| self.decide(request, conn, from_peer));
        let finishing = Finishing { started, method, wants, observed, to_client };
        match step {
            Step::Answered((response, status)) => Answering::Now(self.finish(finishing, response, status)),
            next => {
                let proxy = self.clone();
                Answering::Later(Box::pin(async move {
                    let (response, status) = finishing.observed.around(Box::pin(proxy.go_on(next))).await;
                    proxy.finish(finishing, response, status)
                }))
            }
        }
    }

    /// RFC 9112 §3.2 asks a `Host` of HTTP/1.1 requests only: an HTTP/1.0 request that names no host is taken
    /// as addressed to the origin's (as nginx takes its first `server_name`), for its key and the `Host` sent on.
    fn address_to_origin<B>(&self, request: &mut Request<B>) {
        if request.uri().authority().is_none()
            && !request.headers().contains_key(header::HOST)
            && let Ok(host) = HeaderValue::from_str(self.origin.authority.as_str())
        {
            request.headers_mut().insert(header::HOST, host);
        }
    }

    /// After the pipeline: the encode step, the CDN fields for clients, `Cache-Status` and `Via`, metrics, and the
    /// body that observes its own delivery.
    fn finish(
        &self,
        finishing: Finishing,
        response: Response<ProxyBody>,
        mut status: CacheStatus,
    ) -> Response<ServedBody> {
        let Finishing { started, method, wants, observed, to_client } = finishing;
        if status.detail == Some(peering::PROBE) {
            // A peer's health probe is not traffic: no metrics, no access line.
            return response.map(ServedBody::unobserved);
        }
        let mut response = self.encode(wants, response, &mut status);
        if to_client {
            forward::strip_cdn_fields(response.headers_mut());
        }
        // `Via` names the protocol the response came in with (RFC 9110 §7.6.3: an answer made here, HTTP/1.1);
        // the client gets this node's own version whatever the upstream's was (§2.5: an HTTP/1.0 origin's
        // answer still goes out as HTTP/1.1, with HTTP/1.1's persistence).
        let received = std::mem::replace(response.version_mut(), http::Version::HTTP_11);
        respond::decorate(response.headers_mut(), &status, &self.node_id, self.via.for_version(received));

        self.metrics.requests.observe(status.outcome(), &method, response.status(), started.elapsed());
        observed.finish(response, &status, &self.node_id, &self.metrics)
    }

    /// Admit → key → route → lookup, from memory only: an answer, or the step that needs the network.
    fn decide(self: &Arc<Self>, mut request: Request<Incoming>, conn: ClientConn, from_peer: Option<Arc<str>>) -> Step {
        // Admit (the peer proof was checked by `handle`).
        if forward::is_loop(request.headers(), &self.node_id) {
            let status = CacheStatus { detail: Some("loop"), error: true, ..CacheStatus::default() };
            let answer = respond::error(StatusCode::LOOP_DETECTED, "loop detected: this node is already in Via");
            return Step::Answered((answer, status));
        }
        if let Some(answer) = self.cluster_answer(&request, from_peer.as_deref()) {
            return Step::Answered(answer);
        }
        let conn = self.conn_through_peers(&request, conn);
        if let Some(purge) = self.purge.as_ref().filter(|_| Purger::handles(&request)) {
            // `PURGE <url>` and the node-to-node purge endpoints are answered here, never forwarded.
            return Step::Purge { purge: purge.clone(), request, conn, from_peer };
        }
        let host = match addressed_host(&request) {
            Ok(host) => host,
            Err(error) => {
                let status = CacheStatus { detail: Some(error.detail()), error: true, ..CacheStatus::default() };
                return Step::Answered((respond::error(StatusCode::BAD_REQUEST, &error.to_string()), status));
            }
        };
        if !http_body::Body::is_end_stream(request.body()) && transfer_coding::has_unknown_coding(request.headers()) {
            let status = CacheStatus { detail: Some("transfer-coding"), error: true, ..CacheStatus::default() };
            let answer = respond::error(StatusCode::NOT_IMPLEMENTED, "a transfer coding other than chunked");
            return Step::Answered((answer, status));
        }
        if let Some(refused) = self.throttle_client(&request, conn, ClientStage::Admitted) {
            return Step::Answered(refused);
        }

        // Key.
        let primary = PrimaryKey::new(conn.scheme, host, request.uri());
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            if method == Method::CONNECT || method == Method::TRACE {
                // A reverse proxy opens no tunnels, and TRACE would echo the client's fields back (cookies, and what
                // this node adds): both are answered here, as nginx does, never forwarded.
                let status = CacheStatus { detail: Some("method-not-allowed"), error: true, ..CacheStatus::default() };
                let message = format!("{method} is not served by this proxy");
                let mut answer = respond::error(StatusCode::METHOD_NOT_ALLOWED, &message);
                answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                return Step::Answered((answer, status));
            }
            let invalidation = (!invalidate::is_safe(method))
                .then(|| InvalidationTarget::new(conn.scheme, host, request.uri(), primary.clone()));
            match MaxForwards::of(request.method(), request.headers()) {
                MaxForwards::AsItIs => {}
                MaxForwards::AnswerHere => {
                    // The final recipient of an OPTIONS with no hops left: what this node allows.
                    let status = CacheStatus { detail: Some("max-forwards"), ..CacheStatus::default() };
                    let mut answer = Response::new(ProxyBody::empty());
                    answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                    return Step::Answered((answer, status));
                }
                MaxForwards::Decremented(hops) => {
                    request.headers_mut().insert(header::MAX_FORWARDS, hops);
                }
            }
            return Step::Pass { request, conn, primary, from_peer, invalidation };
        }

        // Route: the node of this pop that owns the key does the caching work.
        match self.route_in_pop(&request, &primary, from_peer.as_deref()) {
            InPopStep::Here => self.look_up(request, conn, primary),
            InPopStep::Answered(answer) => Step::Answered(*answer),
            InPopStep::Forward(owners) => Step::ToOwner { request, conn, primary, owners },
        }
    }

    /// Lookup: a fresh (or stale-while-revalidate) hit is answered here; a stale copy to revalidate and a miss
    /// are steps for the network.
    fn look_up(self: &Arc<Self>, request: Request<Incoming>, conn: ClientConn, primary: PrimaryKey) -> Step {
        let directives = RequestDirectives::of(request.headers());
        let now = SystemTime::now();
        match self.store.lookup(&primary, request.headers()) {
            Lookup::Found(at, object) => {
                // Read once: the object keeps it compactly.
                let freshness = object.freshness();
                let seen = freshness.at(now);
                match directives.usability_at(&seen) {
                    Usability::Fresh => {
                        let status = CacheStatus::hit(seen.ttl_secs());
                        Step::Answered((self.answer_hit(&request, &primary, &at, &object, seen.age()), status))
                    }
                    Usability::StaleWhileRevalidate => {
                        let answer = self.answer_hit(&request, &primary, &at, &object, seen.age());
                        let key = at.key(&primary);
                        self.refresh_in_background(&request, conn, primary, key, object.clone());
                        let status = CacheStatus { stale: true, ..CacheStatus::hit(seen.ttl_secs()) };
                        Step::Answered((answer, status))
                    }
                    Usability::Revalidate if directives.only_if_cached => {
                        let status = CacheStatus { detail: Some("only-if-cached"), ..CacheStatus::default() };
                        let answer =
                            respond::error(StatusCode::GATEWAY_TIMEOUT, "not usable from cache (only-if-cached)");
                        Step::Answered((answer, status))
                    }
                    Usability::Revalidate => {
                        let reason = directives.forward_reason(&freshness, now);
                        let key = at.key(&primary);
                        Step::Revalidate { request, conn, primary, key, object, reason }
                    }
                }
            }
            Lookup::UriMiss(_) | Lookup::VaryMiss(_) if directives.only_if_cached => {
                let status = CacheStatus { detail: Some("only-if-cached"), ..CacheStatus::default() };
                Step::Answered((respond::error(StatusCode::GATEWAY_TIMEOUT, "not in cache (only-if-cached)"), status))
            }
            Lookup::UriMiss(key) => Step::Miss { request, conn, primary, key, reason: Forward::UriMiss },
            Lookup::VaryMiss(key) => Step::Miss { request, conn, primary, key, reason: Forward::VaryMiss },
        }
    }

    /// The steps that need the network: purge fan-out, pass-through, forwarding to the owner, revalidation, miss.
    async fn go_on(self: &Arc<Self>, step: Step) -> (Response<ProxyBody>, CacheStatus) {
        match step {
            Step::Answered(answer) => answer,
            Step::Purge { purge, request, conn, from_peer } => {
                let host = request_host(&request).unwrap_or_default().to_string();
                let answer = purge.data_plane(request, conn.peer, conn.scheme, &host, from_peer.as_deref()).await;
                (answer.map(ProxyBody::full), CacheStatus { detail: Some("purge"), ..CacheStatus::default() })
            }
            Step::Pass { request, conn, primary, from_peer, invalidation } => {
                // Route: the owner of the URL passes it on, so that it is the owner's copy an unsafe method
                // invalidates.
                match self.pass_to_owner(request, conn, &primary, from_peer.as_deref(), invalidation).await {
                    Ok(answer) => answer,
                    Err((request, invalidation)) => self.pass(request, conn, "method", invalidation).await,
                }
            }
            Step::ToOwner { request, conn, primary, owners } => {
                if let Some(answer) = self.to_owner(&request, conn, &primary, owners).await {
                    return answer;
                }
                // Every candidate before this node failed: this node serves it.
                Box::pin(self.go_on(self.look_up(request, conn, primary))).await
            }
            Step::Revalidate { request, conn, primary, key, object, reason } => {
                self.revalidate_coalesced(request, conn, primary, key, object, reason).await
            }
            Step::Miss { request, conn, primary, key, reason } => {
                self.miss_coalesced(request, conn, primary, key, reason).await
            }
        }
    }

    /// A hit on the object a request to `primary` found `at`: the answer, and, when this hit made the object's
    /// ready-made response head, the object's weight charged anew and the encode step's verdict on the head kept
    /// with it.
    fn answer_hit<B>(
        &self,
        request: &Request<B>,
        primary: &PrimaryKey,
        at: &FoundAt,
        object: &Arc<CachedObject>,
        age: Duration,
    ) -> Response<ProxyBody> {
        let rendered_before = object.rendered.is_made();
        let answer = self.answer_from_cache(request, object, age);
        if !rendered_before && object.rendered.is_made() {
            let len = Some(object.body.len() as u64);
            let verdict = HeadVerdict::of(&self.compression, object.status, &object.headers.to_map(), len);
            object.rendered.set_verdict(verdict.to_byte());
            self.store.reweigh(&at.key(primary), object);
        }
        answer
    }

    /// A stored object for this request: 304 if the client's conditional holds, else the ranges it asks for
    /// (206 or 416), else the object.
    fn answer_from_cache<B>(&self, request: &Request<B>, object: &CachedObject, age: Duration) -> Response<ProxyBody> {
        match evaluate_for_stored(request.method(), request.headers(), object.status, &object.headers) {
            Precondition::NotModified => return respond::not_modified(object, age),
            Precondition::Failed => {
                return respond::error(StatusCode::PRECONDITION_FAILED, "precondition failed");
            }
            Precondition::Proceed => {}
        }
        let len = object.body.len() as u64;
        match range::select(request.method(), request.headers(), object.status, &object.headers, len) {
            RangeAnswer::Whole => respond::from_cache(object, request.method(), age),
            RangeAnswer::Partial(ranges) => {
                range::partial(respond::from_cache(object, request.method(), age), &object.body, &ranges)
            }
            RangeAnswer::NotSatisfiable => range::not_satisfiable(len),
        }
    }

    /// Forwards a request the cache does not take part in; the response streams back untouched. A successful
    /// answer to an unsafe method invalidates what the cache holds for its target (RFC 9111 §4.4).
    async fn pass(
        &self,
        request: Request<Incoming>,
        conn: ClientConn,
        detail: &'static str,
        invalidation: Option<InvalidationTarget>,
    ) -> (Response<ProxyBody>, CacheStatus) {
        if let Some(refused) = self.throttle_client(&request, conn, ClientStage::NotAHit) {
            return refused;
        }
        let mut status = CacheStatus::forwarded(Forward::Bypass);
        status.detail = Some(detail);
        let permit = match self.throttle.origin.acquire().await {
            Ok(permit) => permit,
            Err(busy) => return origin_busy(busy, status),
        };
        let (parts, body) = request.into_parts();
        let upstream_request = self.upstream_request(&parts, Either::Left(body), conn);
        match self.fetch(upstream_request).await {
            Ok(response) => {
                status.forward_status = Some(response.status().as_u16());
                if let Some(target) = invalidation
                    && invalidate::response_invalidates(&parts.method, response.status())
                {
                    target.apply(&self.store, response.headers());
                    status.detail = Some("invalidated");
                }
                let (mut head, body) = response.into_parts();
                forward::strip_hop_by_hop(&mut head.headers);
                (Response::from_parts(head, ProxyBody::stream(body).holding(permit)), status)
            }
            Err(error) => self.upstream_failed(error, status),
        }
    }

    /// Fetches a response the cache does not have, and stores it as it streams to the client if it may.
    async fn miss(
        &self,
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        reason: Forward,
    ) -> (Response<ProxyBody>, CacheStatus) {
        // The client was charged its token by `miss_coalesced`.
        let status = CacheStatus::forwarded(reason);
        let permit = match self.throttle.origin.acquire().await {
            Ok(permit) => permit,
            Err(busy) => return origin_busy(busy, status),
        };
        let (parts, body) = request.into_parts();
        // This fetch is the client's alone (shared fetches strip its conditionals and evaluate them here), so its
        // preconditions go upstream as they are: with no stored response they are the origin's to evaluate
        // (RFC 9111 §4.3.2), and its 304 or 412 is passed on unstored.
        let upstream_request = self.upstream_request(&parts, Either::Left(body), conn);
        match self.fetch(upstream_request).await {
            Ok(response) if asks_for_ranges(&parts) => {
                holding(self.admit_ranged(parts, primary, response, status).await, permit)
            }
            Ok(response) => holding(self.admit(&parts, primary, response, status), permit),
            Err(error) => self.upstream_failed(error, status),
        }
    }

    /// The upstream's answer to a GET with `Range`: a 206 passes through unstored (partial content is not kept);
    /// a storable 200 of known length is stored whole first and the ranges are cut from it; anything else is
    /// admitted as usual.
    async fn admit_ranged(
        &self,
        parts: request::Parts,
        primary: PrimaryKey,
        response: Response<FetchedBody>,
        status: CacheStatus,
    ) -> (Response<ProxyBody>, CacheStatus) {
        let whole_of_known_length = response.status() == StatusCode::OK && content_length(response.headers()).is_some();
        let (response, mut status) = self.admit(&parts, primary.clone(), response, status);
        if !(whole_of_known_length && status.stored) {
            return (response, status);
        }
        let (head, body) = response.into_parts();
        let Ok(collected) = body.collect().await else {
            status.stored = false;
            status.error = true;
            status.detail = Some("upstream-reset");
            return (respond::error(StatusCode::BAD_GATEWAY, "origin broke off the response body"), status);
        };
        match self.store.lookup(&primary, &parts.headers) {
            Lookup::Found(_, object) => (
                self.answer_from_cache(
                    &Request::from_parts(parts, ()),
                    &object,
                    object.freshness().age(SystemTime::now()),
                ),
                status,
            ),
            // Stored and gone already (evicted at once): the whole response, as received.
            _ => (Response::from_parts(head, ProxyBody::full(collected.to_bytes())), status),
        }
    }

    /// Revalidates a stale stored object (conditionally when it has validators).
    async fn revalidate(
        &self,
        request: Request<Incoming>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        object: Arc<CachedObject>,
        reason: Forward,
    ) -> (Response<ProxyBody>, CacheStatus) {
        // The client was charged its token by `revalidate_coalesced`.
        let mut status = CacheStatus::forwarded(reason);
        let permit = match self.throttle.origin.acquire().await {
            Ok(permit) => permit,
            Err(_) if may_stand_in_when_busy(&object, request.headers()) => {
                return self.serve_stale_when_busy(&request, &object);
            }
            Err(busy) => return origin_busy(busy, status),
        };
        let (parts, body) = request.into_parts();
        let mut upstream_request = self.upstream_request(&parts, Either::Left(body), conn);
        let conditional = add_revalidation_headers(&object.headers, upstream_request.headers_mut());
        // The stored response is whole; so must its replacement be (ranges are cut here).
        upstream_request.headers_mut().remove(header::RANGE);
        let now = SystemTime::now();
        match self.fetch(upstream_request).await {
            Ok(response) if conditional && response.status() == StatusCode::NOT_MODIFIED => {
                let (mut head, _) = response.into_parts();
                forward::strip_hop_by_hop(&mut head.headers);
                if !not_modified_selects(&object.headers, &head.headers) {
                    // The 304 is about another representation: ours cannot be reused, fetch it whole.
                    self.store.remove(&key);
                    let mut unconditional = self.upstream_request(&parts, Either::Right(Empty::new()), conn);
                    for name in [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE] {
                        unconditional.headers_mut().remove(name);
                    }
                    return match self.fetch(unconditional).await {
                        Ok(response) => holding(self.admit(&parts, primary, response, status), permit),
                        Err(error) => self.upstream_failed(error, status),
                    };
                }
                let refreshed = self.refresh(&parts, key, &object, &head.headers);
                let now = SystemTime::now();
                status.hit = true;
                status.forward_status = Some(304);
                status.ttl = Some(refreshed.freshness().ttl_secs(now));
                (
                    self.answer_from_cache(&Request::from_parts(parts, ()), &refreshed, refreshed.freshness().age(now)),
                    status,
                )
            }
            Ok(response)
                if parts.method == Method::HEAD
                    && response.status() == StatusCode::OK
                    && head_update::describes_stored(&object.headers, response.headers()) =>
            {
                // RFC 9111 §4.3.5: the HEAD's fields freshen the stored GET response, as a 304's would.
                let (mut head, _) = response.into_parts();
                forward::strip_hop_by_hop(&mut head.headers);
                let refreshed = self.refresh(&parts, key, &object, &head.headers);
                let now = SystemTime::now();
                status.hit = true;
                status.forward_status = Some(200);
                status.ttl = Some(refreshed.freshness().ttl_secs(now));
                status.detail = Some("head-update");
                (
                    self.answer_from_cache(&Request::from_parts(parts, ()), &refreshed, refreshed.freshness().age(now)),
                    status,
                )
            }
            Ok(response)
                if response.status().is_server_error() && may_serve_stale_on_error(&object, &parts.headers, now) =>
            {
                status.forward_status = Some(response.status().as_u16());
                self.serve_stale_on_error(&parts, &object, status, "upstream-error")
            }
            Ok(response) => {
                let parts_method = parts.method.clone();
                let answer = if asks_for_ranges(&parts) {
                    self.admit_ranged(parts, primary, response, status).await
                } else {
                    self.admit(&parts, primary, response, status)
                };
                if !answer.1.stored && parts_method == Method::GET {
                    // A newer full response superseded the stale one, which must not stand in for it later (a
                    // HEAD's answer only leaves it stale, §4.3.5).
                    self.store.remove(&key);
                }
                holding(answer, permit)
            }
            Err(error) if may_serve_stale_on_error(&object, &parts.headers, now) => {
                self.serve_stale_on_error(&parts, &object, status, error.detail())
            }
            Err(error) => self.upstream_failed(error, status),
        }
    }

    fn serve_stale_on_error(
        &self,
        parts: &request::Parts,
        object: &CachedObject,
        mut status: CacheStatus,
        detail: &'static str,
    ) -> (Response<ProxyBody>, CacheStatus) {
        let now = SystemTime::now();
        status.hit = true;
        status.stale = true;
        status.ttl = Some(object.freshness().ttl_secs(now));
        status.detail = Some(detail);
        (respond::from_cache(object, &parts.method, object.freshness().age(now)), status)
    }

    /// A stale copy in place of a request the origin budget has no room for, whatever its stale windows; RFC 9211
    /// has it as a `hit` (nothing went forward) with a negative `ttl`, and `detail=origin-busy` says why.
    pub(super) fn serve_stale_when_busy<B>(
        &self,
        request: &Request<B>,
        object: &CachedObject,
    ) -> (Response<ProxyBody>, CacheStatus) {
        let now = SystemTime::now();
        let status = CacheStatus {
            stale: true,
            detail: Some("origin-busy"),
            ..CacheStatus::hit(object.freshness().ttl_secs(now))
        };
        (self.answer_from_cache(request, object, object.freshness().age(now)), status)
    }

    /// Takes a client token at `stage`: on admission, or (with `throttle.exempt_hits`) once the request is known
    /// not to be a hit. `Some` is the 429 answer when the client's bucket is empty.
    pub(super) fn throttle_client<B>(
        &self,
        request: &Request<B>,
        conn: ClientConn,
        stage: ClientStage,
    ) -> Option<(Response<ProxyBody>, CacheStatus)> {
        if (stage == ClientStage::Admitted) == self.throttle.exempts_hits()
            || request.extensions().get::<peering::ProvenPeer>().is_some()
        {
            return None;
        }
        let throttled = self.throttle.check_client(conn.peer.ip(), request.headers()).err()?;
        Some(client_throttled(throttled))
    }

    /// Folds a 304 into a stored object and stores the result under the same key; returns the refreshed object.
    fn refresh(
        &self,
        parts: &request::Parts,
        key: VariantKey,
        object: &CachedObject,
        not_modified: &HeaderMap,
    ) -> CachedObject {
        let mut headers = object.headers.to_map();
        let received = SystemTime::now();
        let mut not_modified = not_modified.clone();
        crate::policy::age::ensure_date(&mut not_modified, received);
        merge_not_modified(&mut headers, &not_modified);
        crate::policy::freshness::remove_unshareable_fields(&mut headers);
        let decision =
            StoreDecision::evaluate(&Method::GET, &parts.uri, &parts.headers, object.status, &headers, received);
        let freshness = match decision {
            Ok(freshness) => freshness,
            // The 304 made the response unstorable: answer with it once, keep nothing.
            Err(_) => {
                self.store.remove(&key);
                crate::policy::Freshness { received, fresh_for: std::time::Duration::ZERO, ..object.freshness() }
            }
        };
        // The body is the same, so are its encoded variants.
        let refreshed = CachedObject {
            encoded: object.encoded.clone(),
            version: object.version,
            ..CachedObject::new(object.status, &headers, object.body.clone(), freshness)
        };
        if decision.is_ok() {
            self.store.replace(key, refreshed.clone());
        }
        refreshed
    }

    /// Turns the upstream's response into the client's, recording the body for the store when it may be stored.
    fn admit(
        &self,
        parts: &request::Parts,
        primary: PrimaryKey,
        response: Response<FetchedBody>,
        mut status: CacheStatus,
    ) -> (Response<ProxyBody>, CacheStatus) {
        let received = SystemTime::now();
        let (mut head, body) = response.into_parts();
        forward::strip_hop_by_hop(&mut head.headers);
        crate::policy::age::ensure_date(&mut head.headers, received);
        status.forward_status = Some(head.status.as_u16());
        if head.status == StatusCode::PARTIAL_CONTENT {
            // Partial content is passed on, never stored: only whole responses are kept and cut into ranges.
            status.detail = Some("partial-content");
            return (Response::from_parts(head, ProxyBody::stream(body)), status);
        }
        let decision =
            StoreDecision::evaluate(&parts.method, &parts.uri, &parts.headers, head.status, &head.headers, received);
        let freshness = match decision {
            Ok(freshness) => freshness,
            Err(reason) => {
                status.detail = Some(reason.as_str());
                return (Response::from_parts(head, ProxyBody::stream(body)), status);
            }
        };
        let expected_len = content_length(&head.headers);
        let limit = self.store.max_object_size();
        if expected_len.is_some_and(|n| n > limit) {
            status.detail = Some("too-large");
            return (Response::from_parts(head, ProxyBody::stream(body)), status);
        }
        status.stored = true;
        status.ttl = Some(freshness.ttl_secs(received));
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let (object_status, object_version, mut object_headers, request_headers) =
            (head.status, head.version, head.headers.clone(), parts.headers.clone());
        crate::policy::freshness::remove_unshareable_fields(&mut object_headers);
        let on_complete: super::body::OnComplete = Box::new(move |bytes| {
            let object =
                CachedObject::new(object_status, &object_headers, bytes, freshness).received_with(object_version);
            let len = object.body.len();
            if store.insert(&primary, &request_headers, object) {
                metrics.delivery.stored(len);
            }
        });
        (Response::from_parts(head, ProxyBody::recorded(body, limit, expected_len, on_complete)), status)
    }

    /// Refreshes a stale object in the background while clients keep getting the stale copy.
    fn refresh_in_background<B>(
        self: &Arc<Self>,
        request: &Request<B>,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        object: Arc<CachedObject>,
    ) {
        {
            let Ok(mut refreshing) = self.refreshing.lock() else { return };
            if !refreshing.insert(key.clone()) {
                return;
            }
        }
        let mut builder = Request::builder().method(Method::GET).uri(request.uri().clone()).version(request.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers().clone();
        }
        let Ok(request) = builder.body(()) else { return };
        let (parts, ()) = request.into_parts();
        let proxy = self.clone();
        tokio::spawn(async move {
            proxy.refresh_now(parts, conn, primary, key.clone(), object).await;
            if let Ok(mut refreshing) = proxy.refreshing.lock() {
                refreshing.remove(&key);
            }
        });
    }

    async fn refresh_now(
        &self,
        parts: request::Parts,
        conn: ClientConn,
        primary: PrimaryKey,
        key: VariantKey,
        object: Arc<CachedObject>,
    ) {
        // Background work never queues for the origin budget: without a free place now, the next stale hit retries.
        let Some(_permit) = self.throttle.origin.try_acquire() else { return };
        let mut upstream_request = self.upstream_request(&parts, Either::Right(Empty::new()), conn);
        let conditional = add_revalidation_headers(&object.headers, upstream_request.headers_mut());
        upstream_request.headers_mut().remove(header::RANGE);
        let Ok(response) = self.fetch(upstream_request).await else { return };
        if conditional && response.status() == StatusCode::NOT_MODIFIED {
            let (mut head, _) = response.into_parts();
            forward::strip_hop_by_hop(&mut head.headers);
            if not_modified_selects(&object.headers, &head.headers) {
                self.refresh(&parts, key, &object, &head.headers);
            }
            return;
        }
        // A full response: the same store step as a miss, with nobody reading the body but the recorder.
        let (response, _) = self.admit(&parts, primary, response, CacheStatus::forwarded(Forward::Stale));
        let _ = response.into_body().collect().await;
    }

    /// The request as the origin receives it.
    fn upstream_request(&self, parts: &request::Parts, body: UpstreamBody, conn: ClientConn) -> Request<UpstreamBody> {
        let mut uri = Uri::builder().scheme(self.origin.scheme.clone()).authority(self.origin.authority.clone());
        uri = uri.path_and_query(parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/"));
        let mut headers = parts.headers.clone();
        forward::strip_hop_by_hop(&mut headers);
        // The target's authority (absolute form, HTTP/2) is the host addressed: `Host` is made from it (RFC 9112
        // §3.2.2), else the client's `Host` is kept.
        if let Some(value) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            headers.insert(header::HOST, value);
        }
        headers.append(header::VIA, self.via.for_version(parts.version).clone());
        forward::add_forwarded_for(&mut headers, conn.peer.ip(), conn.scheme);
        forward::add_surrogate_capability(&mut headers);
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        if let Ok(uri) = uri.build() {
            *request.uri_mut() = uri;
        }
        *request.headers_mut() = headers;
        if let Some(key) = peering::route_key(parts, conn) {
            request.extensions_mut().insert(key);
        }
        request
    }

    /// Sends a request upstream (the parent pop's node of the key, or the origin), counting it.
    async fn fetch(&self, request: Request<UpstreamBody>) -> Result<Response<FetchedBody>, UpstreamError> {
        self.send_upstream(request).await
    }

    fn upstream_failed(&self, error: UpstreamError, mut status: CacheStatus) -> (Response<ProxyBody>, CacheStatus) {
        tracing::warn!(error = %error, "upstream request failed");
        status.error = true;
        status.detail = Some(error.detail());
        (respond::error(error.status(), &error.to_string()), status)
    }
}

fn may_serve_stale_on_error(object: &CachedObject, request: &HeaderMap, now: SystemTime) -> bool {
    RequestDirectives::of(request).may_serve_stale_on_error(&object.freshness(), now)
}

/// Whether a request is a GET with `Range` (the only method ranges apply to, RFC 9110 §14.2).
fn asks_for_ranges(parts: &request::Parts) -> bool {
    parts.method == Method::GET && map_lookup::holds(&parts.headers, &header::RANGE)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The host a request addresses (`host_field.rs`), if it names one this node can use.
pub(super) fn request_host<B>(request: &Request<B>) -> Option<&str> {
    addressed_host(request).ok()
}
