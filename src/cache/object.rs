//! A stored response: status, headers and whole body, with its freshness. Immutable once stored; a 304 that
//! refreshes it stores a new object sharing the same body bytes.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};

use super::encoded::VariantCell;
use super::fields::{Fields, StoredFields};
use super::rendered_head::RenderedHead;
use super::stored_freshness::StoredFreshness;
use crate::policy::Freshness;

/// One stored variant of one URL.
#[derive(Debug, Clone)]
pub struct CachedObject {
    pub status: StatusCode,
    /// The protocol version the response came in with (the received-protocol of this node's `Via` entry on the
    /// answers made from it, RFC 9110 §7.6.3).
    pub version: Version,
    /// The upstream's header fields, hop-by-hop fields removed, compactly (`to_map` for a `HeaderMap`).
    pub headers: StoredFields,
    pub body: Bytes,
    /// How fresh it is, compactly (`freshness()` for a [`Freshness`]).
    pub freshness: StoredFreshness,
    /// The body in other content codings, made by the encode step (empty until then).
    pub encoded: VariantCell,
    /// The response head made by the first hit, kept for the next ones.
    pub rendered: RenderedHead,
}

impl CachedObject {
    /// Bytes charged for an object beyond its header block (text, index and head), body and key text: the object
    /// and its `Arc` (128 B: the object is 104 B with its freshness kept compactly, see `StoredFreshness`), the
    /// header block's `Arc` counters and the allocator's share of the block, the body and the key (48 B), and the
    /// store's map entry (~62 B: a 56 B slot of quick_cache's slab with the 16 B key handle, the 24 B `Held` and
    /// the S3-FIFO links, and the hash table's share). 239 B is what `cargo bench --bench memory` measures for
    /// 1 KiB objects with five fields, so that the weight of an object is its real cost in RSS. Encoded variants
    /// are charged when they are kept.
    pub const FIXED_WEIGHT: u32 = 239;

    /// A response as stored, with no encoded variant yet.
    pub fn new(status: StatusCode, headers: &HeaderMap, body: Bytes, freshness: Freshness) -> CachedObject {
        CachedObject {
            status,
            version: Version::HTTP_11,
            headers: StoredFields::from_map(headers),
            body,
            freshness: freshness.into(),
            encoded: VariantCell::default(),
            rendered: RenderedHead::default(),
        }
    }

    /// The same object, received with `version`.
    pub fn received_with(self, version: Version) -> CachedObject {
        CachedObject { version, ..self }
    }

    /// How fresh it is.
    pub fn freshness(&self) -> Freshness {
        self.freshness.get()
    }

    /// Makes it as fresh as `freshness` says.
    pub fn set_freshness(&mut self, freshness: Freshness) {
        self.freshness = freshness.into();
    }

    /// The bytes this object is charged against `cache.memory` under a key of `key_len` bytes: headers, body,
    /// encoded variants and a fixed overhead.
    pub fn weight(&self, key_len: usize) -> u32 {
        // The fields' block: their text, its index and its head.
        let headers = self.headers.bytes();
        let encoded = self.encoded.bytes() + self.encoded.slots_bytes();
        let total = self.body.len() + encoded + headers + self.rendered.bytes() + key_len + Self::FIXED_WEIGHT as usize;
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// Whether the object carries a validator (`ETag` or `Last-Modified`), so it can be revalidated.
    pub fn has_validators(&self) -> bool {
        self.headers.has(&http::header::ETAG) || self.headers.has(&http::header::LAST_MODIFIED)
    }

    /// How long the store should keep it, from `now`.
    pub fn keep_for(&self, now: SystemTime) -> Duration {
        self.freshness().keep_for(now, self.has_validators())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_and_its_arc_counters_fit_the_allocators_128_byte_class() {
        // 120 B asked for, 8 B of the allocator's: glibc's 128 B class (192 B with the `Freshness` kept as is).
        assert_eq!(std::mem::size_of::<CachedObject>(), 104);
    }

    #[test]
    fn a_typical_head_costs_its_text_and_eleven_bytes() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("public, max-age=300"));
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
        headers.insert("x-origin-requests", http::HeaderValue::from(99_999));
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(1024));
        headers.insert(http::header::DATE, http::HeaderValue::from_static("Mon, 06 Jan 2025 10:00:00 GMT"));
        let fields = StoredFields::from_map(&headers);
        assert_eq!(fields.text_len(), 141);
        // A one-byte count and ten one-byte offsets: with the Arc's counters, 168 B fit glibc's 176 B class.
        assert_eq!(fields.bytes(), 141 + 11);
    }
}
