//! `edgecache demo`: a sample origin and a node on 127.0.0.1, with the `curl` lines that show what they do.

pub mod sample_origin;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{self, StartError};
use crate::config::Config;

/// Binds `preferred` if it is free, else any free port on 127.0.0.1.
async fn listener_near(preferred: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(("127.0.0.1", preferred)).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(("127.0.0.1", 0)).await,
    }
}

fn free_addr_near(preferred: u16) -> SocketAddr {
    let taken = std::net::TcpListener::bind(("127.0.0.1", preferred)).is_err();
    SocketAddr::from(([127, 0, 0, 1], if taken { 0 } else { preferred }))
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    let origin_listener =
        listener_near(9000).await.map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 9000).into(), source })?;
    let origin = sample_origin::spawn(origin_listener, shutdown.clone())
        .map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 9000).into(), source })?;
    let origin_url = format!("http://{}", origin.addr).parse().map_err(|_| StartError::NoOrigin)?;
    let mut config = Config::standalone("demo-edge-1", free_addr_near(8080), origin_url);
    config.admin.listen = Some(free_addr_near(9901));
    let node = app::start(config).await?;
    let edge = node.http_addrs.first().copied().unwrap_or_else(|| ([127, 0, 0, 1], 8080).into());
    let admin = node.admin_addr.map(|a| a.to_string()).unwrap_or_default();
    println!("edgecache demo is running (Ctrl-C stops it)");
    println!("  origin : http://{}", origin.addr);
    println!("  edge   : http://{edge}   (node demo-edge-1)");
    println!("  admin  : http://{admin}");
    println!();
    println!("Try:");
    println!(
        "  curl -si http://{edge}/static/a.css | grep -iE 'cache-status|age|x-origin'   # miss, then run again: hit"
    );
    println!(
        "  curl -si http://{edge}/vary -H 'Accept-Language: fr'                        # one variant per language"
    );
    println!("  curl -si http://{edge}/private | grep -i cache-status                         # not stored");
    println!(
        "  curl -s  http://{edge}/bytes/1048576 | wc -c                                  # 1 MiB through the cache"
    );
    println!(
        "  k=$RANDOM; for i in $(seq 20); do curl -s -o /dev/null -w '%{{http_code}} ' http://{edge}/slow/2000?k=$k & done; wait"
    );
    println!("      # 20 clients at once, 1 origin request (coalesced): see edgecache_coalesced_requests_total");
    println!(
        "  curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip, br' http://{edge}/html/65536 | grep -iE 'content-(encoding|length)|etag|cache-status'"
    );
    println!(
        "      # compressed once (detail=encoded), then again: served from the stored br variant (detail=encoded-hit)"
    );
    println!("  curl -s  http://{admin}/metrics | grep -E 'edgecache_(requests|compressed_bytes)_total'");
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping");
    node.begin_shutdown();
    node.wait().await;
    shutdown.cancel();
    Ok(())
}
