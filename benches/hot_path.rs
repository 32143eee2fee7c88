//! Micro-benchmarks of the cache-hit hot path, piece by piece: building the keys, looking up and inserting in the
//! store, the RFC 9111 decisions, and writing the response of a hit.
//!
//! Run with `cargo bench --bench hot_path` (about a minute). Each benchmark measures for ~2 s with a small sample,
//! so figures are indicative (±5 %), good enough to see which step dominates a hit.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use edgecache::cache::{CachedObject, Lookup, PrimaryKey, Store, VariantKey, VarySpec};
use edgecache::policy::{CacheStatus, Freshness, RequestDirectives, StoreDecision};
use edgecache::proxy::{forward, respond};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// Objects pre-filled in the store for the lookup benchmarks.
const FILLED: usize = 10_000;

/// The request headers a browser-like client sends (curl/wrk send fewer; this is the heavier, realistic case).
fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("example.com"));
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"),
    );
    h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
    h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br, zstd"));
    h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en-US,en;q=0.5"));
    h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    h
}

/// The response headers the sample origin sends for `/bytes/N`, plus the `Date`, `ETag` and `Content-Length`
/// a typical origin adds.
fn response_headers(len: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::DATE, HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())).expect("date"));
    h.insert(header::ETAG, HeaderValue::from_static("\"5f2b-1024\""));
    h
}

fn freshness() -> Freshness {
    Freshness {
        received: SystemTime::now(),
        initial_age: Duration::ZERO,
        fresh_for: Duration::from_secs(300),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        must_revalidate: false,
        immutable: false,
    }
}

fn object(len: usize) -> CachedObject {
    CachedObject::new(StatusCode::OK, &response_headers(len), Bytes::from(vec![b'x'; len]), freshness())
}

fn uri(i: usize) -> Uri {
    format!("/bytes/1024?k={i}").parse().expect("uri")
}

fn store_with(n: usize) -> (Store, Vec<PrimaryKey>) {
    let store = Store::new(1 << 30, 16 << 20, Box::new(|_| {}));
    let request = request_headers();
    let keys: Vec<PrimaryKey> = (0..n).map(|i| PrimaryKey::new("http", "example.com", &uri(i))).collect();
    for key in &keys {
        store.insert(key, &request, object(1024));
    }
    store.run_pending_tasks();
    (store, keys)
}

fn keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("key");
    let h1_uri = Uri::from_static("/bytes/1024?k=17");
    let h2_uri = Uri::from_static("http://example.com/bytes/1024?k=17");
    g.bench_function("primary_h1", |b| b.iter(|| PrimaryKey::new("http", black_box("Example.com:80"), &h1_uri)));
    g.bench_function("primary_h2", |b| b.iter(|| PrimaryKey::new("http", black_box("example.com"), &h2_uri)));

    let primary = PrimaryKey::new("http", "example.com", &h1_uri);
    let request = request_headers();
    let none = VarySpec::None;
    let vary = VarySpec::Fields(vec![header::ACCEPT_ENCODING, header::ACCEPT_LANGUAGE].into());
    g.bench_function("variant_no_vary", |b| b.iter(|| VariantKey::new(&primary, &none, black_box(&request))));
    g.bench_function("variant_vary_2_fields", |b| b.iter(|| VariantKey::new(&primary, &vary, black_box(&request))));
    let mut vary_response = HeaderMap::new();
    vary_response.insert(header::VARY, HeaderValue::from_static("Accept-Encoding, Accept-Language"));
    g.bench_function("vary_spec_from_response", |b| b.iter(|| VarySpec::from_response(black_box(&vary_response))));
    g.finish();
}

