//! What observability adds to every request, piece by piece: the served-body tap (bytes counted by source at the
//! end of the body), the upstream-timing scope, and the access line (`log.access = true`) as text and as JSON,
//! written to /dev/null so that the write system call is counted as it would be on stderr.
//!
//! Run with `cargo bench --bench served` (about 30 s). Figures and method: benches/README.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgecache::proxy::ProxyBody;
use edgecache::proxy::served::{AccessRecord, ServedBody, UpstreamTiming};
use http::{Method, StatusCode, Version};
use http_body_util::BodyExt;
use prometheus::IntCounter;

fn record() -> Box<AccessRecord> {
    Box::new(AccessRecord {
        node: Arc::from("edge-eu-1"),
        client: SocketAddr::from(([192, 0, 2, 7], 51234)),
        method: Method::GET,
        version: Version::HTTP_11,
        host: "example.com".to_string(),
        uri: "/static/app.css?v=17".to_string(),
        code: StatusCode::OK,
        cache: "hit",
        cache_status: "edge-eu-1; hit; ttl=42".to_string(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0".to_string(),
        upstream: None,
        info: true,
    })
}

/// One 1 KiB hit body through the tap, polled to the end and dropped (as hyper does).
async fn serve_one(counter: &IntCounter, record: Option<Box<AccessRecord>>) {
    let body =
        ServedBody::new(ProxyBody::full(Bytes::from_static(&[b'x'; 1024])), Instant::now(), counter.clone(), record);
    black_box(body.collect().await.ok());
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let counter = IntCounter::new("bench_bytes", "bytes").expect("counter");
    // Opened once, as stderr is: each line costs one write system call.
    let devnull = Arc::new(std::fs::OpenOptions::new().write(true).open("/dev/null").expect("/dev/null"));
    let mut group = c.benchmark_group("served");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));

    group.bench_function("body_without_tap", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(ProxyBody::full(Bytes::from_static(&[b'x'; 1024])).collect().await.ok());
        })
    });
    group.bench_function("tap_count_only", |b| b.to_async(&runtime).iter(|| serve_one(&counter, None)));
    group.bench_function("upstream_timing_scope", |b| {
        b.to_async(&runtime).iter(|| async {
            let timing = Arc::new(UpstreamTiming::default());
            timing.clone().scope(async { black_box(1) }).await;
            black_box(timing.get());
        })
    });
    group.bench_function("access_line_filtered_out", |b| {
        // log.access = true but RUST_LOG=warn: the record is not even built (access_enabled is false).
        let subscriber =
            tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(devnull.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            b.iter(|| black_box(edgecache::proxy::served::access_enabled(true)));
        })
    });
    for (name, json) in [("access_line_text", false), ("access_line_json", true)] {
        group.bench_function(name, |b| {
            let builder = tracing_subscriber::fmt().with_writer(devnull.clone());
            let dispatch = if json {
                tracing::Dispatch::new(builder.json().flatten_event(true).finish())
            } else {
                tracing::Dispatch::new(builder.finish())
            };
            tracing::dispatcher::with_default(&dispatch, || {
                b.to_async(&runtime).iter(|| serve_one(&counter, Some(record())));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
