//! Invalidation after unsafe requests (RFC 9111 §4.4): a non-error response to a method that is not safe removes
//! every stored response of the target URI and of the same-origin URIs its `Location` and `Content-Location` name.

use http::header::{self, HeaderName};
use http::{HeaderMap, Method, StatusCode, Uri};
use url::Url;

use crate::cache::{PrimaryKey, Store};

/// Whether a method is safe (RFC 9110 §9.2.1). Every other method, including ones this node does not know, may
/// change the resource, so its success invalidates.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether a response to `method` invalidates: an unsafe method answered with a non-error final status (2xx or
/// 3xx). An error answer means nothing changed, so nothing is invalidated.
pub fn response_invalidates(method: &Method, status: StatusCode) -> bool {
    !is_safe(method) && (status.is_success() || status.is_redirection())
}

/// The URI an unsafe request targets, kept until its response arrives: its cache key, and the absolute URL that
/// references in the response are resolved against.
#[derive(Debug, Clone)]
pub struct InvalidationTarget {
    target: PrimaryKey,
    base: Option<Url>,
}

impl InvalidationTarget {
    /// The target of a request that reached this node over `scheme` for `host` (with `uri`), whose key is `target`.
    pub fn new(scheme: &str, host: &str, uri: &Uri, target: PrimaryKey) -> InvalidationTarget {
        let path_and_query = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let base = Url::parse(&format!("{scheme}://{host}{path_and_query}")).ok();
        InvalidationTarget { target, base }
    }

    /// The keys a non-error response with `response` headers invalidates: the target, then each of `Location` and
    /// `Content-Location` that resolves to a URL of the same origin (scheme, host and port).
    pub fn keys(&self, response: &HeaderMap) -> Vec<PrimaryKey> {
        let mut keys = vec![self.target.clone()];
        let Some(base) = &self.base else { return keys };
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(key) = same_origin_key(base, response, &name)
                && !keys.contains(&key)
            {
                keys.push(key);
            }
        }
        keys
    }

    /// Removes every stored response of [`keys`](Self::keys) from `store`.
    pub fn apply(&self, store: &Store, response: &HeaderMap) {
        for key in self.keys(response) {
            store.invalidate_uri(&key);
        }
    }
}

/// The cache key of the URL in the response field `name`, resolved against `base`, if it has `base`'s origin.
fn same_origin_key(base: &Url, response: &HeaderMap, name: &HeaderName) -> Option<PrimaryKey> {
    let mut values = response.get_all(name).iter();
    let value = values.next()?.to_str().ok()?.trim();
    if values.next().is_some() {
        // Several values of a singleton field: none of them can be trusted.
        return None;
    }
    let url = base.join(value).ok()?;
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    if !same_origin {
        return None;
    }
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str()?),
        None => url.host_str()?.to_string(),
    };
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let uri: Uri = path_and_query.parse().ok()?;
    Some(PrimaryKey::new(url.scheme(), &host, &uri))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn target(host: &str, path: &'static str) -> InvalidationTarget {
        let uri = Uri::from_static(path);
        InvalidationTarget::new("http", host, &uri, PrimaryKey::new("http", host, &uri))
    }

    fn keys_for(target: &InvalidationTarget, fields: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_static(value));
        }
        target.keys(&headers).iter().map(|k| k.as_str().to_string()).collect()
    }

    #[test]
    fn safe_methods_and_error_answers_do_not_invalidate() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(!response_invalidates(&method, StatusCode::OK), "{method}");
        }
        let unknown = Method::from_bytes(b"FROB").expect("method");
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, unknown] {
            assert!(response_invalidates(&method, StatusCode::OK), "{method}");
            assert!(response_invalidates(&method, StatusCode::SEE_OTHER), "{method}");
            assert!(!response_invalidates(&method, StatusCode::NOT_FOUND), "{method}");
            assert!(!response_invalidates(&method, StatusCode::BAD_GATEWAY), "{method}");
        }
    }

    #[test]
    fn location_and_content_location_of_the_same_origin_are_invalidated() {
        let t = target("Example.com:8080", "/dir/form?x=1");
        let keys = keys_for(&t, &[("location", "../other?y=2"), ("content-location", "http://example.com:8080/c")]);
        assert_eq!(
            keys,
            ["http://example.com:8080/dir/form?x=1", "http://example.com:8080/other?y=2", "http://example.com:8080/c"]
        );
    }

    #[test]
    fn other_origins_are_not_invalidated() {
        let t = target("example.com", "/a");
        for other in ["http://evil.example/a", "https://example.com/a", "http://example.com:81/a", "//other/a"] {
            let mut headers = HeaderMap::new();
            headers.insert("location", HeaderValue::from_str(other).expect("value"));
            assert_eq!(t.keys(&headers).len(), 1, "{other}");
        }
        // A default port written out is the same origin.
        assert_eq!(
            keys_for(&t, &[("location", "http://example.com:80/b")]),
            ["http://example.com/a", "http://example.com/b"]
        );
    }
}
