//! The host a request addresses, read as RFC 9112 §3.2 asks: the request-target's authority when it has one
//! (absolute form, HTTP/2's `:authority`), else the `Host` field; a request with more than one `Host` line, or one
//! whose value is not `uri-host [":" port]` (RFC 3986 §3.2.2), is refused with 400 whatever its target says.

use http::{HeaderMap, Request, header};
use thiserror::Error;

/// Why a request names no host this node can use.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    #[error("the request names no host")]
    Missing,
    #[error("the request has more than one Host field")]
    Several,
    #[error("the request's Host field is not a host[:port]")]
    Invalid,
}

impl HostError {
    /// The `detail` of the answer's `Cache-Status` entry.
    pub fn detail(self) -> &'static str {
        match self {
            HostError::Missing => "no-host",
            HostError::Several | HostError::Invalid => "invalid-host",
        }
    }
}

/// The host `request` addresses (see the module doc).
pub fn addressed_host<B>(request: &Request<B>) -> Result<&str, HostError> {
    let field = host_field(request.headers())?;
    match request.uri().authority() {
        Some(authority) => Ok(authority.as_str()),
        None => field.ok_or(HostError::Missing),
    }
}

/// The request's one `Host` line, if it has one and it is valid; `None` when it has none or an empty one.
fn host_field(headers: &HeaderMap) -> Result<Option<&str>, HostError> {
    let mut lines = headers.get_all(header::HOST).iter();
    let Some(value) = lines.next() else { return Ok(None) };
    if lines.next().is_some() {
        return Err(HostError::Several);
    }
    if value.is_empty() {
        return Ok(None);
    }
    if !is_host_and_port(value.as_bytes()) {
        return Err(HostError::Invalid);
    }
    // Only ASCII passed the check above.
    value.to_str().map(Some).map_err(|_| HostError::Invalid)
}

/// Whether `value` is `uri-host [":" port]`: an IP literal in brackets, or a reg-name / IPv4 address of RFC 3986's
/// characters (unreserved, sub-delims, percent signs), then an optional port of at most 65535.
fn is_host_and_port(value: &[u8]) -> bool {
    let rest = match value.first() {
        Some(b'[') => {
            let Some(end) = value.iter().position(|&b| b == b']') else { return false };
            let literal = &value[1..end];
            if literal.is_empty() || !literal.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return false;
            }
            &value[end + 1..]
        }
        _ => {
            // One table load per byte: this runs for every request.
            let end = value.iter().position(|&b| !REG_NAME[usize::from(b)]).unwrap_or(value.len());
            if end == 0 {
                return false;
            }
            &value[end..]
        }
    };
    match rest {
        [] => true,
        [b':', port @ ..] => {
            port.len() <= 5
                && port.iter().all(u8::is_ascii_digit)
                && port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
        }
        _ => false,
    }
}

/// The bytes of RFC 3986's `reg-name` (unreserved / pct-encoded / sub-delims), which include IPv4 addresses'.
const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+')
            || matches!(b, b',' | b';' | b'=');
        byte += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(uri: &str, hosts: &[&str]) -> Result<String, HostError> {
        let mut request = Request::builder().uri(uri);
        for host in hosts {
            request = request.header(header::HOST, *host);
        }
        let request = request.body(()).expect("request");
        addressed_host(&request).map(str::to_string)
    }

    #[test]
    fn a_valid_host_line_names_the_host() {
        for host in ["example.test", "example.test:8080", "127.0.0.1:80", "[::1]:443", "[2001:db8::7]", "a-b_c~d", "x:"]
        {
            assert_eq!(host_of("/p", &[host]).as_deref(), Ok(host), "{host}");
        }
    }

    #[test]
    fn several_host_lines_or_an_invalid_one_are_refused_even_with_an_absolute_target() {
        assert_eq!(host_of("/p", &["a.test", "b.test"]), Err(HostError::Several));
        for host in ["bad host", "a/b", "a:99999", "a:8x", "[::1", "[]", "[::1]x", "a@b", ":80", "é.test"] {
            assert_eq!(host_of("/p", &[host]), Err(HostError::Invalid), "{host}");
            assert_eq!(host_of("http://x.test/p", &[host]), Err(HostError::Invalid), "{host}");
        }
    }

    #[test]
    fn the_targets_authority_wins_over_the_host_line_and_no_host_is_missing() {
        assert_eq!(host_of("http://x.test/p", &["y.test"]).as_deref(), Ok("x.test"));
        assert_eq!(host_of("http://x.test/p", &[]).as_deref(), Ok("x.test"));
        assert_eq!(host_of("/p", &[]), Err(HostError::Missing));
        assert_eq!(host_of("/p", &[""]), Err(HostError::Missing));
    }
}
