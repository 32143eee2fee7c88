//! The table of fetches in flight, by cache key. The first request for a key becomes the leader and holds a
//! [`LeaderGuard`]; later requests for the same key join as waiters. The guard takes the entry out of the table
//! when it is dropped, whatever happened, and a guard dropped before any outcome was published tells the waiters
//! that the fetch failed, so that one of them takes over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::flight::{FailedFetch, Flight, Outcome};
use crate::cache::VariantKey;

/// Every fetch in flight on this node, by cache key.
#[derive(Default)]
pub struct InFlight {
    flights: Mutex<HashMap<VariantKey, Arc<Flight>>>,
}

/// What a request becomes when it joins the table.
pub enum Role {
    /// Nobody was fetching this key: this request fetches it.
    Leader(LeaderGuard),
    /// Another request is fetching this key: wait for its outcome.
    Waiter(Arc<Flight>),
}

impl InFlight {
    /// An empty table.
    pub fn new() -> Arc<InFlight> {
        Arc::new(InFlight::default())
    }

    fn flights(&self) -> MutexGuard<'_, HashMap<VariantKey, Arc<Flight>>> {
        self.flights.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the fetch of `key`, or starts it.
    pub fn join(self: &Arc<Self>, key: &VariantKey) -> Role {
        let mut flights = self.flights();
        if let Some(flight) = flights.get(key) {
            return Role::Waiter(flight.clone());
        }
        let flight = Arc::new(Flight::new());
        flights.insert(key.clone(), flight.clone());
        Role::Leader(LeaderGuard { table: self.clone(), key: key.clone(), flight })
    }

    /// Fetches in flight.
    pub fn len(&self) -> usize {
        self.flights().len()
    }

    /// Whether no fetch is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes `key`'s entry if it is still `flight` (a later fetch of the same key keeps its own).
    fn remove(&self, key: &VariantKey, flight: &Arc<Flight>) {
        let mut flights = self.flights();
        if flights.get(key).is_some_and(|current| Arc::ptr_eq(current, flight)) {
            flights.remove(key);
        }
    }
}

/// The leader's hold on a key: while it lives, requests for the key wait on this fetch.
pub struct LeaderGuard {
    table: Arc<InFlight>,
    key: VariantKey,
    flight: Arc<Flight>,
}

impl LeaderGuard {
    /// The key being fetched.
    pub fn key(&self) -> &VariantKey {
        &self.key
    }

    /// The flight waiters wait on.
    pub fn flight(&self) -> &Arc<Flight> {
        &self.flight
    }

    /// Publishes an outcome while keeping the key: requests arriving meanwhile still join this fetch (used for a
    /// shared body that is still streaming in).
    pub fn publish(&self, outcome: Outcome) {
        self.flight.publish(outcome);
    }

    /// Stops new requests from joining this fetch; the ones already waiting keep their outcome.
    pub fn withdraw(&self) {
        self.table.remove(&self.key, &self.flight);
    }

    /// Leaves the table, then publishes a final outcome (so that a waiter taking over never finds this fetch).
    pub fn settle(self, outcome: Outcome) {
        self.withdraw();
        self.flight.publish(outcome);
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.withdraw();
        self.flight.publish(Outcome::Failed(FailedFetch::abandoned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PrimaryKey;
    use futures_util::FutureExt;

    fn key(path: &'static str) -> VariantKey {
        VariantKey::primary(&PrimaryKey::new("http", "h", &http::Uri::from_static(path)))
    }

    #[test]
    fn one_leader_per_key_and_the_entry_leaves_with_the_guard() {
        let table = InFlight::new();
        let Role::Leader(guard) = table.join(&key("/a")) else { panic!("first request leads") };
        let Role::Waiter(flight) = table.join(&key("/a")) else { panic!("second request waits") };
        assert!(Arc::ptr_eq(&flight, guard.flight()));
        assert!(matches!(table.join(&key("/b")), Role::Leader(_)), "another key has its own leader");
        assert_eq!(table.len(), 1, "the /b guard was dropped at once");
        drop(guard);
        assert!(table.is_empty());
        assert!(matches!(flight.wait(None).now_or_never(), Some(Some(o)) if matches!(*o, Outcome::Failed(_))));
    }

    #[test]
    fn a_settled_fetch_is_out_of_the_table_before_its_waiters_hear_of_it() {
        let table = InFlight::new();
        let Role::Leader(guard) = table.join(&key("/a")) else { panic!("leads") };
        let flight = guard.flight().clone();
        guard.settle(Outcome::Failed(FailedFetch::abandoned()));
        assert!(flight.is_settled());
        assert!(matches!(table.join(&key("/a")), Role::Leader(_)), "a waiter taking over becomes the new leader");
    }
}
