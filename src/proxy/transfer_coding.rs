//! Transfer codings of a request body (RFC 9112 §6.1, §7): hyper decodes `chunked` and nothing else, and the
//! `Transfer-Encoding` field is hop-by-hop, so a body sent with another coding (`gzip, chunked`) would reach the
//! origin still coded and with nothing to say so. Such a request is refused with 501 (Not Implemented), as the RFC
//! asks of a server that receives a transfer coding it does not understand.

use http::{HeaderMap, header};

/// Whether `headers` name a transfer coding other than `chunked`.
pub fn has_unknown_coding(headers: &HeaderMap) -> bool {
    headers.get_all(header::TRANSFER_ENCODING).iter().any(|value| {
        value.to_str().map_or(true, |codings| {
            codings.split(',').map(str::trim).any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("chunked"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn unknown(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::TRANSFER_ENCODING, HeaderValue::from_str(value).expect("value"));
        }
        has_unknown_coding(&headers)
    }

    #[test]
    fn only_chunked_is_understood() {
        assert!(!unknown(&[]));
        assert!(!unknown(&["chunked"]));
        assert!(!unknown(&["Chunked"]));
        assert!(unknown(&["gzip, chunked"]));
        assert!(unknown(&["gzip", "chunked"]));
        assert!(unknown(&["x-custom"]));
    }
}
