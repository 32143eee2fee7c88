//! A stored response's header fields, compactly: one allocation holding every field's name and value text and
//! where each ends, instead of a `HeaderMap` (~100 B of buckets, index and `Bytes` per field). A hit turns it back
//! into a `HeaderMap` whose values share the stored text (one small allocation per map: the `Bytes` owner of the
//! block); the [`Fields`] trait lets the code that reads a few fields of a stored response (validators, dates,
//! `Vary`, tags) read them from either form without building a map.
//!
//! The block is an `Arc<[u8]>` (a 16 B handle, counters and text in one allocation) rather than a `Bytes` (32 B,
//! and a second allocation for its counter once shared): 32 B less per stored object. A typical head (a few
//! fields, under 256 B of text) has a one-byte count and one-byte offsets.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// Reading header fields by name, from a `HeaderMap` or from [`StoredFields`].
pub trait Fields {
    /// Every value of `name`, in the order received.
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]>;

    /// The first value of `name`.
    fn first(&self, name: &HeaderName) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// Whether `name` is present.
    fn has(&self, name: &HeaderName) -> bool {
        self.first(name).is_some()
    }

    /// The first value of `name` as text, if it is visible ASCII (as `HeaderValue::to_str`).
    fn text(&self, name: &HeaderName) -> Option<&str> {
        self.first(name).and_then(visible_text)
    }

    /// Every value of `name` that is visible ASCII, as text.
    fn texts<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.values(name).filter_map(visible_text)
    }
}

impl Fields for HeaderMap {
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
        super::map_lookup::all(self, name).map(HeaderValue::as_bytes)
    }
}

/// `bytes` as text when `HeaderValue::to_str` would accept them: tab and visible ASCII only.
pub fn visible_text(bytes: &[u8]) -> Option<&str> {
    let visible = bytes.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
    if visible { std::str::from_utf8(bytes).ok() } else { None }
}

/// The header fields of a stored response. Layout of the block: a head saying how many fields there are and how wide
/// the offsets are, then for each field where its name and its value end in the text, then the text: every name
/// (lowercase) followed by its value. The head is one byte, the count, when there are at most 63 fields of at most
/// 255 B of text, and the offsets are one byte each (the common case: a few fields, a short head); otherwise it is
/// a marker byte ([`MEDIUM`] or [`WIDE`]) and the count as a u16, and the offsets are u16 (text up to 64 KiB) or
/// u32.
#[derive(Clone)]
pub struct StoredFields {
    block: Arc<[u8]>,
}

impl Default for StoredFields {
    fn default() -> StoredFields {
        StoredFields { block: Arc::from(&[][..]) }
    }
}

/// The head's marker of u16 offsets; a first byte below it is the count of a block with one-byte offsets.
const MEDIUM: u8 = 0x40;
/// The head's marker of u32 offsets.
const WIDE: u8 = 0x80;
/// Most fields of a block with one-byte offsets (a count below [`MEDIUM`]).
const MAX_NARROW_FIELDS: usize = MEDIUM as usize - 1;
/// Fields a hit adds to the stored ones.
const ADDED_ON_A_HIT: usize = 4;
/// Most fields kept.
const MAX_FIELDS: usize = (1 << 15) - 1;

