//! The origin budget: how hard this node may press on the origin. A token bucket (`throttle.origin_rate`,
//! `throttle.origin_burst`) paces the requests sent; a semaphore (`throttle.origin_max_inflight`) caps how many are
//! open at once. An [`OriginPermit`] holds one of those places until the response body has finished streaming or
//! was dropped, not merely until its head arrived: a slow body is load on the origin too.
//!
//! A request beyond the budget waits in a FIFO queue for at most `throttle.origin_queue_timeout`. It is refused at
//! once when the wait can already be seen to be too long: the queue ahead of it, served `max_inflight` at a time,
//! at the recent average time a permit is held (an exponentially weighted mean), or the rate limiter's own answer
//! of when the next token is due. A refusal carries that expected wait, for `Retry-After`.
//!
//! Background refreshes use [`OriginBudget::try_acquire`]: they take a place only if one is free right now and
//! never queue, so client misses always come first and no client waits behind a refresh.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The series the budget keeps up to date.
#[derive(Clone)]
pub struct BudgetMetrics {
    /// `edgecache_origin_queue_length`: requests waiting for the origin budget.
    pub queue_length: IntGauge,
    /// `edgecache_origin_queue_wait_seconds`: how long requests waited for the budget (0 for most).
    pub queue_wait: Histogram,
    /// `edgecache_origin_inflight`: origin requests open (head or body still streaming).
    pub inflight: IntGauge,
    /// `edgecache_throttled_requests_total{scope="origin"}`: client requests refused by the budget.
    pub throttled: IntCounter,
}

/// The limits, from `[throttle]`.
#[derive(Debug, Clone, Copy)]
pub struct BudgetLimits {
    pub rate: Option<NonZeroU32>,
    pub burst: Option<NonZeroU32>,
    pub max_inflight: Option<NonZeroU32>,
    pub queue_timeout: Duration,
}

/// The request may not go to the origin now; try again after about `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the origin budget is exhausted; expected wait {retry_after:?}")]
pub struct OriginBusy {
    pub retry_after: Duration,
}

/// What permits share with the budget.
struct Shared {
    /// Requests queued right now (also the gauge, which may be shared by several budgets in tests).
    queued: AtomicUsize,
    /// Mean time a permit is held, in microseconds (0: nothing measured yet).
    hold_micros: AtomicU64,
    metrics: BudgetMetrics,
}

/// How much one new hold time moves the mean (1/8: the last ~8 fetches dominate).
const HOLD_WEIGHT: f64 = 0.125;

impl Shared {
    fn record_hold(&self, held: Duration) {
        let sample = held.as_micros().min(u128::from(u64::MAX)) as u64;
        let _ = self.hold_micros.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
            Some(if mean == 0 {
                sample.max(1)
            } else {
                (mean as f64 + HOLD_WEIGHT * (sample as f64 - mean as f64)) as u64
            })
        });
    }
}

/// The origin budget of one node.
pub struct OriginBudget {
    rate: Option<DefaultDirectRateLimiter>,
    slots: Option<(Arc<Semaphore>, usize)>,
    queue_timeout: Duration,
    shared: Arc<Shared>,
}

/// One place in the origin budget; give it to the response body so it is released when the body ends.
pub struct OriginPermit {
    _slot: Option<OwnedSemaphorePermit>,
    since: Instant,
    shared: Arc<Shared>,
}

impl Drop for OriginPermit {
    fn drop(&mut self) {
        self.shared.metrics.inflight.dec();
        self.shared.record_hold(self.since.elapsed());
    }
}

impl std::fmt::Debug for OriginPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginPermit").field("since", &self.since).finish()
    }
}

/// Counts a request in the queue for as long as it waits (also when its client leaves mid-wait).
struct Queued<'a>(&'a Shared);

impl<'a> Queued<'a> {
    /// Joins the queue; returns the guard and how many are queued including this request.
    fn join(shared: &'a Shared) -> (Queued<'a>, usize) {
        let position = shared.queued.fetch_add(1, Ordering::Relaxed) + 1;
        shared.metrics.queue_length.inc();
        (Queued(shared), position)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.queue_length.dec();
    }
}

impl OriginBudget {
    /// A budget with `limits`; with no limit set it never refuses (but still counts requests in flight).
    pub fn new(limits: BudgetLimits, metrics: BudgetMetrics) -> OriginBudget {
        let rate = limits
            .rate
            .map(|rate| RateLimiter::direct(Quota::per_second(rate).allow_burst(limits.burst.unwrap_or(rate))));
        let slots = limits.max_inflight.map(|n| (Arc::new(Semaphore::new(n.get() as usize)), n.get() as usize));
        let shared = Arc::new(Shared { queued: AtomicUsize::new(0), hold_micros: AtomicU64::new(0), metrics });
        OriginBudget { rate, slots, queue_timeout: limits.queue_timeout, shared }
    }