fn store(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    let (store, keys) = store_with(FILLED);
    let request = request_headers();
    let mut i = 0;
    g.bench_function("lookup_hit_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % FILLED;
            let found = store.lookup(&keys[i], &request);
            debug_assert!(matches!(found, Lookup::Found(..)));
            found
        })
    });
    let missing = PrimaryKey::new("http", "example.com", &Uri::from_static("/not/stored"));
    g.bench_function("lookup_miss_10k", |b| b.iter(|| store.lookup(black_box(&missing), &request)));

    // Inserts cycle over 100,000 distinct keys: new entries first, then replacements, as a busy cache sees.
    let insert_keys: Vec<PrimaryKey> =
        (0..100_000).map(|i| PrimaryKey::new("http", "insert.example", &uri(i))).collect();
    let template = object(1024);
    let mut j = 0;
    g.bench_function("insert_1KiB", |b| {
        b.iter_batched(
            || template.clone(),
            |object| {
                j = (j + 1) % insert_keys.len();
                store.insert(&insert_keys[j], &request, object)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn policy(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    let request = request_headers();
    let response = response_headers(1024);
    let target = Uri::from_static("/bytes/1024?k=17");
    g.bench_function("store_decision_evaluate", |b| {
        b.iter(|| {
            StoreDecision::evaluate(
                &Method::GET,
                &target,
                black_box(&request),
                StatusCode::OK,
                black_box(&response),
                SystemTime::now(),
            )
        })
    });
    g.bench_function("request_directives_none", |b| b.iter(|| RequestDirectives::of(black_box(&request))));
    let mut with_cc = request.clone();
    with_cc.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
    g.bench_function("request_directives_max_age", |b| b.iter(|| RequestDirectives::of(black_box(&with_cc))));
    let directives = RequestDirectives::default();
    let f = freshness();
    g.bench_function("usability", |b| b.iter(|| directives.usability(black_box(&f), SystemTime::now())));
    g.finish();
}

fn respond(c: &mut Criterion) {
    let mut g = c.benchmark_group("respond");
    let object = object(1024);
    let now = SystemTime::now();
    g.bench_function("from_cache", |b| {
        b.iter(|| respond::from_cache(black_box(&object), &Method::GET, object.freshness().age(now)))
    });
    let status = CacheStatus::hit(300);
    let via = forward::ViaEntries::new("bench-edge");
    g.bench_function("decorate", |b| {
        b.iter_batched_ref(
            || object.headers.to_map(),
            |headers| respond::decorate(headers, &status, "bench-edge", via.for_version(Version::HTTP_11)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("from_cache_and_decorate", |b| {
        b.iter(|| {
            let mut response = respond::from_cache(black_box(&object), &Method::GET, object.freshness().age(now));
            respond::decorate(response.headers_mut(), &status, "bench-edge", via.for_version(Version::HTTP_11));
            response
        })
    });
    g.finish();
}

/// Everything a fresh hit does between hyper handing over the request and getting the response back (no I/O):
/// key, directives, lookup, usability, response, decoration. Compare with 1 / (req/s) of the load test.
fn whole_hit(c: &mut Criterion) {
    let (store, _) = store_with(FILLED);
    let request = request_headers();
    let target = uri(4242);
    let host = HeaderName::from_static("host");
    let via = forward::ViaEntries::new("bench-edge");
    c.bench_function("hit/whole_in_memory_path", |b| {
        b.iter(|| {
            let host = request.get(&host).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let primary = PrimaryKey::new("http", &host, black_box(&target));
            let directives = RequestDirectives::of(&request);
            let now = SystemTime::now();
            let Lookup::Found(_, object) = store.lookup(&primary, &request) else { panic!("expected a hit") };
            let usable = directives.usability(&object.freshness(), now);
            let mut response = respond::from_cache(&object, &Method::GET, object.freshness().age(now));
            let status = CacheStatus::hit(object.freshness().ttl_secs(now));
            respond::decorate(response.headers_mut(), &status, "bench-edge", via.for_version(Version::HTTP_11));
            (usable, response)
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! { name = benches; config = config(); targets = keys, store, policy, respond, whole_hit }
criterion_main!(benches);
