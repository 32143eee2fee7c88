//! Hit-for-miss: keys whose last response turned out not to be shareable (`private`, `no-store`, `Set-Cookie`,
//! `Vary: *`, no freshness, too large), remembered for a short time so that requests for them go to the origin at
//! once and in parallel instead of queueing behind a leader whose answer they could not use.

use std::time::Duration;

use moka::sync::Cache;

use crate::cache::VariantKey;

/// How long a key is remembered as uncacheable.
pub const HIT_FOR_MISS_TTL: Duration = Duration::from_secs(10);

/// Most keys remembered at once; the least useful are forgotten first (memory stays bounded).
pub const HIT_FOR_MISS_CAPACITY: u64 = 10_000;

/// The keys currently remembered as uncacheable.
pub struct UncacheableKeys {
    keys: Cache<VariantKey, ()>,
}

impl UncacheableKeys {
    /// An empty memory: at most [`HIT_FOR_MISS_CAPACITY`] keys, each for [`HIT_FOR_MISS_TTL`].
    pub fn new() -> UncacheableKeys {
        UncacheableKeys::with_ttl(HIT_FOR_MISS_TTL)
    }

    /// An empty memory whose keys are forgotten after `ttl`.
    pub fn with_ttl(ttl: Duration) -> UncacheableKeys {
        UncacheableKeys { keys: Cache::builder().max_capacity(HIT_FOR_MISS_CAPACITY).time_to_live(ttl).build() }
    }

    /// Remembers `key` as uncacheable (again, for a full lifetime).
    pub fn mark(&self, key: VariantKey) {
        self.keys.insert(key, ());
    }

    /// Whether `key` is remembered as uncacheable.
    pub fn contains(&self, key: &VariantKey) -> bool {
        self.keys.contains_key(key)
    }

    /// Forgets `key` (its response became storable).
    pub fn forget(&self, key: &VariantKey) {
        self.keys.invalidate(key);
    }
}

impl Default for UncacheableKeys {
    fn default() -> UncacheableKeys {
        UncacheableKeys::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PrimaryKey;

    #[test]
    fn keys_are_remembered_then_forgotten() {
        let keys = UncacheableKeys::with_ttl(Duration::from_millis(50));
        let key = VariantKey::primary(&PrimaryKey::new("http", "h", &http::Uri::from_static("/private")));
        assert!(!keys.contains(&key));
        keys.mark(key.clone());
        assert!(keys.contains(&key));
        keys.forget(&key);
        assert!(!keys.contains(&key));
        keys.mark(key.clone());
        std::thread::sleep(Duration::from_millis(80));
        assert!(!keys.contains(&key), "forgotten after its lifetime");
    }
}
