//! Looking a field up in a `HeaderMap` by name, cheaply when the map is small. `HeaderMap` finds a name by hashing
//! it and probing its index (~90 instructions, present or not); a map of a few names is searched for less by
//! comparing the names one after the other (a standard name is compared as one small integer). Most requests carry
//! a few fields, and most of the fields a hit asks about (`Range`, `If-None-Match`, `Cache-Control`, `Via`...) are
//! absent, so every lookup on the hit path goes through here. Maps with more names are hashed as before.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// Maps with at most this many distinct names are searched by walking their names.
const WALKED_NAMES: usize = 8;

/// Whether `headers` holds `name`.
pub fn holds(headers: &HeaderMap, name: &HeaderName) -> bool {
    if headers.keys_len() <= WALKED_NAMES { headers.keys().any(|key| key == name) } else { headers.contains_key(name) }
}

/// The first value of `name`, as `HeaderMap::get`.
pub fn first<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    if holds(headers, name) { headers.get(name) } else { None }
}

/// Every value of `name` in the order received, as `HeaderMap::get_all`.
pub fn all<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue> + use<'a> {
    holds(headers, name).then(|| headers.get_all(name)).into_iter().flatten()
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
                assert_eq!(first(&headers, &name), headers.get(&name), "{name} in {names:?}");
                let expected: Vec<_> = headers.get_all(&name).iter().collect();
                assert_eq!(all(&headers, &name).collect::<Vec<_>>(), expected, "{name} in {names:?}");
            }
        }
    }
}
