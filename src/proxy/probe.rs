//! The active health probe of a peer: a signed `GET /` with `Edgecache-Probe: 1` to its data-plane url, which the
//! peer answers itself (200, before any cache or routing step). Any answer within the timeout means up.

use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderValue;
use http::{Request, Uri};
use http_body_util::{Either, Empty};

use super::upstream::Upstream;
use crate::cluster::{Member, PROBE_HEADER, PeerAuth};

/// A probe function for `cluster::health::run_prober`: this node (`node_id`) asks `member` whether it is up.
pub fn prober(
    upstream: Upstream,
    auth: PeerAuth,
    node_id: Arc<str>,
    timeout: Duration,
) -> impl Fn(Member) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync + 'static {
    move |member: Member| {
        let (upstream, auth, node_id) = (upstream.clone(), auth.clone(), node_id.clone());
        Box::pin(async move {
            let mut parts = member.url.clone().into_parts();
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            let uri = Uri::from_parts(parts).map_err(|e| e.to_string())?;
            let mut request = Request::new(Either::Right(Empty::new()));
            *request.uri_mut() = uri;
            request.headers_mut().insert(PROBE_HEADER, HeaderValue::from_static("1"));
            auth.sign(request.headers_mut(), &node_id);
            match tokio::time::timeout(timeout, upstream.send(request)).await {
                Err(_) => Err("probe-timeout".to_string()),
                Ok(Err(error)) => Err(error.detail().to_string()),
                Ok(Ok(_)) => Ok(()),
            }
        })
    }
}
