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
    /// The URL's last response said `Vary: *`.
    Uncacheable,
}

/// Called with the reason (`size`, `expired`, `replaced`, `explicit`) each time an object leaves the store.
pub type EvictionHook = Box<dyn Fn(&'static str) + Send + Sync>;

/// The shared cache of one node.
pub struct Store {
    objects: Cache<VariantKey, Arc<CachedObject>>,
    vary: Cache<PrimaryKey, VarySpec>,
    max_object_size: u64,
}

struct KeepFor;

impl moka::Expiry<VariantKey, Arc<CachedObject>> for KeepFor {
    fn expire_after_create(&self, _: &VariantKey, object: &Arc<CachedObject>, _: Instant) -> Option<Duration> {
        Some(object.keep_for(SystemTime::now()))
    }

    fn expire_after_update(
        &self,
        _: &VariantKey,
        object: &Arc<CachedObject>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(object.keep_for(SystemTime::now()))
    }
}

impl Store {
    /// A store of at most `memory` bytes holding objects of at most `max_object_size` bytes.
    pub fn new(memory: u64, max_object_size: u64, on_evict: EvictionHook) -> Store {
        let objects = Cache::builder()
            .max_capacity(memory)
            .weigher(|key: &VariantKey, object: &Arc<CachedObject>| object.weight(key.as_str().len()))
            .expire_after(KeepFor)
            .eviction_listener(move |_, _, cause| {
                on_evict(match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Explicit => "explicit",
                })
            })
            .build();
        let vary = Cache::builder().max_capacity(1_000_000).time_to_idle(Duration::from_secs(24 * 3600)).build();
        Store { objects, vary, max_object_size }
    }

    /// Largest body this store keeps.
    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// Finds the variant a request selects.
    pub fn lookup(&self, primary: &PrimaryKey, request: &HeaderMap) -> Lookup {
        let spec = self.vary.get(primary);
        let Some(key) = VariantKey::new(primary, spec.as_ref().unwrap_or(&VarySpec::None), request) else {
            return Lookup::Uncacheable;
        };
        match self.objects.get(&key) {
            Some(object) => Lookup::Found(key, object),
            None if spec.is_some() => Lookup::VaryMiss(key),
            None => Lookup::UriMiss(key),
        }
    }

    /// Stores a response fetched for a request with `request` headers. Returns false if the object is too large.
    pub fn insert(&self, primary: &PrimaryKey, request: &HeaderMap, object: CachedObject) -> bool {
        if object.body.len() as u64 > self.max_object_size {
            return false;
        }
        let spec = VarySpec::from_response(&object.headers);
        let Some(key) = VariantKey::new(primary, &spec, request) else { return false };
        match spec {
            VarySpec::None => self.vary.invalidate(primary),
            spec => {
                if self.vary.get(primary).as_ref() != Some(&spec) {
                    self.vary.insert(primary.clone(), spec);
                }
            }
        }
        self.objects.insert(key, Arc::new(object));
        true
    }

    /// Replaces a stored variant under its existing key (after a 304 refreshed it).
    pub fn replace(&self, key: VariantKey, object: CachedObject) {
        self.objects.insert(key, Arc::new(object));
    }

    /// Removes one variant.
    pub fn remove(&self, key: &VariantKey) {
        self.objects.invalidate(key);
    }

    /// Objects held (approximate until pending work is run).
    pub fn object_count(&self) -> u64 {
        self.objects.entry_count()
    }

    /// Bytes held, as weighed (approximate until pending work is run).
    pub fn weighted_bytes(&self) -> u64 {
        self.objects.weighted_size()
    }

    /// Runs the store's pending maintenance (admission, eviction), so counts are exact.
    pub fn run_pending_tasks(&self) {
        self.objects.run_pending_tasks();
    }
}
