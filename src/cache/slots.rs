//! The map under the store: a quick_cache (S3-FIFO, sharded, weighted by bytes) of what each key holds, with the
//! weight and the expiry deadline fixed when it was written. quick_cache has no expiry of its own; the store
//! treats a slot past its deadline as absent and sweeps such slots out (see `store.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::key::{VariantKey, VarySpec};
use super::object::CachedObject;

/// What one key of the store holds: a stored variant, or (at a URL whose responses vary) the fields they vary on.
#[derive(Clone)]
pub(super) enum Slot {
    Object(Arc<CachedObject>),
    Vary(Arc<VaryRecord>),
}

impl Slot {
    /// Whether `held` holds this very slot (the same allocation), not just an equal one.
    pub(super) fn is_in(&self, held: &Held) -> bool {
        match (self, held) {
            (Slot::Object(a), Held::Object { object: b, .. }) => Arc::ptr_eq(a, b),
            (Slot::Vary(a), Held::Vary { record: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The vary record of a URL: the fields its responses vary on, the generation its variant keys carry, and the keys
/// of the variants stored under it. A record that is removed (invalidation) or replaced (the fields changed) takes
/// its generation with it, so variants stored under it can never be found again; the key list lets invalidation
/// free them at once instead of waiting for them to expire.
pub(super) struct VaryRecord {
    pub(super) spec: VarySpec,
    pub(super) generation: u64,
    pub(super) variants: std::sync::Mutex<std::collections::HashSet<VariantKey>>,
}

/// A slot as the map holds it, with the weight it was charged when written (quick_cache requires that an item's
/// weight never changes while it is held, so it is not recomputed from the object) and when it expires
/// (milliseconds after the store's epoch). One enum rather than a [`Slot`] beside the two, so that the slot's kind
/// shares a word with the weight: 24 B instead of 32 in every entry of the map.
#[derive(Clone)]
pub(super) enum Held {
    Object { object: Arc<CachedObject>, weight: u32, expires: u64 },
    Vary { record: Arc<VaryRecord>, weight: u32, expires: u64 },
}

impl Held {
    /// `slot`, charged `weight`, expiring at `expires`.
    pub(super) fn new(slot: Slot, weight: u32, expires: u64) -> Held {
        match slot {
            Slot::Object(object) => Held::Object { object, weight, expires },
            Slot::Vary(record) => Held::Vary { record, weight, expires },
        }
    }

    /// What it holds.
    pub(super) fn into_slot(self) -> Slot {
        match self {
            Held::Object { object, .. } => Slot::Object(object),
            Held::Vary { record, .. } => Slot::Vary(record),
        }
    }

    /// The weight it was charged.
    pub(super) fn weight(&self) -> u32 {
        match self {
            Held::Object { weight, .. } | Held::Vary { weight, .. } => *weight,
        }
    }

    /// Charges it `new` instead (within the map's `entry`, which weighs it again).
    pub(super) fn set_weight(&mut self, new: u32) {
        match self {
            Held::Object { weight, .. } | Held::Vary { weight, .. } => *weight = new,
        }
    }

    /// When it expires.
    pub(super) fn expires(&self) -> u64 {
        match self {
            Held::Object { expires, .. } | Held::Vary { expires, .. } => *expires,
        }
    }

    /// Whether it holds this very object.
    pub(super) fn holds(&self, object: &Arc<CachedObject>) -> bool {
        matches!(self, Held::Object { object: current, .. } if Arc::ptr_eq(current, object))
    }
}

/// Reads the weight fixed at write time.
#[derive(Clone)]
pub(super) struct FixedWeight;

impl Weighter<VariantKey, Held> for FixedWeight {
    fn weight(&self, _: &VariantKey, held: &Held) -> u64 {
        u64::from(held.weight())
    }
}

/// Collects what the map pushes out during one call (evicted for room, replaced, refused as too large), so that
/// the store tells its observers after the map's lock is released.
#[derive(Clone)]
pub(super) struct Collect;

impl Lifecycle<VariantKey, Held> for Collect {
    type RequestState = Vec<(VariantKey, Held)>;

    fn on_evict(&self, state: &mut Self::RequestState, key: VariantKey, held: Held) {
        state.push((key, held));
    }
}

pub(super) type Map = Cache<VariantKey, Held, FixedWeight, DefaultHashBuilder, Collect>;

/// Most shards the map is split into (each has its own lock and its own share of the capacity).
const MAX_SHARDS: usize = 16;

/// Object size assumed to estimate how many the store will hold (sizes the record of recently evicted keys).
const TYPICAL_OBJECT_BYTES: u64 = 4096;

/// A map of at most `memory` bytes in which an object of `max_object_size` bytes (charged `max_weight`) still fits:
/// each shard holds an equal share of the capacity, so there are only as many shards as keep each share at least
/// twice the largest object.
pub(super) fn map(memory: u64, max_weight: u64) -> Map {
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_size = usize::try_from(memory / max_weight.saturating_mul(2).max(1)).unwrap_or(usize::MAX);
    let shards = (parallel * 4).min(MAX_SHARDS).min(by_size).max(1);
    // A power of two no larger than asked for (quick_cache rounds up).
    let shards = 1usize << shards.ilog2();
    let items = usize::try_from(memory / TYPICAL_OBJECT_BYTES).unwrap_or(usize::MAX).max(64);
    let options = OptionsBuilder::new().shards(shards).estimated_items_capacity(items).weight_capacity(memory).build();
    match options {
        Ok(options) => Cache::with_options(options, FixedWeight, DefaultHashBuilder::default(), Collect),
        // Unreachable: both required options are set.
        Err(_) => Cache::with(items, memory, FixedWeight, DefaultHashBuilder::default(), Collect),
    }
}

/// The store's clock: milliseconds since it was built (monotonic).
pub(super) struct Clock(Instant);

impl Clock {
    pub(super) fn new() -> Clock {
        Clock(Instant::now())
    }

    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The deadline `keep` from now.
    pub(super) fn after(&self, keep: Duration) -> u64 {
        self.now().saturating_add(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_of_the_map_is_small() {
        // A `Slot` (16 B) beside the weight and the deadline would take 32 B.
        assert_eq!(std::mem::size_of::<Held>(), 24);
        assert_eq!(std::mem::size_of::<VariantKey>(), 16);
    }
}
