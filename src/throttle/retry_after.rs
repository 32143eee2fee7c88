//! `Retry-After` (RFC 9110 §10.2.3) for this node's 429 and 503 answers: whole seconds until the client may try
//! again, rounded up and never 0 (a client told "0" would retry at once and be refused again).

use std::time::Duration;

use http::HeaderValue;

/// Whole seconds until `wait` has passed, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let rounded = if wait.subsec_nanos() > 0 { whole.saturating_add(1) } else { whole };
    rounded.max(1)
}

/// The `Retry-After` value for a wait of `wait`.
pub fn retry_after(wait: Duration) -> HeaderValue {
    HeaderValue::from(retry_after_secs(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_whole_seconds_and_never_says_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after(Duration::from_millis(2500)), HeaderValue::from_static("3"));
    }
}
