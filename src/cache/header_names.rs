//! Header names as a hit needs them: a stored response keeps its field names as lowercase text, and a hit turns
//! each back into a `HeaderName`. Parsing one costs a table walk, and a name outside http's standard set costs an
//! allocation too, per field and per hit; so each worker thread keeps the names it has parsed (at most
//! [`MAX_NAMES`]), found again by one hash of the text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use http::header::HeaderName;
use xxhash_rust::xxh3::xxh3_64;

/// Names one thread keeps; past this, further names are parsed each time (an origin inventing names).
pub const MAX_NAMES: usize = 1024;

thread_local! {
    static NAMES: RefCell<HashMap<u64, HeaderName, BuildHasherDefault<Prehashed>>> = RefCell::default();
}

/// The `HeaderName` of `lowercase` text (as stored: lowercase, valid), `None` if it is not a valid name.
pub fn from_stored(lowercase: &[u8]) -> Option<HeaderName> {
    let hash = xxh3_64(lowercase);
    let known = NAMES.with(|names| {
        let names = names.borrow();
        names.get(&hash).filter(|name| name.as_str().as_bytes() == lowercase).cloned()
    });
    if known.is_some() {
        return known;
    }
    let name = HeaderName::from_lowercase(lowercase).ok()?;
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if names.len() < MAX_NAMES {
            names.entry(hash).or_insert_with(|| name.clone());
        }
    });
    Some(name)
}

/// The map's keys are hashes already: passed through as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_custom_names_come_back_equal_to_a_parse() {
        for text in ["content-type", "x-origin-requests", "cache-status", "etag"] {
            let first = from_stored(text.as_bytes()).expect("valid");
            let again = from_stored(text.as_bytes()).expect("valid");
            assert_eq!(first, HeaderName::from_static(text));
            assert_eq!(again, first);
        }
        assert!(from_stored(b"not a name").is_none());
    }
}
