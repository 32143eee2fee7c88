//! Memory overhead of the store: RSS growth per cached object beyond its headers and body.
//!
//! Fills a fresh `Store` with 100,000 objects of 1 KiB (each with its own body allocation and the headers the sample
//! origin sends) and prints the bytes per object that are not payload (header names, values and body). Each
//! measurement runs in a child process of its own, so that no memory freed by one is reused by the next:
//!
//! - `store`: RSS before and after filling the store, every temporary (the upstream header map, the request's
//!   key) freed as the fill goes; this is the overhead the target is about.
//! - `payload`: the same headers and bodies as a stored object holds them, kept in a table whose pages are touched
//!   before the first reading (so the table itself is not counted); the rest of `store` is the store's entry.
//!
//! Run with `cargo bench --bench memory`; it takes a few seconds and needs Linux.

use std::process::Command;
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
/// Names the measurement a child process makes.
const PHASE: &str = "EDGECACHE_MEMORY_PHASE";

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

fn uri(i: usize) -> Uri {
    format!("/bytes/1024?k={i}").parse().expect("uri")
}

fn object(i: usize) -> CachedObject {
    let freshness = Freshness {
        received: SystemTime::now(),
        initial_age: Duration::ZERO,
        fresh_for: Duration::from_secs(3600),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        must_revalidate: false,
        immutable: false,
    };
    // The pipeline hands the store the upstream's header map; the body is exactly BODY bytes.
    CachedObject::new(StatusCode::OK, &headers(i), Bytes::from(vec![b'x'; BODY]), freshness)
}

/// What a child process measured, per object.
struct Reading {
    rss: f64,
    weight: f64,
    key: f64,
}

impl Reading {
    fn print(&self) {
        println!("rss={} weight={} key={}", self.rss, self.weight, self.key);
    }

    fn parse(text: &str) -> Reading {
        let field = |name: &str| -> f64 {
            text.split_whitespace()
                .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name}= in the child's output: {text}"))
        };
        Reading { rss: field("rss"), weight: field("weight"), key: field("key") }
    }
}

/// The store, filled: RSS growth per object, weight charged per object, key text per object.
fn measure_store() -> Reading {
    let request = HeaderMap::new();
    let store = Store::new(4 << 30, 16 << 20, Box::new(|_| {}));
    let start = rss_bytes();
    let mut key_bytes = 0usize;
    for i in 0..OBJECTS {
        let primary = PrimaryKey::new("http", "127.0.0.1:8080", &uri(i));
        key_bytes += primary.as_str().len();
        assert!(store.insert(&primary, &request, object(i)), "object refused");
    }
    store.run_pending_tasks();
    let grown = rss_bytes() - start;
    assert_eq!(store.object_count() as usize, OBJECTS, "the store evicted or refused objects; raise its capacity");
    let n = OBJECTS as f64;
    Reading { rss: grown as f64 / n, weight: store.weighted_bytes() as f64 / n, key: key_bytes as f64 / n }
}

/// The headers and bodies alone, as objects hold them: RSS growth per object.
fn measure_payload() -> Reading {
    // A table whose pages are all touched before the first reading: only what the payload owns is counted.
    let mut table: Vec<Option<CachedObject>> = (0..OBJECTS).map(|_| None).collect();
    let start = rss_bytes();
    for (i, slot) in table.iter_mut().enumerate() {
        *slot = Some(object(i));
    }
    let grown = rss_bytes() - start;
    assert_eq!(table.iter().flatten().count(), OBJECTS);
    Reading { rss: grown as f64 / OBJECTS as f64, weight: 0.0, key: 0.0 }
}

fn child(phase: &str) -> Reading {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let output = Command::new(exe).env(PHASE, phase).output().expect("run the measuring child");
    assert!(output.status.success(), "{phase}: {}", String::from_utf8_lossy(&output.stderr));
    Reading::parse(&String::from_utf8_lossy(&output.stdout))
}

fn main() {
    // Criterion-style arguments (`--bench`) are passed by cargo; there is nothing to configure.
    match std::env::var(PHASE).as_deref() {
        Ok("store") => return measure_store().print(),
        Ok("payload") => return measure_payload().print(),
        _ => {}
    }
    let nominal = (0..OBJECTS).map(|i| header_bytes(&headers(i)) + BODY).sum::<usize>() as f64 / OBJECTS as f64;
    let store = child("store");
    let payload = child("payload");
    let overhead = store.rss - nominal;

    println!("memory: {OBJECTS} objects of {BODY} B in the store");
    println!("  RSS growth per object            {:8.1} B", store.rss);
    println!("  headers + body per object        {nominal:8.1} B  (bytes of names, values and body)");
    println!(
        "  overhead per object              {overhead:8.1} B  (target <= {TARGET_OVERHEAD:.0} B: {})",
        verdict(overhead)
    );
    println!("    holding headers and body       {:8.1} B  (as a stored object holds them)", payload.rss - nominal);
    println!(
        "    the store's entry              {:8.1} B  (the rest: object, key, store entry)",
        store.rss - payload.rss
    );
    println!("    of which the key text          {:8.1} B", store.key);
    println!("  weight charged per object        {:8.1} B  (what counts against cache.memory)", store.weight);
    println!("  weight / RSS growth              {:8.3}", store.weight / store.rss);
    println!("memory_overhead_bytes_per_object={overhead:.0}");
}

fn verdict(overhead: f64) -> &'static str {
    if overhead <= TARGET_OVERHEAD { "met" } else { "NOT met" }
}
