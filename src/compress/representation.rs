//! The header fields of a transformed answer: `Content-Encoding`, `Content-Length`, a distinct weak `ETag` per
//! coding (`"abc"` sent as br is `W/"abc-br"`), `Vary: Accept-Encoding`, and the weak comparison that lets a
//! client's `If-None-Match` with a transformed ETag be answered 304.

use http::HeaderMap;
use http::header::{ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, ETAG, HeaderValue, VARY};

use super::coding::Coding;

/// The ETag of a representation transformed into `coding` (`None`: decoded to identity): weak, with the coding's
/// token appended to the opaque tag. `None` if `etag` is not a well-formed entity tag.
pub fn transformed_etag(etag: &HeaderValue, coding: Option<Coding>) -> Option<HeaderValue> {
    let text = etag.to_str().ok()?.trim();
    let opaque = text.strip_prefix("W/").unwrap_or(text);
    let inner = opaque.strip_prefix('"')?.strip_suffix('"')?;
    let suffix = coding.map_or("identity", Coding::as_str);
    HeaderValue::from_str(&format!("W/\"{inner}-{suffix}\"")).ok()
}

/// Rewrites a response's fields for a body transformed into `coding` (`None`: decoded) whose length is `len`
/// when known: the coding, the length, the ETag; ranges are not offered on a transformed body.
pub fn set_transformed(headers: &mut HeaderMap, coding: Option<Coding>, len: Option<u64>) {
    match coding {
        Some(coding) => headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.as_str())),
        None => headers.remove(CONTENT_ENCODING),
    };
    match len {
        Some(len) => headers.insert(CONTENT_LENGTH, HeaderValue::from(len)),
        None => headers.remove(CONTENT_LENGTH),
    };
    if let Some(etag) = headers.get(ETAG).and_then(|e| transformed_etag(e, coding)) {
        headers.insert(ETAG, etag);
    }
    headers.remove(ACCEPT_RANGES);
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`).
pub fn vary_on_accept_encoding(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .split(',')
            .map(str::trim)
            .any(|f| f == "*" || f.eq_ignore_ascii_case("accept-encoding"))
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Whether any `If-None-Match` line matches `etag` by weak comparison (RFC 9110 §8.8.3.2, §13.1.2).
pub fn none_match(if_none_match: &[HeaderValue], etag: &HeaderValue) -> bool {
    let Some(tag) = etag.to_str().ok().map(opaque) else { return false };
    if_none_match.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|candidate| {
        let candidate = candidate.trim();
        candidate == "*" || opaque(candidate) == tag
    })
}

fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_get_a_weak_suffix() {
        let strong = HeaderValue::from_static("\"abc\"");
        assert_eq!(transformed_etag(&strong, Some(Coding::Br)).expect("tag"), "W/\"abc-br\"");
        let weak = HeaderValue::from_static("W/\"abc\"");
        assert_eq!(transformed_etag(&weak, Some(Coding::Gzip)).expect("tag"), "W/\"abc-gzip\"");
        assert_eq!(transformed_etag(&strong, None).expect("tag"), "W/\"abc-identity\"");
        assert_eq!(transformed_etag(&HeaderValue::from_static("abc"), None), None);
    }

    #[test]
    fn weak_comparison_and_vary() {
        let tag = HeaderValue::from_static("W/\"abc-br\"");
        assert!(none_match(&[HeaderValue::from_static("\"x\", W/\"abc-br\"")], &tag));
        assert!(none_match(&[HeaderValue::from_static("\"abc-br\"")], &tag));
        assert!(none_match(&[HeaderValue::from_static("*")], &tag));
        assert!(!none_match(&[HeaderValue::from_static("W/\"abc\"")], &tag));
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Origin"));
        vary_on_accept_encoding(&mut h);
        vary_on_accept_encoding(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 2);
    }
}
