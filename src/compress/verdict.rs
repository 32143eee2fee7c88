//! What the encode step reads off a response's head before it looks at the request: the coding of the body,
//! whether the response may be transformed at all, and whether it is worth compressing. For an answer from the
//! cache these depend on the stored object alone (and on `[compression]`, which does not change while the node
//! runs), so the pipeline works them out on the object's first hit and keeps them with its response head
//! (`RenderedHead`), as one byte; later hits read the byte instead of the header fields.

use http::header::CONTENT_RANGE;
use http::{HeaderMap, StatusCode};

use super::{BodyCoding, Coding, Compression, rules};

/// What a response's head says about transforming it, whoever asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadVerdict {
    /// What its `Content-Encoding` says the body is.
    pub from: BodyCoding,
    /// A whole `200` that the response did not mark `no-transform`.
    pub transformable: bool,
    /// Transformable, of a type to compress (`compression.types`) and long enough (`compression.min_size`).
    pub compressible: bool,
}

/// Bits of the kept byte; it is never 0, which stands for "not worked out yet".
const KNOWN: u8 = 1;
const TRANSFORMABLE: u8 = 2;
const COMPRESSIBLE: u8 = 4;
/// The body's coding, from this bit up: 0 identity, 1 another coding, 2 + a known coding's index.
const CODING_SHIFT: u32 = 3;

impl HeadVerdict {
    /// Reads a response head of `len` body bytes (`None`: unknown) under `compression`.
    pub fn of(compression: &Compression, status: StatusCode, headers: &HeaderMap, len: Option<u64>) -> HeadVerdict {
        let transformable =
            status == StatusCode::OK && !headers.contains_key(CONTENT_RANGE) && !rules::no_transform(headers);
        let compressible =
            transformable && rules::compressible_content(&compression.types, compression.min_size, headers, len);
        HeadVerdict { from: BodyCoding::of(headers), transformable, compressible }
    }

    /// As the byte kept with a stored object's head.
    pub fn to_byte(self) -> u8 {
        let coding = match self.from {
            BodyCoding::Identity => 0,
            BodyCoding::Other => 1,
            BodyCoding::Known(coding) => 2 + coding.index() as u8,
        };
        KNOWN
            | if self.transformable { TRANSFORMABLE } else { 0 }
            | if self.compressible { COMPRESSIBLE } else { 0 }
            | coding << CODING_SHIFT
    }

    /// From a kept byte; `None` for 0 (not worked out yet) or a byte `to_byte` does not make.
    pub fn from_byte(byte: u8) -> Option<HeadVerdict> {
        if byte & KNOWN == 0 {
            return None;
        }
        let from = match byte >> CODING_SHIFT {
            0 => BodyCoding::Identity,
            1 => BodyCoding::Other,
            n => BodyCoding::Known(*Coding::ALL.get(usize::from(n) - 2)?),
        };
        Some(HeadVerdict { from, transformable: byte & TRANSFORMABLE != 0, compressible: byte & COMPRESSIBLE != 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CompressionConfig;
    use http::HeaderValue;
    use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};

    fn head(pairs: &[(http::header::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn reads_the_head() {
        let c = Compression::new(&CompressionConfig::defaults());
        let html = head(&[(CONTENT_TYPE, "text/html"), (CACHE_CONTROL, "max-age=60")]);
        let v = HeadVerdict::of(&c, StatusCode::OK, &html, Some(4096));
        assert_eq!(v, HeadVerdict { from: BodyCoding::Identity, transformable: true, compressible: true });
        assert!(!HeadVerdict::of(&c, StatusCode::OK, &html, Some(1)).compressible, "below min_size");
        assert!(!HeadVerdict::of(&c, StatusCode::NOT_FOUND, &html, Some(4096)).transformable);
        let kept = head(&[(CONTENT_TYPE, "text/html"), (CACHE_CONTROL, "max-age=60, no-transform")]);
        let v = HeadVerdict::of(&c, StatusCode::OK, &kept, Some(4096));
        assert!(!v.transformable && !v.compressible);
        let binary = head(&[(CONTENT_TYPE, "application/octet-stream"), (CONTENT_ENCODING, "gzip")]);
        let v = HeadVerdict::of(&c, StatusCode::OK, &binary, Some(4096));
        assert_eq!(v, HeadVerdict { from: BodyCoding::Known(Coding::Gzip), transformable: true, compressible: false });
    }

    #[test]
    fn every_verdict_survives_its_byte_and_zero_is_unknown() {
        assert_eq!(HeadVerdict::from_byte(0), None);
        let codings = [BodyCoding::Identity, BodyCoding::Other].into_iter().chain(Coding::ALL.map(BodyCoding::Known));
        for from in codings {
            for (transformable, compressible) in [(false, false), (true, false), (true, true)] {
                let verdict = HeadVerdict { from, transformable, compressible };
                assert_ne!(verdict.to_byte(), 0);
                assert_eq!(HeadVerdict::from_byte(verdict.to_byte()), Some(verdict));
            }
        }
    }
}
