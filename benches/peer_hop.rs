//! The price of a peer hop for a hit: a pop of two nodes (A, B) in this process over loopback, a key A owns and
//! has stored. The same client asks A directly (a local hit) and B (which forwards to A: one signed hop on a pooled
//! connection) one request at a time, alternating, and prints p50/p90/p99 of both and of the difference. Hot keys
//! are off, so B never answers from a copy of its own.
//!
//! `cargo bench --bench peer_hop` (a harness, not criterion: the figure is a latency distribution).

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use edgecache::app;
use edgecache::cluster::ring::key_hash;
use edgecache::cluster::{Member, Ring};
use edgecache::config::{Config, PopConfig, PopNodeConfig};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 5_000;
const HOST: &str = "bench.test";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let shutdown = CancellationToken::new();
    let origin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let origin = edgecache::demo::sample_origin::spawn(origin_listener, shutdown.clone()).expect("origin");
    let origin_url: http::Uri = format!("http://{}", origin.addr).parse().expect("url");

    let listeners: Vec<TcpListener> = (0..2).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().expect("addr")).collect();
    let ids = ["node-a", "node-b"];
    let nodes: Vec<PopNodeConfig> = ids
        .iter()
        .zip(&addrs)
        .map(|(id, a)| PopNodeConfig { id: id.to_string(), url: format!("http://{a}").parse().expect("url") })
        .collect();
    let mut handles = Vec::new();
    for ((id, addr), listener) in ids.iter().zip(&addrs).zip(listeners) {
        let mut config = Config::standalone(id, *addr, origin_url.clone());
        config.node.pop = Some("pop".into());
        config.pops = vec![PopConfig { name: "pop".into(), parent: None, nodes: nodes.clone() }];
        config.cluster.secret = Some("bench".into());
        config.cluster.hot_key_rate = 0;
        handles.push(app::start_on(config, vec![listener]).await.expect("node"));
    }

    let ring = Ring::new(nodes.iter().map(|n| Member::new(&n.id, n.url.clone())).collect());
    let path = (0..)
        .map(|i| format!("/static/hop-{i}.css"))
        .find(|p| ring.owner(key_hash(&format!("http://{HOST}{p}"))).is_some_and(|m| &*m.id == "node-a"))
        .expect("a key node-a owns");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let (direct_url, via_peer_url) = (format!("http://{}{path}", addrs[0]), format!("http://{}{path}", addrs[1]));
    let get = |url: String| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let response = client.get(url).header("host", HOST).send().await.expect("request");
            let status = response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            response.bytes().await.expect("body");
            (started.elapsed(), status)
        }
    };
    // Warm: the object stored at A, both connections pooled.
    for _ in 0..200 {
        get(direct_url.clone()).await;
        get(via_peer_url.clone()).await;
    }
    let (_, status) = get(via_peer_url.clone()).await;
    assert!(status.contains("node-a; hit") && status.ends_with("detail=peer"), "{status}");

    let (mut direct, mut via_peer) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        direct.push(get(direct_url.clone()).await.0);
        via_peer.push(get(via_peer_url.clone()).await.0);
    }
    direct.sort();
    via_peer.sort();
    println!("{ROUNDS} sequential hits of one small object (loopback, HTTP/1.1 keep-alive), microseconds:");
    println!("{:<28} {:>8} {:>8} {:>8}", "", "p50", "p90", "p99");
    for (name, samples) in [("local hit (owner)", &direct), ("hit through a peer hop", &via_peer)] {
        println!(
            "{name:<28} {:>8.0} {:>8.0} {:>8.0}",
            micros(percentile(samples, 0.5)),
            micros(percentile(samples, 0.9)),
            micros(percentile(samples, 0.99))
        );
    }
    println!(
        "{:<28} {:>8.0} {:>8.0} {:>8.0}",
        "extra for the hop",
        micros(percentile(&via_peer, 0.5)) - micros(percentile(&direct, 0.5)),
        micros(percentile(&via_peer, 0.9)) - micros(percentile(&direct, 0.9)),
        micros(percentile(&via_peer, 0.99)) - micros(percentile(&direct, 0.99))
    );
    for handle in handles {
        handle.begin_shutdown();
    }
    shutdown.cancel();
}
