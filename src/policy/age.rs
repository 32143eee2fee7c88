//! Dates and ages of a response (RFC 9110 §5.6.7, §6.6.1; RFC 9111 §4.2.3, §5.1): HTTP-dates in all three formats,
//! a strict `Age`, and the corrected initial age a stored response starts with.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{self, HeaderName, HeaderValue};

use super::directives::parse_delta_seconds;
use crate::cache::Fields;

/// An HTTP-date field (IMF-fixdate, obsolete RFC 850 or asctime). `None` when absent, invalid, or given on more
/// than one line with different values.
pub fn date_field(headers: &impl Fields, name: &HeaderName) -> Option<SystemTime> {
    let mut values = headers.values(name);
    let first = values.next()?;
    if values.any(|other| other != first) {
        return None;
    }
    parse_http_date(crate::cache::fields::visible_text(first)?)
}

/// One HTTP-date. A day name that does not fit the date (`Thu` for a Monday) is passed over, as RFC 9110 §5.6.7
/// encourages recipients to be robust: the date says when, the day name only repeats it.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    httpdate::parse_http_date(text).ok().or_else(|| with_another_day_name(text))
}

/// The date `text` gives with its day name replaced by each of the seven in turn (short or long, as written);
/// the one that fits, if any. Only an invalid date comes here.
fn with_another_day_name(text: &str) -> Option<SystemTime> {
    const SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let name_end = text.find(|c: char| !c.is_ascii_alphabetic())?;
    let (name, rest) = text.split_at(name_end);
    let names = if name.len() == 3 { SHORT } else { LONG };
    if !names.contains(&name) {
        return None;
    }
    names.iter().find_map(|other| httpdate::parse_http_date(&format!("{other}{rest}")).ok())
}

/// Ages below this many seconds are written from a table made once (an hour: most hits of a hot object).
const TABLED_AGES: usize = 3600;

/// Every age below [`TABLED_AGES`] written out, end to end, and where each one ends.
static AGE_TEXTS: std::sync::LazyLock<(String, Vec<u32>)> = std::sync::LazyLock::new(|| {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(TABLED_AGES);
    for age in 0..TABLED_AGES {
        text.push_str(itoa::Buffer::new().format(age));
        ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
    }
    (text, ends)
});

/// The `Age` field's value for `secs`: from the table when it is in it (a static value: no allocation, no shared
/// counter), else written out.
pub fn age_value(secs: u64) -> HeaderValue {
    let tabled = usize::try_from(secs).ok().filter(|&i| i < TABLED_AGES);
    if let Some(i) = tabled {
        let (text, ends) = &*AGE_TEXTS;
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        let static_text: &'static str = &text[start..ends[i] as usize];
        return HeaderValue::from_static(static_text);
    }
    HeaderValue::from(secs)
}

/// The `Age` a response arrived with: a non-negative integer (clamped to 2^31); anything else is ignored (zero).
/// A list-based value (`Age: 10, 20`, or several lines) counts by its first member only (RFC 9111 §5.1).
pub fn age_field(headers: &HeaderMap) -> Duration {
    let Some(value) = headers.get(header::AGE).and_then(|v| v.to_str().ok()) else { return Duration::ZERO };
    let first = value.split(',').next().unwrap_or_default();
    Duration::from_secs(parse_delta_seconds(first.trim()).unwrap_or(0))
}

/// The `Date` of a response, or when it was received if it has none (or an invalid one; RFC 9110 §6.6.1).
pub fn date_or_received(headers: &HeaderMap, received: SystemTime) -> SystemTime {
    date_field(headers, &header::DATE).unwrap_or(received)
}

/// Adds `Date: <received>` to a response that has no valid one, as a recipient with a clock must before caching
/// or forwarding it (RFC 9110 §6.6.1).
pub fn ensure_date(headers: &mut HeaderMap, received: SystemTime) {
    if date_field(headers, &header::DATE).is_none()
        && let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(received))
    {
        headers.insert(header::DATE, value);
    }
}

