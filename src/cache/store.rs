//! The in-memory store: moka weighted by bytes with TinyLFU admission, plus the index of which request fields
//! each URL varies on. Lookup turns a request into a hit, a vary-miss or a miss; invalidation removes every variant
//! of a URL.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::hooks::{Screened, StoreHooks};
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
    Vary(Arc<VaryRecord>),
}

/// The vary record of a URL: the fields its responses vary on, the generation its variant keys carry, and the keys
/// of the variants stored under it. A record that is removed (invalidation) or replaced (the fields changed) takes
/// its generation with it, so variants stored under it can never be found again; the key list lets invalidation
/// free them at once instead of waiting for them to expire.
struct VaryRecord {
    spec: VarySpec,
    generation: u64,
    variants: Mutex<HashSet<VariantKey>>,
}

/// A record's key list is pruned of keys no longer in the store once it grows past this.
const VARY_RECORD_PRUNE_AT: usize = 256;

/// Bytes charged for a vary record beyond its key.
const VARY_RECORD_BYTES: u32 = 128;

/// How long a URL's vary record is kept after it was last written.
const VARY_RECORD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The shared cache of one node. A URL whose response has no `Vary` is one lookup; a URL that varies keeps a vary
/// record under its primary key and its variants under variant keys (two lookups).
pub struct Store {
    slots: Cache<VariantKey, Slot>,
    max_object_size: u64,
    /// The next vary record's generation.
    next_generation: AtomicU64,
    /// Observers attached once, after the store is built (purge).
    hooks: Arc<OnceLock<Arc<dyn StoreHooks>>>,
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
        let hooks: Arc<OnceLock<Arc<dyn StoreHooks>>> = Arc::new(OnceLock::new());
        let listener_hooks = hooks.clone();
        let slots = Cache::builder()
            .max_capacity(memory)
            .weigher(|key: &VariantKey, slot: &Slot| match slot {
                Slot::Object(object) => object.weight(key.as_str().len()),
                Slot::Vary(_) => VARY_RECORD_BYTES + u32::try_from(key.as_str().len()).unwrap_or(u32::MAX),
            })
            .expire_after(KeepFor)
            .eviction_listener(move |key, slot, cause| {
                let Slot::Object(object) = slot else { return };
                if let Some(hooks) = listener_hooks.get() {
                    hooks.left(&key, &object, cause == RemovalCause::Replaced);
                }
                on_evict(match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Explicit => "explicit",
                })
            })
            .build();
        Store { slots, max_object_size, next_generation: AtomicU64::new(1), hooks }
    }

    /// Attaches the store's observers (once; a second call is ignored and returns false).
    pub fn set_hooks(&self, hooks: Arc<dyn StoreHooks>) -> bool {
        self.hooks.set(hooks).is_ok()
    }

    /// The found object at `key` as the hooks screen it; `miss` is the lookup's answer if it must not be served.
    fn screened(&self, key: VariantKey, object: Arc<CachedObject>, miss: fn(VariantKey) -> Lookup) -> Lookup {
        let Some(hooks) = self.hooks.get() else { return Lookup::Found(key, object) };
        match hooks.screen(&key, &object) {
            Screened::Keep => Lookup::Found(key, object),
            Screened::Replace(object) => Lookup::Found(key, object),
            Screened::Remove => {
                self.slots.invalidate(&key);
                miss(key)
            }
        }
    }

    fn put(&self, key: VariantKey, object: Arc<CachedObject>) {
        if let Some(hooks) = self.hooks.get() {
            hooks.stored(&key, &object);
        }
        self.slots.insert(key, Slot::Object(object));
    }

    /// Largest body this store keeps.
    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// Finds the variant a request selects.
    pub fn lookup(&self, primary: &PrimaryKey, request: &HeaderMap) -> Lookup {
        let primary_key = VariantKey::primary(primary);
        let record = match self.slots.get(&primary_key) {
            None => return Lookup::UriMiss(primary_key),
            Some(Slot::Object(object)) => return self.screened(primary_key, object, Lookup::UriMiss),
            Some(Slot::Vary(record)) => record,
        };
        // `Vary: *` is never stored (policy refuses it), so a vary record always names fields.
        let Some(key) = VariantKey::new(primary, &record.spec, request) else { return Lookup::UriMiss(primary_key) };
        let key = key.in_generation(record.generation);
        match self.slots.get(&key) {
            Some(Slot::Object(object)) => self.screened(key, object, Lookup::VaryMiss),
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
        let primary_key = VariantKey::primary(primary);
        let current = self.slots.get(&primary_key);
        if spec == VarySpec::None {
            // The URL stops varying: the object takes the record's place, and the record's variants go.
            if let Some(Slot::Vary(record)) = current {
                self.remove_variants(&record);
            }
            self.put(key, Arc::new(object));
            return true;
        }
        let record = match current {
            Some(Slot::Vary(record)) if record.spec == spec => record,
            previous => {
                if let Some(Slot::Vary(record)) = previous {
                    self.remove_variants(&record);
                }
                let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
                let record = Arc::new(VaryRecord { spec, generation, variants: Mutex::new(HashSet::new()) });
                self.slots.insert(primary_key, Slot::Vary(record.clone()));
                record
            }
        };
        let key = key.in_generation(record.generation);
        if let Ok(mut variants) = record.variants.lock() {
            if variants.len() >= VARY_RECORD_PRUNE_AT {
                variants.retain(|known| self.slots.contains_key(known));
            }
            variants.insert(key.clone());
        }
        self.put(key, Arc::new(object));
        true
    }

    /// Removes every stored response of a URL: its object, or its vary record and every variant stored under it
    /// (RFC 9111 §4.4). Returns whether anything was stored. A variant being stored concurrently under the removed
    /// record is stored under its old generation and is never found.
    pub fn invalidate_uri(&self, primary: &PrimaryKey) -> bool {
        match self.slots.remove(&VariantKey::primary(primary)) {
            Some(Slot::Vary(record)) => {
                self.remove_variants(&record);
                true
            }
            Some(Slot::Object(_)) => true,
            None => false,
        }
    }

    fn remove_variants(&self, record: &VaryRecord) {
        let keys: Vec<VariantKey> = match record.variants.lock() {
            Ok(mut variants) => variants.drain().collect(),
            Err(_) => return,
        };
        for key in keys {
            self.slots.invalidate(&key);
        }
    }

    /// Replaces a stored variant under its existing key (after a 304 refreshed it).
    pub fn replace(&self, key: VariantKey, object: CachedObject) {
        self.put(key, Arc::new(object));
    }

    /// Removes every stored object for which `matches` holds (a scan of the whole store); returns how many.
    pub fn remove_matching(&self, matches: impl Fn(&VariantKey, &CachedObject) -> bool) -> usize {
        let mut removed = 0;
        for (key, slot) in self.slots.iter() {
            if let Slot::Object(object) = slot
                && matches(&key, &object)
            {
                self.slots.invalidate(key.as_ref());
                removed += 1;
            }
        }
        removed
    }

    /// Removes everything.
    pub fn clear(&self) {
        self.slots.invalidate_all();
    }

    /// Stores `object` again under `key` if the key still holds this very object, so that the store weighs it
    /// anew (an encoded variant was added to it). Anything that replaced or removed it in between (a purge, a new
    /// fetch) wins: this never brings an object back.
    pub fn reweigh(&self, key: &VariantKey, object: &Arc<CachedObject>) {
        use moka::ops::compute::Op;
        self.slots.entry_by_ref(key).and_compute_with(|entry| match entry {
            Some(entry) if matches!(entry.value(), Slot::Object(current) if Arc::ptr_eq(current, object)) => {
                Op::Put(entry.into_value())
            }
            _ => Op::Nop,
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Freshness;
    use http::{HeaderValue, StatusCode, Uri};

    fn store() -> Store {
        Store::new(1 << 20, 1 << 16, Box::new(|_| {}))
    }

    fn object(body: &'static str, vary: Option<&'static str>) -> CachedObject {
        let mut headers = HeaderMap::new();
        if let Some(vary) = vary {
            headers.insert(http::header::VARY, HeaderValue::from_static(vary));
        }
        let freshness = Freshness {
            received: SystemTime::now(),
            initial_age: Duration::ZERO,
            fresh_for: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            immutable: false,
        };
        CachedObject { status: StatusCode::OK, headers, body: body.into(), freshness, encoded: Default::default() }
    }

    fn lang(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", HeaderValue::from_static(value));
        headers
    }

    fn body_of(lookup: Lookup) -> Option<String> {
        match lookup {
            Lookup::Found(_, object) => Some(String::from_utf8_lossy(&object.body).into_owned()),
            Lookup::UriMiss(_) | Lookup::VaryMiss(_) => None,
        }
    }

    #[test]
    fn invalidate_uri_removes_a_plain_object() {
        let store = store();
        let url = PrimaryKey::new("http", "h", &Uri::from_static("/a"));
        store.insert(&url, &HeaderMap::new(), object("a", None));
        assert_eq!(body_of(store.lookup(&url, &HeaderMap::new())).as_deref(), Some("a"));
        assert!(store.invalidate_uri(&url));
        assert!(matches!(store.lookup(&url, &HeaderMap::new()), Lookup::UriMiss(_)));
        assert!(!store.invalidate_uri(&url), "nothing left to invalidate");
    }

    #[test]
    fn invalidate_uri_removes_every_variant_and_they_never_come_back() {
        let store = store();
        let url = PrimaryKey::new("http", "h", &Uri::from_static("/v"));
        let other = PrimaryKey::new("http", "h", &Uri::from_static("/other"));
        store.insert(&url, &lang("fr"), object("fr", Some("accept-language")));
        store.insert(&url, &lang("de"), object("de", Some("accept-language")));
        store.insert(&other, &lang("fr"), object("other", Some("accept-language")));
        assert_eq!(body_of(store.lookup(&url, &lang("de"))).as_deref(), Some("de"));

        assert!(store.invalidate_uri(&url));
        assert!(matches!(store.lookup(&url, &lang("fr")), Lookup::UriMiss(_)));
        // A new variant re-creates the vary record: the old variants must not be found through it.
        store.insert(&url, &lang("fr"), object("fr2", Some("accept-language")));
        assert_eq!(body_of(store.lookup(&url, &lang("fr"))).as_deref(), Some("fr2"));
        assert!(matches!(store.lookup(&url, &lang("de")), Lookup::VaryMiss(_)), "the old de variant is gone");
        // Other URLs are untouched.
        assert_eq!(body_of(store.lookup(&other, &lang("fr"))).as_deref(), Some("other"));
        // And the removed variants' memory is freed, not just unreachable.
        store.run_pending_tasks();
        assert_eq!(store.object_count(), 4, "two records and one variant each");
    }

    #[test]
    fn reweigh_charges_encoded_variants_and_never_revives_a_removed_object() {
        let store = store();
        let url = PrimaryKey::new("http", "h", &Uri::from_static("/e"));
        store.insert(&url, &HeaderMap::new(), object("plain", None));
        let Lookup::Found(key, found) = store.lookup(&url, &HeaderMap::new()) else { panic!("stored") };
        store.run_pending_tasks();
        let before = store.weighted_bytes();
        assert!(found.encoded.set(crate::compress::Coding::Br, vec![0u8; 1000].into()));
        store.reweigh(&key, &found);
        store.run_pending_tasks();
        assert_eq!(store.weighted_bytes(), before + 1000);
        assert!(store.invalidate_uri(&url));
        store.reweigh(&key, &found);
        assert!(matches!(store.lookup(&url, &HeaderMap::new()), Lookup::UriMiss(_)), "a purge wins");
    }

    #[test]
    fn a_changed_vary_field_list_drops_the_old_variants() {
        let store = store();
        let url = PrimaryKey::new("http", "h", &Uri::from_static("/c"));
        store.insert(&url, &lang("fr"), object("by-lang", Some("accept-language")));
        store.insert(&url, &lang("fr"), object("by-encoding", Some("accept-encoding")));
        store.insert(&url, &lang("fr"), object("by-lang-again", Some("accept-language")));
        assert_eq!(body_of(store.lookup(&url, &lang("fr"))).as_deref(), Some("by-lang-again"));
        store.insert(&url, &lang("fr"), object("plain", None));
        assert_eq!(body_of(store.lookup(&url, &lang("de"))).as_deref(), Some("plain"));
        store.run_pending_tasks();
        assert_eq!(store.object_count(), 1);
    }
}
