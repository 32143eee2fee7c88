//! Purge figures (loopback, one process):
//!
//! 1. **Confirmation latency**: 5 real nodes (pop `edge` of 3, pop `shield` of 2); `POST /purge` to a random node,
//!    one at a time, timed from the request to the 200 that says all 5 applied it. `PURGES` (default 1000).
//! 2. **A tag purge matching 100,000 objects**: a store holding `OBJECTS` (100,000) objects tagged `t`, a hard purge
//!    of tag `t`: the time until lookups refuse them (the purge is recorded) and until their memory is freed.
//! 3. **Lookup cost of the purge screen**: the store lookup of a fresh, tagged object with no purge recorded, and
//!    with an hour of 1,000 tag purges a minute (60,000 tag entries) plus 1,000 URL and 100 prefix purges.
//! 4. **Hits while purging**: one client asks a node for 10 hot, tagged URLs back to back over one keep-alive
//!    connection (all hits), in 5 s phases that alternate between no purges and 1,000 tag purges a minute
//!    (`POST /purge` of tags no object carries, so every request stays a hit); p50/p99 of each kind of phase.
//!
//! `cargo bench --bench purge`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgecache::cache::{CachedObject, Lookup, PrimaryKey, Store};
use edgecache::config::{Config, PopConfig, PopNodeConfig};
use edgecache::metrics::Metrics;
use edgecache::policy::Freshness;
use edgecache::purge::Purger;
use edgecache::purge::request::Selection;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn confirmation_latency() {
    let purges: usize = env("PURGES", 1000);
    let layout = [("edge", 3), ("shield", 2)];
    let mut planned = Vec::new();
    for (pop, n) in layout {
        for i in 1..=n {
            planned.push((format!("{pop}-{i}"), pop.to_string(), free_port()));
        }
    }
    let pops: Vec<PopConfig> = layout
        .iter()
        .map(|(pop, _)| PopConfig {
            name: pop.to_string(),
            parent: (*pop == "edge").then(|| "shield".to_string()),
            nodes: planned
                .iter()
                .filter(|(_, p, _)| p == pop)
                .map(|(id, _, port)| PopNodeConfig {
                    id: id.clone(),
                    url: format!("http://127.0.0.1:{port}").parse().expect("url"),
                })
                .collect(),
        })
        .collect();
    let mut admins = Vec::new();
    let mut handles = Vec::new();
    for (id, pop, port) in &planned {
        let listen = SocketAddr::from(([127, 0, 0, 1], *port));
        let mut config = Config::standalone(id, listen, "http://127.0.0.1:9".parse().expect("origin"));
        config.node.pop = Some(pop.clone());
        config.pops = pops.clone();
        config.cluster.secret = Some("bench-secret".to_string());
        config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.admin.token = Some("bench-token".to_string());
        let handle = edgecache::app::start(config).await.expect("node starts");
        admins.push(handle.admin_addr.expect("admin"));
        handles.push(handle);
    }
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut times = Vec::with_capacity(purges);
    let mut not_confirmed = 0;
    for i in 0..purges + 50 {
        let admin = admins[i % admins.len()];
        let body = format!(r#"{{"urls": ["http://example.com/item/{i}"], "tags": ["product-{i}"]}}"#);
        let started = Instant::now();
        let response = http
            .post(format!("http://{admin}/purge"))
            .bearer_auth("bench-token")
            .body(body)
            .send()
            .await
            .expect("purge");
        let status = response.status();
        let _ = response.bytes().await;
        if i >= 50 {
            times.push(started.elapsed());
            not_confirmed += usize::from(status != reqwest::StatusCode::OK);
        }
    }
    times.sort();
    println!(
        "confirmation by all 5 nodes (3 edge + 2 shield), {purges} purges: p50 {} p90 {} p99 {} max {}; not 200: {not_confirmed}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(percentile(&times, 1.0)),
    );
    for handle in &handles {
        handle.begin_shutdown();
    }
}

fn tagged_object(tags: &str) -> CachedObject {
    let mut headers = HeaderMap::new();
    headers.insert("surrogate-key", HeaderValue::from_str(tags).expect("tags"));
    headers.insert("cache-control", HeaderValue::from_static("max-age=3600"));
    let freshness = Freshness {
        received: SystemTime::now(),
        initial_age: Duration::ZERO,
        fresh_for: Duration::from_secs(3600),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        must_revalidate: false,
        immutable: false,
    };
    CachedObject::new(StatusCode::OK, &headers, "x".repeat(100).into(), freshness)
}

fn service(memory: u64) -> (Arc<Store>, Arc<Purger>) {
    let config =
        Config::standalone("bench", SocketAddr::from(([127, 0, 0, 1], 0)), "http://127.0.0.1:9".parse().expect("uri"));
    let metrics = Metrics::new("bench", "standalone").expect("metrics");
    let store = Arc::new(Store::new(memory, 1 << 20, Box::new(|_| {})));
    let purger = Purger::new(&config, store.clone(), &metrics).expect("purger");
    (store, purger)
}

fn key(i: usize) -> PrimaryKey {
    PrimaryKey::new("http", "example.com", &format!("/object/{i}").parse::<Uri>().expect("uri"))
}

async fn tag_purge_of_many() {
    let objects: usize = env("OBJECTS", 100_000);
    let (store, purger) = service(4 << 30);
    for i in 0..objects {
        store.insert(&key(i), &HeaderMap::new(), tagged_object(&format!("t item-{i}")));
    }
    store.run_pending_tasks();
    let held = store.object_count();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    purger.apply(purger.new_purge(Selection { tags: vec!["t".into()], ..Selection::default() }, None));
    let recorded = started.elapsed();
    let refused = matches!(store.lookup(&key(objects / 2), &HeaderMap::new()), Lookup::UriMiss(_));
    loop {
        store.run_pending_tasks();
        if store.object_count() == 0 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "hard tag purge matching {held} objects: recorded (lookups refuse them) in {}, lookup refused: {refused}; \
         every object freed after {} ({} left)",
        ms(recorded),
        ms(started.elapsed()),
        store.object_count()
    );
}

fn lookup_cost() {
    let lookups = 1_000_000;
    let run = |store: &Store| {
        let keys: Vec<PrimaryKey> = (0..1000).map(key).collect();
        let request = HeaderMap::new();
        let started = Instant::now();
        let mut found = 0;
        for i in 0..lookups {
            found += usize::from(matches!(store.lookup(&keys[i % keys.len()], &request), Lookup::Found(..)));
        }
        assert_eq!(found, lookups);
        started.elapsed().as_nanos() as f64 / lookups as f64
    };
    let (store, purger) = service(1 << 30);
    for i in 0..1000 {
        store.insert(&key(i), &HeaderMap::new(), tagged_object(&format!("product-{i} category-{} all", i % 10)));
    }
    store.run_pending_tasks();
    let empty = run(&store);
    for i in 0..60_000 {
        purger.apply(purger.new_purge(Selection { tags: vec![format!("gone-{i}")], ..Selection::default() }, None));
    }
    for i in 0..1_000 {
        let url = format!("example.org/page/{i}");
        purger.apply(purger.new_purge(Selection { urls: vec![url], ..Selection::default() }, None));
    }
    for i in 0..100 {
        let prefix = format!("example.org/{i}/");
        purger.apply(purger.new_purge(Selection { prefixes: vec![prefix], ..Selection::default() }, None));
    }
    let full = run(&store);
    println!(
        "store lookup of a tagged hit: {empty:.0} ns with no purge recorded, {full:.0} ns with 60,000 tag + 1,000 url \
         + 100 prefix purges recorded (+{:.0} ns)",
        full - empty
    );
}

async fn tagged_origin(listener: tokio::net::TcpListener) {
    use hyper::service::service_fn;
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let mut response = hyper::Response::new(http_body_util::Full::new(body));
                    let tags = format!("{} all", request.uri().path().trim_start_matches('/').replace('/', "-"));
                    let headers = response.headers_mut();
                    headers.insert("cache-control", HeaderValue::from_static("public, max-age=3600"));
                    headers.insert("surrogate-key", HeaderValue::from_str(&tags).expect("tags"));
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn hits_while_purging() {
    let phase = Duration::from_secs(env("PHASE_SECS", 5));
    let phases: usize = env("PHASES", 6);
    let side = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let origin_listener = side.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let origin_addr = origin_listener.local_addr().expect("addr");
    side.spawn(tagged_origin(origin_listener));
    let mut config = Config::standalone(
        "bench-edge",
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://{origin_addr}").parse().expect("origin url"),
    );
    config.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.admin.token = Some("bench-token".to_string());
    let node = side.block_on(edgecache::app::start(config)).expect("node starts");
    let base = format!("http://{}", node.http_addrs[0]);
    let admin = node.admin_addr.expect("admin");

    let prober = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let http = reqwest::Client::builder().no_proxy().http1_only().build().expect("client");
    prober.block_on(async {
        for i in 0..10 {
            http.get(format!("{base}/hot/{i}")).send().await.expect("warm").bytes().await.expect("body");
        }
    });
    let (mut quiet, mut purging) = (Vec::new(), Vec::new());
    let mut purges_sent = 0usize;
    for p in 0..phases {
        let with_purges = p % 2 == 1;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The client sending purges runs on a thread of its own, as it would on another machine: only the node's
        // handling of the purges shares the node's runtime with the hits.
        let sender = with_purges.then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    let http = reqwest::Client::builder().no_proxy().build().expect("client");
                    let mut ticks = tokio::time::interval(Duration::from_millis(60));
                    let mut sent = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        ticks.tick().await;
                        let body = format!(r#"{{"tags": ["gone-{p}-{sent}"]}}"#);
                        let answer = http.post(format!("http://{admin}/purge")).bearer_auth("bench-token").body(body);
                        if answer.send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                            sent += 1;
                        }
                    }
                    sent
                })
            })
        });
        let started = Instant::now();
        let latencies = prober.block_on(async {
            let mut latencies = Vec::new();
            let mut i = 0usize;
            while started.elapsed() < phase {
                let t = Instant::now();
                let response = http.get(format!("{base}/hot/{}", i % 10)).send().await.expect("hit");
                let hit =
                    response.headers().get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").contains("hit");
                response.bytes().await.expect("body");
                assert!(hit, "a hot URL was not a hit");
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(sender) = sender {
            purges_sent += sender.join().expect("sender");
        }
        if with_purges { purging.extend(latencies) } else { quiet.extend(latencies) }
    }
    quiet.sort();
    purging.sort();
    let rate = purges_sent as f64 / (phase.as_secs_f64() * (phases / 2) as f64) * 60.0;
    for (name, l) in [("no purges", &quiet), ("1,000 tag purges/min", &purging)] {
        println!(
            "hits, {name:<21} {:>7} hits  p50 {}  p99 {}",
            l.len(),
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.99))
        );
    }
    println!("  ({purges_sent} tag purges sent during the purging phases: {rate:.0} a minute)");
    node.begin_shutdown();
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(confirmation_latency());
    runtime.block_on(tag_purge_of_many());
    drop(runtime);
    lookup_cost();
    hits_while_purging();
}