/// The corrected initial age (RFC 9111 §4.2.3): the larger of the apparent age (receipt − `Date`) and the
/// upstream's `Age` plus the time the request spent in flight.
pub fn initial_age(headers: &HeaderMap, requested: SystemTime, received: SystemTime) -> Duration {
    let date = date_or_received(headers, received);
    let apparent_age = received.duration_since(date).unwrap_or_default();
    let response_delay = received.duration_since(requested).unwrap_or_default();
    let corrected_age_value = age_field(headers) + response_delay;
    apparent_age.max(corrected_age_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_values_from_the_table_and_beyond_it_read_as_the_number() {
        for secs in [0u64, 1, 9, 10, 99, 100, 999, 1000, 3599, 3600, 3601, 86_400, u64::MAX] {
            assert_eq!(age_value(secs).to_str().ok(), Some(secs.to_string().as_str()), "{secs}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn all_three_date_formats() {
        let imf = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(imf.is_some());
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), imf);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), imf);
        assert_eq!(parse_http_date("0"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn a_day_name_that_does_not_fit_the_date_is_passed_over() {
        // 6 November 1994 was a Sunday.
        let imf = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(imf.is_some());
        assert_eq!(parse_http_date("Thu, 06 Nov 1994 08:49:37 GMT"), imf);
        assert_eq!(parse_http_date("Thu Nov  6 08:49:37 1994"), imf);
        assert_eq!(parse_http_date("Monday, 06-Nov-94 08:49:37 GMT"), imf);
        assert_eq!(parse_http_date("Xyz, 06 Nov 1994 08:49:37 GMT"), None, "only a real day name");
        assert_eq!(parse_http_date("THU, 06 Nov 1994 08:49:37 GMT"), None, "HTTP-date is case-sensitive");
        assert_eq!(parse_http_date("Thu, 31 Nov 1994 08:49:37 GMT"), None, "the date itself must still be valid");
    }

    #[test]
    fn age_is_strict() {
        assert_eq!(age_field(&headers(&[("age", "30")])), Duration::from_secs(30));
        assert_eq!(age_field(&headers(&[("age", "030")])), Duration::from_secs(30));
        for bad in ["-1", "1.5", "abc", "", ", 2", "x, 2"] {
            assert_eq!(age_field(&headers(&[("age", bad)])), Duration::ZERO, "{bad}");
        }
        // A list counts by its first member, on one line or several.
        assert_eq!(age_field(&headers(&[("age", "10, 20")])), Duration::from_secs(10));
        assert_eq!(age_field(&headers(&[("age", "10"), ("age", "20")])), Duration::from_secs(10));
        assert_eq!(age_field(&headers(&[("age", "99999999999999999999")])), Duration::from_secs(1 << 31));
    }

    #[test]
    fn corrected_initial_age() {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let requested = received - Duration::from_secs(2);
        // Age + the response delay.
        let h = headers(&[("age", "10")]);
        assert_eq!(initial_age(&h, requested, received), Duration::from_secs(12));
        // The apparent age when it is larger.
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            HeaderValue::from_str(&httpdate::fmt_http_date(received - Duration::from_secs(100))).expect("date"),
        );
        h.insert("age", HeaderValue::from_static("10"));
        assert_eq!(initial_age(&h, requested, received), Duration::from_secs(100));
        // A Date in the future counts as zero.
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            HeaderValue::from_str(&httpdate::fmt_http_date(received + Duration::from_secs(100))).expect("date"),
        );
        assert_eq!(initial_age(&h, received, received), Duration::ZERO);
    }

    #[test]
    fn missing_date_is_added() {
        let mut h = HeaderMap::new();
        let now = SystemTime::now();
        ensure_date(&mut h, now);
        assert!(date_field(&h, &header::DATE).is_some());
        let mut h = headers(&[("date", "not a date")]);
        ensure_date(&mut h, now);
        assert_ne!(h["date"], "not a date");
    }
}
