//! Memory overhead of the store: RSS growth per cached object beyond its headers and body.
//!
//! Fills a fresh `Store` with 100,000 objects of 1 KiB (each with its own body allocation and the headers the sample
//! origin sends), reads `VmRSS` from /proc/self/status before, between and after, and prints the bytes per object
//! that are not payload, split into the cost of holding the headers and body and the cost of the store's entry.
//! Run with `cargo bench --bench memory`; it takes a few seconds and needs Linux.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use edgecache::cache::{CachedObject, PrimaryKey, Store};
use edgecache::policy::Freshness;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode, Uri};

const OBJECTS: usize = 100_000;
const BODY: usize = 1024;
/// The cost the target allows per object, beyond headers and body.
const TARGET_OVERHEAD: f64 = 300.0;

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

/// The headers the sample origin sends for `/bytes/1024`, plus `Content-Length` and `Date` as hyper adds them.
fn headers(i: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert("x-origin-requests", HeaderValue::from(i));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(BODY));
    h.insert(header::DATE, HeaderValue::from_static("Mon, 06 Jan 2025 10:00:00 GMT"));
    h
}

/// Bytes of a header map as sent on the wire, without the `: ` and CRLF.
fn header_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(n, v)| n.as_str().len() + v.len()).sum()
}

fn main() {
    // Criterion-style arguments (`--bench`) are passed by cargo; there is nothing to configure.
    let freshness = Freshness {
        received: SystemTime::now(),
        initial_age: Duration::ZERO,
        fresh_for: Duration::from_secs(3600),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        must_revalidate: false,
        immutable: false,
    };
    let request = HeaderMap::new();
    let store = Store::new(4 << 30, 16 << 20, Box::new(|_| {}));

    // Everything the loop needs besides what ends up in the store is built before the first reading.
    let uris: Vec<Uri> = (0..OBJECTS).map(|i| format!("/bytes/1024?k={i}").parse().expect("uri")).collect();
    let mut parts: Vec<(HeaderMap, Bytes)> = Vec::with_capacity(OBJECTS);
    let start = rss_bytes();

    // Phase 1: the payload as edgecache holds it: a copy of the upstream's header map (the pipeline clones the
    // response head's map into the object, which sizes it exactly) and a body of exactly BODY bytes.
    let mut payload = 0usize;
    for i in 0..OBJECTS {
        let upstream = headers(i);
        payload += header_bytes(&upstream) + BODY;
        parts.push((upstream.clone(), Bytes::from(vec![b'x'; BODY])));
    }
    let after_payload = rss_bytes();

    // Phase 2: the same headers and bodies moved into the store under their keys.
    let mut key_bytes = 0usize;
    for (uri, (headers, body)) in uris.iter().zip(parts.drain(..)) {
        let primary = PrimaryKey::new("http", "127.0.0.1:8080", uri);
        key_bytes += primary.as_str().len();
        let object = CachedObject { status: StatusCode::OK, headers, body, freshness, encoded: Default::default() };
        assert!(store.insert(&primary, &request, object), "object refused");
    }
    store.run_pending_tasks();
    let after_store = rss_bytes();

    let stored = store.object_count() as usize;
    assert_eq!(stored, OBJECTS, "the store evicted or refused objects; raise its capacity");
    let n = OBJECTS as f64;
    let nominal = payload as f64 / n;
    let payload_rss = (after_payload - start) as f64 / n;
    let store_rss = (after_store - after_payload) as f64 / n;
    let total = payload_rss + store_rss;
    let overhead = total - nominal;
    let key = key_bytes as f64 / n;
    let weighed = store.weighted_bytes() as f64 / n;

    println!("memory: {OBJECTS} objects of {BODY} B in the store");
    println!("  RSS growth per object            {total:8.1} B");
    println!("  headers + body per object        {nominal:8.1} B  (bytes of names, values and body)");
    println!(
        "  overhead per object              {overhead:8.1} B  (target <= {TARGET_OVERHEAD:.0} B: {})",
        verdict(overhead)
    );
    println!("    holding headers and body       {:8.1} B  (HeaderMap, Bytes, allocator)", payload_rss - nominal);
    println!("    the store's entry              {store_rss:8.1} B  (Arc<CachedObject>, key, moka entry)");
    println!("    of which the key text          {key:8.1} B");
    println!("  weight charged per object        {weighed:8.1} B  (what counts against cache.memory)");
    println!("memory_overhead_bytes_per_object={overhead:.0}");
}

fn verdict(overhead: f64) -> &'static str {
    if overhead <= TARGET_OVERHEAD { "met" } else { "NOT met" }
}
