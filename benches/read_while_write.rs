//! Two coalescing figures of the herd issue, measured against a real origin and node on loopback:
//!
//! 1. **Read-while-write.** The origin sends a 1 MiB object at 1 MiB/s (64 KiB every 62.5 ms, `Content-Length`
//!    known, `max-age=300`). A first client (the leader) asks for it; 200 ms later a second client (a waiter) asks
//!    for the same URL. The figure is the waiter's time from sending its request to its first body byte (goal:
//!    within 50 ms), with the origin's request count (must be 1) and a byte-for-byte check of the waiter's body.
//! 2. **Expiry under load.** An object with `max-age=1` asked for 200 times a second for 10 s, over 8 keep-alive
//!    connections: the origin's fetches per second of run (goal: at most one per second of expiry).
//!
//! Each part runs on its own tokio runtime (origin, node, clients), so that one part's backlog does not delay
//! another's clock. `cargo bench --bench read_while_write`; knobs (environment): `RUNS` (7), `JOIN_AFTER_MS`
//! (200), `RATE` (200), `SECONDS` (10).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgecache::config::Config;
use futures_util::stream;
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const OBJECT: usize = 1 << 20;
const CHUNK: usize = 64 << 10;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().expect("runtime")
}

/// The 1 MiB object: byte `i` is `i % 251`, so a shifted or truncated copy is caught.
fn object() -> Bytes {
    Bytes::from((0..OBJECT).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

type OriginBody =
    http_body_util::Either<Full<Bytes>, StreamBody<stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>>;

/// `/paced/...`: the object at 1 MiB/s; `/expiring`: 16 bytes with `max-age=1`. Counts requests per route.
async fn origin(listener: TcpListener, paced: Arc<AtomicUsize>, expiring: Arc<AtomicUsize>) {
    let body = object();
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let (paced, expiring, body) = (paced.clone(), expiring.clone(), body.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (paced, expiring, body) = (paced.clone(), expiring.clone(), body.clone());
                async move {
                    let response = if request.uri().path().starts_with("/paced") {
                        paced.fetch_add(1, Ordering::SeqCst);
                        let chunks = stream::unfold(0usize, move |at| {
                            let body = body.clone();
                            async move {
                                if at >= OBJECT {
                                    return None;
                                }
                                if at > 0 {
                                    tokio::time::sleep(Duration::from_micros(62_500)).await;
                                }
                                let end = (at + CHUNK).min(OBJECT);
                                Some((Ok(Frame::data(body.slice(at..end))), end))
                            }
                        });
                        Response::builder()
                            .header("content-length", OBJECT.to_string())
                            .header("cache-control", "public, max-age=300")
                            .body(OriginBody::Right(StreamBody::new(Box::pin(chunks) as stream::BoxStream<'static, _>)))
                    } else {
                        expiring.fetch_add(1, Ordering::SeqCst);
                        Response::builder()
                            .header("cache-control", "public, max-age=1")
                            .body(OriginBody::Left(Full::new(Bytes::from_static(b"0123456789abcdef"))))
                    };
                    Ok::<_, Infallible>(response.expect("response"))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// One leader and one waiter joining `join_after` later; returns the waiter's time to first byte and to its head.
async fn one_herd(base: &str, run: usize, join_after: Duration, expected: &Bytes) -> (Duration, Duration) {
    let url = format!("{base}/paced/{run}");
    let leader_client = reqwest::Client::builder().no_proxy().build().expect("client");
    let leader = tokio::spawn({
        let url = url.clone();
        async move { leader_client.get(url).send().await.expect("leader").bytes().await.expect("leader body") }
    });
    tokio::time::sleep(join_after).await;
    let waiter_client = reqwest::Client::builder().no_proxy().build().expect("client");
    let sent = Instant::now();
    let mut response = waiter_client.get(url).send().await.expect("waiter");
    let head = sent.elapsed();
    let status = response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(status.contains("collapsed"), "the waiter was not coalesced: {status}");
    let mut received = Vec::with_capacity(OBJECT);
    let mut first_byte = None;
    while let Some(chunk) = response.chunk().await.expect("waiter body") {
        if !chunk.is_empty() && first_byte.is_none() {
            first_byte = Some(sent.elapsed());
        }
        received.extend_from_slice(&chunk);
    }
    assert!(received == expected[..], "the waiter's body differs from the origin's");
    assert!(leader.await.expect("leader task") == expected[..], "the leader's body differs from the origin's");
    (first_byte.expect("a body"), head)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runs: usize = env("RUNS", 7);
    let join_after = Duration::from_millis(env("JOIN_AFTER_MS", 200));
    let rate: u64 = env("RATE", 200);
    let seconds: u64 = env("SECONDS", 10);

    let origin_rt = runtime(1);
    let (paced, expiring) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let listener = origin_rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind origin");
    let origin_addr = listener.local_addr().expect("origin addr");
    origin_rt.spawn(origin(listener, paced.clone(), expiring.clone()));

    let node_rt = runtime(1);
    let config = Config::standalone(
        "bench-edge",
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://{origin_addr}").parse().expect("origin url"),
    );
    let node = node_rt.block_on(edgecache::app::start(config)).expect("node starts");
    let base = format!("http://{}", node.http_addrs[0]);
    let clients_rt = runtime(1);

    // 1. Read-while-write.
    let expected = object();
    let (mut first_bytes, mut heads) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (first_byte, head) = clients_rt.block_on(one_herd(&base, run, join_after, &expected));
        first_bytes.push(first_byte);
        heads.push(head);
    }
    println!(
        "read-while-write: 1 MiB at 1 MiB/s, waiter joins after {join_after:?}, {runs} runs, {} origin requests",
        paced.load(Ordering::SeqCst)
    );
    let list = |v: &[Duration]| v.iter().map(|d| format!("{:.1}", ms(*d))).collect::<Vec<_>>().join(" ");
    println!(
        "  waiter's first body byte  median {:6.1} ms   each: {}",
        ms(median(first_bytes.clone())),
        list(&first_bytes)
    );
    println!("  waiter's response head    median {:6.1} ms   each: {}", ms(median(heads.clone())), list(&heads));

    // 2. Expiry under load.
    let before = expiring.load(Ordering::SeqCst);
    let (codes, elapsed) = clients_rt.block_on(async {
        let clients: Vec<reqwest::Client> =
            (0..8).map(|_| reqwest::Client::builder().no_proxy().build().expect("client")).collect();
        let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..(rate * seconds) as usize {
            ticker.tick().await;
            let (http, url) = (clients[i % clients.len()].clone(), format!("{base}/expiring"));
            tasks.push(tokio::spawn(async move {
                match http.get(url).send().await {
                    Ok(response) => {
                        let code = response.status().as_u16();
                        let _ = response.bytes().await;
                        code
                    }
                    Err(_) => 0,
                }
            }));
        }
        let mut codes = std::collections::BTreeMap::<u16, usize>::new();
        for task in tasks {
            *codes.entry(task.await.unwrap_or(0)).or_default() += 1;
        }
        (codes, started.elapsed())
    });
    let fetches = expiring.load(Ordering::SeqCst) - before;
    println!(
        "expiry under load: max-age=1, {rate} req/s for {seconds} s: {fetches} origin fetches in {:.2} s \
         ({:.2} per second); answers {codes:?}",
        elapsed.as_secs_f64(),
        fetches as f64 / elapsed.as_secs_f64()
    );
    node.begin_shutdown();
}
