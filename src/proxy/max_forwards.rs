//! `Max-Forwards` on `OPTIONS` (RFC 9110 §7.6.2): an intermediary must not forward such a request whose value is
//! 0 and answers it as the final recipient; any other value is decremented on the way. (`TRACE`, the other method
//! it applies to, is never forwarded by this node.) Other methods' `Max-Forwards` is left as it is, as the RFC
//! allows.

use http::{HeaderMap, HeaderValue, Method, header};

/// What to do with a request's `Max-Forwards`.
#[derive(Debug, PartialEq, Eq)]
pub enum MaxForwards {
    /// Forward the request as it is (not `OPTIONS`, no `Max-Forwards`, or a value that is not a number).
    AsItIs,
    /// Answer here: no more hops are allowed.
    AnswerHere,
    /// Forward it with this value in place of the one received.
    Decremented(HeaderValue),
}

impl MaxForwards {
    pub fn of(method: &Method, headers: &HeaderMap) -> MaxForwards {
        if method != Method::OPTIONS {
            return MaxForwards::AsItIs;
        }
        let Some(hops) = headers.get(header::MAX_FORWARDS).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        else {
            return MaxForwards::AsItIs;
        };
        match hops.checked_sub(1) {
            None => MaxForwards::AnswerHere,
            Some(left) => MaxForwards::Decremented(HeaderValue::from(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, value: Option<&str>) -> MaxForwards {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::MAX_FORWARDS, HeaderValue::from_str(value).expect("value"));
        }
        MaxForwards::of(&method, &headers)
    }

    #[test]
    fn options_with_no_hops_left_is_answered_here_and_with_some_is_decremented() {
        assert_eq!(of(Method::OPTIONS, Some("0")), MaxForwards::AnswerHere);
        assert_eq!(of(Method::OPTIONS, Some("3")), MaxForwards::Decremented(HeaderValue::from(2u64)));
        assert_eq!(of(Method::OPTIONS, None), MaxForwards::AsItIs);
        assert_eq!(of(Method::OPTIONS, Some("many")), MaxForwards::AsItIs);
        assert_eq!(of(Method::GET, Some("0")), MaxForwards::AsItIs, "only OPTIONS (and TRACE) count hops");
    }
}
