//! Request coalescing (collapsed forwarding): however many requests ask at once for the same uncached or stale
//! cache key, one of them (the leader) fetches from the origin and the others wait on that fetch, reading its body
//! as it streams in.
//!
//! This module owns the parts that know nothing of the request path: the table of fetches in flight
//! ([`InFlight`]), what a fetch ends in ([`Outcome`]), the append-only body its readers share ([`SharedBody`]) and
//! the short memory of keys whose responses must not be shared ([`UncacheableKeys`], "hit-for-miss"). The request
//! path that leads and joins fetches is `proxy::pipeline::coalesced`.

pub mod flight;
pub mod hit_for_miss;
pub mod shared_body;
pub mod table;

use std::time::Duration;

pub use flight::{FailedFetch, Flight, LeaderAnswer, Outcome, SharedResponse};
pub use hit_for_miss::UncacheableKeys;
pub use shared_body::{SharedBody, SharedBodyReader};
pub use table::{InFlight, LeaderGuard, Role};

/// How long a request waits on another request's fetch by default before it goes to the origin itself.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything one node needs to coalesce: the in-flight table, the hit-for-miss memory and the lock timeout.
pub struct Coalescer {
    pub in_flight: std::sync::Arc<InFlight>,
    pub uncacheable: UncacheableKeys,
    /// A waiter that has had no response head for this long goes to the origin itself.
    pub lock_timeout: Duration,
}

impl Coalescer {
    /// An empty table with the given lock timeout.
    pub fn new(lock_timeout: Duration) -> Coalescer {
        Coalescer { in_flight: InFlight::new(), uncacheable: UncacheableKeys::new(), lock_timeout }
    }
}
