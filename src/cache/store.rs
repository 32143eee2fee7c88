//! The in-memory store: quick_cache (S3-FIFO, weighted by bytes, see `slots.rs`) plus the index of which request
//! fields each URL varies on. Lookup turns a request into a hit, a vary-miss or a miss; invalidation removes every
//! variant of a URL. An object past its `keep_for` is absent: a lookup that finds one removes it, and
//! [`Store::run_pending_tasks`] (every [`SWEEP_INTERVAL`] once [`Store::spawn_sweeper`] runs) frees all of them.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use quick_cache::sync::{EntryAction, EntryResult};

use super::hooks::{Screened, StoreHooks};
use super::key::{FoundAt, PrimaryKey, VariantKey, VarySpec};
use super::object::CachedObject;
use super::slots::{self, Clock, Held, Map, Slot, VaryRecord};

/// What the store holds for a request.
pub enum Lookup {
    /// A stored variant matches (at the URL's primary key or at a variant key).
    Found(FoundAt, Arc<CachedObject>),
    /// Nothing for this URL.
    UriMiss(VariantKey),
    /// The URL has stored variants, but not the one this request selects.
    VaryMiss(VariantKey),
}

/// Called with the reason (`size`, `expired`, `replaced`, `explicit`) each time an object leaves the store.
pub type EvictionHook = Box<dyn Fn(&'static str) + Send + Sync>;

/// A record's key list is pruned of keys no longer in the store once it grows past this.
const VARY_RECORD_PRUNE_AT: usize = 256;

/// Bytes charged for a vary record beyond its key (estimated: the record, its key's allocation, its set of
/// variant keys while small, the map entry).
const VARY_RECORD_BYTES: u32 = 320;

/// How long a URL's vary record is kept after it was last written.
const VARY_RECORD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How often [`Store::spawn_sweeper`] frees the objects that expired.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why a slot left the map.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cause {
    Size,
    Expired,
    Replaced,
    Explicit,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Size => "size",
            Cause::Expired => "expired",
            Cause::Replaced => "replaced",
            Cause::Explicit => "explicit",
        }
    }
}

/// The shared cache of one node. A URL whose response has no `Vary` is one lookup; a URL that varies keeps a vary
/// record under its primary key and its variants under variant keys (two lookups).
pub struct Store {
    slots: Map,
    clock: Clock,
    max_object_size: u64,
    /// The next vary record's generation.
    next_generation: AtomicU64,
    /// Observers attached once, after the store is built (purge).
    hooks: OnceLock<Arc<dyn StoreHooks>>,
    on_evict: EvictionHook,
}

impl Store {
    /// A store of at most `memory` bytes holding objects of at most `max_object_size` bytes.
    pub fn new(memory: u64, max_object_size: u64, on_evict: EvictionHook) -> Store {
        let max_weight = max_object_size.saturating_add(CachedObject::FIXED_WEIGHT as u64);
        Store {
            slots: slots::map(memory, max_weight),
            clock: Clock::new(),
            max_object_size,
            next_generation: AtomicU64::new(1),
            hooks: OnceLock::new(),
            on_evict,
        }
    }

    /// Attaches the store's observers (once; a second call is ignored and returns false).
    pub fn set_hooks(&self, hooks: Arc<dyn StoreHooks>) -> bool {
        self.hooks.set(hooks).is_ok()
    }

    /// Frees the expired objects every [`SWEEP_INTERVAL`] for as long as the store is in use (on the runtime's
    /// blocking threads). Lookups never return an expired object either way; this gives its memory back.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(store) = weak.upgrade() else { return };
                if tokio::task::spawn_blocking(move || store.run_pending_tasks()).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Tells the observers and the eviction hook that what `held` held left `key`.
    fn left(&self, key: &VariantKey, held: &Held, cause: Cause) {
        self.left_for(key, held, cause, cause == Cause::Replaced);
    }

