//! Conditional requests, both ways: answering a client's preconditions from a stored response (RFC 9110 §13.2:
//! `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, in that order), asking the upstream to
//! revalidate a stale one, choosing whether a 304 applies to the stored response (RFC 9111 §4.3.4), and folding
//! the 304 into the stored headers (§3.2).

use std::time::SystemTime;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::cache::{Fields, map_lookup};

/// What a client's preconditions say about a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition, or all hold: send the stored response.
    Proceed,
    /// `If-None-Match` / `If-Modified-Since` is false for a GET/HEAD: answer 304.
    NotModified,
    /// `If-Match` / `If-Unmodified-Since` is false: answer 412.
    Failed,
}

/// Evaluates a client's preconditions against a stored response (RFC 9110 §13.2.2).
pub fn evaluate_preconditions(method: &Method, request: &HeaderMap, stored: &impl Fields) -> Precondition {
    const CONDITIONALS: [HeaderName; 4] =
        [header::IF_MATCH, header::IF_UNMODIFIED_SINCE, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE];
    if !request.keys().any(|name| CONDITIONALS.contains(name)) {
        // Most requests are unconditional: one pass over their field names settles it.
        return Precondition::Proceed;
    }
    let etag = stored.first(&header::ETAG).map(<[u8]>::trim_ascii);
    if map_lookup::holds(request, &header::IF_MATCH) {
        // Strong comparison; `*` matches any current representation.
        if !list_matches(request, &header::IF_MATCH, |tag| etag.is_some_and(|etag| strong_eq(tag, etag))) {
            return Precondition::Failed;
        }
    } else if let Some(since) = single_date(request, &header::IF_UNMODIFIED_SINCE)
        && last_modified_or_date(stored).is_none_or(|modified| modified > since)
    {
        return Precondition::Failed;
    }
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if map_lookup::holds(request, &header::IF_NONE_MATCH) {
        // Weak comparison; `*` matches any current representation.
        let matched = list_matches(request, &header::IF_NONE_MATCH, |tag| etag.is_some_and(|etag| weak_eq(tag, etag)));
        return match (matched, get_or_head) {
            (false, _) => Precondition::Proceed,
            (true, true) => Precondition::NotModified,
            (true, false) => Precondition::Failed,
        };
    }
    if get_or_head
        && let Some(since) = single_date(request, &header::IF_MODIFIED_SINCE)
        && let Some(modified) = last_modified_or_date(stored)
        && modified <= since
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Evaluates a client's preconditions against a stored response of `status`: only a 2xx is subject to them
/// (RFC 9110 §13.2.1: preconditions are ignored when the answer without them would be other than 2xx or 412), so
/// a stored 404 or 301 is sent as it is, never turned into a 304 or 412.
pub fn evaluate_for_stored(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    stored: &impl Fields,
) -> Precondition {
    if !status.is_success() {
        return Precondition::Proceed;
    }
    evaluate_preconditions(method, request, stored)
}

/// Whether a client's conditional GET/HEAD is satisfied by a response with `stored` headers, so it can be
/// answered 304 (RFC 9110 §13.2.2: `If-None-Match` takes precedence; weak comparison).
pub fn client_not_modified(method: &Method, request: &HeaderMap, stored: &impl Fields) -> bool {
    evaluate_preconditions(method, request, stored) == Precondition::NotModified
}

/// Whether any member of an entity-tag list field matches; `*` always does. Fields are compared as bytes: an
/// entity tag may hold obs-text (RFC 9110 §8.8.3), which is not text to `HeaderValue::to_str`.
fn list_matches(request: &HeaderMap, name: &HeaderName, matches: impl Fn(&[u8]) -> bool) -> bool {
    map_lookup::all(request, name)
        .flat_map(|value| split_entity_tags(value.as_bytes()))
        .any(|tag| tag == b"*" || matches(tag))
}

/// Splits an entity-tag list at commas outside the quotes.
fn split_entity_tags(list: &[u8]) -> Vec<&[u8]> {
    let mut tags = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &byte) in list.iter().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                tags.push(list[start..i].trim_ascii());
                start = i + 1;
            }
            _ => {}
        }
    }
    tags.push(list[start..].trim_ascii());
    tags.retain(|t| !t.is_empty());
    tags
}

