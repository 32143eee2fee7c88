//! Responses this node writes itself (errors with a short plain body, 304s from cache, hits) and the fields every
//! answer gets on its way out: `Cache-Status`, `Via`, `Age`.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use crate::cache::CachedObject;
use crate::cache::map_lookup::{self, Lines};
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

/// A stored object as a response to `method` (no body for `HEAD`), with its current `age`.
pub fn from_cache(object: &CachedObject, method: &Method, age: Duration) -> Response<ProxyBody> {
    // The encode step keeps what it encodes from this body with the object (and serves what it kept).
    let body = (method != Method::HEAD).then(|| object.body.clone());
    let fields = object.rendered.fields(&object.headers);
    let variants = object.encoded.handle(&object.body).with_verdict(object.rendered.verdict());
    let mut response = Response::new(ProxyBody::stored(body, variants));
    *response.status_mut() = object.status;
    *response.version_mut() = object.version;
    let headers = response.headers_mut();
    *headers = fields;
    let value = crate::policy::age::age_value(age.as_secs());
    // The kept head holds exactly one `Age` line, its placeholder (see `RenderedHead`): found by the map's own
    // index, and written over where it is.
    match headers.get_mut(header::AGE) {
        Some(slot) => *slot = value,
        None => {
            headers.insert(header::AGE, value);
        }
    }
    response
}

/// A 304 answer to a client's conditional request, from a stored object (RFC 9110 §15.4.5).
pub fn not_modified(object: &CachedObject, age: Duration) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    *response.version_mut() = object.version;
    let headers = response.headers_mut();
    for name in NOT_MODIFIED_FIELDS.iter().chain([&header::LAST_MODIFIED]) {
        for value in object.headers.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::AGE, crate::policy::age::age_value(age.as_secs()));
    response
}

/// Adds this node's `Cache-Status` entry (after any upstream entries) and its `Via` entry.
pub fn decorate(headers: &mut HeaderMap, status: &CacheStatus, node_id: &str, via: &HeaderValue) {
    // One line each (the kept head's placeholders, or an upstream's single line) is written over where it is;
    // anything else goes through the map's own insert and append.
    let [cache_status_line, via_line] = map_lookup::lines_mut(headers, [&CACHE_STATUS, &header::VIA]);
    let cache_status_written = match cache_status_line {
        Lines::One(slot) => {
            if let Ok(value) = cache_status_value(Some(&*slot), status, node_id) {
                *slot = value;
            }
            true
        }
        _ => false,
    };
    let via_written = match via_line {
        // A placeholder (or an empty list): written over, so the map does not grow.
        Lines::One(slot) if slot.is_empty() => {
            *slot = via.clone();
            true
        }
        _ => false,
    };
    if !cache_status_written && let Ok(value) = cache_status_value(headers.get(&CACHE_STATUS), status, node_id) {
        headers.insert(CACHE_STATUS, value);
    }
    if !via_written {
        headers.append(header::VIA, via.clone());
    }
}

/// The `Cache-Status` value: the `previous` entries (none if empty: a placeholder or an empty list), then ours.
fn cache_status_value(
    previous: Option<&HeaderValue>,
    status: &CacheStatus,
    node_id: &str,
) -> Result<HeaderValue, header::InvalidHeaderValue> {
    let previous = previous.filter(|previous| !previous.is_empty());
    if previous.is_none()
        && let Some(value) = RECENT_ENTRIES.with_borrow(|recent| recent.find(status, node_id))
    {
        return Ok(value);
    }
    let value = ENTRY_TEXT.with_borrow_mut(|combined| {
        combined.clear();
        if let Some(previous) = previous {
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
    })?;
    if previous.is_none() {
        RECENT_ENTRIES.with_borrow_mut(|recent| recent.keep(status, node_id, &value));
    }
    Ok(value)
}

/// Slots of [`RecentEntries`], by `ttl`.
const RECENT_SLOTS: usize = 16;

/// The `Cache-Status` values (with no upstream entries) this thread made last, one slot per `ttl` modulo
/// [`RECENT_SLOTS`]: the hits of objects stored about the same time, within one second, share one value (a shared
/// `Bytes`: a counter to raise) instead of each writing the entry and allocating its own.
#[derive(Default)]
struct RecentEntries {
    slots: [Option<RecentEntry>; RECENT_SLOTS],
}

struct RecentEntry {
    status: CacheStatus,
    node_id: Box<str>,
    value: HeaderValue,
}

impl RecentEntries {
    fn slot(status: &CacheStatus) -> usize {
        status.ttl.unwrap_or_default().rem_euclid(RECENT_SLOTS as i64) as usize
    }

    fn find(&self, status: &CacheStatus, node_id: &str) -> Option<HeaderValue> {
        let entry = self.slots[Self::slot(status)].as_ref()?;
        (entry.status == *status && *entry.node_id == *node_id).then(|| entry.value.clone())
    }

    fn keep(&mut self, status: &CacheStatus, node_id: &str, value: &HeaderValue) {
        self.slots[Self::slot(status)] =
            Some(RecentEntry { status: status.clone(), node_id: node_id.into(), value: value.clone() });
    }
}

thread_local! {
    /// The `Cache-Status` values this thread made last (see [`RecentEntries`]).
    static RECENT_ENTRIES: std::cell::RefCell<RecentEntries> = std::cell::RefCell::default();
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
    fn a_recent_value_is_shared_only_by_the_same_entry_of_the_same_node() {
        let value = |status: &CacheStatus, node: &str| {
            let mut headers = HeaderMap::new();
            decorate(&mut headers, status, node, &HeaderValue::from_static("1.1 x"));
            headers.get(&CACHE_STATUS).map(|v| v.to_str().unwrap_or_default().to_string())
        };
        let hit = CacheStatus::hit(60);
        assert_eq!(value(&hit, "edge-1").as_deref(), Some("edge-1; hit; ttl=60"));
        assert_eq!(value(&hit, "edge-1").as_deref(), Some("edge-1; hit; ttl=60"), "from the recent values");
        assert_eq!(value(&hit, "edge-2").as_deref(), Some("edge-2; hit; ttl=60"), "another node");
        let collapsed = CacheStatus { collapsed: true, ..CacheStatus::hit(60) };
        assert_eq!(value(&collapsed, "edge-2").as_deref(), Some("edge-2; hit; collapsed; ttl=60"));
        assert_eq!(value(&CacheStatus::hit(76), "edge-2").as_deref(), Some("edge-2; hit; ttl=76"), "same slot");
        assert_eq!(value(&CacheStatus::hit(-4), "edge-2").as_deref(), Some("edge-2; hit; ttl=-4"));
        let mut headers = HeaderMap::new();
        headers.insert(&CACHE_STATUS, HeaderValue::from_static("shield; hit"));
        decorate(&mut headers, &hit, "edge-2", &HeaderValue::from_static("1.1 x"));
        assert_eq!(
            headers.get(&CACHE_STATUS).map(HeaderValue::as_bytes),
            Some(&b"shield; hit, edge-2; hit; ttl=60"[..])
        );
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
