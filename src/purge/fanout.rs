//! Node-to-node purge traffic, on each node's topology `url` (the data plane), signed with [`PeerAuth`]: pushing
//! a purge to every other node of every pop at once (`POST /.edgecache/purge`) and collecting who confirmed it by
//! the deadline, and pulling a peer's log (`GET /.edgecache/purges?since=SEQ&epoch=E`) to catch up.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;

use super::log::{Page, Purge};
use crate::cluster::PeerAuth;

/// The path peers push purges to.
pub const PUSH_PATH: &str = "/.edgecache/purge";
/// The path peers pull a node's log from.
pub const PULL_PATH: &str = "/.edgecache/purges";

/// Largest answer read from a peer (a page of the log).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Another node of the topology, as purge traffic reaches it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: String,
    pub url: Uri,
}

/// One node's part in a purge's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeAnswer {
    pub id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a peer did not confirm.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("bad answer: {0}")]
    BadAnswer(String),
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// The pooled client purge traffic uses.
#[derive(Clone)]
pub struct PeerClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    auth: PeerAuth,
    node_id: String,
}

impl PeerClient {
    /// A client that signs as `node_id` with `cluster.secret`; `https` peers are checked against the web roots and
    /// `ca_file` (`origin.ca_file`, as for every upstream).
    pub fn new(node_id: &str, auth: PeerAuth, ca_file: Option<&std::path::Path>) -> Result<PeerClient, FanoutError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        let tls = crate::tls::origin_client_config(ca_file).map_err(|e| FanoutError::Tls(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(PeerClient { client, auth, node_id: node_id.to_string() })
    }

    async fn exchange(&self, method: Method, url: Uri, body: Bytes, timeout: Duration) -> Result<Bytes, FanoutError> {
        let host = url.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = url;
        let headers = request.headers_mut();
        if let Ok(host) = header::HeaderValue::from_str(&host) {
            headers.insert(header::HOST, host);
        }
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        self.auth.sign(headers, &self.node_id);
        let work = async {
            let response = self.client.request(request).await.map_err(|e| FanoutError::Unreachable(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| FanoutError::BadAnswer(e.to_string()))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(FanoutError::Status(status));
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| FanoutError::Timeout(timeout))?
    }

    /// Sends a purge to one peer; `Ok` once it has applied it.
    pub async fn push(&self, peer: &Peer, purge: &Purge, timeout: Duration) -> Result<(), FanoutError> {
        let body = serde_json::to_vec(purge).map_err(|e| FanoutError::BadAnswer(e.to_string()))?;
        self.exchange(Method::POST, endpoint(&peer.url, PUSH_PATH)?, body.into(), timeout).await.map(|_| ())
    }

    /// Reads one page of a peer's log after cursor `since` of `epoch`.
    pub async fn pull(
        &self,
        peer: &Peer,
        since: u64,
        epoch: Option<u64>,
        timeout: Duration,
    ) -> Result<Page, FanoutError> {
        let query = match epoch {
            Some(epoch) => format!("{PULL_PATH}?since={since}&epoch={epoch}"),
            None => format!("{PULL_PATH}?since={since}"),
        };
        let body = self.exchange(Method::GET, endpoint(&peer.url, &query)?, Bytes::new(), timeout).await?;
        serde_json::from_slice(&body).map_err(|e| FanoutError::BadAnswer(e.to_string()))
    }

    /// Sends a purge to every peer at once and waits for each until `timeout`.
    pub async fn fan_out(&self, peers: &[Peer], purge: &Purge, timeout: Duration) -> Vec<NodeAnswer> {
        let sends = peers.iter().map(|peer| async move {
            let result = self.push(peer, purge, timeout).await;
            if let Err(error) = &result {
                tracing::warn!(peer = %peer.id, purge = %purge.id, %error, "purge not confirmed");
            }
            NodeAnswer { id: peer.id.clone(), ok: result.is_ok(), error: result.err().map(|e| e.to_string()) }
        });
        join_all(sends).await
    }
}

/// `path_and_query` on a node's topology URL.
fn endpoint(base: &Uri, path_and_query: &str) -> Result<Uri, FanoutError> {
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| FanoutError::BadAnswer("bad path".into()))?);
    Uri::from_parts(parts).map_err(|e| FanoutError::BadAnswer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_built_on_the_node_url() {
        let base: Uri = "http://127.0.0.1:8081".parse().expect("uri");
        assert_eq!(
            endpoint(&base, "/.edgecache/purges?since=3").expect("uri"),
            "http://127.0.0.1:8081/.edgecache/purges?since=3"
        );
    }
}
