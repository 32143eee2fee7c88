//! Responses this node writes itself (errors with a short plain body, 304s from cache, hits) and the fields every
//! answer gets on its way out: `Cache-Status`, `Via`, `Age`.

use std::time::SystemTime;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use crate::cache::CachedObject;
use crate::policy::CacheStatus;
use crate::policy::cache_status::CACHE_STATUS;
use crate::policy::conditional::NOT_MODIFIED_FIELDS;

/// An error answer of this node's own: status, a one-line plain-text body, no caching.
pub fn error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(format!("{message}\n")));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A stored object as a response to `method` (no body for `HEAD`), with its current `Age`.
pub fn from_cache(object: &CachedObject, method: &Method, now: SystemTime) -> Response<ProxyBody> {
    // The encode step keeps what it encodes from this body with the object (and serves what it kept).
    let body = (method != Method::HEAD).then(|| object.body.clone());
    let fields = object.rendered.fields(&object.headers);
    let variants = object.encoded.handle(&object.body).with_verdict(object.rendered.verdict());
    let mut response = Response::new(ProxyBody::stored(body, variants));
    *response.status_mut() = object.status;
    let headers = response.headers_mut();
    *headers = fields;
    set_age(headers, object, now);
    response
}

/// A 304 answer to a client's conditional request, from a stored object (RFC 9110 §15.4.5).
pub fn not_modified(object: &CachedObject, now: SystemTime) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    for name in NOT_MODIFIED_FIELDS.iter().chain([&header::LAST_MODIFIED]) {
        for value in object.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    set_age(headers, object, now);
    response
}

fn set_age(headers: &mut HeaderMap, object: &CachedObject, now: SystemTime) {
    let age = object.freshness().age(now).as_secs();
    headers.insert(header::AGE, crate::policy::age::age_value(age));
}

/// Adds this node's `Cache-Status` entry (after any upstream entries) and its `Via` entry.
pub fn decorate(headers: &mut HeaderMap, status: &CacheStatus, node_id: &str, via: &HeaderValue) {
    let value = ENTRY_TEXT.with_borrow_mut(|combined| {
        combined.clear();
        // An empty value is an empty list: the placeholder a kept head holds (`RenderedHead`), or nothing.
        if let Some(previous) = headers.get(&CACHE_STATUS).filter(|previous| !previous.is_empty()) {
            combined.extend_from_slice(previous.as_bytes());
            combined.extend_from_slice(b", ");
        }
        status.write_entry(node_id, combined);
        // One allocation of exactly the value's length (a `Vec` handed to `Bytes` would cost a second one).
        let value = HeaderValue::from_bytes(combined);
        if combined.capacity() > ENTRY_TEXT_KEPT {
            // An upstream's very long value does not stay with the thread.
            *combined = Vec::with_capacity(ENTRY_TEXT_KEPT);
        }
        value
    });
    if let Ok(value) = value {
        headers.insert(CACHE_STATUS, value);
    }
    match headers.entry(header::VIA) {
        // A placeholder (or an empty list): written over, so the map does not grow.
        header::Entry::Occupied(mut entry) if entry.get().is_empty() && entry.iter().count() == 1 => {
            entry.insert(via.clone());
        }
        header::Entry::Occupied(mut entry) => entry.append(via.clone()),
        header::Entry::Vacant(entry) => {
            entry.insert(via.clone());
        }
    }
}

thread_local! {
    /// Where this thread writes a `Cache-Status` value before it becomes a `HeaderValue`; kept between answers.
    static ENTRY_TEXT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(ENTRY_TEXT_KEPT));
}

/// Capacity of the per-thread `Cache-Status` buffer that is kept between answers.
const ENTRY_TEXT_KEPT: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn decorated(pairs: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        decorate(&mut headers, &CacheStatus::hit(60), "edge-1", &HeaderValue::from_static("1.1 edge-1"));
        let mut fields: Vec<_> = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_string()))
            .collect();
        fields.sort();
        fields
    }

    #[test]
    fn placeholders_are_written_over_as_if_there_were_none() {
        let bare = decorated(&[]);
        assert_eq!(bare.len(), 2, "{bare:?}");
        assert_eq!(bare[0].0, "cache-status");
        assert!(bare[0].1.starts_with("edge-1; hit"), "{bare:?}");
        assert_eq!(bare[1], ("via".to_string(), "1.1 edge-1".to_string()));
        assert_eq!(decorated(&[("cache-status", ""), ("via", "")]), bare);
    }

    #[test]
    fn upstream_entries_come_first() {
        let fields = decorated(&[("cache-status", "shield; hit"), ("via", "1.1 shield")]);
        assert!(fields[0].1.starts_with("shield; hit, edge-1; hit"), "{fields:?}");
        let mut headers = HeaderMap::new();
        headers.append(header::VIA, HeaderValue::from_static("1.1 shield"));
        decorate(&mut headers, &CacheStatus::hit(60), "edge-1", &HeaderValue::from_static("1.1 edge-1"));
        let via: Vec<_> = headers.get_all(header::VIA).iter().collect();
        assert_eq!(via, ["1.1 shield", "1.1 edge-1"]);
        // Two upstream entries, the first of them empty: both kept, ours after them.
        let fields = decorated(&[("via", ""), ("via", "1.1 shield")]);
        assert_eq!(fields.iter().filter(|(name, _)| name == "via").count(), 3, "{fields:?}");
    }
}
