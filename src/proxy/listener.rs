//! Accepting client connections: plain HTTP/1.1 + h2c, or TLS (HTTP/1.1 + h2 by ALPN), served by hyper with the
//! request-head limits (431, or 414 for a request line: `head_limit.rs`), the slow-header guard (`head_watch.rs`),
//! the upstream's interim responses for HTTP/1.1 clients (`interim.rs`), and graceful draining on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future;
use http::{Response, Version};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::head_watch::{HeadWatch, Limits, WatchedBody, WatchedIo};
use super::interim::{self, InterimIo, InterimLine};
use super::pipeline::{Answering, ClientConn, Proxy};
use super::served::ServedBody;
use crate::config::ServerConfig;

/// The request-head field limit hyper applies when none is configured.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// The HTTP server settings shared by every connection of a node.
#[derive(Clone)]
pub struct ConnectionBuilder {
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// `server.header_read_timeout` and `server.idle_timeout`: for the TLS handshake and the connection's guard.
    limits: Limits,
    /// `server.max_header_size` as hyper applies it: kept by `head_limit.rs`.
    head_limit: usize,
}

impl ConnectionBuilder {
    /// Applies `[server]` limits: request-head size and field count, header read timeout, h2 header list size.
    pub fn new(server: &ServerConfig) -> ConnectionBuilder {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        let head_limit = usize::try_from(server.max_header_size).unwrap_or(usize::MAX).max(8192);
        builder
            .http1()
            .timer(TokioTimer::new())
            // The slow-header guard is ours (`HeadWatch`): hyper's arms a timer for every request head.
            .header_read_timeout(None)
            .max_buf_size(head_limit)
            .keep_alive(true);
        if server.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            // hyper's own limit costs nothing; a configured one allocates and fills an index per request head.
            builder.http1().max_headers(server.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(server.idle_timeout);
        let limits = Limits { header: server.header_read_timeout, idle: server.idle_timeout };
        ConnectionBuilder { builder: Arc::new(builder), limits, head_limit }
    }
}

/// Where connections come from and how they are wrapped.
pub enum Transport {
    Plain,
    Tls(TlsAcceptor),
}

/// Accepts connections until `shutdown`, serving each on its own task; connections are watched by `graceful` so
/// that shutdown can wait for in-flight requests.
pub async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    proxy: Arc<Proxy>,
    connections: ConnectionBuilder,
    graceful: Arc<GracefulShutdown>,
    shutdown: CancellationToken,
) {
    let kind = match transport {
        Transport::Plain => "http",
        Transport::Tls(_) => "https",
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = ClientConn { peer, scheme: if kind == "https" { "https" } else { "http" } };
        let proxy = proxy.clone();
        let connections = connections.clone();
        let watcher = graceful.watcher();
        let acceptor = match &transport {
            Transport::Plain => None,
            Transport::Tls(acceptor) => Some(acceptor.clone()),
        };
        tokio::spawn(async move {
            let gauge = proxy.metrics.open_connections.with_label_values(&[kind]);
            gauge.inc();
            serve_connection(stream, acceptor, conn, proxy.clone(), connections, watcher).await;
            gauge.dec();
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
    conn: ClientConn,
    proxy: Arc<Proxy>,
    connections: ConnectionBuilder,
    watcher: Watcher,
) {
    let metrics = proxy.metrics.clone();
    let watch = HeadWatch::new();
    let interim = InterimLine::new();
    let service = service_fn({
        let (watch, interim) = (watch.clone(), interim.clone());
        move |request: hyper::Request<hyper::body::Incoming>| {
            let bodiless = hyper::body::Body::is_end_stream(request.body());
            let version = request.version();
            let in_flight = watch.request(version, bodiless);
            let watched = move |response: Response<ServedBody>| {
                Ok::<_, Infallible>(response.map(|body| WatchedBody::new(body, in_flight)))
            };
            // A hit is ready at once: no future of its own to build, move and poll.
            match proxy.handle(request, conn) {
                Answering::Now(response) => future::Either::Left(future::ready(watched(response))),
                // Only an HTTP/1.1 client may get the upstream's interim responses (`interim.rs`).
                Answering::Later(answer) if version == Version::HTTP_11 => future::Either::Right(future::Either::Left(
                    interim::forwarding(interim.open(), answer).map(watched),
                )),
                Answering::Later(answer) => future::Either::Right(future::Either::Right(answer.map(watched))),
            }
        }
    });
    let slow_head = async {
        watch.expired(connections.limits).await;
        tracing::debug!(client = %conn.peer, "idle, or a request head too slow: closed");
        Ok(())
    };
    let io = match acceptor {
        None => Either::Left(stream),
        Some(acceptor) => {
            let handshake = tokio::time::timeout(connections.limits.header, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls)) => Either::Right(tls),
                Ok(Err(error)) => {
                    metrics.tls_handshake_errors.inc();
                    tracing::debug!(client = %conn.peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.tls_handshake_errors.inc();
                    tracing::debug!(client = %conn.peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let io = TokioIo::new(InterimIo::new(WatchedIo::new(io, watch.clone(), connections.head_limit), interim));
    let connection = connections.builder.serve_connection(io, service).into_owned();
    let result = tokio::select! {
        result = watcher.watch(connection) => result,
        result = slow_head => result,
    };
    if let Err(error) = result {
        tracing::debug!(client = %conn.peer, %error, "connection ended with an error");
    }
}