    /// Waits (at most the queue timeout) for a place in the budget for a client's request.
    pub async fn acquire(&self) -> Result<OriginPermit, OriginBusy> {
        let started = Instant::now();
        let result = self.acquire_by(started + self.queue_timeout).await;
        self.shared.metrics.queue_wait.observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.shared.metrics.throttled.inc();
        }
        result
    }

    /// A place in the budget if one is free right now (background work: never waits, never queues).
    pub fn try_acquire(&self) -> Option<OriginPermit> {
        let slot = match &self.slots {
            Some((semaphore, _)) => Some(semaphore.clone().try_acquire_owned().ok()?),
            None => None,
        };
        if let Some(rate) = &self.rate {
            rate.check().ok()?;
        }
        Some(self.permit(slot))
    }

    async fn acquire_by(&self, deadline: Instant) -> Result<OriginPermit, OriginBusy> {
        let mut queued = None;
        let slot = match &self.slots {
            None => None,
            Some((semaphore, max_inflight)) => match semaphore.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    let (guard, position) = Queued::join(&self.shared);
                    queued = Some(guard);
                    let expected = self.expected_queue_wait(position, *max_inflight);
                    if expected > self.queue_timeout {
                        return Err(OriginBusy { retry_after: expected });
                    }
                    match tokio::time::timeout_at(deadline.into(), semaphore.clone().acquire_owned()).await {
                        Ok(Ok(slot)) => Some(slot),
                        _ => {
                            let position = self.shared.queued.load(Ordering::Relaxed).max(1);
                            let expected = self.expected_queue_wait(position, *max_inflight);
                            return Err(OriginBusy { retry_after: expected.max(self.queue_timeout) });
                        }
                    }
                }
            },
        };
        if let Some(rate) = &self.rate {
            while let Err(not_until) = rate.check() {
                let wait = not_until.wait_time_from(rate.clock().now());
                if Instant::now() + wait > deadline {
                    return Err(OriginBusy { retry_after: wait });
                }
                if queued.is_none() {
                    queued = Some(Queued::join(&self.shared).0);
                }
                tokio::time::sleep(wait).await;
            }
        }
        drop(queued);
        Ok(self.permit(slot))
    }

    fn permit(&self, slot: Option<OwnedSemaphorePermit>) -> OriginPermit {
        self.shared.metrics.inflight.inc();
        OriginPermit { _slot: slot, since: Instant::now(), shared: self.shared.clone() }
    }

    /// The wait of the `position`-th request in the queue, served `max_inflight` at a time at the mean hold time;
    /// zero while no hold time has been measured (nothing to predict from: the request waits and sees).
    fn expected_queue_wait(&self, position: usize, max_inflight: usize) -> Duration {
        let mean = Duration::from_micros(self.shared.hold_micros.load(Ordering::Relaxed));
        let rounds = position.div_ceil(max_inflight.max(1));
        mean.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
    }

    /// Requests waiting for the budget right now.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> BudgetMetrics {
        BudgetMetrics {
            queue_length: IntGauge::new("q", "q").expect("gauge"),
            queue_wait: Histogram::with_opts(prometheus::HistogramOpts::new("w", "w")).expect("histogram"),
            inflight: IntGauge::new("i", "i").expect("gauge"),
            throttled: IntCounter::new("t", "t").expect("counter"),
        }
    }

    fn budget(rate: Option<u32>, max_inflight: Option<u32>, queue_timeout_ms: u64) -> OriginBudget {
        let limits = BudgetLimits {
            rate: rate.and_then(NonZeroU32::new),
            burst: None,
            max_inflight: max_inflight.and_then(NonZeroU32::new),
            queue_timeout: Duration::from_millis(queue_timeout_ms),
        };
        OriginBudget::new(limits, metrics())
    }

    #[tokio::test]
    async fn permits_are_counted_and_returned() {
        let b = budget(None, Some(2), 50);
        let first = b.acquire().await.expect("place 1");
        let _second = b.acquire().await.expect("place 2");
        assert_eq!(b.shared.metrics.inflight.get(), 2);
        assert!(b.try_acquire().is_none(), "no third place");
        let refused = b.acquire().await.expect_err("full");
        assert!(refused.retry_after >= Duration::from_millis(50));
        assert_eq!(b.shared.metrics.throttled.get(), 1);
        drop(first);
        assert!(b.acquire().await.is_ok(), "a place came back");
        assert_eq!(b.queued(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_next_free_place() {
        let b = Arc::new(budget(None, Some(1), 2_000));
        let held = b.acquire().await.expect("place");
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.acquire().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(b.queued(), 1);
        assert_eq!(b.shared.metrics.queue_length.get(), 1);
        drop(held);
        assert_eq!(waiter.await.expect("task"), Ok(()));
        assert_eq!(b.queued(), 0);
    }

    #[tokio::test]
    async fn a_queue_too_long_to_wait_out_is_refused_at_once() {
        let b = budget(None, Some(1), 500);
        b.shared.record_hold(Duration::from_secs(1));
        let _held = b.acquire().await.expect("place");
        let started = Instant::now();
        let refused = b.acquire().await.expect_err("expected wait 1 s > 500 ms");
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(refused.retry_after, Duration::from_secs(1));
    }

    #[tokio::test]
    async fn the_rate_paces_and_refuses_beyond_the_deadline() {
        let b = budget(Some(10), None, 150);
        for _ in 0..10 {
            b.try_acquire().expect("the burst");
        }
        // The next token is due in 100 ms: within the 150 ms timeout, so the request waits for it.
        let started = Instant::now();
        b.acquire().await.expect("paced");
        assert!(started.elapsed() >= Duration::from_millis(50), "{:?}", started.elapsed());
        // At 1 request/s the next token is ~1 s away: beyond the timeout, so refused at once, saying when.
        let slow = budget(Some(1), None, 150);
        slow.try_acquire().expect("the burst");
        let started = Instant::now();
        let refused = slow.acquire().await.expect_err("a token is 1 s away");
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(refused.retry_after > Duration::from_millis(800), "{refused:?}");
    }
}