impl StoredFields {
    /// The fields of `map`, in its order (values of one name together, in the order received). A map of more
    /// than 32,767 fields or 4 GiB of text keeps nothing past that (hyper refuses such heads long before).
    pub fn from_map(map: &HeaderMap) -> StoredFields {
        let fields: Vec<(&[u8], &[u8])> =
            map.iter().take(MAX_FIELDS).map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())).collect();
        StoredFields::build(&fields)
    }

    fn build(fields: &[(&[u8], &[u8])]) -> StoredFields {
        let text_len: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
        if u32::try_from(text_len).is_err() {
            return StoredFields::default();
        }
        // The head: the count alone, or a marker and the count (at most MAX_FIELDS, a u16).
        let (width, mut block) = if fields.len() <= MAX_NARROW_FIELDS && text_len <= usize::from(u8::MAX) {
            let mut block = Vec::with_capacity(1 + fields.len() * 2 + text_len);
            block.push(fields.len() as u8);
            (1, block)
        } else {
            let (width, marker) = if text_len <= usize::from(u16::MAX) { (2, MEDIUM) } else { (4, WIDE) };
            let mut block = Vec::with_capacity(3 + fields.len() * 2 * width + text_len);
            block.push(marker);
            block.extend_from_slice(&(fields.len() as u16).to_le_bytes());
            (width, block)
        };
        let mut end = 0usize;
        let mut push = |end: usize| {
            // Within text_len, which fits the width.
            match width {
                1 => block.push(end as u8),
                2 => block.extend_from_slice(&(end as u16).to_le_bytes()),
                _ => block.extend_from_slice(&(end as u32).to_le_bytes()),
            }
        };
        for (name, value) in fields {
            end += name.len();
            push(end);
            end += value.len();
            push(end);
        }
        for (name, value) in fields {
            block.extend_from_slice(name);
            block.extend_from_slice(value);
        }
        StoredFields { block: Arc::from(block) }
    }

    /// How many fields, how wide an offset is and where the index starts, from the block's head.
    fn head(&self) -> (usize, usize, usize) {
        match self.block.first() {
            None => (0, 1, 1),
            Some(&count) if count < MEDIUM => (usize::from(count), 1, 1),
            Some(&marker) => {
                let count = match self.block.get(1..3) {
                    Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
                    _ => 0,
                };
                (count, if marker == MEDIUM { 2 } else { 4 }, 3)
            }
        }
    }

    /// Bytes of one offset in the index.
    #[cfg(test)]
    fn width(&self) -> usize {
        self.head().1
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.head().0
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the names and values.
    pub fn text_len(&self) -> usize {
        self.block.len().saturating_sub(self.text_start())
    }

    /// Bytes of the whole block: text, index and head.
    pub fn bytes(&self) -> usize {
        self.block.len()
    }

    fn text_start(&self) -> usize {
        let (count, width, index) = self.head();
        index + count * 2 * width
    }

    /// Offset `n` of the index (field `n / 2`'s name end, or value end), the index being `width` bytes an offset
    /// from `index` on.
    fn end(&self, (width, index): (usize, usize), n: usize) -> usize {
        let at = index + n * width;
        match self.block.get(at..at + width) {
            Some(&[a]) => usize::from(a),
            Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
            _ => 0,
        }
    }

    /// Field `i`: where its name and its value are in the block.
    fn spans(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (count, width, index) = self.head();
        let text = index + count * 2 * width;
        let at = (width, index);
        let start = if i == 0 { 0 } else { self.end(at, 2 * i - 1) };
        let (name_end, value_end) = (self.end(at, 2 * i), self.end(at, 2 * i + 1));
        (text + start..text + name_end, text + name_end..text + value_end)
    }

    /// Every field as (name, value) bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.len()).filter_map(|i| {
            let (name, value) = self.spans(i);
            Some((self.block.get(name)?, self.block.get(value)?))
        })
    }

    /// The fields as a `HeaderMap` (for a response, or for code that edits them); the values share the block.
    /// It has room for the few fields a hit adds (`Age`, `Cache-Status`, `Via`, `Vary`) without growing.
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.len() + ADDED_ON_A_HIT);
        let shared = self.shared();
        let mut last: Option<HeaderName> = None;
        for i in 0..self.len() {
            let (name, value) = self.spans(i);
            let Some(name_bytes) = self.block.get(name) else { continue };
            // Values of one name are stored together: parse the name once.
            let name = match last.take() {
                Some(last) if last.as_str().as_bytes() == name_bytes => last,
                // Stored as HeaderName gives them: lowercase.
                _ => match super::header_names::from_stored(name_bytes) {
                    Some(name) => name,
                    None => continue,
                },
            };
            // The bytes were a valid value when stored.
            let Ok(value) = HeaderValue::from_maybe_shared(shared.slice(value)) else { continue };
            map.append(name.clone(), value);
            last = Some(name);
        }
        map
    }

    /// The values of `name` as `HeaderValue`s sharing the block.
    pub fn get_all(&self, name: &HeaderName) -> impl Iterator<Item = HeaderValue> {
        let name = name.as_str().as_bytes();
        let mut shared: Option<Bytes> = None;
        (0..self.len()).filter_map(move |i| {
            let (name_span, value) = self.spans(i);
            if self.block.get(name_span)? != name {
                return None;
            }
            let shared = shared.get_or_insert_with(|| self.shared());
            HeaderValue::from_maybe_shared(shared.slice(value)).ok()
        })
    }

    /// The block as `Bytes`, for values that share it.
    fn shared(&self) -> Bytes {
        Bytes::from_owner(self.block.clone())
    }
}