    /// [`Store::left`], saying whether another object now holds the key (`left(.., replaced)` of the hooks).
    fn left_for(&self, key: &VariantKey, held: &Held, cause: Cause, by_object: bool) {
        match held {
            Held::Object { object, .. } => {
                if let Some(hooks) = self.hooks.get() {
                    hooks.left(key, object, by_object);
                }
                (self.on_evict)(cause.as_str());
            }
            // A record that expired, was removed or was pushed out for room: its variants can never be found
            // again. One that was replaced: whoever replaced it dealt with them.
            Held::Vary { record, .. } if cause != Cause::Replaced => self.remove_variants(record),
            Held::Vary { .. } => {}
        }
    }

    /// Removes `slot` from `key` if the key still holds that very slot.
    fn remove_if_same(&self, key: &str, slot: &Slot, cause: Cause) -> bool {
        match self.slots.remove_if(key, |held| slot.is_in(held)) {
            Some((key, held)) => {
                self.left(&key, &held, cause);
                true
            }
            None => false,
        }
    }

    /// The slot at `key`, unless it expired (then it is removed).
    fn get(&self, key: &str) -> Option<Slot> {
        let held = self.slots.get(key)?;
        if held.expires() > self.clock.now() {
            return Some(held.into_slot());
        }
        self.remove_if_same(key, &held.into_slot(), Cause::Expired);
        None
    }

    /// The found object at `key` as the hooks screen it; `miss` is the lookup's answer if it must not be served.
    fn screened(
        &self,
        primary: &PrimaryKey,
        at: FoundAt,
        object: Arc<CachedObject>,
        miss: fn(VariantKey) -> Lookup,
    ) -> Lookup {
        let Some(hooks) = self.hooks.get() else { return Lookup::Found(at, object) };
        let key = match &at {
            FoundAt::Primary => primary.as_str(),
            FoundAt::Variant(key) => key.as_str(),
        };
        match hooks.screen(key, &object) {
            Screened::Keep => Lookup::Found(at, object),
            Screened::Replace(object) => Lookup::Found(at, object),
            Screened::Remove => {
                self.remove_if_same(key, &Slot::Object(object), Cause::Explicit);
                miss(VariantKey::from_text(key))
            }
        }
    }

    /// Writes `slot` at `key`, then tells the observers what left the map meanwhile.
    fn write(&self, key: VariantKey, slot: Slot) {
        let now = SystemTime::now();
        let key_len = key.as_str().len();
        let (weight, keep) = match &slot {
            Slot::Object(object) => (object.weight(key_len), object.keep_for(now)),
            Slot::Vary(_) => {
                (VARY_RECORD_BYTES.saturating_add(u32::try_from(key_len).unwrap_or(u32::MAX)), VARY_RECORD_LIFETIME)
            }
        };
        let held = Held::new(slot.clone(), weight, self.clock.after(keep));
        let mut out = Vec::new();
        self.slots.insert_with_lifecycle(key.clone(), held, &mut out);
        // Refused (larger than a shard may hold) or pushed out at once: the old slot was not replaced by it.
        let refused = out.iter().any(|(_, held)| slot.is_in(held));
        for (gone, held) in out {
            if gone == key && !slot.is_in(&held) && !refused {
                // What the write took the place of (for a record: the writer dealt with its variants).
                self.left_for(&gone, &held, Cause::Replaced, matches!(slot, Slot::Object(_)));
            } else {
                self.left(&gone, &held, Cause::Size);
            }
        }
    }

    fn put(&self, key: VariantKey, object: Arc<CachedObject>) {
        if let Some(hooks) = self.hooks.get() {
            hooks.stored(&key, &object);
        }
        self.write(key, Slot::Object(object));
    }

