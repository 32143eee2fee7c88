//! A served object's response head, ready-made. A stored object keeps its fields compactly (`StoredFields`), and
//! turning them into the `HeaderMap` a response needs costs a parse and an insert per field; so the first hit
//! makes the map once and keeps it with the object, and later hits clone it. Objects that are never served keep
//! only the compact form; a kept head is charged to its object's weight (`Store::reweigh`).

use http::HeaderMap;
use once_cell::race::OnceBox;

use super::fields::StoredFields;

/// Bytes a kept head costs beyond its fields' text (which it shares): the boxed map and, per field, its bucket
/// and index slot.
const MAP_BYTES: usize = 128;
const FIELD_BYTES: usize = 104;

/// The head made by an object's first hit (one pointer until then); empty in a copy (a 304's refreshed object
/// makes its own). Two hits racing to make it may both make one; the first kept wins.
#[derive(Debug, Default)]
pub struct RenderedHead(OnceBox<HeaderMap>);

impl Clone for RenderedHead {
    fn clone(&self) -> RenderedHead {
        RenderedHead::default()
    }
}

impl RenderedHead {
    /// The response's fields: a clone of the kept head, made from `fields` first if this is the first hit.
    pub fn fields(&self, fields: &StoredFields) -> HeaderMap {
        self.0.get_or_init(|| Box::new(fields.to_map())).clone()
    }

    /// Whether the head has been made.
    pub fn is_made(&self) -> bool {
        self.0.get().is_some()
    }

    /// Bytes the kept head costs (0 until made).
    pub fn bytes(&self) -> usize {
        self.0.get().map_or(0, |map| MAP_BYTES + map.len() * FIELD_BYTES)
    }
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
        assert_eq!(head.fields(&fields), map);
        assert!(head.is_made());
        assert!(head.bytes() > 0);
        assert_eq!(head.fields(&fields), map, "the kept head");
        assert!(!head.clone().is_made());
    }
}
