//! Cache keys: the normalised URL of a request (its primary key) and, for responses that `Vary`, the variant key
//! that adds the request's values of the named headers.

use http::header::HeaderName;
use http::{HeaderMap, Uri};

use super::fields::Fields;

/// The normalised URL a request addresses: `scheme://host[:port]/path?query`, host lowercased, default port
/// dropped. HTTP/1.1 requests (origin-form + `Host`) and HTTP/2 requests (`:authority`) give the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrimaryKey(String);

impl PrimaryKey {
    /// Builds the key of a request. `scheme` is how the client reached us (`http` or `https`); `host` is the
    /// request's authority (`Host` header or URI authority).
    pub fn new(scheme: &str, host: &str, uri: &Uri) -> PrimaryKey {
        let path_and_query = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let host = strip_default_port(scheme, host);
        let mut key = String::with_capacity(scheme.len() + 3 + host.len() + path_and_query.len());
        key.push_str(scheme);
        key.push_str("://");
        let host_at = key.len();
        key.push_str(host);
        key[host_at..].make_ascii_lowercase();
        if !path_and_query.starts_with('/') {
            key.push('/');
        }
        key.push_str(path_and_query);
        PrimaryKey(key)
    }

    /// The key as text, as shown in `Cache-Status; key=`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn strip_default_port<'a>(scheme: &str, host: &'a str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    host.strip_suffix(default).unwrap_or(host)
}

/// The request header fields a stored response varies on, from its `Vary` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarySpec {
    /// The response has no `Vary` (or an empty one): one variant per URL.
    None,
    /// `Vary: *`: no later request can be matched, so the response is never served from cache.
    Any,
    /// The named fields, lowercased, deduplicated and sorted.
    Fields(Box<[HeaderName]>),
}

impl VarySpec {
    /// Reads every `Vary` field line of a response.
    pub fn from_response(headers: &impl Fields) -> VarySpec {
        let mut fields: Vec<HeaderName> = Vec::new();
        for value in headers.values(&http::header::VARY) {
            let Some(text) = super::fields::visible_text(value) else { return VarySpec::Any };
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if name == "*" {
                    return VarySpec::Any;
                }
                match HeaderName::from_bytes(name.as_bytes()) {
                    Ok(name) => fields.push(name),
                    Err(_) => return VarySpec::Any,
                }
            }
        }
        if fields.is_empty() {
            return VarySpec::None;
        }
        fields.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        fields.dedup();
        VarySpec::Fields(fields.into_boxed_slice())
    }
}

/// The full key of one stored variant: the primary key plus, when the response varies, the request's
/// normalised values of each varying field. A `Box<str>` (16 B, and exactly as long as the text) rather than a
/// `String`: the store keeps one per entry. It hashes and compares as its text, so the store can be searched
/// with a borrowed `&str` (a primary key's text) without making a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantKey(Box<str>);

impl std::borrow::Borrow<str> for VariantKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Where a lookup found its object: at the URL's primary key (a response that does not vary: the lookup made no
/// key, since a hit seldom needs one), or at a variant key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundAt {
    Primary,
    Variant(VariantKey),
}

impl FoundAt {
    /// The key the object is stored at, for a request to `primary`.
    pub fn key(&self, primary: &PrimaryKey) -> VariantKey {
        match self {
            FoundAt::Primary => VariantKey::primary(primary),
            FoundAt::Variant(key) => key.clone(),
        }
    }
}

impl VariantKey {
    /// The key of a URL's primary slot: the object itself when the response does not vary, else its vary record.
    pub fn primary(primary: &PrimaryKey) -> VariantKey {
        VariantKey(primary.0.as_str().into())
    }

