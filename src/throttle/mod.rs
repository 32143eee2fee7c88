//! Throttling: slowing clients fairly and keeping the origin's load survivable (`[throttle]`).
//!
//! - [`client_buckets`]: a token bucket per client address; an empty bucket is a 429 with `Retry-After`.
//! - [`client_address`]: who the client is: the TCP peer, or the `X-Forwarded-For` entry named by trusted proxies.
//! - [`origin_budget`]: the rate and concurrency of requests to the origin; misses beyond it queue a bounded time.
//! - [`retry_after`]: the `Retry-After` seconds both answers carry.
//!
//! The pipeline asks [`Throttle::check_client`] when a request is admitted (or, with `throttle.exempt_hits`, only
//! once it is known not to be a hit), and takes an [`OriginPermit`] from [`Throttle::origin`] before every origin
//! request. Hits never touch the origin budget.

pub mod client_address;
pub mod client_buckets;
pub mod origin_budget;
pub mod retry_after;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use prometheus::{IntCounter, IntGauge};

pub use client_address::TrustedProxies;
pub use client_buckets::ClientBuckets;
pub use origin_budget::{BudgetLimits, BudgetMetrics, OriginBudget, OriginBusy, OriginPermit};
pub use retry_after::{retry_after, retry_after_secs};

use crate::config::ThrottleConfig;
use crate::metrics::Metrics;

/// How often idle client buckets are dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The client's bucket is empty; its next token is due in `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests from this client; next token in {retry_after:?}")]
pub struct ClientThrottled {
    pub retry_after: Duration,
}

/// Every throttle of one node.
pub struct Throttle {
    clients: Option<ClientBuckets>,
    trusted: TrustedProxies,
    exempt_hits: bool,
    /// The origin budget: every request to the origin holds one of its permits.
    pub origin: OriginBudget,
    client_throttled: IntCounter,
    client_addresses: IntGauge,
}

impl Throttle {
    /// The throttles `config` sets up, recording into `metrics`.
    pub fn new(config: &ThrottleConfig, metrics: &Metrics) -> Throttle {
        let nonzero = |v: Option<u32>| v.and_then(NonZeroU32::new);
        let clients = nonzero(config.client_rate)
            .map(|rate| ClientBuckets::new(rate, nonzero(config.client_burst), client_buckets::DEFAULT_CAPACITY));
        let limits = BudgetLimits {
            rate: nonzero(config.origin_rate),
            burst: nonzero(config.origin_burst),
            max_inflight: nonzero(config.origin_max_inflight),
            queue_timeout: config.origin_queue_timeout,
        };
        let budget_metrics = BudgetMetrics {
            queue_length: metrics.origin_queue_length.clone(),
            queue_wait: metrics.origin_queue_wait.clone(),
            inflight: metrics.origin_inflight.clone(),
            throttled: metrics.throttled.with_label_values(&["origin"]),
        };
        Throttle {
            clients,
            trusted: TrustedProxies::new(config.trusted_proxies.clone()),
            exempt_hits: config.exempt_hits,
            origin: OriginBudget::new(limits, budget_metrics),
            client_throttled: metrics.throttled.with_label_values(&["client"]),
            client_addresses: metrics.throttle_client_addresses.clone(),
        }
    }

    /// No limits at all (the origin budget still counts requests in flight).
    pub fn unlimited(metrics: &Metrics) -> Throttle {
        Throttle::new(&ThrottleConfig::off(), metrics)
    }

    /// Whether cache hits are answered without taking a client token (`throttle.exempt_hits`).
    pub fn exempts_hits(&self) -> bool {
        self.exempt_hits
    }

    /// Takes a token for the client of a request from `peer` with `headers`; `Err` when its bucket is empty.
    pub fn check_client(&self, peer: IpAddr, headers: &HeaderMap) -> Result<(), ClientThrottled> {
        let Some(clients) = &self.clients else { return Ok(()) };
        let client = self.trusted.client_of(peer, headers);
        clients.check(client).map_err(|retry_after| {
            self.client_throttled.inc();
            ClientThrottled { retry_after }
        })
    }

    /// Drops idle client buckets every second for as long as this throttle lives.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        if self.clients.is_none() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(throttle) = weak.upgrade() else { return };
                if let Some(clients) = &throttle.clients {
                    clients.sweep();
                    throttle.client_addresses.set(i64::try_from(clients.len()).unwrap_or(i64::MAX));
                }
            }
        });
    }
}
