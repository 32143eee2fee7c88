//! Builds every part of a node once, binds its listeners, runs until told to stop, then drains in-flight requests
//! (bounded by `server.drain_timeout`). `run` adds the process signals: SIGTERM/SIGINT drain, SIGHUP reloads TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::cache::Store;
use crate::cluster::health::run_prober;
use crate::cluster::{Cluster, PeerAuth};
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::proxy::listener::{self, ConnectionBuilder, Transport};
use crate::proxy::probe::prober;
use crate::proxy::upstream::UpstreamSetupError;
use crate::proxy::{OriginTarget, Proxy, Upstream};
use crate::purge::{PurgeSetupError, Purger};
use crate::throttle::Throttle;
use crate::tls::{TlsError, TlsTerminator};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("origin client: {0}")]
    Upstream(#[from] UpstreamSetupError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Purge(#[from] PurgeSetupError),
    #[error("origin.url is required for this node and must be an absolute http(s) URL")]
    NoOrigin,
}

/// A running node: where it listens, and how to stop it.
pub struct NodeHandle {
    /// Plain HTTP listeners, as bound (port 0 resolved).
    pub http_addrs: Vec<SocketAddr>,
    /// HTTPS listeners, as bound.
    pub https_addrs: Vec<SocketAddr>,
    /// The admin listener, as bound.
    pub admin_addr: Option<SocketAddr>,
    config: Config,
    tls: Option<Arc<TlsTerminator>>,
    shutdown: CancellationToken,
    drained: JoinHandle<()>,
}

impl NodeHandle {
    /// Stops accepting connections and starts draining in-flight requests.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the node has drained (or the drain timeout passed).
    pub async fn wait(self) {
        if let Err(error) = self.drained.await {
            tracing::error!(%error, "node task failed");
        }
    }

    /// Re-reads the TLS certificates named in the config; existing connections are not touched.
    pub fn reload_tls(&self) -> Result<usize, TlsError> {
        match &self.tls {
            Some(tls) => tls.reload(&self.config.server.tls),
            None => Ok(0),
        }
    }
}

/// Starts a node: every listener is bound when this returns.
pub async fn start(config: Config) -> Result<NodeHandle, StartError> {
    start_on(config, Vec::new()).await
}

