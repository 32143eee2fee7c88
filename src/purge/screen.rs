//! The screen every lookup passes through (the store's hooks): an object whose content left the origin before a
//! purge that selects it is removed (hard) or handed out stale (soft); while the node is catching up after a pause,
//! objects older than the pause are handed out for revalidation. It also keeps the tag index as objects come and go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::log::{now_ms, unix_ms};
use super::matcher::{Clock, KeyParts, Verdict};
use super::sync::Liveness;
use super::tags::{self, TagIndex};
use crate::cache::{CachedObject, Screened, StoreHooks, VariantKey};

/// What the store's hooks and the purge service share: everything a lookup needs to judge an object.
pub struct Screen {
    pub(super) clock: RwLock<Clock>,
    /// Objects whose content left the origin before this (Unix ms) must be revalidated: entries the log's size
    /// cap dropped, or a catch-up that could not reach every peer.
    pub(super) revalidate_before: AtomicU64,
    pub(super) liveness: Liveness,
    pub(super) tags: TagIndex,
    /// The longest lifetime (age at arrival + freshness + stale windows) of any object stored, in ms.
    pub(super) longest_lifetime_ms: AtomicU64,
    /// `edgecache_purge_tag_index_entries`, kept current as objects come and go.
    pub(super) tag_gauge: prometheus::IntGauge,
}

/// When an object's content left the origin, in Unix ms: its received time minus its initial age (which includes
/// the `Age` of every tier above and the apparent age from `Date`; both are whole seconds, so this errs early).
pub fn origin_ms(object: &CachedObject) -> u64 {
    let f = object.freshness();
    unix_ms(f.received.checked_sub(f.initial_age).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// The same object, stale since `since_ms` (or now, if that is later than now); `must_revalidate` also closes its
/// stale windows. Its lifetime is kept (what freshness loses goes to the initial age), so the `Age` it is served
/// with says it is stale since the purge: a tier below sees it stale too, whether or not it knows the purge.
fn stale_copy(object: &CachedObject, since_ms: u64, must_revalidate: bool) -> CachedObject {
    let mut copy = object.clone();
    let mut f = object.freshness();
    let received = unix_ms(f.received);
    let held = now_ms().saturating_sub(received);
    let fresh_ms = since_ms.saturating_sub(received).min(held.saturating_sub(1));
    let fresh_for = f.fresh_for.min(Duration::from_millis(fresh_ms));
    f.initial_age += f.fresh_for - fresh_for;
    f.fresh_for = fresh_for;
    f.must_revalidate |= must_revalidate;
    copy.set_freshness(f);
    copy
}

/// The screen without the tag index, for stores other than the main one.
pub(super) struct ScreenOnly(pub(super) Arc<Screen>);

impl StoreHooks for ScreenOnly {
    fn screen(&self, key: &str, object: &Arc<CachedObject>) -> Screened {
        self.0.screen(key, object)
    }

    fn stored(&self, _: &VariantKey, _: &CachedObject) {}

    fn left(&self, _: &VariantKey, _: &CachedObject, _: bool) {}
}

impl StoreHooks for Screen {
    fn screen(&self, key: &str, object: &Arc<CachedObject>) -> Screened {
        let unsynced = self.liveness.unsynced_before();
        let floor = self.revalidate_before.load(Ordering::Relaxed);
        let Ok(clock) = self.clock.read() else { return Screened::Keep };
        if unsynced.is_none() && floor == 0 && clock.is_empty() {
            return Screened::Keep;
        }
        let origin = origin_ms(object);
        let tagged = clock.has_tags() && tags::has_tags(&object.headers);
        let tags = tagged.then(|| tags::iter(&object.headers)).into_iter().flatten();
        match clock.verdict(&KeyParts::of(key), tags, origin) {
            Verdict::Purged => Screened::Remove,
            Verdict::StaleSince(at) => Screened::Replace(Arc::new(stale_copy(object, at, false))),
            Verdict::Valid => {
                let before = floor.max(unsynced.unwrap_or(0));
                if origin < before {
                    Screened::Replace(Arc::new(stale_copy(object, before, true)))
                } else {
                    Screened::Keep
                }
            }
        }
    }

    fn stored(&self, key: &VariantKey, object: &CachedObject) {
        let f = object.freshness();
        let lifetime = f.initial_age + f.fresh_for + f.stale_while_revalidate.max(f.stale_if_error);
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.longest_lifetime_ms.fetch_max(lifetime_ms, Ordering::Relaxed);
        if tags::has_tags(&object.headers) {
            self.tags.add(key, &tags::of(&object.headers));
            self.tag_gauge.set(i64::try_from(self.tags.len()).unwrap_or(i64::MAX));
        }
    }

    fn left(&self, key: &VariantKey, object: &CachedObject, replaced: bool) {
        // A replaced object's key stays in the index for the object that took its place.
        if !replaced && tags::has_tags(&object.headers) {
            self.tags.remove(key, tags::iter(&object.headers));
            self.tag_gauge.set(i64::try_from(self.tags.len()).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Freshness;
    use http::StatusCode;

    fn object(received_ago: u64, initial_age: u64, fresh_for: u64) -> CachedObject {
        let freshness = Freshness {
            received: SystemTime::now() - Duration::from_secs(received_ago),
            initial_age: Duration::from_secs(initial_age),
            fresh_for: Duration::from_secs(fresh_for),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: false,
            immutable: false,
        };
        CachedObject::new(StatusCode::OK, &http::HeaderMap::new(), "b".into(), freshness)
    }

    #[test]
    fn the_origin_time_counts_the_age_it_arrived_with() {
        let o = object(10, 5, 100);
        let expected = now_ms() - 15_000;
        assert!(origin_ms(&o).abs_diff(expected) < 50, "{} vs {expected}", origin_ms(&o));
    }

    #[test]
    fn a_stale_copy_says_so_in_its_age_and_keeps_its_lifetime() {
        let o = object(10, 5, 100);
        let now = SystemTime::now();
        let purged_at = now_ms() - 2_000;
        let copy = stale_copy(&o, purged_at, false);
        assert!(!copy.freshness().is_fresh(now));
        let lifetime = Duration::from_secs(105);
        let age = copy.freshness().age(now);
        assert!(age >= lifetime + Duration::from_millis(1_900), "served with Age {age:?}: stale to a tier below");
        assert!(copy.freshness().staleness(now) >= Duration::from_millis(1_900), "stale since the purge");
        assert_eq!(copy.freshness().initial_age + copy.freshness().fresh_for, lifetime);
        assert!(stale_copy(&o, purged_at, true).freshness().must_revalidate);
        // A purge "in the future" (a clock ahead) still makes it stale now.
        assert!(!stale_copy(&o, now_ms() + 60_000, false).freshness().is_fresh(SystemTime::now()));
    }
}
