//! The pipeline's cluster steps: admitting a request from a peer (the proof, probes, the hop limit), forwarding a
//! request to the node of this pop that owns its key, and sending what this node fetches to the parent pop's node
//! of the key or to the origin. A forward to a node that does not answer (refused, reset, timed out connecting)
//! goes to the next candidate within the same request, for `GET` and `HEAD`; a refused connection also marks the
//! node down at once. Non-owners keep short copies of hot keys (`cluster::hot`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::HeaderValue;
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode, header, request};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;

use super::{ClientConn, Proxy, content_length};
use crate::cache::{CachedObject, Lookup, PrimaryKey, map_lookup};
use crate::cluster::{InPop, MAX_HOPS, Member, PEER_HEADER, PROBE_HEADER, RouteKey, UpstreamRoute, route};
use crate::config::ParentFallback;
use crate::policy::{CacheStatus, Forward, RequestDirectives, StoreDecision, Usability};
use crate::proxy::body::{OnComplete, ProxyBody};
use crate::proxy::fetched_body::{FetchedBody, first_frame_read};
use crate::proxy::invalidate::{self, InvalidationTarget};
use crate::proxy::throttled::ClientStage;
use crate::proxy::upstream::{UpstreamBody, UpstreamError};
use crate::proxy::{forward, respond};

/// Marks a request that a node of the cluster sent and proved (`cluster.secret`): it was charged to its client
/// where it entered the cluster, so it takes no client token here.
#[derive(Debug, Clone)]
pub(crate) struct ProvenPeer;

/// The prefix of every field the cluster's nodes send each other (`Edgecache-Peer`, `-Peer-Auth`, `-Probe`).
const EDGECACHE_FIELD_PREFIX: &str = "edgecache-";

/// Where the route step sends a `GET`/`HEAD` (see [`Proxy::route_in_pop`]).
pub(super) enum InPopStep {
    /// This node does the caching work.
    Here,
    /// A fresh hot copy kept here answered it (boxed: the rare case, and the largest).
    Answered(Box<(Response<ProxyBody>, CacheStatus)>),
    /// The owners of its key, in order, serve it.
    Forward(OwnersOf),
}

/// The nodes of this pop to forward a key to (the owner first), and whether the key is hot here.
pub(super) struct OwnersOf {
    owners: Vec<Member>,
    hot: bool,
}

/// The `Cache-Status` detail of a peer's health probe, which `handle` leaves out of the metrics.
pub(super) const PROBE: &str = "probe";

/// Which kind of upstream a request went to: the label of `edgecache_upstream_requests_total{upstream}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Origin,
    Parent,
    Peer,
}

impl Hop {
    fn label(self) -> &'static str {
        match self {
            Hop::Origin => "origin",
            Hop::Parent => "parent",
            Hop::Peer => "peer",
        }
    }
}

/// Whether a failed attempt may go to the next candidate: the node gave no answer at all. `ResponseTimeout` is not
/// retried (the node may still be working on it; another would only double the wait).
fn try_next(error: &UpstreamError) -> bool {
    matches!(error, UpstreamError::Connect(_) | UpstreamError::ConnectTimeout | UpstreamError::Broken(_))
}

/// The same request aimed at `base` (scheme and authority of a node's url); the path and query are kept.
fn retarget<B>(request: &mut Request<B>, base: &Uri) {
    let path = request.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path);
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
}

/// A bodiless copy of a `GET`/`HEAD` upstream request, to send again to the next candidate.
fn again(template: &Request<()>) -> Request<UpstreamBody> {
    let mut request = Request::new(Either::Right(Empty::new()));
    *request.method_mut() = template.method().clone();
    *request.uri_mut() = template.uri().clone();
    *request.headers_mut() = template.headers().clone();
    if let Some(key) = template.extensions().get::<RouteKey>() {
        request.extensions_mut().insert(key.clone());
    }
    request
}

fn template_of(request: &Request<UpstreamBody>) -> Request<()> {
    let mut template = Request::new(());
    *template.method_mut() = request.method().clone();
    *template.uri_mut() = request.uri().clone();
    *template.headers_mut() = request.headers().clone();
    if let Some(key) = request.extensions().get::<RouteKey>() {
        template.extensions_mut().insert(key.clone());
    }
    template
}

/// How long a `GET`/`HEAD` answered by another node waits for its body's first frame before it is passed on
/// anyway (a stream that sends its head long before its body is not held back longer).
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

