//! Tags: read from the origin's `Surrogate-Key` and `Cache-Tag` response fields (space- or comma-separated), and
//! the tag index (tag → keys of the stored objects carrying it) that lets a hard tag purge free those objects at
//! once. The index is bounded (`purge.tag_index_max` pairs) and cleaned as objects leave the store. It only frees
//! memory: whether an object is purged is decided at each lookup from its own tags, so a full index loses nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::header::HeaderName;

use crate::cache::Fields;

use crate::cache::VariantKey;

/// `Surrogate-Key` (Fastly, Varnish xkey) and `Cache-Tag` (Cloudflare, Akamai).
pub static TAG_FIELDS: [HeaderName; 2] =
    [HeaderName::from_static("surrogate-key"), HeaderName::from_static("cache-tag")];

/// Most tags read from one response.
pub const MAX_TAGS_PER_OBJECT: usize = 256;
/// Longest tag read; longer ones are ignored.
pub const MAX_TAG_BYTES: usize = 1024;

/// The tags of a response, in order, without duplicates.
pub fn of(headers: &impl Fields) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in iter(headers) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    tags
}

/// The tags of a response as they are written (duplicates included), without copying them: what each lookup
/// checks against the tag purges.
pub fn iter(headers: &impl Fields) -> impl Iterator<Item = &str> {
    TAG_FIELDS
        .iter()
        .flat_map(|name| headers.texts(name))
        .flat_map(|text| text.split(|c: char| c == ',' || c.is_ascii_whitespace()))
        .filter(|tag| !tag.is_empty() && tag.len() <= MAX_TAG_BYTES)
        .take(MAX_TAGS_PER_OBJECT)
}

/// Whether a response carries any tag field (cheap: no parsing).
pub fn has_tags(headers: &impl Fields) -> bool {
    TAG_FIELDS.iter().any(|name| headers.has(name))
}

/// Tag → keys of the stored objects that carry it.
pub struct TagIndex {
    max_pairs: usize,
    pairs: AtomicUsize,
    /// Set once a pair was not indexed for lack of room.
    overflowed: AtomicBool,
    map: Mutex<HashMap<Box<str>, HashSet<VariantKey>>>,
}

impl TagIndex {
    /// An index of at most `max_pairs` (tag, key) pairs.
    pub fn new(max_pairs: usize) -> TagIndex {
        TagIndex {
            max_pairs,
            pairs: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Indexes an object stored under `key` with `tags`.
    pub fn add(&self, key: &VariantKey, tags: &[String]) {
        let Ok(mut map) = self.map.lock() else { return };
        for tag in tags {
            if self.pairs.load(Ordering::Relaxed) >= self.max_pairs {
                self.overflowed.store(true, Ordering::Relaxed);
                return;
            }
            if map.entry(tag.as_str().into()).or_default().insert(key.clone()) {
                self.pairs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forgets an object that left the store.
    pub fn remove<'t>(&self, key: &VariantKey, tags: impl IntoIterator<Item = &'t str>) {
        let Ok(mut map) = self.map.lock() else { return };
        for tag in tags {
            let Some(keys) = map.get_mut(tag) else { continue };
            if keys.remove(key) {
                self.pairs.fetch_sub(1, Ordering::Relaxed);
            }
            if keys.is_empty() {
                map.remove(tag);
            }
        }
    }

    /// The keys indexed under `tag`.
    pub fn keys(&self, tag: &str) -> Vec<VariantKey> {
        self.map.lock().ok().and_then(|map| map.get(tag).map(|keys| keys.iter().cloned().collect())).unwrap_or_default()
    }

    /// Whether some stored object is indexed under `tag`.
    pub fn has(&self, tag: &str) -> bool {
        self.map.lock().is_ok_and(|map| map.contains_key(tag))
    }

    /// (tag, key) pairs held.
    pub fn len(&self) -> usize {
        self.pairs.load(Ordering::Relaxed)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some pair could not be indexed (then a hard tag purge also scans the store).
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::PrimaryKey;
    use http::{HeaderMap, HeaderValue, Uri};

    fn key(path: &'static str) -> VariantKey {
        VariantKey::primary(&PrimaryKey::new("http", "h", &Uri::from_static(path)))
    }

    #[test]
    fn tags_come_from_both_fields_space_or_comma_separated() {
        let mut headers = HeaderMap::new();
        headers.insert("surrogate-key", HeaderValue::from_static("  product-42 category-7  product-42"));
        headers.append("cache-tag", HeaderValue::from_static("home,product-42, sale"));
        assert_eq!(of(&headers), ["product-42", "category-7", "home", "sale"]);
        assert!(has_tags(&headers));
        assert!(of(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn the_index_is_bounded_and_cleaned() {
        let index = TagIndex::new(3);
        let tags = vec!["a".to_string(), "b".to_string()];
        index.add(&key("/1"), &tags);
        index.add(&key("/2"), &tags);
        assert_eq!(index.len(), 3);
        assert!(index.overflowed(), "the fourth pair found no room");
        assert_eq!(index.keys("a").len(), 2);
        index.remove(&key("/1"), tags.iter().map(String::as_str));
        index.remove(&key("/2"), ["a", "b"]);
        assert!(index.is_empty());
        assert!(index.keys("a").is_empty());
    }
}
