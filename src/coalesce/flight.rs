//! One fetch in flight and what it ends in. The leader publishes the outcome once (as soon as the response head is
//! known); waiters wait for it, for at most the lock timeout.

use std::sync::{Arc, Mutex};

use http::{HeaderMap, Response, StatusCode};
use tokio::sync::watch;
use tokio::time::Instant;

use super::shared_body::SharedBody;
use crate::cache::{CachedObject, VariantKey, VarySpec};
use crate::policy::CacheStatus;
use crate::proxy::fetched_body::FetchedBody;

/// What a fetch in flight ended in, as far as its waiters are concerned.
pub enum Outcome {
    /// The origin answered with a response every waiter may be given; its body streams into a shared buffer.
    Shared(SharedResponse),
    /// A 304 refreshed the stored object: every waiter answers from it.
    Refreshed(Arc<CachedObject>),
    /// A fetch of the key ended (and stored its object) between the leader's lookup and its joining the table:
    /// nothing was fetched, every waiter answers from the stored object as a hit.
    Stored(Arc<CachedObject>),
    /// The response must not be shared (it is private, uncacheable or too large): each waiter goes to the origin
    /// on its own. The leader's own answer waits here for the leader to take it.
    Unshareable(LeaderAnswer),
    /// The fetch got no response (connect error, timeout, reset, or the leader's task ended early): one waiter
    /// takes over.
    Failed(FailedFetch),
}

/// The leader's own answer to an unshareable response: the origin's response and the leader's `Cache-Status`.
pub type LeaderAnswer = Mutex<Option<(Response<FetchedBody>, CacheStatus)>>;

/// A response head every waiter may be given, and its body as it streams in.
pub struct SharedResponse {
    pub status: StatusCode,
    /// The protocol version the response came in with.
    pub version: http::Version,
    /// The origin's header fields as they may be shared: hop-by-hop fields and the fields the origin withheld
    /// from shared reuse (`private="…"`, `no-cache="…"`) removed.
    pub headers: HeaderMap,
    /// The origin's header fields for the leader's own client (only hop-by-hop fields removed).
    pub leader_headers: HeaderMap,
    pub body: Arc<SharedBody>,
    /// The announced `Content-Length`, if any.
    pub expected_len: Option<u64>,
    /// The fields the response varies on; a waiter whose request selects another variant must not be given it.
    pub vary: VarySpec,
    /// The variant the leader's request selects (`None` for `Vary: *`).
    pub variant: Option<VariantKey>,
    /// The leader's `Cache-Status` parameters (`fwd-status`, `stored`, `ttl`, `detail`).
    pub cache_status: CacheStatus,
}

/// Why a fetch got no response: enough for the leader's client to get the right error.
#[derive(Debug, Clone)]
pub struct FailedFetch {
    pub status: StatusCode,
    /// A short name for `Cache-Status; detail=`.
    pub detail: &'static str,
    pub message: String,
}

impl FailedFetch {
    /// The leader's task ended without publishing anything (it panicked or the runtime shut down).
    pub fn abandoned() -> FailedFetch {
        FailedFetch {
            status: StatusCode::BAD_GATEWAY,
            detail: "fetch-abandoned",
            message: "the fetch this request waited on was abandoned".to_string(),
        }
    }
}

/// One fetch in flight: its outcome once published.
pub struct Flight {
    outcome: watch::Sender<Option<Arc<Outcome>>>,
    /// When the fetch began (a request that arrives after a purge does not join a fetch begun before it).
    pub started: std::time::SystemTime,
}

impl Flight {
    /// A fetch whose outcome is not known yet.
    pub fn new() -> Flight {
        Flight { outcome: watch::Sender::new(None), started: std::time::SystemTime::now() }
    }

    /// Publishes the outcome; returns false (and changes nothing) if one was published already.
    pub fn publish(&self, outcome: Outcome) -> bool {
        let mut outcome = Some(outcome);
        self.outcome.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = outcome.take().map(Arc::new);
                true
            } else {
                false
            }
        })
    }

    /// Whether the outcome is known.
    pub fn is_settled(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// Waits for the outcome, until `deadline` if there is one; `None` when the deadline came first.
    pub async fn wait(&self, deadline: Option<Instant>) -> Option<Arc<Outcome>> {
        let mut receiver = self.outcome.subscribe();
        let settled = receiver.wait_for(Option::is_some);
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, settled).await.ok()?,
            None => settled.await,
        };
        match result {
            Ok(outcome) => outcome.clone(),
            // The sender lives in this flight, which `self` keeps alive: this cannot happen.
            Err(_) => Some(Arc::new(Outcome::Failed(FailedFetch::abandoned()))),
        }
    }
}

impl Default for Flight {
    fn default() -> Flight {
        Flight::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_first_outcome_wins_and_reaches_every_waiter() {
        let flight = Arc::new(Flight::new());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let flight = flight.clone();
                tokio::spawn(async move { flight.wait(None).await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(flight.publish(Outcome::Failed(FailedFetch::abandoned())));
        assert!(!flight.publish(Outcome::Unshareable(Mutex::new(None))), "published once");
        for waiter in waiters {
            let outcome = waiter.await.expect("waiter").expect("outcome");
            assert!(matches!(*outcome, Outcome::Failed(_)));
        }
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_deadline() {
        let flight = Flight::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(flight.wait(Some(deadline)).await.is_none());
        assert!(!flight.is_settled());
    }
}
