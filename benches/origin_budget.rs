//! The origin budget under a flood: 10,000 distinct misses against `throttle.origin_max_inflight = 16`.
//!
//! One process, four parts, each on its own tokio runtime so that one part's backlog does not delay another's
//! clock: a counting origin (answers after `ORIGIN_DELAY_MS`, records the most requests it ever had open at once),
//! an edgecache node (2 worker threads), a flood client (`MISSES` distinct URLs at once over 64 h2c connections,
//! ~160 streams each) and a prober (one keep-alive HTTP/1.1 connection asking for 10 hot, cached URLs back to
//! back). The prober runs alone first (baseline), then during the flood; the report gives the origin's highest
//! concurrency, how the misses were answered, and hit latency percentiles of both phases.
//!
//! `cargo bench --bench origin_budget`; knobs (environment): `MISSES` (10000), `MAX_INFLIGHT` (16, 0 = no limit),
//! `ORIGIN_DELAY_MS` (10), `QUEUE_TIMEOUT` ("20s"). Needs ~10,000 free file descriptors less than h1 would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgecache::config::Config;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("runtime")
}

/// The origin's own count of open requests.
#[derive(Default)]
struct Counting {
    now: AtomicUsize,
    max: AtomicUsize,
    total: AtomicUsize,
}

async fn origin(listener: TcpListener, counting: Arc<Counting>, delay: Duration) {
    let body = Bytes::from(vec![b'x'; 1024]);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (counting, body) = (counting.clone(), body.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                let (counting, body) = (counting.clone(), body.clone());
                async move {
                    let open = counting.now.fetch_add(1, Ordering::SeqCst) + 1;
                    counting.max.fetch_max(open, Ordering::SeqCst);
                    counting.total.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    counting.now.fetch_sub(1, Ordering::SeqCst);
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert("cache-control", "public, max-age=300".parse().expect("value"));
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Fetches the 10 hot URLs once, so that they are cached.
async fn warm(base: &str) {
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    for i in 0..10 {
        http.get(format!("{base}/hot/{i}")).send().await.expect("warm").bytes().await.expect("body");
    }
}

/// Hit latencies measured back to back until `stop` is set (or `at_most` probes).
async fn probe(base: &str, stop: &AtomicBool, at_most: usize) -> Vec<Duration> {
    let http = reqwest::Client::builder().no_proxy().http1_only().build().expect("client");
    let mut latencies = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && latencies.len() < at_most {
        let started = Instant::now();
        let response = http.get(format!("{base}/hot/{}", i % 10)).send().await.expect("hit");
        let hit = response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").contains("hit");
        response.bytes().await.expect("body");
        assert!(hit, "a hot URL was not a hit");
        latencies.push(started.elapsed());
        i += 1;
    }
    latencies
}

fn percentiles(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<22} {:>6} hits  p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        latencies.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.90).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let misses: usize = env("MISSES", 10_000);
    let max_inflight: u32 = env("MAX_INFLIGHT", 16);
    let delay = Duration::from_millis(env("ORIGIN_DELAY_MS", 10));
    let queue_timeout: String = env("QUEUE_TIMEOUT", "20s".to_string());

    let origin_rt = runtime(1);
    let counting = Arc::new(Counting::default());
    let origin_listener = origin_rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind origin");
    let origin_addr = origin_listener.local_addr().expect("origin addr");
    origin_rt.spawn(origin(origin_listener, counting.clone(), delay));

    let node_rt = runtime(2);
    let mut config = Config::standalone(
        "bench-edge",
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://{origin_addr}").parse().expect("origin url"),
    );
    config.throttle.origin_max_inflight = (max_inflight > 0).then_some(max_inflight);
    config.throttle.origin_queue_timeout = humantime::parse_duration(&queue_timeout).expect("QUEUE_TIMEOUT");
    let node = node_rt.block_on(edgecache::app::start(config)).expect("node starts");
    let base = format!("http://{}", node.http_addrs[0]);

    let prober_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let never = AtomicBool::new(false);
    prober_rt.block_on(warm(&base));
    let warm_origin_requests = counting.total.load(Ordering::SeqCst);
    let baseline = prober_rt.block_on(probe(&base, &never, 5_000));

    println!(
        "{misses} distinct misses, origin_max_inflight = {}, origin answers after {delay:?}, queue timeout {queue_timeout}",
        if max_inflight > 0 { max_inflight.to_string() } else { "off".to_string() }
    );
    let flood_rt = runtime(1);
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let flood = flood_rt.spawn({
        let (base, done) = (base.clone(), done.clone());
        async move {
            let clients: Vec<reqwest::Client> = (0..64)
                .map(|_| reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().expect("client"))
                .collect();
            let tasks: Vec<_> = (0..misses)
                .map(|i| {
                    let (http, url) = (clients[i % clients.len()].clone(), format!("{base}/miss/{i}"));
                    tokio::spawn(async move {
                        match http.get(url).send().await {
                            Ok(response) => {
                                let code = response.status().as_u16();
                                let _ = response.bytes().await;
                                code
                            }
                            Err(_) => 0,
                        }
                    })
                })
                .collect();
            let mut codes = std::collections::BTreeMap::<u16, usize>::new();
            for task in tasks {
                *codes.entry(task.await.unwrap_or(0)).or_default() += 1;
            }
            done.store(true, Ordering::Relaxed);
            codes
        }
    });
    let during = prober_rt.block_on(probe(&base, &done, usize::MAX));
    let codes = flood_rt.block_on(flood).expect("flood");
    let elapsed = started.elapsed();

    println!(
        "origin: at most {} requests open at once; {} requests during the flood",
        counting.max.load(Ordering::SeqCst),
        counting.total.load(Ordering::SeqCst) - warm_origin_requests
    );
    println!("misses answered in {elapsed:.2?}: {codes:?} (status: count; 0 = client error)");
    percentiles("hits, no flood", baseline);
    percentiles("hits, during the flood", during);
    node.begin_shutdown();
}
