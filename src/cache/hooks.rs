//! What another part may attach to the store: it is told each object that is stored and each one that leaves, and
//! it screens every object a lookup finds before the lookup returns it (purge uses this for its tag index and for
//! invalidating objects older than a purge, at every lookup of every path).

use std::sync::Arc;

use super::key::VariantKey;
use super::object::CachedObject;

/// What a lookup does with an object it found, as the hooks decide.
pub enum Screened {
    /// Return it as stored.
    Keep,
    /// It must not be served: remove it, and the lookup is a miss.
    Remove,
    /// Return this object in its place (for instance the same object marked stale); the store is not changed.
    Replace(Arc<CachedObject>),
}

/// Observers of the store. Calls are made on the request's own thread: keep them short.
pub trait StoreHooks: Send + Sync {
    /// An object found by a lookup at the key whose text is `key`, before the lookup returns it.
    fn screen(&self, key: &str, object: &Arc<CachedObject>) -> Screened;

    /// An object was stored under `key` (one larger than a shard of the store holds leaves at once, `size`).
    fn stored(&self, key: &VariantKey, object: &CachedObject);

    /// An object left the store. `replaced`: another object took its place under the same key.
    fn left(&self, key: &VariantKey, object: &CachedObject, replaced: bool);
}