    /// The variant a request selects, given the stored `Vary` fields. `None` for `Vary: *`.
    pub fn new(primary: &PrimaryKey, vary: &VarySpec, request: &HeaderMap) -> Option<VariantKey> {
        match vary {
            VarySpec::None => Some(VariantKey::primary(primary)),
            VarySpec::Any => None,
            VarySpec::Fields(fields) => {
                let mut key = primary.0.clone();
                for field in fields.iter() {
                    key.push('\n');
                    key.push_str(field.as_str());
                    // An absent field matches only an absent field (RFC 9111 §4.1), not an empty one.
                    if request.contains_key(field) {
                        key.push(':');
                        push_normalised_values(&mut key, request, field);
                    }
                }
                Some(VariantKey(key.into_boxed_str()))
            }
        }
    }

    /// The same key within one generation of its URL's vary record, so that variants stored under an earlier
    /// (invalidated or replaced) record can never be found again, even if they are still in memory.
    pub fn in_generation(self, generation: u64) -> VariantKey {
        use std::fmt::Write;
        let mut key = String::from(self.0);
        // Writing into a String cannot fail.
        let _ = write!(key, "\n#{generation}");
        VariantKey(key.into_boxed_str())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key whose text is `text`.
    pub(super) fn from_text(text: &str) -> VariantKey {
        VariantKey(text.into())
    }
}

/// Fields that are weighted lists of case-insensitive tokens: language tags (RFC 4647 §2) and content-codings
/// (RFC 9110 §8.4.1), with their `q` weights. Their members are put in an order of their own (`weighted_list.rs`).
/// `Accept` is not among them: a media type's parameters may be case-sensitive.
const WEIGHTED_LISTS: [HeaderName; 2] = [http::header::ACCEPT_LANGUAGE, http::header::ACCEPT_ENCODING];

/// Appends the field's values as one list: lines joined by commas, whitespace around commas removed and runs of
/// whitespace inside a member collapsed to one space, so `a, b`, `a,b` and `a,  b` (or the same values on two
/// lines) select the same variant. Case and order are kept, except in [`WEIGHTED_LISTS`]: `en-US, de` and
/// `de, en-us` are one list of languages.
fn push_normalised_values(key: &mut String, request: &HeaderMap, field: &HeaderName) {
    if WEIGHTED_LISTS.contains(field) {
        return super::weighted_list::push_sorted(key, request, field);
    }
    let mut first = true;
    for value in request.get_all(field) {
        for item in String::from_utf8_lossy(value.as_bytes()).split(',') {
            if !first {
                key.push(',');
            }
            first = false;
            let mut words = item.split_ascii_whitespace();
            if let Some(word) = words.next() {
                key.push_str(word);
            }
            for word in words {
                key.push(' ');
                key.push_str(word);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn h1_and_h2_forms_give_the_same_key() {
        let h1 = PrimaryKey::new("http", "Example.COM:80", &Uri::from_static("/a?b=1"));
        let h2 = PrimaryKey::new("http", "example.com", &Uri::from_static("http://example.com/a?b=1"));
        assert_eq!(h1, h2);
        assert_eq!(h1.as_str(), "http://example.com/a?b=1");
    }

    #[test]
    fn scheme_and_port_are_part_of_the_key() {
        let a = PrimaryKey::new("http", "example.com:8080", &Uri::from_static("/"));
        let b = PrimaryKey::new("https", "example.com:8080", &Uri::from_static("/"));
        assert_ne!(a, b);
    }

    #[test]
    fn vary_fields_are_normalised() {
        let mut h = HeaderMap::new();
        h.append("vary", HeaderValue::from_static("Accept-Encoding, accept-language"));
        h.append("vary", HeaderValue::from_static("accept-encoding"));
        let spec = VarySpec::from_response(&h);
        let VarySpec::Fields(f) = &spec else { panic!("expected fields, got {spec:?}") };
        assert_eq!(f.len(), 2);
        let mut star = HeaderMap::new();
        star.insert("vary", HeaderValue::from_static("accept, *"));
        assert_eq!(VarySpec::from_response(&star), VarySpec::Any);
    }

    #[test]
    fn language_tags_and_codings_select_a_variant_whatever_their_case_and_other_fields_keep_it() {
        let primary = PrimaryKey::new("http", "h", &Uri::from_static("/"));
        let key = |field: &'static str, value: &'static str| {
            let spec = VarySpec::Fields(vec![HeaderName::from_static(field)].into());
            let mut request = HeaderMap::new();
            request.insert(field, HeaderValue::from_static(value));
            VariantKey::new(&primary, &spec, &request)
        };
        assert_eq!(key("accept-language", "en-US, De;q=0.5"), key("accept-language", "en-us, de;Q=0.5"));
        assert_eq!(key("accept-encoding", "GZIP"), key("accept-encoding", "gzip"));
        assert_eq!(key("accept-language", "en, de"), key("accept-language", "de, en"), "equal weights, no order");
        assert_ne!(key("accept-language", "en, de;q=0.5"), key("accept-language", "de, en;q=0.5"));
        assert_ne!(key("x-token", "Abc"), key("x-token", "abc"), "an unknown field's case may matter");
    }

    #[test]
    fn variant_key_ignores_whitespace_but_not_values() {
        let primary = PrimaryKey::new("http", "h", &Uri::from_static("/"));
        let spec = VarySpec::Fields(vec![HeaderName::from_static("accept-language")].into());
        let mut a = HeaderMap::new();
        a.insert("accept-language", HeaderValue::from_static("en, fr"));
        let mut b = HeaderMap::new();
        b.insert("accept-language", HeaderValue::from_static("en,fr"));
        let mut c = HeaderMap::new();
        c.insert("accept-language", HeaderValue::from_static("de"));
        let ka = VariantKey::new(&primary, &spec, &a);
        assert_eq!(ka, VariantKey::new(&primary, &spec, &b));
        assert_ne!(ka, VariantKey::new(&primary, &spec, &c));
        assert_eq!(VariantKey::new(&primary, &VarySpec::Any, &a), None);
        let mut d = HeaderMap::new();
        d.insert("accept-language", HeaderValue::from_static(" en ,\tfr "));
        assert_eq!(ka, VariantKey::new(&primary, &spec, &d));
    }

    #[test]
    fn a_key_hashes_and_compares_as_its_text() {
        use std::hash::BuildHasher;
        let primary = PrimaryKey::new("http", "h", &Uri::from_static("/p?q"));
        let key = VariantKey::primary(&primary);
        let hasher = std::collections::hash_map::RandomState::new();
        assert_eq!(hasher.hash_one(&key), hasher.hash_one(primary.as_str()));
        let borrowed: &str = std::borrow::Borrow::borrow(&key);
        assert_eq!(borrowed, primary.as_str());
        assert_eq!(FoundAt::Primary.key(&primary), key);
        assert_eq!(FoundAt::Variant(key.clone().in_generation(3)).key(&primary), key.in_generation(3));
    }

    #[test]
    fn absent_field_differs_from_empty_field() {
        let primary = PrimaryKey::new("http", "h", &Uri::from_static("/"));
        let spec = VarySpec::Fields(vec![HeaderName::from_static("x-a")].into());
        let mut empty = HeaderMap::new();
        empty.insert("x-a", HeaderValue::from_static(""));
        assert_ne!(VariantKey::new(&primary, &spec, &HeaderMap::new()), VariantKey::new(&primary, &spec, &empty));
    }

    #[test]
    fn vary_field_list_tolerates_case_whitespace_and_empty_members() {
        let mut h = HeaderMap::new();
        h.append("vary", HeaderValue::from_static(" ,ACCEPT ,, x-Foo  ,accept"));
        let spec = VarySpec::from_response(&h);
        let VarySpec::Fields(f) = &spec else { panic!("expected fields, got {spec:?}") };
        assert_eq!(f.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["accept", "x-foo"]);
        let mut empty = HeaderMap::new();
        empty.append("vary", HeaderValue::from_static(""));
        assert_eq!(VarySpec::from_response(&empty), VarySpec::None);
    }
}