/// Starts a node on listeners bound beforehand where their address is one of the config's (`server.listen`,
/// `server.tls_listen`, `admin.listen`); the others are bound here. Lets a cluster's topology name every node's
/// port before any node starts.
pub async fn start_on(config: Config, mut bound: Vec<std::net::TcpListener>) -> Result<NodeHandle, StartError> {
    let pop = config.node.pop.clone().unwrap_or_else(|| "standalone".to_string());
    let metrics = Arc::new(Metrics::new(&config.node.id, &pop)?);
    metrics.delivery.cache_capacity.set(i64::try_from(config.cache.memory).unwrap_or(i64::MAX));
    let evictions = metrics.cache_evictions.clone();
    let store = Arc::new(Store::new(
        config.cache.memory,
        config.cache.max_object_size,
        Box::new(move |reason| evictions.with_label_values(&[reason]).inc()),
    ));
    let origin_url = match (config.origin.url.clone(), cluster_origin_stand_in(&config)) {
        (Some(url), _) | (None, Some(url)) => url,
        (None, None) => return Err(StartError::NoOrigin),
    };
    let origin = match (origin_url.scheme(), origin_url.authority()) {
        (Some(scheme), Some(authority)) => OriginTarget { scheme: scheme.clone(), authority: authority.clone() },
        _ => return Err(StartError::NoOrigin),
    };
    let upstream = Upstream::new(&config.origin)?;
    let purge = Purger::new(&config, store.clone(), &metrics)?;
    let throttle = Arc::new(Throttle::new(&config.throttle, &metrics));
    throttle.spawn_sweeper();
    let peer_up = metrics.peer_up.clone();
    let cluster = Arc::new(Cluster::new(
        &config,
        PeerAuth::new(config.cluster.secret.as_deref()),
        Box::new(move |peer, up| peer_up.with_label_values(&[peer]).set(i64::from(up))),
    ));
    let hot_memory = config.cache.memory / 16;
    let hot_store = Arc::new(Store::new(hot_memory, config.cache.max_object_size.min(hot_memory), Box::new(|_| {})));
    purge.also_screen(hot_store.clone());
    store.spawn_sweeper();
    hot_store.spawn_sweeper();
    let proxy = Arc::new(
        Proxy::new(&config.node.id, store.clone(), upstream.clone(), origin, metrics.clone())
            .with_lock_timeout(config.cache.lock_timeout)
            .with_throttle(throttle)
            .with_cluster(cluster.clone(), hot_store.clone())
            .with_compression(crate::compress::Compression::new(&config.compression))
            .with_access_log(config.log.access)
            .with_purge(purge.clone()),
    );
    let tls = if config.server.tls_listen.is_empty() {
        None
    } else {
        Some(Arc::new(TlsTerminator::load(&config.server.tls)?))
    };

    let shutdown = CancellationToken::new();
    purge.spawn(shutdown.clone());
    let graceful = Arc::new(GracefulShutdown::new());
    let connections = ConnectionBuilder::new(&config.server);
    let mut http_addrs = Vec::new();
    let mut https_addrs = Vec::new();
    let mut accept_tasks = Vec::new();
    let plain = config.server.listen.iter().map(|a| (a, None));
    let secure = config.server.tls_listen.iter().map(|a| (a, tls.as_ref()));
    for (addr, tls) in plain.chain(secure) {
        let listener = bind_or_take(*addr, &mut bound).await?;
        let bound = listener.local_addr().map_err(|source| StartError::Bind { addr: *addr, source })?;
        let transport = match tls {
            Some(tls) => {
                https_addrs.push(bound);
                Transport::Tls(tls.acceptor())
            }
            None => {
                http_addrs.push(bound);
                Transport::Plain
            }
        };
        accept_tasks.push(tokio::spawn(listener::accept_loop(
            listener,
            transport,
            proxy.clone(),
            connections.clone(),
            graceful.clone(),
            shutdown.clone(),
        )));
    }

    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        store: store.clone(),
        ready: false.into(),
        cluster: cluster.clone(),
        purge: Some(purge),
    });
    let admin_addr = match config.admin.listen {
        Some(addr) => {
            let listener = bind_or_take(addr, &mut bound).await?;
            let bound = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
            tokio::spawn(admin::serve(listener, admin_state.clone(), shutdown.clone()));
            Some(bound)
        }
        None => None,
    };
    let probe_timeout =
        (config.cluster.probe_interval * 2).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(5));
    let probe = prober(upstream, cluster.auth.clone(), config.node.id.as_str().into(), probe_timeout);
    tokio::spawn(run_prober(cluster.health.clone(), config.cluster.probe_interval, probe, shutdown.clone()));
    admin_state.ready.store(true, Ordering::Relaxed);
    tracing::info!(node = %config.node.id, http = ?http_addrs, https = ?https_addrs, admin = ?admin_addr, "node started");

    let drain_timeout = config.server.drain_timeout;
    let token = shutdown.clone();
    let drained = tokio::spawn(async move {
        token.cancelled().await;
        admin_state.ready.store(false, Ordering::Relaxed);
        for task in accept_tasks {
            let _ = task.await;
        }
        // Every accept loop has returned, so this is the last reference.
        let Ok(graceful) = Arc::try_unwrap(graceful) else { return };
        tracing::info!(open_connections = graceful.count(), "draining");
        if tokio::time::timeout(drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!(?drain_timeout, "drain timeout passed; closing the remaining connections");
        }
    });
    Ok(NodeHandle { http_addrs, https_addrs, admin_addr, config, tls, shutdown, drained })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
}

/// The listener bound beforehand on `addr`, if one was given, else a new one.
async fn bind_or_take(addr: SocketAddr, bound: &mut Vec<std::net::TcpListener>) -> Result<TcpListener, StartError> {
    let Some(i) = bound.iter().position(|l| l.local_addr().is_ok_and(|a| a == addr)) else { return bind(addr).await };
    let listener = bound.swap_remove(i);
    listener.set_nonblocking(true).map_err(|source| StartError::Bind { addr, source })?;
    TcpListener::from_std(listener).map_err(|source| StartError::Bind { addr, source })
}

/// A node whose pop has a parent may have no `origin.url`: config validation then sets `parent_fallback = "error"`,
/// so the origin is never asked, and the first parent node's url stands in for it.
fn cluster_origin_stand_in(config: &Config) -> Option<http::Uri> {
    let topology = crate::cluster::Topology::from_config(config);
    let parent = topology.parent_index()?;
    topology.pops[parent].all.members().first().map(|m| m.url.clone())
}

/// Runs a node until SIGTERM or SIGINT, then drains it. SIGHUP reloads the TLS certificates.
pub async fn run(config: Config) -> Result<(), StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let node = start(config).await?;
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()));
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = signals else {
        tracing::error!("cannot install signal handlers");
        node.begin_shutdown();
        node.wait().await;
        return Ok(());
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match node.reload_tls() {
                Ok(count) => tracing::info!(certificates = count, "TLS certificates reloaded"),
                Err(error) => tracing::error!(%error, "TLS reload failed; the previous certificates stay in use"),
            },
        }
    }
    tracing::info!("shutting down");
    node.begin_shutdown();
    node.wait().await;
    Ok(())
}
