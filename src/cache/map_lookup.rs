//! Looking a field up in a `HeaderMap` by name, cheaply when the map is small. `HeaderMap` finds a name by hashing
//! it and probing its index (~90 instructions, present or not); a map of a few names is searched for less by
//! comparing the names one after the other (a standard name is compared as one small integer). Most requests carry
//! a few fields, and most of the fields a hit asks about (`Range`, `If-None-Match`, `Cache-Control`, `Via`...) are
//! absent, so every lookup on the hit path goes through here. Maps with more names are hashed as before.
//!
//! Writing goes the same way: [`lines_mut`] finds, in one walk, the lines of the few names a hit writes (`Age`,
//! `Cache-Status`, `Via`: the kept head's placeholders), so each is written over where it is.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// Maps with at most this many distinct names are searched by walking their names.
const WALKED_NAMES: usize = 8;

/// Whether `headers` holds `name`.
pub fn holds(headers: &HeaderMap, name: &HeaderName) -> bool {
    if headers.keys_len() <= WALKED_NAMES { headers.keys().any(|key| key == name) } else { headers.contains_key(name) }
}

/// Every value of `name` in the order received, as `HeaderMap::get_all`.
pub fn all<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue> + use<'a> {
    holds(headers, name).then(|| headers.get_all(name)).into_iter().flatten()
}

/// Maps with at most this many fields (lines) are walked by [`lines_mut`]; larger ones are left to the map's own
/// insert and append.
const WALKED_FIELDS: usize = 16;

/// How many lines of a name a map holds, as far as writing over one needs to know.
pub enum Lines<'a> {
    /// None: the name is absent.
    None,
    /// Exactly one, here.
    One(&'a mut HeaderValue),
    /// Several, or a map too large to walk.
    Other,
}

impl<'a> Lines<'a> {
    fn add(&mut self, value: &'a mut HeaderValue) {
        *self = match std::mem::replace(self, Lines::Other) {
            Lines::None => Lines::One(value),
            _ => Lines::Other,
        };
    }
}

/// The lines of each of `names` (distinct names), in one walk of the map.
pub fn lines_mut<'a, const N: usize>(headers: &'a mut HeaderMap, names: [&HeaderName; N]) -> [Lines<'a>; N] {
    if headers.len() > WALKED_FIELDS {
        return std::array::from_fn(|_| Lines::Other);
    }
    let mut lines = std::array::from_fn(|_| Lines::None);
    for (field, value) in headers.iter_mut() {
        if let Some(at) = names.iter().position(|&name| name == field) {
            lines[at].add(value);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn map(names: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in names {
            headers.append(*name, HeaderValue::from_static("1"));
            headers.append(*name, HeaderValue::from_static("2"));
        }
        headers
    }

    #[test]
    fn small_and_large_maps_answer_as_the_map_itself_does() {
        let many: Vec<&'static str> =
            vec!["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "range", "x-custom-field"];
        for names in [&["host"][..], &["host", "range", "x-custom-field"][..], &many[..], &[][..]] {
            let headers = map(names);
            assert_eq!(headers.keys_len() <= WALKED_NAMES, names.len() <= WALKED_NAMES);
            for name in [header::RANGE, header::HOST, header::VIA, HeaderName::from_static("x-custom-field")] {
                assert_eq!(holds(&headers, &name), headers.contains_key(&name), "{name} in {names:?}");
                let expected: Vec<_> = headers.get_all(&name).iter().collect();
                assert_eq!(all(&headers, &name).collect::<Vec<_>>(), expected, "{name} in {names:?}");
            }
        }
    }

    #[test]
    fn lines_tell_one_line_from_none_and_from_several() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AGE, HeaderValue::from_static(""));
        headers.append(header::VIA, HeaderValue::from_static("1.1 a"));
        headers.append(header::VIA, HeaderValue::from_static("1.1 b"));
        let [age, via, range] = lines_mut(&mut headers, [&header::AGE, &header::VIA, &header::RANGE]);
        assert!(matches!(via, Lines::Other) && matches!(range, Lines::None));
        let Lines::One(slot) = age else { panic!("one Age line") };
        *slot = HeaderValue::from_static("7");
        assert_eq!(headers.get(header::AGE).map(HeaderValue::as_bytes), Some(&b"7"[..]), "written in place");
        let mut large = map(&["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "age"]);
        assert!(large.len() > WALKED_FIELDS);
        assert!(matches!(lines_mut(&mut large, [&header::AGE]), [Lines::Other]));
    }
}
