//! Range requests answered from a stored whole response (RFC 9110 §14): parsing `Range: bytes=…`, `If-Range`, and
//! writing the 206 (one part, or `multipart/byteranges`) or the 416.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use super::respond;
use crate::cache::{Fields, map_lookup};
use crate::policy::conditional::strong_eq;

/// More ranges than this in one request are not worth answering piecewise: the whole response is sent instead
/// (RFC 9110 §14.2 allows ignoring such a `Range`).
const MAX_RANGES: usize = 64;

/// One satisfiable byte range, both ends included, within the representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    fn content_range(self, complete: u64) -> String {
        format!("bytes {}-{}/{complete}", self.first, self.last)
    }
}

/// How a stored response answers a request's `Range`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No `Range`, one to ignore (not GET, not `bytes`, invalid syntax, too many ranges, `If-Range` not
    /// matching, not a 200): the whole response.
    Whole,
    /// 206 with these ranges, in the order asked.
    Partial(Vec<ByteRange>),
    /// 416: no range overlaps the representation.
    NotSatisfiable,
}

/// How a request's `Range` applies to a stored response of `status` with `stored` headers and `len` body bytes.
pub fn select(method: &Method, request: &HeaderMap, status: StatusCode, stored: &impl Fields, len: u64) -> RangeAnswer {
    // Range is defined for GET only; ranges of anything but the whole 200 representation are not ours to cut.
    if method != Method::GET || status != StatusCode::OK || len == 0 {
        return RangeAnswer::Whole;
    }
    let mut lines = map_lookup::all(request, &header::RANGE);
    let Some(value) = lines.next() else { return RangeAnswer::Whole };
    if lines.next().is_some() || !if_range_holds(request, stored) {
        return RangeAnswer::Whole;
    }
    let Some(specs) = value.to_str().ok().and_then(parse_range) else { return RangeAnswer::Whole };
    if specs.len() > MAX_RANGES {
        return RangeAnswer::Whole;
    }
    let ranges: Vec<ByteRange> = specs.into_iter().filter_map(|spec| spec.resolve(len)).collect();
    if ranges.is_empty() { RangeAnswer::NotSatisfiable } else { RangeAnswer::Partial(ranges) }
}

/// A range as written in the request, before the representation's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The satisfiable part of this range in a representation of `len` bytes (RFC 9110 §14.1.2).
    fn resolve(self, len: u64) -> Option<ByteRange> {
        match self {
            RangeSpec::From { first, last } if first < len => {
                Some(ByteRange { first, last: last.unwrap_or(u64::MAX).min(len - 1) })
            }
            RangeSpec::From { .. } => None,
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(n) => Some(ByteRange { first: len.saturating_sub(n), last: len - 1 }),
        }
    }
}

/// Parses a `Range` value in the `bytes` unit; `None` when it is not one (another unit, or invalid syntax: the
/// field is then ignored).
fn parse_range(value: &str) -> Option<Vec<RangeSpec>> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim_end().eq_ignore_ascii_case("bytes") || unit.trim_end() != unit {
        return None;
    }
    let mut specs = Vec::new();
    // A list may hold empty elements (RFC 9110 §5.6.1).
    for item in set.split(',').map(|item| item.trim_matches([' ', '\t'])).filter(|item| !item.is_empty()) {
        let (first, last) = item.split_once('-')?;
        let spec = if first.is_empty() {
            RangeSpec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() { None } else { Some(digits(last)?) };
            if last.is_some_and(|last| last < first) {
                return None;
            }
            RangeSpec::From { first, last }
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// `1*DIGIT`, saturating at `u64::MAX` (a huge last position just means "to the end").
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(u64::from(b - b'0'))))
}

/// Whether the request's `If-Range` (if any) lets the ranges be served (RFC 9110 §13.1.5): an entity tag must
/// match the stored strong `ETag` exactly; a date must equal the stored `Last-Modified`, which must be strong
/// (the stored `Date` at least one second later, §8.8.2.2).
fn if_range_holds(request: &HeaderMap, stored: &impl Fields) -> bool {
    let Some(condition) = request.get(header::IF_RANGE) else { return true };
    let Ok(condition) = condition.to_str().map(str::trim) else { return false };
    if condition.starts_with('"') || condition.starts_with("W/") {
        let Some(etag) = stored.text(&header::ETAG).map(str::trim) else { return false };
        return strong_eq(condition.as_bytes(), etag.as_bytes());
    }
    let date = |name| stored.text(name).and_then(|v| httpdate::parse_http_date(v).ok());
    let Ok(asked) = httpdate::parse_http_date(condition) else { return false };
    let (Some(modified), Some(dated)) = (date(&header::LAST_MODIFIED), date(&header::DATE)) else {
        return false;
    };
    asked == modified && dated.duration_since(modified).is_ok_and(|gap| gap.as_secs() >= 1)
}