    /// Largest body this store keeps.
    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    /// Finds the variant a request selects.
    pub fn lookup(&self, primary: &PrimaryKey, request: &HeaderMap) -> Lookup {
        // Searched by the primary key's text: a hit on a URL that does not vary makes no key.
        let record = match self.get(primary.as_str()) {
            None => return Lookup::UriMiss(VariantKey::primary(primary)),
            Some(Slot::Object(object)) => {
                return self.screened(primary, FoundAt::Primary, object, Lookup::UriMiss);
            }
            Some(Slot::Vary(record)) => record,
        };
        // `Vary: *` is never stored (policy refuses it), so a vary record always names fields.
        let Some(key) = VariantKey::new(primary, &record.spec, request) else {
            return Lookup::UriMiss(VariantKey::primary(primary));
        };
        let key = key.in_generation(record.generation);
        match self.get(key.as_str()) {
            Some(Slot::Object(object)) => self.screened(primary, FoundAt::Variant(key), object, Lookup::VaryMiss),
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
        let current = self.get(primary_key.as_str());
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
                self.write(primary_key, Slot::Vary(record.clone()));
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
            Some((key, held)) => {
                self.left(&key, &held, Cause::Explicit);
                true
            }
            None => false,
        }
    }

    fn remove_variants(&self, record: &VaryRecord) {
        let keys: Vec<VariantKey> = match record.variants.lock() {
            Ok(mut variants) => variants.drain().collect(),
            Err(_) => return,
        };
        for key in keys {
            self.remove(&key);
        }
    }

    /// Replaces a stored variant under its existing key (after a 304 refreshed it).
    pub fn replace(&self, key: VariantKey, object: CachedObject) {
        self.put(key, Arc::new(object));
    }

    /// Removes every stored object for which `matches` holds (a scan of the whole store); returns how many. An
    /// object stored in its place meanwhile stays.
    pub fn remove_matching(&self, matches: impl Fn(&VariantKey, &CachedObject) -> bool) -> usize {
        let mut removed = 0;
        for (key, held) in self.slots.iter() {
            if let Held::Object { object, .. } = &held
                && matches(&key, object)
                && self.remove_if_same(key.as_str(), &Slot::Object(object.clone()), Cause::Explicit)
            {
                removed += 1;
            }
        }
        removed
    }

    /// Removes everything.
    pub fn clear(&self) {
        for (key, held) in self.slots.drain() {
            self.left(&key, &held, Cause::Explicit);
        }
    }

    /// Charges `object` anew under `key` if the key still holds this very object (an encoded variant was added to
    /// it). Anything that replaced or removed it in between (a purge, a new fetch) wins: this never brings an
    /// object back.
    pub fn reweigh(&self, key: &VariantKey, object: &Arc<CachedObject>) {
        if !self.slots.peek(key).is_some_and(|held| held.holds(object)) {
            return;
        }
        let weight = object.weight(key.as_str().len());
        let result = self.slots.entry(key, Some(Duration::ZERO), |_, held| {
            if held.holds(object) {
                held.set_weight(weight);
            }
            EntryAction::Retain(())
        });
        // Removed since the peek: the guard it returns is dropped unused, so nothing is stored.
        if let EntryResult::Vacant(guard) = result {
            drop(guard);
        }
    }

    /// Removes one variant.
    pub fn remove(&self, key: &VariantKey) {
        if let Some((key, held)) = self.slots.remove(key) {
            self.left(&key, &held, Cause::Explicit);
        }
    }

    /// Entries held: objects, plus one vary record per URL whose responses vary (expired ones count until
    /// [`Store::run_pending_tasks`] frees them).
    pub fn object_count(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Bytes held, as weighed (expired objects count until [`Store::run_pending_tasks`] frees them).
    pub fn weighted_bytes(&self) -> u64 {
        self.slots.weight()
    }

    /// Frees every expired object (a scan of the whole store, one shard at a time), so counts are exact.
    pub fn run_pending_tasks(&self) {
        let now = self.clock.now();
        let expired = RefCell::new(Vec::new());
        self.slots.retain(|key, held| {
            if held.expires() > now {
                return true;
            }
            expired.borrow_mut().push((key.clone(), held.clone()));
            false
        });
        for (key, held) in expired.into_inner() {
            self.left(&key, &held, Cause::Expired);
        }
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
        lasting(body, vary, Duration::from_secs(60))
    }

    /// An object without validators, kept `fresh_for` and no longer.
    fn lasting(body: &'static str, vary: Option<&'static str>, fresh_for: Duration) -> CachedObject {
        let mut headers = HeaderMap::new();
        if let Some(vary) = vary {
            headers.insert(http::header::VARY, HeaderValue::from_static(vary));
        }
        let freshness = Freshness {
            received: SystemTime::now(),
            initial_age: Duration::ZERO,
            fresh_for,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            immutable: false,
        };
        CachedObject::new(StatusCode::OK, &headers, body.into(), freshness)
    }

    /// What the hooks and the eviction hook were told, in order: `stored key body`, `left key body replaced`,
    /// and the eviction reasons.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>);

    impl Told {
        fn push(&self, line: String) {
            self.0.lock().expect("told").push(line);
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().expect("told"))
        }
    }

