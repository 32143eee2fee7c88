//! Why the client buckets are governor's keyed limiter: memory and time per address under a flood of distinct
//! addresses, against the alternative of a moka cache of buckets (bounded and idle-expiring by itself).
//!
//! 1,000,000 distinct IPv4 addresses, one request each (the flood), then 10,000 requests from 1,000 known ones:
//! - `ClientBuckets` (governor, `DashMap` of one `u64` per address), and one `retain_recent()` sweep;
//! - governor over a moka `Cache<IpAddr, AtomicU64>` store capped at 100,000 entries, 2 s time-to-idle.
//!
//! `cargo bench --bench client_table`; seconds; Linux (reads `VmRSS`). Each variant runs in its own process so
//! that one's freed memory does not hide the other's growth: the bench re-runs itself with an argument.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgecache::throttle::ClientBuckets;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

const FLOOD: u32 = 1_000_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761))))
}

/// governor's state kept in a moka cache: one `AtomicU64` (the GCRA's theoretical arrival time) per address.
struct MokaStore(moka::sync::Cache<IpAddr, Arc<AtomicU64>>);

impl StateStore for MokaStore {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let cell = self.0.get_with(*key, || Arc::new(AtomicU64::new(0)));
        let mut prev = cell.load(Ordering::Acquire);
        loop {
            let (result, next) = f((prev != 0).then(|| Nanos::new(prev)))?;
            match cell.compare_exchange_weak(prev, next.as_u64(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Ok(result),
                Err(actual) => prev = actual,
            }
        }
    }
}

fn report(name: &str, flood: Duration, rss_growth_kib: u64, held: Option<usize>, known: Duration) {
    let held_text = held.map_or("-".to_string(), |n| n.to_string());
    println!(
        "{name:<26} {:>7.0} ns/new address  {:>7.1} MiB RSS growth  held {held_text:>8}  {:>5.0} ns/known address",
        flood.as_nanos() as f64 / f64::from(FLOOD),
        rss_growth_kib as f64 / 1024.0,
        known.as_nanos() as f64 / 10_000.0,
    );
}

fn known_clients(check: impl Fn(IpAddr)) -> Duration {
    let started = Instant::now();
    for _ in 0..10 {
        for i in 0..1_000 {
            check(addr(i));
        }
    }
    started.elapsed()
}

fn run(variant: &str) {
    let (rate, burst) = (NonZeroU32::new(100).expect("rate"), NonZeroU32::new(200).expect("burst"));
    let before = rss_kib();
    match variant {
        "governor" => {
            let buckets = ClientBuckets::new(rate, Some(burst), 2_000_000);
            let started = Instant::now();
            for i in 0..FLOOD {
                let _ = buckets.check(addr(i));
            }
            let flood = started.elapsed();
            let growth = rss_kib().saturating_sub(before);
            let held = buckets.len();
            let known = known_clients(|a| {
                let _ = buckets.check(a);
            });
            report("governor (ClientBuckets)", flood, growth, Some(held), known);
            std::thread::sleep(buckets.refill_time());
            let started = Instant::now();
            buckets.sweep();
            println!("{:<26} sweep after one refill time: {:?}, {} held", "", started.elapsed(), buckets.len());
        }
        "moka" => {
            let cache = moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(2)).build();
            let limiter: RateLimiter<IpAddr, MokaStore, governor::clock::DefaultClock> =
                RateLimiter::new(Quota::per_second(rate).allow_burst(burst), MokaStore(cache), Default::default());
            let started = Instant::now();
            for i in 0..FLOOD {
                let _ = limiter.check_key(&addr(i));
            }
            let flood = started.elapsed();
            let growth = rss_kib().saturating_sub(before);
            let known = known_clients(|a| {
                let _ = limiter.check_key(&a);
            });
            report("moka store (cap 100,000)", flood, growth, None, known);
        }
        other => eprintln!("unknown variant {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(variant) = args.iter().find_map(|a| a.strip_prefix("--variant=")) {
        run(variant);
        return;
    }
    println!("{FLOOD} distinct client addresses, one request each; then 10,000 requests from 1,000 known addresses");
    for variant in ["governor", "moka"] {
        let status = std::process::Command::new(&args[0]).arg(format!("--variant={variant}")).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("{variant} run failed");
        }
    }
}
