//! What is compressed: responses of a compressible media type (`compression.types`), at least
//! `compression.min_size` long, that are a whole `200` and that neither side marked `no-transform`. Whether the
//! body is already encoded, and whether the request asked for ranges, is the encode step's business.

use http::header::{CACHE_CONTROL, CONTENT_RANGE, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use crate::cache::map_lookup;

/// The default `compression.types`: text, the structured-text formats of the web, SVG, wasm and the font formats
/// that are not compressed already. `type/*` matches a whole type, `+suffix` any `type/x+suffix`.
pub const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/json",
    "application/xml",
    "application/wasm",
    "application/manifest+json",
    "application/x-font-ttf",
    "application/vnd.ms-fontobject",
    "font/ttf",
    "font/otf",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "+json",
    "+xml",
];

/// Media types that are never compressed whatever `compression.types` says: an event stream must reach the client
/// event by event, and a compressor holds bytes back until it has enough of them.
const NEVER: &[&str] = &["text/event-stream"];

/// The media types to compress, by kind of entry, lowercase: exact `type/subtype` entries (sorted, without
/// duplicates), `type/*` entries (the type with its slash) and `+suffix` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTypes {
    exact: Vec<String>,
    types: Vec<String>,
    suffixes: Vec<String>,
}

impl MediaTypes {
    /// From `compression.types` entries (validated: `type/subtype`, `type/*` or `+suffix`), case-insensitive.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> MediaTypes {
        let mut types = MediaTypes { exact: Vec::new(), types: Vec::new(), suffixes: Vec::new() };
        for entry in entries.iter().map(|e| e.as_ref().trim().to_ascii_lowercase()) {
            if entry.starts_with('+') {
                types.suffixes.push(entry);
            } else if let Some(ty) = entry.strip_suffix('*') {
                types.types.push(ty.to_string());
            } else {
                types.exact.push(entry);
            }
        }
        types.exact.sort();
        types.exact.dedup();
        types
    }

    /// Whether a `Content-Type` value names a type to compress (parameters such as `charset` are ignored).
    /// It runs for every answer to a GET: entries are compared in place, case-insensitively, most of them
    /// settled by their length alone.
    pub fn matches(&self, content_type: &str) -> bool {
        let value = content_type.as_bytes();
        let essence = value[..value.iter().position(|&b| b == b';').unwrap_or(value.len())].trim_ascii();
        if essence.is_empty() || NEVER.iter().any(|never| essence.eq_ignore_ascii_case(never.as_bytes())) {
            return false;
        }
        let starts_with =
            |part: &str| essence.get(..part.len()).is_some_and(|p| p.eq_ignore_ascii_case(part.as_bytes()));
        let ends_with = |part: &str| {
            let from = essence.len().checked_sub(part.len());
            from.is_some_and(|from| essence[from..].eq_ignore_ascii_case(part.as_bytes()))
        };
        self.exact.iter().any(|e| e.len() == essence.len() && essence.eq_ignore_ascii_case(e.as_bytes()))
            || self.types.iter().any(|t| starts_with(t))
            || (essence.contains(&b'/') && self.suffixes.iter().any(|s| ends_with(s)))
    }
}

/// Whether a `compression.types` entry is well formed; the reason when it is not.
pub fn check_type_entry(entry: &str) -> Result<(), &'static str> {
    let e = entry.trim();
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    if let Some(suffix) = e.strip_prefix('+') {
        return if token(suffix) { Ok(()) } else { Err("a suffix entry is \"+\" and a token, e.g. \"+json\"") };
    }
    match e.split_once('/') {
        Some((ty, "*")) if token(ty) => Ok(()),
        Some((ty, sub)) if token(ty) && token(sub) => Ok(()),
        _ => Err("expected \"type/subtype\", \"type/*\" or \"+suffix\""),
    }
}

/// Whether `Cache-Control` on a request or response carries `no-transform` (RFC 9111 §5.2.1.6, §5.2.2.6).
pub fn no_transform(headers: &HeaderMap) -> bool {
    const DIRECTIVE: &[u8] = b"no-transform";
    map_lookup::all(headers, &CACHE_CONTROL).any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|d| {
            let d = d.trim_ascii_start();
            // Most directives are settled by their first byte or their length, without comparing them.
            d.len() >= DIRECTIVE.len()
                && (d[0] | 0x20) == b'n'
                && d.split(|&b| b == b'=').next().unwrap_or_default().trim_ascii().eq_ignore_ascii_case(DIRECTIVE)
        })
    })
}

/// Whether a response may be compressed: a whole `200` of a type in `types`, at least `min_size` long when its
/// length is known (an unknown length is compressed), not `no-transform`.
pub fn compressible(
    types: &MediaTypes,
    min_size: u64,
    status: StatusCode,
    headers: &HeaderMap,
    len: Option<u64>,
) -> bool {
    status == StatusCode::OK
        && !headers.contains_key(CONTENT_RANGE)
        && !no_transform(headers)
        && compressible_content(types, min_size, headers, len)
}

/// The part of [`compressible`] that is about the content: a type in `types`, at least `min_size` long when its
/// length is known. For a caller that checked status, `Content-Range` and `no-transform` already.
pub fn compressible_content(types: &MediaTypes, min_size: u64, headers: &HeaderMap, len: Option<u64>) -> bool {
    len.is_none_or(|n| n >= min_size)
        && headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| types.matches(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn default_types() {
        let types = MediaTypes::new(DEFAULT_TYPES);
        for t in [
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/json",
            "application/problem+json",
            "image/svg+xml",
            "application/wasm",
            "application/rss+xml",
        ] {
            assert!(types.matches(t), "{t}");
        }
        for t in ["image/png", "application/octet-stream", "video/mp4", "text/event-stream", "", "application/zip"] {
            assert!(!types.matches(t), "{t}");
        }
    }

    #[test]
    fn type_entries_are_checked() {
        assert!(check_type_entry("text/*").is_ok());
        assert!(check_type_entry("application/vnd.api+json").is_ok());
        assert!(check_type_entry("+xml").is_ok());
        assert!(check_type_entry("text").is_err());
        assert!(check_type_entry("*/*").is_err());
        assert!(check_type_entry("+").is_err());
    }

    #[test]
    fn no_transform_and_sizes() {
        let types = MediaTypes::new(DEFAULT_TYPES);
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(compressible(&types, 10, StatusCode::OK, &h, Some(10)));
        assert!(compressible(&types, 10, StatusCode::OK, &h, None));
        assert!(!compressible(&types, 10, StatusCode::OK, &h, Some(9)));
        assert!(!compressible(&types, 10, StatusCode::NOT_FOUND, &h, Some(100)));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60, No-Transform"));
        assert!(!compressible(&types, 10, StatusCode::OK, &h, Some(100)));
    }

    #[test]
    fn no_transform_is_read_by_directive_name() {
        let says = |value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CACHE_CONTROL, HeaderValue::from_static(value));
            no_transform(&h)
        };
        for value in ["no-transform", "max-age=1,no-transform", "public ,  NO-TRANSFORM , x", "no-transform=\"1\""] {
            assert!(says(value), "{value}");
        }
        for value in ["no-transformed", "x-no-transform", "no-store", "public, max-age=300", "", "n", ",,"] {
            assert!(!says(value), "{value}");
        }
    }
}
