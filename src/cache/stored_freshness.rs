//! A stored object's [`Freshness`], compactly: 36 B instead of 88, so that the object and its `Arc` fit the
//! allocator's 128 B class. [`StoredFreshness::get`] gives the `Freshness` back, for the policy code to read.
//!
//! - `received`: nanoseconds since the Unix epoch (1970 to 2554; earlier or later saturates).
//! - `initial_age`, `fresh_for`: nanoseconds (saturating at 584 years).
//! - the stale windows: milliseconds below 2^31 ms (24.8 days), else whole seconds (saturating at 68 years).
//!   They come from `stale-while-revalidate` and `stale-if-error` in whole seconds, so only a sub-millisecond part
//!   (or a sub-second part of a window longer than 24.8 days) is ever dropped.
//!
//! The 64-bit values are kept as bytes so that the struct needs no 8-byte alignment: beside the object's 2-byte
//! status it leaves no padding.

use std::time::{Duration, SystemTime};

use crate::policy::Freshness;

/// The compact form of a [`Freshness`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StoredFreshness {
    received: [u8; 8],
    initial_age: [u8; 8],
    fresh_for: [u8; 8],
    stale_while_revalidate: u32,
    stale_if_error: u32,
    must_revalidate: bool,
    immutable: bool,
}

/// The window's bit that says it counts whole seconds rather than milliseconds.
const WINDOW_SECONDS: u32 = 1 << 31;

impl StoredFreshness {
    /// `freshness`, compactly.
    pub fn new(freshness: &Freshness) -> StoredFreshness {
        let received = freshness.received.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        StoredFreshness {
            received: nanos(received).to_le_bytes(),
            initial_age: nanos(freshness.initial_age).to_le_bytes(),
            fresh_for: nanos(freshness.fresh_for).to_le_bytes(),
            stale_while_revalidate: window(freshness.stale_while_revalidate),
            stale_if_error: window(freshness.stale_if_error),
            must_revalidate: freshness.must_revalidate,
            immutable: freshness.immutable,
        }
    }

    /// The freshness as the policy code reads it.
    pub fn get(&self) -> Freshness {
        Freshness {
            received: SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::from_le_bytes(self.received)),
            initial_age: Duration::from_nanos(u64::from_le_bytes(self.initial_age)),
            fresh_for: Duration::from_nanos(u64::from_le_bytes(self.fresh_for)),
            stale_while_revalidate: from_window(self.stale_while_revalidate),
            stale_if_error: from_window(self.stale_if_error),
            must_revalidate: self.must_revalidate,
            immutable: self.immutable,
        }
    }
}

impl From<Freshness> for StoredFreshness {
    fn from(freshness: Freshness) -> StoredFreshness {
        StoredFreshness::new(&freshness)
    }
}

impl std::fmt::Debug for StoredFreshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn window(d: Duration) -> u32 {
    match u32::try_from(d.as_millis()) {
        Ok(ms) if ms < WINDOW_SECONDS => ms,
        _ => WINDOW_SECONDS | u32::try_from(d.as_secs()).unwrap_or(u32::MAX).min(WINDOW_SECONDS - 1),
    }
}

fn from_window(w: u32) -> Duration {
    if w & WINDOW_SECONDS == 0 {
        Duration::from_millis(u64::from(w))
    } else {
        Duration::from_secs(u64::from(w & !WINDOW_SECONDS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freshness() -> Freshness {
        Freshness {
            received: SystemTime::now(),
            initial_age: Duration::from_millis(1_234_567),
            fresh_for: Duration::from_nanos(31_535_999_876_543_210),
            stale_while_revalidate: Duration::from_secs(60),
            stale_if_error: Duration::from_millis(1_500),
            must_revalidate: true,
            immutable: false,
        }
    }

    #[test]
    fn comes_back_as_it_was() {
        let f = freshness();
        assert_eq!(StoredFreshness::new(&f).get(), f, "to the nanosecond, windows to the millisecond");
        let g = Freshness { must_revalidate: false, immutable: true, received: SystemTime::UNIX_EPOCH, ..f };
        assert_eq!(StoredFreshness::from(g).get(), g);
    }

    #[test]
    fn long_windows_count_seconds_and_huge_values_saturate() {
        let year = Duration::from_secs(365 * 24 * 3600);
        let f = Freshness { stale_while_revalidate: year, stale_if_error: year * 1000, ..freshness() };
        let back = StoredFreshness::new(&f).get();
        assert_eq!(back.stale_while_revalidate, year);
        assert_eq!(back.stale_if_error, Duration::from_secs(u64::from(WINDOW_SECONDS - 1)));
        let edge = Duration::from_millis(u64::from(WINDOW_SECONDS) - 1);
        let f = Freshness { stale_while_revalidate: edge, stale_if_error: edge + Duration::from_millis(1), ..f };
        let back = StoredFreshness::new(&f).get();
        assert_eq!(back.stale_while_revalidate, edge, "the longest window kept to the millisecond");
        assert_eq!(back.stale_if_error, Duration::from_secs(2_147_483), "the next counts whole seconds");
        let f = Freshness { fresh_for: Duration::MAX, initial_age: Duration::MAX, ..f };
        let back = StoredFreshness::new(&f).get();
        assert_eq!(
            (back.fresh_for, back.initial_age),
            (Duration::from_nanos(u64::MAX), Duration::from_nanos(u64::MAX))
        );
        let before_1970 = Freshness { received: SystemTime::UNIX_EPOCH - Duration::from_secs(1), ..f };
        assert_eq!(StoredFreshness::new(&before_1970).get().received, SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn is_small() {
        assert_eq!(std::mem::size_of::<StoredFreshness>(), 36);
        assert_eq!(std::mem::align_of::<StoredFreshness>(), 4);
        assert_eq!(std::mem::size_of::<Freshness>(), 88, "what each object kept before");
    }
}
