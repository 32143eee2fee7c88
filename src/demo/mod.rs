//! `edgecache demo`: a sample origin and a small two-tier cluster on 127.0.0.1 (two edges under one shield), with
//! the `curl` lines that show what they do.

pub mod cluster;
pub mod sample_origin;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::StartError;

/// Binds `preferred` if it is free, else any free port on 127.0.0.1.
async fn listener_near(preferred: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(("127.0.0.1", preferred)).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(("127.0.0.1", 0)).await,
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    let origin_listener =
        listener_near(9000).await.map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 9000).into(), source })?;
    let origin = sample_origin::spawn(origin_listener, shutdown.clone())
        .map_err(|source| StartError::Bind { addr: ([127, 0, 0, 1], 9000).into(), source })?;
    let origin_url = format!("http://{}", origin.addr).parse().map_err(|_| StartError::NoOrigin)?;
    let nodes = cluster::start(origin_url).await?;
    let (edge_node, other_edge, shield) = (&nodes[0], &nodes[1], &nodes[2]);
    let edge = edge_node.http;
    let admin = edge_node.admin.to_string();
    println!("edgecache demo is running (Ctrl-C stops it): a two-tier cluster");
    println!("  origin : http://{}", origin.addr);
    println!("  edge   : http://{edge}   (node demo-edge-1, pop edge, admin http://{admin})");
    println!("  edge   : http://{}   (node demo-edge-2, pop edge, admin http://{})", other_edge.http, other_edge.admin);
    println!("  shield : http://{}   (node demo-shield-1, pop shield: the edges' parent)", shield.http);
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
    println!("  curl -s  http://{admin}/metrics | grep edgecache_requests_total");
    let local = cluster::path_owned_by(&nodes, edge_node, "demo-edge-1");
    let forwarded = cluster::path_owned_by(&nodes, edge_node, "demo-edge-2");
    println!();
    println!("The cluster (each key has one owner in the edge pop; misses go to the shield, then the origin):");
    println!(
        "  curl -si http://{edge}{local} | grep -i cache-status   # demo-edge-1 owns it: shield miss, edge miss; again: hit"
    );
    println!(
        "  curl -si http://{edge}{forwarded} | grep -i cache-status   # owned by demo-edge-2: forwarded one hop (detail=peer)"
    );
    println!("  curl -s  http://{admin}/cluster                          # this node, its pop, every node's health");
    println!("  curl -s  http://{admin}/metrics | grep -E 'edgecache_(upstream_requests_total|peer_up)'");
    println!(
        "  curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip, br' http://{edge}/html/65536 | grep -iE 'content-(encoding|length)|etag|cache-status'"
    );
    println!(
        "      # compressed once (detail=encoded), then again: served from the stored br variant (detail=encoded-hit)"
    );
    println!("  curl -s  http://{admin}/metrics | grep -E 'edgecache_(requests|compressed_bytes)_total'");
    let token = cluster::DEMO_TOKEN;
    println!();
    println!("Purge (every node of every pop confirms; 200 lists them):");
    println!(
        "  curl -s -X POST http://{admin}/purge -H 'Authorization: Bearer {token}' -d '{{\"urls\": [\"http://{edge}{local}\"]}}'"
    );
    println!("  curl -s -X PURGE http://{edge}{local} -H 'Authorization: Bearer {token}'   # the Varnish/Squid way");
    println!(
        "  curl -s -X POST http://{admin}/purge -H 'Authorization: Bearer {token}' -d '{{\"everything\": true, \"soft\": true}}'"
    );
    let _ = tokio::signal::ctrl_c().await;
    println!("stopping");
    for node in nodes {
        node.handle.begin_shutdown();
        node.handle.wait().await;
    }
    shutdown.cancel();
    Ok(())
}