    struct Recorder(Arc<Told>);

    impl StoreHooks for Recorder {
        fn screen(&self, _: &str, _: &Arc<CachedObject>) -> Screened {
            Screened::Keep
        }

        fn stored(&self, key: &VariantKey, object: &CachedObject) {
            self.0.push(format!("stored {} {}", key.as_str(), String::from_utf8_lossy(&object.body)));
        }

        fn left(&self, key: &VariantKey, object: &CachedObject, replaced: bool) {
            let body = String::from_utf8_lossy(&object.body);
            self.0.push(format!("left {} {body} {}", key.as_str(), if replaced { "replaced" } else { "gone" }));
        }
    }

    /// A store of `memory` bytes whose hooks and evictions are told to the returned record.
    fn watched(memory: u64, max_object_size: u64) -> (Store, Arc<Told>) {
        let told = Arc::new(Told::default());
        let reasons = told.clone();
        let store =
            Store::new(memory, max_object_size, Box::new(move |reason| reasons.push(format!("evicted {reason}"))));
        assert!(store.set_hooks(Arc::new(Recorder(told.clone()))));
        (store, told)
    }

    fn url(path: &'static str) -> PrimaryKey {
        PrimaryKey::new("http", "h", &Uri::from_static(path))
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
        let Lookup::Found(FoundAt::Variant(key), _) = store.lookup(&url, &lang("de")) else {
            panic!("a variant is found at its variant key")
        };
        assert!(key.as_str().starts_with(url.as_str()) && key.as_str().contains("accept-language:de"), "{key:?}");

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
        let Lookup::Found(at, found) = store.lookup(&url, &HeaderMap::new()) else { panic!("stored") };
        assert_eq!(at, FoundAt::Primary, "a response that does not vary is found at its URL's key");
        let key = at.key(&url);
        store.run_pending_tasks();
        let before = store.weighted_bytes();
        assert!(found.encoded.set(crate::compress::Coding::Br, vec![0u8; 1000].into()));
        store.reweigh(&key, &found);
        store.run_pending_tasks();
        assert_eq!(store.weighted_bytes(), before + 1000 + found.encoded.slots_bytes() as u64);
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

    #[test]
    fn an_expired_object_is_absent_and_the_lookup_that_finds_it_frees_it() {
        let (store, told) = watched(1 << 20, 1 << 16);
        store.insert(&url("/x"), &HeaderMap::new(), lasting("x", None, Duration::from_millis(40)));
        assert_eq!(body_of(store.lookup(&url("/x"), &HeaderMap::new())).as_deref(), Some("x"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(store.lookup(&url("/x"), &HeaderMap::new()), Lookup::UriMiss(_)));
        assert_eq!((store.object_count(), store.weighted_bytes()), (0, 0), "its memory is freed");
        assert_eq!(told.take(), ["stored http://h/x x", "left http://h/x x gone", "evicted expired"]);
    }

    #[test]
    fn the_sweep_frees_expired_objects_and_variants_nobody_looks_up() {
        let (store, told) = watched(1 << 20, 1 << 16);
        store.insert(&url("/short"), &HeaderMap::new(), lasting("short", None, Duration::from_millis(40)));
        store.insert(&url("/long"), &HeaderMap::new(), object("long", None));
        store.insert(&url("/v"), &lang("fr"), lasting("fr", Some("accept-language"), Duration::from_millis(40)));
        store.run_pending_tasks();
        assert_eq!(store.object_count(), 4, "nothing expired yet: two objects, a record and its variant");
        std::thread::sleep(Duration::from_millis(60));
        told.take();
        store.run_pending_tasks();
        assert_eq!(store.object_count(), 2, "the long-lived object and the vary record stay");
        let mut told = told.take();
        told.sort();
        let variant = "left http://h/v\naccept-language:fr\n#1 fr gone";
        assert_eq!(told, ["evicted expired", "evicted expired", "left http://h/short short gone", variant]);
        assert_eq!(body_of(store.lookup(&url("/long"), &HeaderMap::new())).as_deref(), Some("long"));
    }

    #[test]
    fn objects_are_evicted_by_weight_and_the_hooks_are_told() {
        let memory = 64 << 10;
        let (store, told) = watched(memory, 4 << 10);
        let body: &'static str = Box::leak("b".repeat(2000).into_boxed_str());
        for i in 0..100 {
            let key = PrimaryKey::new("http", "h", &format!("/o{i}").parse().expect("uri"));
            assert!(store.insert(&key, &HeaderMap::new(), object(body, None)));
        }
        assert!(store.weighted_bytes() <= memory, "{} > {memory}", store.weighted_bytes());
        let held = store.object_count();
        assert!(held > 0 && held < 100, "{held} objects held");
        let told = told.take();
        let evicted = told.iter().filter(|line| *line == "evicted size").count() as u64;
        let left = told.iter().filter(|line| line.starts_with("left ") && line.ends_with(" gone")).count() as u64;
        assert_eq!((evicted, left), (100 - held, 100 - held), "every object that left was told once");
    }

    #[test]
    fn the_hooks_learn_whether_an_object_that_left_was_replaced() {
        let (store, told) = watched(1 << 20, 1 << 16);
        store.insert(&url("/r"), &HeaderMap::new(), object("one", None));
        store.insert(&url("/r"), &HeaderMap::new(), object("two", None));
        let Lookup::Found(at, _) = store.lookup(&url("/r"), &HeaderMap::new()) else { panic!("stored") };
        let key = at.key(&url("/r"));
        store.replace(key.clone(), object("three", None));
        store.remove(&key);
        store.insert(&url("/r"), &HeaderMap::new(), object("four", None));
        assert!(store.invalidate_uri(&url("/r")));
        store.insert(&url("/r"), &HeaderMap::new(), object("five", None));
        store.clear();
        assert_eq!(
            told.take(),
            [
                "stored http://h/r one",
                "stored http://h/r two",
                "left http://h/r one replaced",
                "evicted replaced",
                "stored http://h/r three",
                "left http://h/r two replaced",
                "evicted replaced",
                "left http://h/r three gone",
                "evicted explicit",
                "stored http://h/r four",
                "left http://h/r four gone",
                "evicted explicit",
                "stored http://h/r five",
                "left http://h/r five gone",
                "evicted explicit",
            ]
        );
        assert_eq!(store.object_count(), 0);
    }

    #[test]
    fn reweigh_leaves_an_object_that_took_the_place_alone() {
        let store = store();
        store.insert(&url("/w"), &HeaderMap::new(), object("old", None));
        let Lookup::Found(at, old) = store.lookup(&url("/w"), &HeaderMap::new()) else { panic!("stored") };
        let key = at.key(&url("/w"));
        store.insert(&url("/w"), &HeaderMap::new(), object("new", None));
        let before = store.weighted_bytes();
        assert!(old.encoded.set(crate::compress::Coding::Gzip, vec![0u8; 1000].into()));
        store.reweigh(&key, &old);
        assert_eq!(store.weighted_bytes(), before);
        assert_eq!(body_of(store.lookup(&url("/w"), &HeaderMap::new())).as_deref(), Some("new"));
    }
}
