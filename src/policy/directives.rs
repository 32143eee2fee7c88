//! `Cache-Control` parsing: directive names case-insensitive, values bare or quoted, the first of duplicates wins.

use http::HeaderMap;
use http::header::HeaderName;

/// The directives of every `Cache-Control` line of a message, in order.
#[derive(Debug, Default, Clone)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// Parses every line of the `name` header (normally `cache-control`).
    pub fn parse(headers: &HeaderMap, name: &HeaderName) -> CacheControl {
        let mut directives = Vec::new();
        for line in headers.get_all(name) {
            let text = String::from_utf8_lossy(line.as_bytes());
            for item in split_outside_quotes(&text) {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
                    None => (item, None),
                };
                directives.push((name.to_ascii_lowercase(), value));
            }
        }
        CacheControl { directives }
    }

    /// Parses a message's `Cache-Control`.
    pub fn of(headers: &HeaderMap) -> CacheControl {
        CacheControl::parse(headers, &http::header::CACHE_CONTROL)
    }

    /// Whether the directive is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// The directive's value as seconds; `None` when absent or not a valid non-negative integer.
    /// Values too large for the clock are clamped (RFC 9111 §1.2.2).
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let (_, value) = self.directives.iter().find(|(n, _)| n == name)?;
        let value = value.as_deref()?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(value.parse::<u64>().unwrap_or(i32::MAX as u64).min(i32::MAX as u64))
    }

    /// For `max-stale`, whose value is optional: `Some(None)` means "any staleness".
    pub fn optional_seconds(&self, name: &str) -> Option<Option<u64>> {
        let (_, value) = self.directives.iter().find(|(n, _)| n == name)?;
        match value {
            None => Some(None),
            Some(_) => self.seconds(name).map(Some),
        }
    }
}

fn split_outside_quotes(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cc(v: &'static str) -> CacheControl {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static(v));
        CacheControl::of(&h)
    }

    #[test]
    fn parses_case_quotes_and_duplicates() {
        let c = cc("Max-Age=\"60\", no-cache=\"set-cookie, x\", max-age=5, stale-while-revalidate=30");
        assert_eq!(c.seconds("max-age"), Some(60));
        assert!(c.has("no-cache"));
        assert_eq!(c.seconds("stale-while-revalidate"), Some(30));
        assert_eq!(c.seconds("s-maxage"), None);
    }

    #[test]
    fn invalid_numbers_are_ignored_and_huge_ones_clamped() {
        assert_eq!(cc("max-age=-1").seconds("max-age"), None);
        assert_eq!(cc("max-age=1.5").seconds("max-age"), None);
        assert_eq!(cc("max-age=99999999999999999999").seconds("max-age"), Some(i32::MAX as u64));
        assert_eq!(cc("max-stale").optional_seconds("max-stale"), Some(None));
        assert_eq!(cc("max-stale=7").optional_seconds("max-stale"), Some(Some(7)));
    }
}
