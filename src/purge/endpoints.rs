//! The purge service's HTTP surface: `POST /purge` (admin listener, bearer token), `PURGE <url>` on the data plane
//! (from `purge.allow` networks, with the token), and the node-to-node endpoints only proven peers may use:
//! `POST /.edgecache/purge` (apply this purge) and `GET /.edgecache/purges?since=SEQ&epoch=E` (the log after a
//! cursor). Every answer is JSON; errors are `{"error": "..."}`.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Serialize;

use super::Purger;
use super::fanout::{PULL_PATH, PUSH_PATH};
use super::log::Purge;
use super::request::{self, MAX_BODY_BYTES, RequestError, Selection, authorize};

/// The `PURGE` method (Varnish, Squid, and the CMS plugins that speak to them).
pub const PURGE_METHOD: &str = "PURGE";

/// A request field asking a `PURGE` to be soft (`1` or `true`).
pub const SOFT_PURGE_HEADER: &str = "edgecache-soft-purge";

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct Applied<'a> {
    id: &'a str,
    applied: bool,
}

impl Purger {
    /// Whether the data plane hands this request to the purge service instead of serving it.
    pub fn handles<B>(request: &Request<B>) -> bool {
        request.method().as_str() == PURGE_METHOD || matches!(request.uri().path(), PUSH_PATH | PULL_PATH)
    }

    /// `POST /purge` on the admin listener.
    pub async fn admin_post(&self, request: Request<Incoming>) -> Response<Bytes> {
        if let Err(refused) = authorize(request.headers(), self.token.as_deref()) {
            return error(refused.status(), &refused.to_string());
        }
        let body = match read_body(request.into_body()).await {
            Ok(body) => body,
            Err(bad) => return error(StatusCode::BAD_REQUEST, &bad.to_string()),
        };
        let (selection, id) = match request::parse(&body) {
            Ok(parsed) => parsed,
            Err(bad) => return error(StatusCode::BAD_REQUEST, &bad.to_string()),
        };
        self.answer(self.new_purge(selection, id)).await
    }

    /// A purge request on the data plane from `client`, which reached this node over `scheme` for `host`;
    /// `from_peer` is the id of the node that sent it, when it proved it is one (`PeerAuth`, checked at admission).
    pub async fn data_plane(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
        scheme: &str,
        host: &str,
        from_peer: Option<&str>,
    ) -> Response<Bytes> {
        if request.method().as_str() == PURGE_METHOD {
            return self.purge_method(request, client, scheme, host).await;
        }
        if from_peer.is_none() {
            return error(StatusCode::FORBIDDEN, "only nodes of this cluster may use this endpoint");
        }
        match (request.method(), request.uri().path()) {
            (&Method::POST, PUSH_PATH) => self.pushed(request).await,
            (&Method::GET, PULL_PATH) => {
                let (since, epoch) = cursor(request.uri().query().unwrap_or_default());
                json(StatusCode::OK, &self.log.page(since, epoch))
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this endpoint"),
        }
    }

    async fn purge_method(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
        scheme: &str,
        host: &str,
    ) -> Response<Bytes> {
        let ip = canonical(client.ip());
        if !self.config.allow.iter().any(|net| net.contains(&ip)) {
            return error(StatusCode::FORBIDDEN, "PURGE is not allowed from this address (purge.allow)");
        }
        if let Err(refused) = authorize(request.headers(), self.token.as_deref()) {
            return error(refused.status(), &refused.to_string());
        }
        if host.is_empty() {
            return error(StatusCode::BAD_REQUEST, "the request names no host");
        }
        let soft = request
            .headers()
            .get(SOFT_PURGE_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v.trim(), "1" | "true"));
        let selection = Selection::url(scheme, host, request.uri(), soft);
        self.answer(self.new_purge(selection, None)).await
    }

    /// A purge another node sent: applied (once) and confirmed.
    async fn pushed(&self, request: Request<Incoming>) -> Response<Bytes> {
        let body = match read_body(request.into_body()).await {
            Ok(body) => body,
            Err(bad) => return error(StatusCode::BAD_REQUEST, &bad.to_string()),
        };
        let purge: Purge = match serde_json::from_slice(&body) {
            Ok(purge) => purge,
            Err(bad) => return error(StatusCode::BAD_REQUEST, &format!("malformed purge: {bad}")),
        };
        if let Err(bad) = purge.selection.check().and_then(|()| request::check_id(&purge.id)) {
            return error(StatusCode::BAD_REQUEST, &bad.to_string());
        }
        let id = purge.id.clone();
        let applied = self.apply(purge);
        json(StatusCode::OK, &Applied { id: &id, applied })
    }

    /// Applies a purge everywhere and answers 200 (every node confirmed) or 202 (some did not, named).
    async fn answer(&self, purge: Purge) -> Response<Bytes> {
        let answer = self.purge_everywhere(purge).await;
        let status = if answer.confirmed() { StatusCode::OK } else { StatusCode::ACCEPTED };
        json(status, &answer)
    }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`].
async fn read_body(body: Incoming) -> Result<Bytes, RequestError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(RequestError::TooLarge),
        Err(e) => Err(RequestError::Read(e.to_string())),
    }
}

/// `since` and `epoch` from a pull's query.
fn cursor(query: &str) -> (u64, Option<u64>) {
    let mut since = 0;
    let mut epoch = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("since", v)) => since = v.parse().unwrap_or(0),
            Some(("epoch", v)) => epoch = v.parse().ok(),
            _ => {}
        }
    }
    (since, epoch)
}

/// An IPv4 client reaching an IPv6 socket counts as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Bytes> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A JSON error; 401 answers say how to authenticate.
pub fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    let mut response = json(status, &ErrorBody { error: message });
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_addresses_are_read() {
        assert_eq!(cursor("since=42&epoch=7"), (42, Some(7)));
        assert_eq!(cursor("since=x"), (0, None));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert_eq!(canonical(mapped), "127.0.0.1".parse::<IpAddr>().expect("ip"));
    }
}
