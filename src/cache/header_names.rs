//! Header names as a hit needs them: a stored response keeps its field names as lowercase text, and a hit turns
//! each back into a `HeaderName`. Parsing one costs a table walk, and a name outside http's standard set costs an
//! allocation too, per field and per hit; so each worker thread keeps the names it has parsed, found again by one
//! hash of the text.
//!
//! A name outside the standard set is kept as `'static` text: the first time any thread meets it, it is
//! validated, copied once into memory that is never freed, and made a `HeaderName::from_static`, whose clones and
//! drops touch no reference count (a heap name's do, on every field of every hit). That memory is bounded for the
//! whole process: at most [`MAX_NAMES`] names and [`MAX_NAME_BYTES`] bytes of text; past either, further names
//! are parsed each time (an origin inventing names).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, Mutex};

use http::header::HeaderName;
use xxhash_rust::xxh3::xxh3_64;

/// Names kept for the whole process (and by each thread).
pub const MAX_NAMES: usize = 1024;
/// Bytes of name text kept for the whole process.
pub const MAX_NAME_BYTES: usize = 64 * 1024;

thread_local! {
    static NAMES: RefCell<HashMap<u64, HeaderName, BuildHasherDefault<Prehashed>>> = RefCell::default();
}

/// The names kept as `'static` text, and the bytes they take.
static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct Kept {
    names: HashSet<&'static str>,
    bytes: usize,
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
    let parsed = HeaderName::from_lowercase(lowercase).ok()?;
    let Some(name) = kept(&parsed) else { return Some(parsed) };
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if names.len() < MAX_NAMES {
            names.entry(hash).or_insert_with(|| name.clone());
        }
    });
    Some(name)
}

/// `name` made from `'static` text kept for the process, so that its clones touch no reference count (`None` once
/// the budget is spent).
fn kept(name: &HeaderName) -> Option<HeaderName> {
    // A standard name's text is kept too (a few dozen bytes each, once): `from_static` makes it the standard
    // name again, and telling the two kinds apart beforehand would cost a parse.
    let text = name.as_str();
    let mut kept = KEPT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Kept { names, bytes } = &mut *kept;
    let text: &'static str = match names.get(text) {
        Some(&text) => text,
        None if names.len() < MAX_NAMES && *bytes + text.len() <= MAX_NAME_BYTES => {
            *bytes += text.len();
            let leaked: &'static str = Box::leak(text.into());
            names.insert(leaked);
            leaked
        }
        None => return None,
    };
    // `from_static` panics on text that is not a valid lowercase name; `text` is the text of a `HeaderName` made by
    // `from_lowercase`, which accepts exactly the bytes (and lengths) `from_static` does, so it cannot.
    Some(HeaderName::from_static(text))
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

    #[test]
    fn a_custom_name_is_one_kept_text_for_every_thread() {
        let here = from_stored(b"x-kept-for-the-process").expect("valid");
        let there =
            std::thread::spawn(|| from_stored(b"x-kept-for-the-process").map(|name| name.as_str().as_ptr() as usize))
                .join()
                .expect("thread")
                .expect("valid");
        // Two parses would be two heap copies; the kept text is one, shared.
        assert_eq!(here.as_str().as_ptr() as usize, there);
        assert_eq!(here, HeaderName::from_static("x-kept-for-the-process"));
    }
}
