//! A served object's response head, ready-made. A stored object keeps its fields compactly (`StoredFields`), and
//! turning them into the `HeaderMap` a response needs costs a parse and an insert per field; so the first hit
//! makes the map once and keeps it with the object, and later hits clone it. Objects that are never served keep
//! only the compact form; a kept head is charged to its object's weight (`Store::reweigh`).
//!
//! A clone of a map has no spare room, so the fields every answer gets on its way out (`Age`, `Cache-Status`,
//! `Via`) are kept in the head already, as empty placeholders where the upstream sent none (`Age` is always
//! the placeholder alone: an answer's age is this node's to work out): the answer then writes its values over
//! them, where adding them would grow (reallocate) the cloned map on every hit.
//! `respond::from_cache` writes `Age` and `respond::decorate` the other two; an empty `Cache-Status` or `Via`
//! is an empty list (RFC 9110 §5.6.1), which `decorate` reads as none.

use std::sync::atomic::{AtomicU8, Ordering};

use http::header::{AGE, VIA};
use http::{HeaderMap, HeaderValue};
use once_cell::race::OnceBox;

use super::fields::StoredFields;
use crate::policy::cache_status::CACHE_STATUS;

/// Bytes a kept head costs beyond its fields' text (which it shares): the boxed map with its verdict byte and,
/// per field, its bucket and index slot.
const MAP_BYTES: usize = 128;
const FIELD_BYTES: usize = 104;

/// The head made by an object's first hit (one pointer until then); empty in a copy (a 304's refreshed object
/// makes its own). Two hits racing to make it may both make one; the first kept wins.
#[derive(Debug, Default)]
pub struct RenderedHead(OnceBox<Kept>);

#[derive(Debug)]
struct Kept {
    fields: HeaderMap,
    /// What the encode step reads off this head, as `HeadVerdict::to_byte` writes it; 0 until the pipeline
    /// has worked it out.
    verdict: AtomicU8,
}

impl Clone for RenderedHead {
    fn clone(&self) -> RenderedHead {
        RenderedHead::default()
    }
}

impl RenderedHead {
    /// The response's fields: a clone of the kept head, made from `fields` first if this is the first hit, with
    /// a placeholder for each of `Age`, `Cache-Status` and `Via` that the stored fields lack (see the module doc).
    pub fn fields(&self, fields: &StoredFields) -> HeaderMap {
        let kept =
            self.0.get_or_init(|| Box::new(Kept { fields: with_placeholders(fields.to_map()), verdict: 0.into() }));
        kept.fields.clone()
    }

    /// The encode step's verdict on this head (`HeadVerdict::to_byte`), 0 until `set_verdict`.
    pub fn verdict(&self) -> u8 {
        self.0.get().map_or(0, |kept| kept.verdict.load(Ordering::Relaxed))
    }

    /// Keeps the encode step's verdict on this head, once it has been made (else there is nowhere to keep it).
    pub fn set_verdict(&self, verdict: u8) {
        if let Some(kept) = self.0.get() {
            kept.verdict.store(verdict, Ordering::Relaxed);
        }
    }

    /// Whether the head has been made.
    pub fn is_made(&self) -> bool {
        self.0.get().is_some()
    }

    /// Bytes the kept head costs (0 until made).
    pub fn bytes(&self) -> usize {
        self.0.get().map_or(0, |kept| MAP_BYTES + kept.fields.len() * FIELD_BYTES)
    }
}

/// Adds the placeholders. `Age` is always exactly one line, the placeholder: every answer from the cache gets
/// the age this node works out, never an upstream's (`respond::from_cache` relies on the one line).
fn with_placeholders(mut map: HeaderMap) -> HeaderMap {
    map.insert(AGE, HeaderValue::from_static(""));
    for name in [CACHE_STATUS, VIA] {
        if !map.contains_key(&name) {
            map.insert(name, HeaderValue::from_static(""));
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn made_once_by_the_first_hit_and_not_carried_into_a_copy() {
        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("1"));
        map.append("x-a", HeaderValue::from_static("2"));
        let fields = StoredFields::from_map(&map);
        let head = RenderedHead::default();
        assert!(!head.is_made());
        assert_eq!(head.bytes(), 0);
        let mut expected = map.clone();
        for name in ["age", "cache-status", "via"] {
            expected.insert(name, HeaderValue::from_static(""));
        }
        assert_eq!(head.fields(&fields), expected);
        assert!(head.is_made());
        assert!(head.bytes() > 0);
        assert_eq!(head.fields(&fields), expected, "the kept head");
        assert!(!head.clone().is_made());
    }

    #[test]
    fn the_verdict_is_kept_with_a_made_head_only() {
        let fields = StoredFields::from_map(&HeaderMap::new());
        let head = RenderedHead::default();
        head.set_verdict(7);
        assert_eq!(head.verdict(), 0, "no head yet: nowhere to keep it");
        head.fields(&fields);
        head.set_verdict(7);
        assert_eq!(head.verdict(), 7);
        assert_eq!(head.clone().verdict(), 0, "a copy works it out anew");
    }

    #[test]
    fn fields_the_upstream_sent_are_kept_and_values_written_over_placeholders_do_not_grow_the_map() {
        let mut map = HeaderMap::new();
        map.insert("via", HeaderValue::from_static("1.1 shield"));
        map.insert("cache-status", HeaderValue::from_static("shield; hit"));
        let fields = StoredFields::from_map(&map);
        let head = RenderedHead::default();
        let mut answer = head.fields(&fields);
        assert_eq!(answer.get("via").map(HeaderValue::as_bytes), Some(&b"1.1 shield"[..]));
        assert_eq!(answer.get("cache-status").map(HeaderValue::as_bytes), Some(&b"shield; hit"[..]));
        assert_eq!(answer.get("age").map(HeaderValue::as_bytes), Some(&b""[..]));
        let (keys, len) = (answer.keys_len(), answer.len());
        answer.insert("age", HeaderValue::from_static("7"));
        answer.insert("cache-status", HeaderValue::from_static("shield; hit, edge; hit"));
        assert_eq!((answer.keys_len(), answer.len()), (keys, len), "written in place");
        assert_eq!(answer.len(), 3);
    }

    #[test]
    fn an_upstream_age_gives_way_to_the_one_placeholder() {
        let mut map = HeaderMap::new();
        map.append("age", HeaderValue::from_static("5"));
        map.append("age", HeaderValue::from_static("9"));
        let head = RenderedHead::default();
        let answer = head.fields(&StoredFields::from_map(&map));
        let ages: Vec<&[u8]> = answer.get_all("age").iter().map(HeaderValue::as_bytes).collect();
        assert_eq!(ages, [&b""[..]]);
    }
}
