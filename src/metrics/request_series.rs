//! The two series every answer records, `edgecache_requests_total{cache_status, method, code}` and
//! `edgecache_request_duration_seconds{cache_status}`, with the children of the common label sets (`GET`/`HEAD`
//! answered `200`/`304`/`206`) resolved once, on first use, so that a hit does not hash its labels each time.

use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use crate::policy::CacheOutcome;

/// The outcomes, in `CacheOutcome` order.
const OUTCOMES: [CacheOutcome; 6] = [
    CacheOutcome::Hit,
    CacheOutcome::Miss,
    CacheOutcome::Stale,
    CacheOutcome::Revalidated,
    CacheOutcome::Bypass,
    CacheOutcome::Error,
];
const METHODS: [Method; 2] = [Method::GET, Method::HEAD];
const CODES: [StatusCode; 3] = [StatusCode::OK, StatusCode::NOT_MODIFIED, StatusCode::PARTIAL_CONTENT];
const COMMON: usize = OUTCOMES.len() * METHODS.len() * CODES.len();

/// The per-answer series and their memoised children.
pub struct RequestSeries {
    requests: IntCounterVec,
    duration: HistogramVec,
    common: [OnceLock<IntCounter>; COMMON],
    durations: [OnceLock<Histogram>; OUTCOMES.len()],
}

impl RequestSeries {
    pub fn new(requests: IntCounterVec, duration: HistogramVec) -> RequestSeries {
        RequestSeries {
            requests,
            duration,
            common: std::array::from_fn(|_| OnceLock::new()),
            durations: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Counts one answer and observes its time to response head.
    pub fn observe(&self, outcome: CacheOutcome, method: &Method, code: StatusCode, elapsed: Duration) {
        let o = outcome_index(outcome);
        let labels = [outcome.as_str(), method.as_str(), code.as_str()];
        let common = METHODS.iter().position(|m| m == method).zip(CODES.iter().position(|c| *c == code));
        match common {
            Some((m, c)) => self.common[(o * METHODS.len() + m) * CODES.len() + c]
                .get_or_init(|| self.requests.with_label_values(&labels))
                .inc(),
            None => self.requests.with_label_values(&labels).inc(),
        }
        self.durations[o]
            .get_or_init(|| self.duration.with_label_values(&[outcome.as_str()]))
            .observe(elapsed.as_secs_f64());
    }
}

fn outcome_index(outcome: CacheOutcome) -> usize {
    OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, Opts};

    #[test]
    fn common_and_rare_label_sets_count_into_the_same_series() {
        let requests =
            IntCounterVec::new(Opts::new("r", "r"), &["cache_status", "method", "code"]).expect("counter vec");
        let duration = HistogramVec::new(HistogramOpts::new("d", "d"), &["cache_status"]).expect("histogram vec");
        let series = RequestSeries::new(requests.clone(), duration.clone());
        for _ in 0..3 {
            series.observe(CacheOutcome::Hit, &Method::GET, StatusCode::OK, Duration::from_micros(50));
        }
        series.observe(CacheOutcome::Hit, &Method::HEAD, StatusCode::NOT_MODIFIED, Duration::ZERO);
        series.observe(CacheOutcome::Bypass, &Method::POST, StatusCode::CREATED, Duration::ZERO);
        series.observe(CacheOutcome::Error, &Method::GET, StatusCode::BAD_GATEWAY, Duration::ZERO);
        assert_eq!(requests.with_label_values(&["hit", "GET", "200"]).get(), 3);
        assert_eq!(requests.with_label_values(&["hit", "HEAD", "304"]).get(), 1);
        assert_eq!(requests.with_label_values(&["bypass", "POST", "201"]).get(), 1);
        assert_eq!(requests.with_label_values(&["error", "GET", "502"]).get(), 1);
        assert_eq!(duration.with_label_values(&["hit"]).get_sample_count(), 4);
        assert_eq!(duration.with_label_values(&["error"]).get_sample_count(), 1);
    }
}