impl Fields for StoredFields {
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
        let name = name.as_str().as_bytes();
        self.iter().filter(move |(n, _)| *n == name).map(|(_, value)| value)
    }
}

impl std::fmt::Debug for StoredFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = self.iter().map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)));
        f.debug_map().entries(fields).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn fields_come_back_as_they_were_stored() {
        let original =
            map(&[("etag", "\"v1\""), ("cache-tag", "a b"), ("x-custom", ""), ("cache-tag", "c"), ("date", "x")]);
        let stored = StoredFields::from_map(&original);
        assert_eq!(stored.len(), 5);
        assert_eq!(stored.text_len(), original.iter().map(|(n, v)| n.as_str().len() + v.len()).sum::<usize>());
        assert_eq!(stored.to_map(), original);
        assert_eq!(stored.text(&header::ETAG), Some("\"v1\""));
        let tag = HeaderName::from_static("cache-tag");
        assert_eq!(stored.texts(&tag).collect::<Vec<_>>(), ["a b", "c"]);
        assert_eq!(stored.get_all(&tag).collect::<Vec<_>>(), ["a b", "c"]);
        assert!(stored.has(&HeaderName::from_static("x-custom")));
        assert!(!stored.has(&header::VARY));
        assert_eq!(stored.first(&HeaderName::from_static("x-custom")), Some(&b""[..]));
    }

    #[test]
    fn more_than_64_kib_of_text_takes_wide_offsets() {
        let long = "v".repeat(70_000);
        let mut original = map(&[("etag", "\"v1\"")]);
        original.insert("x-long", HeaderValue::from_str(&long).expect("value"));
        original.insert(header::DATE, HeaderValue::from_static("d"));
        let stored = StoredFields::from_map(&original);
        assert_eq!(stored.width(), 4);
        assert_eq!(stored.to_map(), original);
        assert_eq!(stored.text(&HeaderName::from_static("x-long")).map(str::len), Some(70_000));
        assert_eq!(stored.text(&header::DATE), Some("d"));
        assert_eq!(StoredFields::from_map(&map(&[("etag", "x")])).width(), 1);
    }

    #[test]
    fn a_short_head_takes_one_byte_offsets_and_a_one_byte_count() {
        let value = "v".repeat(200);
        let mut original = map(&[("etag", "\"v1\""), ("date", "d")]);
        original.insert("x-200", HeaderValue::from_str(&value).expect("value"));
        let stored = StoredFields::from_map(&original);
        assert_eq!((stored.width(), stored.len()), (1, 3));
        assert_eq!(stored.bytes(), 1 + 3 * 2 + stored.text_len(), "head, index and text");
        assert_eq!(stored.to_map(), original);
        // 256 B of text or 64 fields take two-byte offsets.
        original.insert("x-more", HeaderValue::from_str(&"w".repeat(40)).expect("value"));
        let stored = StoredFields::from_map(&original);
        assert_eq!((stored.width(), stored.bytes()), (2, 3 + 4 * 4 + stored.text_len()));
        assert_eq!(stored.to_map(), original);
        // 64 fields take them too, however short.
        let name = |i: usize| HeaderName::from_bytes(format!("x{i}").as_bytes()).expect("name");
        let many: HeaderMap = (0..64).map(|i| (name(i), HeaderValue::from_static(""))).collect();
        let stored = StoredFields::from_map(&many);
        assert_eq!((stored.width(), stored.len()), (2, 64));
        assert_eq!(stored.to_map(), many);
        let fewer: HeaderMap = (0..63).map(|i| (name(i), HeaderValue::from_static(""))).collect();
        assert_eq!(StoredFields::from_map(&fewer).width(), 1);
        assert_eq!(StoredFields::from_map(&fewer).to_map(), fewer);
    }

    #[test]
    fn no_fields_and_opaque_values() {
        let empty = StoredFields::from_map(&HeaderMap::new());
        assert!(empty.is_empty());
        assert_eq!(empty.to_map(), HeaderMap::new());
        assert!(StoredFields::default().is_empty());
        let mut original = HeaderMap::new();
        original.insert(header::CONTENT_DISPOSITION, HeaderValue::from_bytes(b"caf\xc3\xa9").expect("obs-text"));
        let stored = StoredFields::from_map(&original);
        assert_eq!(stored.text(&header::CONTENT_DISPOSITION), None, "not visible ASCII, as HeaderValue::to_str");
        assert_eq!(original.text(&header::CONTENT_DISPOSITION), None);
        assert_eq!(stored.to_map(), original);
    }
}
