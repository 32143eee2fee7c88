//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process serves), `/readyz` (listening,
//! config loaded, not draining), `/cluster` (the topology and each node's health as this node sees it) and
//! `POST /purge` (handled by `purge::endpoints`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cache::Store;
use crate::metrics::Metrics;
use crate::purge::Purger;

/// What the admin endpoints read.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    /// True once every listener is bound; false again while draining.
    pub ready: AtomicBool,
    /// The topology and peer health, for `/cluster`.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// The purge service (`POST /purge`); `None`: 404.
    pub purge: Option<Arc<Purger>>,
}

/// Serves the admin API until `shutdown`.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

async fn route(state: &AdminState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/purge") if state.purge.is_some() => match &state.purge {
            Some(purge) => purge.admin_post(request).await.map(Full::new),
            None => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
        (&Method::GET, "/metrics") => {
            state.store.run_pending_tasks();
            state.metrics.cache_bytes.set(i64::try_from(state.store.weighted_bytes()).unwrap_or(i64::MAX));
            state.metrics.cache_objects.set(i64::try_from(state.store.object_count()).unwrap_or(i64::MAX));
            text(StatusCode::OK, "text/plain; version=0.0.4", state.metrics.render())
        }
        (&Method::GET, "/cluster") => text(StatusCode::OK, "application/json", format!("{:#}\n", state.cluster.view())),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/readyz") if state.ready.load(Ordering::Relaxed) => {
            text(StatusCode::OK, "text/plain", "ready\n".into())
        }
        (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".into()),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}