/// Weak comparison of two entity tags (RFC 9110 §8.8.3.2): equal opaque tags, whether or not either is weak. A
/// malformed tag (unquoted, `w/`) matches only itself, byte for byte: a client echoes the value it was given.
pub fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    let opaque = |tag: &[u8]| -> usize { if tag.starts_with(b"W/\"") { 2 } else { 0 } };
    !a.is_empty() && (a == b || a[opaque(a)..] == b[opaque(b)..])
}

/// Strong comparison: both tags strong and equal.
pub fn strong_eq(a: &[u8], b: &[u8]) -> bool {
    !a.is_empty() && !a.starts_with(b"W/") && a == b
}

/// A date precondition: ignored when invalid or given more than once (RFC 9110 §13.1.3, §13.1.4).
fn single_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut values = map_lookup::all(headers, name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    super::age::parse_http_date(value.to_str().ok()?)
}

/// The modification date a cache compares with: `Last-Modified`, else the stored `Date` (RFC 9111 §4.3.2).
fn last_modified_or_date(stored: &impl Fields) -> Option<SystemTime> {
    date(stored, &header::LAST_MODIFIED).or_else(|| date(stored, &header::DATE))
}

fn date(headers: &impl Fields, name: &HeaderName) -> Option<SystemTime> {
    super::age::date_field(headers, name)
}

/// Adds the validators of a stored response to an upstream request so the upstream can answer 304.
/// Returns false when the stored response has no validator (the request then stays unconditional).
pub fn add_revalidation_headers(stored: &impl Fields, upstream_request: &mut HeaderMap) -> bool {
    upstream_request.remove(header::IF_NONE_MATCH);
    upstream_request.remove(header::IF_MODIFIED_SINCE);
    upstream_request.remove(header::IF_MATCH);
    upstream_request.remove(header::IF_UNMODIFIED_SINCE);
    upstream_request.remove(header::IF_RANGE);
    let mut any = false;
    if let Some(etag) = stored.first(&header::ETAG).and_then(|v| HeaderValue::from_bytes(v).ok()) {
        upstream_request.insert(header::IF_NONE_MATCH, etag);
        any = true;
    }
    if let Some(modified) = stored.first(&header::LAST_MODIFIED).and_then(|v| HeaderValue::from_bytes(v).ok()) {
        upstream_request.insert(header::IF_MODIFIED_SINCE, modified);
        any = true;
    }
    any
}

/// Whether a 304 applies to the stored response it revalidated (RFC 9111 §4.3.4): its entity tag, when it has
/// one, must match the stored one (strongly when the 304's is strong); without one, its `Last-Modified`, when it
/// has one, must equal the stored one. A 304 without validators selects the response it was asked about.
pub fn not_modified_selects(stored: &impl Fields, not_modified: &HeaderMap) -> bool {
    if let Some(tag) = not_modified.get(header::ETAG).map(|v| v.as_bytes().trim_ascii()) {
        let Some(stored_tag) = stored.first(&header::ETAG).map(<[u8]>::trim_ascii) else { return false };
        return if tag.starts_with(b"W/") { weak_eq(tag, stored_tag) } else { strong_eq(tag, stored_tag) };
    }
    if let Some(modified) = date(not_modified, &header::LAST_MODIFIED) {
        return date(stored, &header::LAST_MODIFIED) == Some(modified);
    }
    true
}

/// Fields of a 304 that never replace the stored ones (RFC 9111 §3.2): `Content-Length`, and the fields the stored
/// body depends on (its coding and range). Hop-by-hop and `Connection`-named fields are removed before this.
const NOT_UPDATED_BY_304: [HeaderName; 4] =
    [header::CONTENT_LENGTH, header::CONTENT_ENCODING, header::TRANSFER_ENCODING, header::CONTENT_RANGE];