fn idempotent(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

impl Proxy {
    /// Checks the peer proof of a request (removing it either way) and remembers a proven sender in the request's
    /// extensions. Returns the proven node id.
    pub(super) fn admit_peer(&self, request: &mut Request<Incoming>) -> Option<Arc<str>> {
        if !request.headers().keys().any(|name| name.as_str().starts_with(EDGECACHE_FIELD_PREFIX)) {
            // A client's request (the common case) carries none of the cluster's fields: nothing to check or drop.
            return None;
        }
        // `verify` removes the proof, and the claimed id unless it is proven.
        let proven = self.cluster.auth.verify(request.headers_mut()).map(Arc::<str>::from);
        if proven.is_none() {
            // Only a proven peer may probe; from anyone else the field is dropped, so it cannot travel on signed.
            request.headers_mut().remove(PROBE_HEADER);
        } else {
            request.headers_mut().remove(PEER_HEADER);
            request.extensions_mut().insert(ProvenPeer);
        }
        proven
    }

    /// A request the cluster answers before anything else: a signed probe (200), or one that has passed too many
    /// hops (508).
    pub(super) fn cluster_answer<B>(
        &self,
        request: &Request<B>,
        from_peer: Option<&str>,
    ) -> Option<(Response<ProxyBody>, CacheStatus)> {
        if from_peer.is_some() && map_lookup::holds(request.headers(), &PROBE_HEADER) {
            let status = CacheStatus { detail: Some(PROBE), ..CacheStatus::default() };
            return Some((respond::error(StatusCode::OK, "up"), status));
        }
        if route::hop_count(request.headers()) >= MAX_HOPS {
            let status = CacheStatus { detail: Some("hop-limit"), error: true, ..CacheStatus::default() };
            let message = format!("loop detected: the request has passed {MAX_HOPS} or more edgecache hops");
            return Some((respond::error(StatusCode::LOOP_DETECTED, &message), status));
        }
        None
    }

    /// How the client reached the cluster: a proven peer forwards its client's scheme in `X-Forwarded-Proto`, so
    /// every tier keys the object alike.
    pub(super) fn conn_through_peers<B>(&self, request: &Request<B>, conn: ClientConn) -> ClientConn {
        if request.extensions().get::<ProvenPeer>().is_none() {
            return conn;
        }
        match request.headers().get("x-forwarded-proto").map(HeaderValue::as_bytes) {
            Some(b"https") => ClientConn { scheme: "https", ..conn },
            Some(b"http") => ClientConn { scheme: "http", ..conn },
            _ => conn,
        }
    }

    /// Where a `GET`/`HEAD` is served: here (this node owns its key), from a fresh hot copy kept here, or by the
    /// node of this pop that owns it. Decided from memory, before anything goes out.
    pub(super) fn route_in_pop<B>(
        &self,
        request: &Request<B>,
        primary: &PrimaryKey,
        from_peer: Option<&str>,
    ) -> InPopStep {
        if !idempotent(request.method()) || self.cluster.pop_sharing_work(from_peer).is_none() {
            return InPopStep::Here;
        }
        let key = RouteKey::of(primary.as_str());
        let InPop::Forward(owners) = self.cluster.in_pop(&key, from_peer) else { return InPopStep::Here };
        let hot = self.cluster.hot.count(&key);
        match self.hot_copy(request, primary) {
            Some(answer) => InPopStep::Answered(Box::new(answer)),
            None => InPopStep::Forward(OwnersOf { owners, hot }),
        }
    }

    /// Forwards a `GET`/`HEAD` to the owners of its key, in order. `None`: serve it here — every candidate before
    /// this node failed.
    pub(super) async fn to_owner(
        &self,
        request: &Request<Incoming>,
        conn: ClientConn,
        primary: &PrimaryKey,
        OwnersOf { owners, hot }: OwnersOf,
    ) -> Option<(Response<ProxyBody>, CacheStatus)> {
        let mut builder = Request::builder().method(request.method()).uri(request.uri()).version(request.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = request.headers().clone();
        }
        let (parts, ()) = builder.body(()).ok()?.into_parts();
        let template = template_of(&self.upstream_request(&parts, Either::Right(Empty::new()), conn));
        let status = CacheStatus { detail: Some("peer"), ..CacheStatus::forwarded(Forward::UriMiss) };
        for owner in &owners {
            match self.attempt(Hop::Peer, again(&template), owner).await {
                Ok(response) => return Some(self.owner_answer(&parts, primary, response, status, hot)),
                Err(error) if try_next(&error) => continue,
                Err(error) => return Some(self.upstream_failed(error, status)),
            }
        }
        None
    }

    /// Forwards a request of another method (`POST`, `PUT`, …) to the owner of its URL, which passes it on and
    /// invalidates its stored copy if the answer says so; once only (its body is sent), so a dead owner costs this
    /// request a 502 and marks the owner down. `Err` gives the request back to pass it on from here.
    pub(super) async fn pass_to_owner(
        &self,
        request: Request<Incoming>,
        conn: ClientConn,
        primary: &PrimaryKey,
        from_peer: Option<&str>,
        invalidation: Option<InvalidationTarget>,
    ) -> Result<(Response<ProxyBody>, CacheStatus), (Request<Incoming>, Option<InvalidationTarget>)> {
        let key = RouteKey::of(primary.as_str());
        let InPop::Forward(owners) = self.cluster.in_pop(&key, from_peer) else { return Err((request, invalidation)) };
        let Some(owner) = owners.first() else { return Err((request, invalidation)) };
        if let Some(refused) = self.throttle_client(&request, conn, ClientStage::NotAHit) {
            return Ok(refused);
        }
        let mut status = CacheStatus { detail: Some("peer"), ..CacheStatus::forwarded(Forward::Bypass) };
        let (parts, body) = request.into_parts();
        let upstream_request = self.upstream_request(&parts, Either::Left(body), conn);
        match self.attempt(Hop::Peer, upstream_request, owner).await {
            Ok(response) => {
                status.forward_status = Some(response.status().as_u16());
                if let Some(target) = invalidation
                    && invalidate::response_invalidates(&parts.method, response.status())
                {
                    // Whatever this node holds of the URL (a hot copy, an older copy) goes too.
                    target.apply(&self.store, response.headers());
                    target.apply(&self.hot_store, response.headers());
                }
                let (mut head, body) = response.into_parts();
                forward::strip_hop_by_hop(&mut head.headers);
                Ok((Response::from_parts(head, ProxyBody::stream(body)), status))
            }
            Err(error) => Ok(self.upstream_failed(error, status)),
        }
    }

    /// A fresh hot copy of this key kept here, as a hit.
    fn hot_copy<B>(&self, request: &Request<B>, primary: &PrimaryKey) -> Option<(Response<ProxyBody>, CacheStatus)> {
        if !self.cluster.hot.enabled() {
            return None;
        }
        let Lookup::Found(_, object) = self.hot_store.lookup(primary, request.headers()) else { return None };
        let now = SystemTime::now();
        if RequestDirectives::of(request.headers()).usability(&object.freshness(), now) != Usability::Fresh {
            return None;
        }
        let status = CacheStatus { detail: Some("hot"), ..CacheStatus::hit(object.freshness().ttl_secs(now)) };
        Some((self.answer_from_cache(request, &object, object.freshness().age(now)), status))
    }

    /// The owner's answer, passed on; a hot key's is also kept here for a short time.
    fn owner_answer(
        &self,
        parts: &request::Parts,
        primary: &PrimaryKey,
        response: Response<FetchedBody>,
        mut status: CacheStatus,
        hot: bool,
    ) -> (Response<ProxyBody>, CacheStatus) {
        let (mut head, body) = response.into_parts();
        forward::strip_hop_by_hop(&mut head.headers);
        status.forward_status = Some(head.status.as_u16());
        if !(hot && parts.method == Method::GET && head.status == StatusCode::OK) {
            return (Response::from_parts(head, ProxyBody::stream(body)), status);
        }
        let received = SystemTime::now();
        let decision =
            StoreDecision::evaluate(&parts.method, &parts.uri, &parts.headers, head.status, &head.headers, received);
        let expected_len = content_length(&head.headers);
        let limit = self.hot_store.max_object_size();
        let (Ok(mut freshness), false) = (decision, expected_len.is_some_and(|n| n > limit)) else {
            return (Response::from_parts(head, ProxyBody::stream(body)), status);
        };
        // Never longer than the copy is fresh, never served stale: the owner stays the one that revalidates.
        freshness.fresh_for = freshness.fresh_for.min(freshness.initial_age + self.cluster.hot.ttl());
        freshness.stale_while_revalidate = std::time::Duration::ZERO;
        freshness.stale_if_error = std::time::Duration::ZERO;
        freshness.must_revalidate = true;
        status.detail = Some("peer-hot");
        let (store, primary, request_headers) = (self.hot_store.clone(), primary.clone(), parts.headers.clone());
        let (object_status, object_version, mut object_headers) = (head.status, head.version, head.headers.clone());
        crate::policy::freshness::remove_unshareable_fields(&mut object_headers);
        let on_complete: OnComplete = Box::new(move |bytes| {
            let object =
                CachedObject::new(object_status, &object_headers, bytes, freshness).received_with(object_version);
            store.insert(&primary, &request_headers, object);
        });
        (Response::from_parts(head, ProxyBody::recorded(body, limit, expected_len, on_complete)), status)
    }

    /// Sends what this node fetches upstream: to the parent pop's node of the key (the next one if it does not
    /// answer), or to the origin when the pop has none or, with `parent_fallback = "origin"`, when every parent
    /// node is down.
    pub(super) async fn send_upstream(
        &self,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<FetchedBody>, UpstreamError> {
        let key = request.extensions().get::<RouteKey>().cloned().unwrap_or(RouteKey(0));
        let UpstreamRoute::Parent { pop, nodes, then } = self.cluster.upstream(&key) else {
            return self.counted(Hop::Origin, request).await;
        };
        let retry = idempotent(request.method());
        let template = retry.then(|| template_of(&request));
        let mut original = Some(request);
        for node in &nodes {
            let attempt = match (original.take(), &template) {
                (Some(first), _) => first,
                (None, Some(template)) => again(template),
                (None, None) => break,
            };
            match self.attempt(Hop::Parent, attempt, node).await {
                Err(error) if retry && try_next(&error) => continue,
                answer => return answer,
            }
        }
        request = match (original, &template) {
            (Some(unsent), _) => unsent,
            (None, Some(template)) => again(template),
            // A request whose body went to a parent node that failed cannot be sent again.
            (None, None) => return Err(UpstreamError::ParentDown(pop)),
        };
        match then {
            ParentFallback::Origin => {
                tracing::warn!(pop, "every parent node is down: fetching from the origin");
                retarget(&mut request, &self.origin_base());
                self.counted(Hop::Origin, request).await
            }
            ParentFallback::Error => Err(UpstreamError::ParentDown(pop)),
        }
    }

    /// One attempt at a node: signed, aimed at its url, counted; a node that refuses the connection is marked
    /// down at once (one that is only slow to accept it is left to the probes: under load, that is no death).
    async fn attempt(
        &self,
        hop: Hop,
        mut request: Request<UpstreamBody>,
        node: &Member,
    ) -> Result<Response<FetchedBody>, UpstreamError> {
        retarget(&mut request, &node.url);
        self.cluster.auth.sign(request.headers_mut(), &self.node_id);
        let retriable = idempotent(request.method());
        let result = match self.counted(hop, request).await {
            // Held until its body starts, so that a node dying between head and body is an attempt that failed.
            Ok(response) if retriable => first_frame_read(response, FIRST_FRAME_WAIT).await,
            other => other,
        };
        match &result {
            Err(error @ UpstreamError::Connect(_)) => {
                self.cluster.health.mark_down(&node.id, error.detail());
            }
            Err(error) => tracing::debug!(peer = %node.id, %error, "peer request failed"),
            Ok(_) => {}
        }
        result
    }

    /// Sends a request, counting it by upstream kind.
    async fn counted(
        &self,
        hop: Hop,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<FetchedBody>, UpstreamError> {
        // Its interims go to the client of the request being served, if it may have them (`interim.rs`).
        crate::proxy::interim::relay_to_current(&mut request, self.via.for_version(http::Version::HTTP_11));
        let started = Instant::now();
        let span = tracing::debug_span!("fetch", upstream = hop.label(), uri = %request.uri());
        let result = tracing::Instrument::instrument(self.upstream.send(request), span).await;
        let code = match &result {
            Ok(response) => response.status().as_str().to_string(),
            Err(_) => "0".to_string(),
        };
        let elapsed = started.elapsed();
        self.metrics.upstream_requests.with_label_values(&[hop.label(), &code]).inc();
        self.metrics.upstream_duration.with_label_values(&[hop.label()]).observe(elapsed.as_secs_f64());
        crate::proxy::served::note_upstream(hop.label(), elapsed);
        result
    }

    fn origin_base(&self) -> Uri {
        Uri::builder()
            .scheme(self.origin.scheme.clone())
            .authority(self.origin.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default()
    }
}

/// The routing key of a request as it goes upstream (its primary cache key's hash), attached to the upstream
/// request so that the parent node is chosen by the same key the parent routes by.
pub(super) fn route_key(parts: &request::Parts, conn: ClientConn) -> Option<RouteKey> {
    let host = match parts.uri.authority() {
        Some(authority) => authority.as_str(),
        None => parts.headers.get(header::HOST)?.to_str().ok()?,
    };
    Some(RouteKey::of(PrimaryKey::new(conn.scheme, host, &parts.uri).as_str()))
}
