//! Conditional requests, both ways: answering a client's `If-None-Match` / `If-Modified-Since` from a stored
//! response, asking the upstream to revalidate a stale one, and folding a 304 into the stored headers.

use std::time::SystemTime;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method};

/// Whether a client's conditional GET/HEAD is satisfied by a response with `stored` headers, so it can be
/// answered 304 (RFC 9110 §13.2.2: `If-None-Match` takes precedence; weak comparison).
pub fn client_not_modified(method: &Method, request: &HeaderMap, stored: &HeaderMap) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if request.contains_key(header::IF_NONE_MATCH) {
        let Some(etag) = stored.get(header::ETAG).and_then(|v| v.to_str().ok()) else { return false };
        return request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || weak_eq(tag, etag));
    }
    let Some(since) = date(request, &header::IF_MODIFIED_SINCE) else { return false };
    let Some(modified) = date(stored, &header::LAST_MODIFIED) else { return false };
    modified <= since
}

/// Weak comparison of two entity tags: equal opaque tags, whether or not either is weak.
pub fn weak_eq(a: &str, b: &str) -> bool {
    let a = a.strip_prefix("W/").unwrap_or(a);
    let b = b.strip_prefix("W/").unwrap_or(b);
    a.starts_with('"') && a == b
}

fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v).ok())
}

/// Adds the validators of a stored response to an upstream request so the upstream can answer 304.
/// Returns false when the stored response has no validator (the request then stays unconditional).
pub fn add_revalidation_headers(stored: &HeaderMap, upstream_request: &mut HeaderMap) -> bool {
    upstream_request.remove(header::IF_NONE_MATCH);
    upstream_request.remove(header::IF_MODIFIED_SINCE);
    upstream_request.remove(header::IF_MATCH);
    upstream_request.remove(header::IF_UNMODIFIED_SINCE);
    upstream_request.remove(header::IF_RANGE);
    let mut any = false;
    if let Some(etag) = stored.get(header::ETAG) {
        upstream_request.insert(header::IF_NONE_MATCH, etag.clone());
        any = true;
    }
    if let Some(modified) = stored.get(header::LAST_MODIFIED) {
        upstream_request.insert(header::IF_MODIFIED_SINCE, modified.clone());
        any = true;
    }
    any
}

/// Fields of a 304 that must not replace the stored ones (RFC 9111 §3.2): the stored body's framing and coding.
const NOT_UPDATED_BY_304: [HeaderName; 4] =
    [header::CONTENT_LENGTH, header::CONTENT_ENCODING, header::TRANSFER_ENCODING, header::CONTENT_RANGE];

/// Folds the header fields of a 304 into the stored response's headers.
pub fn merge_not_modified(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    for name in not_modified.keys() {
        if NOT_UPDATED_BY_304.contains(name) {
            continue;
        }
        let values: Vec<HeaderValue> = not_modified.get_all(name).iter().cloned().collect();
        stored.remove(name);
        for value in values {
            stored.append(name.clone(), value);
        }
    }
}

/// The fields a 304 answer to a client carries from the stored 200 (RFC 9110 §15.4.5).
pub const NOT_MODIFIED_FIELDS: [HeaderName; 6] =
    [header::CACHE_CONTROL, header::CONTENT_LOCATION, header::DATE, header::ETAG, header::EXPIRES, header::VARY];

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_wins() {
        let stored = headers(&[("etag", "W/\"v1\""), ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let get = Method::GET;
        assert!(client_not_modified(&get, &headers(&[("if-none-match", "\"x\", \"v1\"")]), &stored));
        assert!(client_not_modified(&get, &headers(&[("if-none-match", "*")]), &stored));
        let mismatch = headers(&[("if-none-match", "\"v2\""), ("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert!(!client_not_modified(&get, &mismatch, &stored));
        assert!(!client_not_modified(&Method::POST, &headers(&[("if-none-match", "*")]), &stored));
    }

    #[test]
    fn if_modified_since_compares_dates() {
        let stored = headers(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let later = headers(&[("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        let earlier = headers(&[("if-modified-since", "Sun, 31 Dec 2023 00:00:00 GMT")]);
        assert!(client_not_modified(&Method::GET, &later, &stored));
        assert!(!client_not_modified(&Method::GET, &earlier, &stored));
    }

    #[test]
    fn merge_keeps_length_and_replaces_the_rest() {
        let mut stored = headers(&[("content-length", "10"), ("cache-control", "max-age=1"), ("x-a", "old")]);
        let fresh = headers(&[("content-length", "0"), ("cache-control", "max-age=60"), ("x-b", "new")]);
        merge_not_modified(&mut stored, &fresh);
        assert_eq!(stored["content-length"], "10");
        assert_eq!(stored["cache-control"], "max-age=60");
        assert_eq!(stored["x-a"], "old");
        assert_eq!(stored["x-b"], "new");
    }

    #[test]
    fn revalidation_uses_both_validators() {
        let stored = headers(&[("etag", "\"v1\""), ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let mut upstream = headers(&[("if-none-match", "\"client\"")]);
        assert!(add_revalidation_headers(&stored, &mut upstream));
        assert_eq!(upstream["if-none-match"], "\"v1\"");
        assert!(upstream.contains_key("if-modified-since"));
        assert!(!add_revalidation_headers(&HeaderMap::new(), &mut HeaderMap::new()));
    }
}
