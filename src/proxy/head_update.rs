//! RFC 9111 §4.3.5: a 200 answer to a HEAD that went upstream for a stale stored GET response may freshen it, when
//! both describe the same representation.

use http::HeaderMap;
use http::header::{self, HeaderName};

use crate::cache::Fields;

/// Whether a HEAD response with `head` headers describes the representation stored with `stored` headers: it
/// carries at least one validator, every validator it carries equals the stored one, and its `Content-Length`
/// (if any) equals the stored one. Only then may its header fields update the stored response.
pub fn describes_stored(stored: &impl Fields, head: &HeaderMap) -> bool {
    let same = |name: &HeaderName| head.get(name).is_none_or(|value| stored.first(name) == Some(value.as_bytes()));
    let has_validator = head.contains_key(header::ETAG) || head.contains_key(header::LAST_MODIFIED);
    has_validator && same(&header::ETAG) && same(&header::LAST_MODIFIED) && same(&header::CONTENT_LENGTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn matching_validators_and_length_update() {
        let stored = headers(&[("etag", "\"a\""), ("content-length", "10")]);
        assert!(describes_stored(&stored, &headers(&[("etag", "\"a\""), ("content-length", "10")])));
        assert!(describes_stored(&stored, &headers(&[("etag", "\"a\"")])));
        assert!(!describes_stored(&stored, &headers(&[("etag", "\"b\"")])));
        assert!(!describes_stored(&stored, &headers(&[("etag", "\"a\""), ("content-length", "11")])));
        assert!(!describes_stored(&stored, &headers(&[("content-length", "10")])), "no validator, no update");
        assert!(!describes_stored(&stored, &headers(&[("etag", "\"a\""), ("last-modified", "x")])));
    }
}