/// Folds the header fields of a 304 into the stored response's headers. The stored `Age` goes: it described the
/// old message, and the 304 carries its own (or none, meaning it is new).
pub fn merge_not_modified(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    stored.remove(header::AGE);
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
    fn entity_tags_are_compared_as_bytes_and_an_echoed_malformed_tag_matches_itself() {
        let obs_text = HeaderValue::from_bytes(b"\"caf\xe9\"").expect("obs-text is a valid field value");
        let mut stored = HeaderMap::new();
        stored.insert(header::ETAG, obs_text.clone());
        let mut inm = HeaderMap::new();
        inm.insert(header::IF_NONE_MATCH, obs_text);
        assert!(client_not_modified(&Method::GET, &inm, &stored));
        for echoed in ["abcdef", "w/\"abcdef\"", "W\"abcdef\""] {
            let stored = headers(&[("etag", echoed)]);
            assert!(client_not_modified(&Method::GET, &headers(&[("if-none-match", echoed)]), &stored), "{echoed}");
        }
        let stored = headers(&[("etag", "abcdef")]);
        assert!(!client_not_modified(&Method::GET, &headers(&[("if-none-match", "\"abcdef\"")]), &stored));
        assert!(!strong_eq(b"W/\"a\"", b"W/\"a\""));
        assert!(weak_eq(b"W/\"a\"", b"\"a\""));
        assert!(!weak_eq(b"", b""));
    }

    #[test]
    fn preconditions_apply_to_stored_2xx_only() {
        let stored = headers(&[("etag", "\"v1\"")]);
        let inm = headers(&[("if-none-match", "\"v1\"")]);
        let get = Method::GET;
        assert_eq!(evaluate_for_stored(&get, &inm, StatusCode::OK, &stored), Precondition::NotModified);
        assert_eq!(evaluate_for_stored(&get, &inm, StatusCode::NOT_FOUND, &stored), Precondition::Proceed);
        let if_match = headers(&[("if-match", "\"v0\"")]);
        assert_eq!(evaluate_for_stored(&get, &if_match, StatusCode::MOVED_PERMANENTLY, &stored), Precondition::Proceed);
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
    fn if_none_match_star_matches_without_etag() {
        let stored = headers(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        assert!(client_not_modified(&Method::GET, &headers(&[("if-none-match", "*")]), &stored));
    }

    #[test]
    fn if_modified_since_is_ignored_when_invalid_or_with_if_none_match() {
        let stored = headers(&[("etag", "\"v1\""), ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let bad = headers(&[("if-modified-since", "yesterday")]);
        assert_eq!(evaluate_preconditions(&Method::GET, &bad, &stored), Precondition::Proceed);
        let both = headers(&[("if-none-match", "\"v2\""), ("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert_eq!(evaluate_preconditions(&Method::GET, &both, &stored), Precondition::Proceed);
        let post = headers(&[("if-modified-since", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        assert_eq!(evaluate_preconditions(&Method::POST, &post, &stored), Precondition::Proceed);
    }

    #[test]
    fn if_match_is_strong_and_fails_with_412() {
        let strong = headers(&[("etag", "\"v1\"")]);
        let weak = headers(&[("etag", "W/\"v1\"")]);
        let if_match = headers(&[("if-match", "\"v0\", \"v1\"")]);
        assert_eq!(evaluate_preconditions(&Method::GET, &if_match, &strong), Precondition::Proceed);
        assert_eq!(evaluate_preconditions(&Method::GET, &if_match, &weak), Precondition::Failed);
        let star = headers(&[("if-match", "*")]);
        assert_eq!(evaluate_preconditions(&Method::GET, &star, &weak), Precondition::Proceed);
    }

    #[test]
    fn if_unmodified_since_fails_when_modified_later() {
        let stored = headers(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")]);
        let before = headers(&[("if-unmodified-since", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let after = headers(&[("if-unmodified-since", "Wed, 03 Jan 2024 00:00:00 GMT")]);
        assert_eq!(evaluate_preconditions(&Method::GET, &before, &stored), Precondition::Failed);
        assert_eq!(evaluate_preconditions(&Method::GET, &after, &stored), Precondition::Proceed);
    }

    #[test]
    fn a_304_selects_by_validator() {
        let stored = headers(&[("etag", "\"v1\""), ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        assert!(not_modified_selects(&stored, &headers(&[("etag", "\"v1\"")])));
        assert!(!not_modified_selects(&stored, &headers(&[("etag", "\"v2\"")])));
        assert!(not_modified_selects(&stored, &headers(&[("etag", "W/\"v1\"")])));
        assert!(not_modified_selects(&stored, &headers(&[("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT")])));
        assert!(!not_modified_selects(&stored, &headers(&[("last-modified", "Tue, 02 Jan 2024 00:00:00 GMT")])));
        assert!(not_modified_selects(&stored, &HeaderMap::new()));
    }

    #[test]
    fn merge_drops_the_old_age() {
        let mut stored = headers(&[("age", "100"), ("cache-control", "max-age=1")]);
        merge_not_modified(&mut stored, &headers(&[("cache-control", "max-age=60")]));
        assert!(!stored.contains_key("age"));
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
