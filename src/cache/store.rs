//! The in-memory store: moka weighted by bytes with TinyLFU admission, plus the index of which request fields
//! each URL varies on. Lookup turns a request into a hit, a vary-miss or a miss.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::key::{PrimaryKey, VariantKey, VarySpec};
use super::object::CachedObject;

/// What the store holds for a request.
pub enum Lookup {
    /// A stored variant matches.
    Found(VariantKey, Arc<CachedObject>),
    /// Nothing for this URL.
    UriMiss(VariantKey),
    /// The URL has stored variants, but not the one this request selects.
    VaryMiss(VariantKey),
}

/// Called with the reason (`size`, `expired`, `replaced`, `explicit`) each time an object leaves the store.
pub type EvictionHook = Box<dyn Fn(&'static str) + Send + Sync>;

/// What one key of the store holds: a stored variant, or (at a URL whose responses vary) the fields they vary on.
#[derive(Clone)]
enum Slot {
    Object(Arc<CachedObject>),
    Vary(VarySpec),
}

/// Bytes charged for a vary record beyond its key.
const VARY_RECORD_BYTES: u32 = 128;

/// How long a URL's vary record is kept after it was last written.
const VARY_RECORD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The shared cache of one node. A URL whose response has no `Vary` is one lookup; a URL that varies keeps a vary
/// record under its primary key and its variants under variant keys (two lookups).
pub struct Store {
    slots: Cache<VariantKey, Slot>,
    max_object_size: u64,
}

struct KeepFor;

impl KeepFor {
    fn keep(slot: &Slot) -> Duration {
        match slot {
            Slot::Object(object) => object.keep_for(SystemTime::now()),
            Slot::Vary(_) => VARY_RECORD_LIFETIME,
        }
    }
}

impl moka::Expiry<VariantKey, Slot> for KeepFor {
    fn expire_after_create(&self, _: &VariantKey, slot: &Slot, _: Instant) -> Option<Duration> {
        Some(KeepFor::keep(slot))
    }

    fn expire_after_update(&self, _: &VariantKey, slot: &Slot, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(KeepFor::keep(slot))
    }
}

impl Store {
    /// A store of at most `memory` bytes holding objects of at most `max_object_size` bytes.
    pub fn new(memory: u64, max_object_size: u64, on_evict: EvictionHook) -> Store {
        let slots = Cache::builder()
            .max_capacity(memory)
            .weigher(|key: &VariantKey, slot: &Slot| match slot {
                Slot::Object(object) => object.weight(key.as_str().len()),
                Slot::Vary(_) => VARY_RECORD_BYTES + u32::try_from(key.as_str().len()).unwrap_or(u32::MAX),
            })
            .expire_after(KeepFor)
            .eviction_listener(move |_, slot, cause| {
                if let Slot::Vary(_) = slot {
                    return;
                }
                on_evict(match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Explicit => "explicit",
                })
            })
            .build();
        Store { slots, max_object_size }
    }

    /// Largest body this store keeps.
    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// Finds the variant a request selects.
    pub fn lookup(&self, primary: &PrimaryKey, request: &HeaderMap) -> Lookup {
        let primary_key = VariantKey::primary(primary);
        let spec = match self.slots.get(&primary_key) {
            None => return Lookup::UriMiss(primary_key),
            Some(Slot::Object(object)) => return Lookup::Found(primary_key, object),
            Some(Slot::Vary(spec)) => spec,
        };
        // `Vary: *` is never stored (policy refuses it), so a vary record always names fields.
        let Some(key) = VariantKey::new(primary, &spec, request) else { return Lookup::UriMiss(primary_key) };
        match self.slots.get(&key) {
            Some(Slot::Object(object)) => Lookup::Found(key, object),
            _ => Lookup::VaryMiss(key),
        }
    }

    /// Stores a response fetched for a request with `request` headers. Returns false if it cannot be stored (too
    /// large, or `Vary: *`).
    pub fn insert(&self, primary: &PrimaryKey, request: &HeaderMap, object: CachedObject) -> bool {
        if object.body.len() as u64 > self.max_object_size {
            return false;
        }
        let spec = VarySpec::from_response(&object.headers);
        let Some(key) = VariantKey::new(primary, &spec, request) else { return false };
        if spec != VarySpec::None {
            let primary_key = VariantKey::primary(primary);
            let current = self.slots.get(&primary_key);
            if !matches!(current, Some(Slot::Vary(ref existing)) if *existing == spec) {
                self.slots.insert(primary_key, Slot::Vary(spec));
            }
        }
        self.slots.insert(key, Slot::Object(Arc::new(object)));
        true
    }

    /// Replaces a stored variant under its existing key (after a 304 refreshed it).
    pub fn replace(&self, key: VariantKey, object: CachedObject) {
        self.slots.insert(key, Slot::Object(Arc::new(object)));
    }

    /// Removes one variant.
    pub fn remove(&self, key: &VariantKey) {
        self.slots.invalidate(key);
    }

    /// Entries held: objects, plus one vary record per URL whose responses vary (approximate until pending work
    /// is run).
    pub fn object_count(&self) -> u64 {
        self.slots.entry_count()
    }

    /// Bytes held, as weighed (approximate until pending work is run).
    pub fn weighted_bytes(&self) -> u64 {
        self.slots.weighted_size()
    }

    /// Runs the store's pending maintenance (admission, eviction), so counts are exact.
    pub fn run_pending_tasks(&self) {
        self.slots.run_pending_tasks();
    }
}
