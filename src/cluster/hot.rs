//! Hot keys: which keys this node receives so often, for another node of its pop, that it keeps a short copy of
//! its own, so that one owner is not flattened by one popular object.
//!
//! Requests are counted per one-second window in a fixed table of counters indexed by the key's hash (4,096
//! slots, 32 KiB): bounded memory whatever the number of keys. Two keys sharing a slot add up, so a key may be
//! taken for hot a little early; that costs a short copy, nothing else. The copies themselves live in a store of
//! their own, bounded in bytes, and are kept at most `cluster.hot_key_ttl` and never past their freshness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::route::RouteKey;

const SLOTS: usize = 4096;

/// Counts requests per key and says when one is hot.
#[derive(Debug)]
pub struct HotKeys {
    /// Requests per second from which a key is hot; 0: never.
    rate: u32,
    ttl: Duration,
    /// Per slot: the window (seconds since `started`) in the high 32 bits, the count in that window in the low.
    slots: Box<[AtomicU64]>,
    started: Instant,
}

impl HotKeys {
    /// A key is hot from `rate` requests in one second (0 turns hot keys off); copies live `ttl` at most.
    pub fn new(rate: u32, ttl: Duration) -> HotKeys {
        let slots = (0..SLOTS).map(|_| AtomicU64::new(0)).collect();
        HotKeys { rate, ttl, slots, started: Instant::now() }
    }

    /// Whether hot keys are on.
    pub fn enabled(&self) -> bool {
        self.rate > 0
    }

    /// The longest a hot copy is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Counts one request for `key`; true once the key has had `rate` requests in the current second.
    pub fn count(&self, key: &RouteKey) -> bool {
        if self.rate == 0 {
            return false;
        }
        let window = self.started.elapsed().as_secs() & 0xffff_ffff;
        let slot = &self.slots[(key.0 as usize) % SLOTS];
        let mut current = slot.load(Ordering::Relaxed);
        let count = loop {
            let next = if current >> 32 == window { current + 1 } else { (window << 32) | 1 };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next & 0xffff_ffff,
                Err(seen) => current = seen,
            }
        };
        count >= u64::from(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_hot_from_its_rate_within_one_second() {
        let hot = HotKeys::new(10, Duration::from_secs(1));
        let (popular, rare) = (RouteKey(7), RouteKey(8));
        let first: Vec<bool> = (0..12).map(|_| hot.count(&popular)).collect();
        assert_eq!(first.iter().position(|h| *h), Some(9), "hot from the 10th request");
        assert!(!hot.count(&rare));
    }

    #[test]
    fn off_means_never_hot() {
        let hot = HotKeys::new(0, Duration::from_secs(1));
        assert!((0..100).all(|_| !hot.count(&RouteKey(1))));
        assert!(!hot.enabled());
    }
}
