//! The content codings edgecache produces and reads (`br`, `gzip`, `zstd`), named once: their token in
//! `Accept-Encoding` / `Content-Encoding`, their metric label and their slot among a stored object's variants.

use std::fmt;

/// A content coding edgecache can encode and decode (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Br,
    Gzip,
    Zstd,
}

impl Coding {
    /// Every coding, in slot order.
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Gzip, Coding::Zstd];

    /// The token, as sent in `Content-Encoding` and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
            Coding::Zstd => "zstd",
        }
    }

    /// The coding a token names, case-insensitively (`x-gzip` is `gzip`, RFC 9110 §8.4.1.3); `None` for any other.
    pub fn from_token(token: &str) -> Option<Coding> {
        let token = token.trim();
        if token.eq_ignore_ascii_case("br") {
            Some(Coding::Br)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else if token.eq_ignore_ascii_case("zstd") {
            Some(Coding::Zstd)
        } else {
            None
        }
    }

    /// A small index (0..3) for per-coding slots.
    pub fn index(self) -> usize {
        match self {
            Coding::Br => 0,
            Coding::Gzip => 1,
            Coding::Zstd => 2,
        }
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a response's `Content-Encoding` says its body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCoding {
    /// No `Content-Encoding` (or `identity`).
    Identity,
    /// One coding edgecache knows.
    Known(Coding),
    /// Anything else (`deflate`, a list of codings, an unreadable field): passed on untouched.
    Other,
}

impl BodyCoding {
    /// Reads every `Content-Encoding` line of a response.
    pub fn of(headers: &http::HeaderMap) -> BodyCoding {
        let mut found = BodyCoding::Identity;
        for value in headers.get_all(http::header::CONTENT_ENCODING) {
            let Ok(text) = value.to_str() else { return BodyCoding::Other };
            for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if token.eq_ignore_ascii_case("identity") {
                    continue;
                }
                match (found, Coding::from_token(token)) {
                    (BodyCoding::Identity, Some(coding)) => found = BodyCoding::Known(coding),
                    _ => return BodyCoding::Other,
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn encoded(values: &[&'static str]) -> BodyCoding {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(http::header::CONTENT_ENCODING, HeaderValue::from_static(v));
        }
        BodyCoding::of(&headers)
    }

    #[test]
    fn content_encoding_is_read_case_insensitively_and_lists_are_opaque() {
        assert_eq!(encoded(&[]), BodyCoding::Identity);
        assert_eq!(encoded(&["identity"]), BodyCoding::Identity);
        assert_eq!(encoded(&["GZIP"]), BodyCoding::Known(Coding::Gzip));
        assert_eq!(encoded(&["x-gzip"]), BodyCoding::Known(Coding::Gzip));
        assert_eq!(encoded(&["br"]), BodyCoding::Known(Coding::Br));
        assert_eq!(encoded(&["gzip, br"]), BodyCoding::Other);
        assert_eq!(encoded(&["gzip", "gzip"]), BodyCoding::Other);
        assert_eq!(encoded(&["deflate"]), BodyCoding::Other);
    }
}