/// Turns `whole`, the stored response as it would be sent, into a 206 carrying `ranges` of `body`: one part with
/// `Content-Range`, or several as `multipart/byteranges`.
pub fn partial(whole: Response<ProxyBody>, body: &Bytes, ranges: &[ByteRange]) -> Response<ProxyBody> {
    let (mut head, _) = whole.into_parts();
    let complete = body.len() as u64;
    head.status = StatusCode::PARTIAL_CONTENT;
    let part = |range: ByteRange| body.slice(range.first as usize..=range.last as usize);
    let body = match ranges {
        [range] => {
            if let Ok(value) = HeaderValue::from_str(&range.content_range(complete)) {
                head.headers.insert(header::CONTENT_RANGE, value);
            }
            part(*range)
        }
        _ => {
            let content_type = head.headers.get(header::CONTENT_TYPE).cloned();
            let boundary = boundary(body);
            let mut out = BytesMut::new();
            for range in ranges {
                out.put_slice(b"--");
                out.put_slice(boundary.as_bytes());
                out.put_slice(b"\r\n");
                if let Some(content_type) = &content_type {
                    out.put_slice(b"Content-Type: ");
                    out.put_slice(content_type.as_bytes());
                    out.put_slice(b"\r\n");
                }
                out.put_slice(b"Content-Range: ");
                out.put_slice(range.content_range(complete).as_bytes());
                out.put_slice(b"\r\n\r\n");
                out.put_slice(&part(*range));
                out.put_slice(b"\r\n");
            }
            out.put_slice(b"--");
            out.put_slice(boundary.as_bytes());
            out.put_slice(b"--\r\n");
            if let Ok(value) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
                head.headers.insert(header::CONTENT_TYPE, value);
            }
            head.headers.remove(header::CONTENT_RANGE);
            out.freeze()
        }
    };
    head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(head, ProxyBody::full(body))
}

/// A multipart boundary that does not occur in `body`.
fn boundary(body: &Bytes) -> String {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default() as u64;
    let mut candidate = seed;
    loop {
        let boundary = format!("edgecache-{candidate:016x}");
        if !body.windows(boundary.len()).any(|window| window == boundary.as_bytes()) {
            return boundary;
        }
        candidate = candidate.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    }
}

/// 416 for a representation of `len` bytes that none of the requested ranges overlaps.
pub fn not_satisfiable(len: u64) -> Response<ProxyBody> {
    let mut response = respond::error(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn select_get(range: &'static str, len: u64) -> RangeAnswer {
        select(&Method::GET, &request(&[("range", range)]), StatusCode::OK, &HeaderMap::new(), len)
    }

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn byte_range_forms_resolve_against_the_length() {
        assert_eq!(select_get("bytes=0-4", 10), RangeAnswer::Partial(vec![r(0, 4)]));
        assert_eq!(select_get("bytes=5-", 10), RangeAnswer::Partial(vec![r(5, 9)]));
        assert_eq!(select_get("bytes=-3", 10), RangeAnswer::Partial(vec![r(7, 9)]));
        assert_eq!(select_get("bytes=-30", 10), RangeAnswer::Partial(vec![r(0, 9)]));
        assert_eq!(select_get("bytes=8-99999999999999999999999", 10), RangeAnswer::Partial(vec![r(8, 9)]));
        assert_eq!(select_get("BYTES=0-0, ,2-3", 10), RangeAnswer::Partial(vec![r(0, 0), r(2, 3)]));
        assert_eq!(select_get("bytes=10-, 20-30", 10), RangeAnswer::NotSatisfiable);
        assert_eq!(select_get("bytes=-0", 10), RangeAnswer::NotSatisfiable);
        assert_eq!(select_get("bytes=10-, 3-4", 10), RangeAnswer::Partial(vec![r(3, 4)]));
    }

    #[test]
    fn invalid_or_foreign_ranges_are_ignored() {
        for invalid in ["bytes=5-4", "bytes=a-b", "bytes=", "bytes=1", "items=0-1", "bytes = 0-1", "bytes=-", "0-1"] {
            assert_eq!(select_get(invalid, 10), RangeAnswer::Whole, "{invalid}");
        }
        let many = Box::leak(format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(",")).into_boxed_str());
        assert_eq!(select_get(many, 10), RangeAnswer::Whole);
        let head = select(&Method::HEAD, &request(&[("range", "bytes=0-1")]), StatusCode::OK, &HeaderMap::new(), 10);
        assert_eq!(head, RangeAnswer::Whole);
        let not_found =
            select(&Method::GET, &request(&[("range", "bytes=0-1")]), StatusCode::NOT_FOUND, &HeaderMap::new(), 10);
        assert_eq!(not_found, RangeAnswer::Whole);
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let stored = request(&[
            ("etag", "\"v1\""),
            ("last-modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("date", "Mon, 01 Jan 2024 00:00:05 GMT"),
        ]);
        let ask = |condition: &'static str| {
            select(
                &Method::GET,
                &request(&[("range", "bytes=0-1"), ("if-range", condition)]),
                StatusCode::OK,
                &stored,
                10,
            )
        };
        assert_eq!(ask("\"v1\""), RangeAnswer::Partial(vec![r(0, 1)]));
        assert_eq!(ask("W/\"v1\""), RangeAnswer::Whole);
        assert_eq!(ask("\"v2\""), RangeAnswer::Whole);
        assert_eq!(ask("Mon, 01 Jan 2024 00:00:00 GMT"), RangeAnswer::Partial(vec![r(0, 1)]));
        assert_eq!(ask("Mon, 01 Jan 2024 00:00:01 GMT"), RangeAnswer::Whole);
        assert_eq!(ask("garbage"), RangeAnswer::Whole);
        let weak = request(&[("etag", "W/\"v1\"")]);
        let answer = select(
            &Method::GET,
            &request(&[("range", "bytes=0-1"), ("if-range", "\"v1\"")]),
            StatusCode::OK,
            &weak,
            10,
        );
        assert_eq!(answer, RangeAnswer::Whole);
    }

    #[test]
    fn multipart_body_names_each_range() {
        let body = Bytes::from_static(b"0123456789");
        let mut whole = Response::new(ProxyBody::full(body.clone()));
        whole.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let response = partial(whole, &body, &[r(0, 1), r(8, 9)]);
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("text").to_string();
        let boundary = content_type.strip_prefix("multipart/byteranges; boundary=").expect("multipart");
        let ProxyBody::Full(Some(bytes)) = response.into_body() else { panic!("a whole body") };
        let expected = format!(
            "--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
             --{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n--{boundary}--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&bytes), expected);
    }
}
