//! The pooled keep-alive client towards the origin (HTTP or HTTPS, HTTP/1.1 or h2 by ALPN), with connect and
//! response timeouts, and the classification of its failures into 502 and 504.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;

use super::fetched_body::FetchedBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::OriginConfig;

/// Request bodies sent upstream: the client's own stream, or nothing (revalidations).
pub type UpstreamBody = Either<Incoming, Empty<Bytes>>;

/// Why an upstream request got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("origin unreachable: {0}")]
    Connect(String),
    #[error("origin did not accept the connection in time")]
    ConnectTimeout,
    #[error("origin did not answer in time")]
    ResponseTimeout,
    #[error("origin closed or reset the connection: {0}")]
    Broken(String),
    #[error("origin answered with status {0}, outside 100-599 (RFC 9110 §15)")]
    InvalidStatus(u16),
    #[error("every node of the parent pop {0:?} is down (cluster.parent_fallback = \"error\")")]
    ParentDown(String),
}

impl UpstreamError {
    /// The status a client gets for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::ConnectTimeout | UpstreamError::ResponseTimeout => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Connect(_)
            | UpstreamError::Broken(_)
            | UpstreamError::InvalidStatus(_)
            | UpstreamError::ParentDown(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short name for logs and `Cache-Status; detail=`.
    pub fn detail(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect-error",
            UpstreamError::ConnectTimeout => "connect-timeout",
            UpstreamError::ResponseTimeout => "response-timeout",
            UpstreamError::Broken(_) => "upstream-reset",
            UpstreamError::InvalidStatus(_) => "invalid-status",
            UpstreamError::ParentDown(_) => "parent-down",
        }
    }
}

/// Building the client failed (bad CA file).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    #[error("origin CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// A pooled client to upstreams.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    response_timeout: Duration,
}

impl Upstream {
    /// Builds the client from `[origin]`.
    pub fn new(origin: &OriginConfig) -> Result<Upstream, UpstreamSetupError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(origin.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let tls =
            crate::tls::origin_client_config(origin.ca_file.as_deref()).map_err(|e| UpstreamSetupError::CaFile {
                path: origin.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                reason: e.to_string(),
            })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(origin.pool_idle_timeout)
            .pool_max_idle_per_host(origin.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Upstream { client, response_timeout: origin.response_timeout })
    }

    /// Sends a request and waits for the response head, at most the response timeout. A status outside
    /// 100-599 (which hyper parses: any three digits) is no valid answer, so it is never passed on or stored.
    pub async fn send(&self, request: Request<UpstreamBody>) -> Result<Response<FetchedBody>, UpstreamError> {
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::ResponseTimeout),
            Ok(Ok(response)) if response.status().as_u16() > 599 => {
                Err(UpstreamError::InvalidStatus(response.status().as_u16()))
            }
            Ok(Ok(response)) => Ok(response.map(FetchedBody::from)),
            Ok(Err(error)) => Err(classify(&error)),
        }
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> UpstreamError {
    let timed_out = chain(error)
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut));
    let text = chain(error).last().map(|e| e.to_string()).unwrap_or_else(|| error.to_string());
    if error.is_connect() {
        if timed_out { UpstreamError::ConnectTimeout } else { UpstreamError::Connect(text) }
    } else {
        UpstreamError::Broken(text)
    }
}

fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}
