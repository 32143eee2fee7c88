//! Responses this node writes itself (errors with a short plain body, 304s from cache, hits) and the fields every
//! answer gets on its way out: `Cache-Status`, `Via`, `Age`.

use std::time::SystemTime;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use crate::cache::CachedObject;
use crate::policy::CacheStatus;
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
    let mut response = Response::new(ProxyBody::stored(body, object.encoded.handle(&object.body)));
    *response.status_mut() = object.status;
    let headers = response.headers_mut();
    *headers = object.rendered.fields(&object.headers);
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

/// `Cache-Status`.
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

/// Adds this node's `Cache-Status` entry (after any upstream entries) and its `Via` entry.
pub fn decorate(headers: &mut HeaderMap, status: &CacheStatus, node_id: &str, via: &HeaderValue) {
    let value = ENTRY_TEXT.with_borrow_mut(|combined| {
        combined.clear();
        if let Some(previous) = headers.get(&CACHE_STATUS) {
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
    headers.append(header::VIA, via.clone());
}

thread_local! {
    /// Where this thread writes a `Cache-Status` value before it becomes a `HeaderValue`; kept between answers.
    static ENTRY_TEXT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(ENTRY_TEXT_KEPT));
}

/// Capacity of the per-thread `Cache-Status` buffer that is kept between answers.
const ENTRY_TEXT_KEPT: usize = 1024;
