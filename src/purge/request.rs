//! The purge API as clients send it: the `POST /purge` body (serde, unknown fields refused), its bounds and
//! validation into a normalised [`Selection`], and the bearer-token check (constant-time). Nothing is applied from a
//! request that fails here.

use http::{HeaderMap, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::cache::PrimaryKey;

/// Largest `POST /purge` body read.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most entries in each of `urls`, `prefixes`, `tags`, `hosts`.
pub const MAX_ENTRIES: usize = 1_000;
/// Longest URL, prefix, tag or host accepted.
pub const MAX_ENTRY_BYTES: usize = 8 * 1024;
/// Longest purge id.
pub const MAX_ID_BYTES: usize = 128;

/// The `POST /purge` body, as sent. Every field is optional, at least one selector is required.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeBody {
    pub urls: Option<Vec<String>>,
    pub prefixes: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
    pub everything: Option<bool>,
    pub soft: Option<bool>,
    /// A client-chosen id: sending the same purge twice (a retry) applies it once.
    pub id: Option<String>,
}

/// What a purge selects, normalised: URLs and prefixes without their scheme (`host[:port]/path?query`, host
/// lowercased, default port dropped, as cache keys are written), hosts lowercased, tags as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub everything: bool,
    #[serde(default)]
    pub soft: bool,
}

/// A request that cannot be applied (answered 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("nothing to purge: give urls, prefixes, tags, hosts or \"everything\": true")]
    Nothing,
    #[error("{field}: at most {MAX_ENTRIES} entries")]
    TooMany { field: &'static str },
    #[error("{field}[{index}]: {reason}")]
    Invalid { field: &'static str, index: usize, reason: String },
    #[error("id: {0}")]
    Id(&'static str),
}

/// Why a purge request is not authorised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("purging is disabled: no admin token is configured (set admin.token or EDGECACHE_ADMIN_TOKEN)")]
    NotConfigured,
    #[error("a bearer token is required (Authorization: Bearer <admin.token>)")]
    Missing,
    #[error("the bearer token is wrong")]
    Wrong,
    #[error("PURGE is not allowed from this address (purge.allow)")]
    Forbidden,
}

impl AuthError {
    /// 403 when no token could help (none configured, address not allowed), else 401.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NotConfigured | AuthError::Forbidden => StatusCode::FORBIDDEN,
            AuthError::Missing | AuthError::Wrong => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Checks `Authorization: Bearer <token>` against the configured token, in constant time.
pub fn authorize(headers: &HeaderMap, token: Option<&str>) -> Result<(), AuthError> {
    let Some(token) = token else { return Err(AuthError::NotConfigured) };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, value)| value.trim())
        .ok_or(AuthError::Missing)?;
    if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) { Ok(()) } else { Err(AuthError::Wrong) }
}

/// Parses and validates a `POST /purge` body: the selection and the client's id, if any.
pub fn parse(body: &[u8]) -> Result<(Selection, Option<String>), RequestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge);
    }
    let body: PurgeBody = serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
    let id = body.id.map(|id| check_id(&id).map(|()| id)).transpose()?;
    let selection = Selection {
        urls: entries(body.urls, "urls", |s| url_key(s, false))?,
        prefixes: entries(body.prefixes, "prefixes", |s| url_key(s, true))?,
        tags: entries(body.tags, "tags", tag)?,
        hosts: entries(body.hosts, "hosts", host)?,
        everything: body.everything.unwrap_or(false),
        soft: body.soft.unwrap_or(false),
    };
    if selection.is_empty() {
        return Err(RequestError::Nothing);
    }
    Ok((selection, id))
}

impl Selection {
    /// Whether it selects nothing.
    pub fn is_empty(&self) -> bool {
        !self.everything
            && self.urls.is_empty()
            && self.prefixes.is_empty()
            && self.tags.is_empty()
            && self.hosts.is_empty()
    }

    /// A purge of one URL (the `PURGE` method).
    pub fn url(scheme: &str, host: &str, uri: &Uri, soft: bool) -> Selection {
        let key = PrimaryKey::new(scheme, host, uri);
        Selection { urls: vec![without_scheme(key.as_str()).to_string()], soft, ..Selection::default() }
    }

    /// Checks a selection received from a peer against the same bounds as a client's.
    pub fn check(&self) -> Result<(), RequestError> {
        for (field, list) in
            [("urls", &self.urls), ("prefixes", &self.prefixes), ("tags", &self.tags), ("hosts", &self.hosts)]
        {
            if list.len() > MAX_ENTRIES {
                return Err(RequestError::TooMany { field });
            }
            if let Some(index) = list.iter().position(|e| e.is_empty() || e.len() > MAX_ENTRY_BYTES) {
                return Err(RequestError::Invalid { field, index, reason: "empty or too long".to_string() });
            }
        }
        if self.is_empty() { Err(RequestError::Nothing) } else { Ok(()) }
    }

    /// The kinds it contains, as `edgecache_purges_total{kind}` names them.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            (!self.urls.is_empty(), "url"),
            (!self.prefixes.is_empty(), "prefix"),
            (!self.tags.is_empty(), "tag"),
            (!self.hosts.is_empty(), "host"),
            (self.everything, "everything"),
        ]
        .into_iter()
        .filter_map(|(present, kind)| present.then_some(kind))
    }
}

/// Checks a purge id: 1 to 128 letters, digits, `-`, `_`, `.`, `:`.
pub fn check_id(id: &str) -> Result<(), RequestError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok { Ok(()) } else { Err(RequestError::Id("use 1 to 128 letters, digits, '-', '_', '.' or ':'")) }
}

fn entries(
    list: Option<Vec<String>>,
    field: &'static str,
    normalise: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, RequestError> {
    let Some(list) = list else { return Ok(Vec::new()) };
    if list.len() > MAX_ENTRIES {
        return Err(RequestError::TooMany { field });
    }
    if list.is_empty() {
        return Err(RequestError::Invalid { field, index: 0, reason: "an empty list selects nothing".into() });
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        if entry.len() > MAX_ENTRY_BYTES {
            return Err(RequestError::Invalid { field, index, reason: format!("longer than {MAX_ENTRY_BYTES} bytes") });
        }
        let value = normalise(entry.trim()).map_err(|reason| RequestError::Invalid { field, index, reason })?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

/// The part of a cache key after `scheme://`.
pub fn without_scheme(key: &str) -> &str {
    key.split_once("://").map_or(key, |(_, rest)| rest)
}

/// An absolute http(s) URL (or URL prefix) as cache keys write it, without the scheme.
fn url_key(text: &str, prefix: bool) -> Result<String, String> {
    let what = if prefix { "prefix" } else { "URL" };
    let uri: Uri = text.parse().map_err(|_| format!("not a valid {what}: {text:?}"))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s,
        _ => return Err(format!("must be an absolute http(s) {what}, like \"http://example.com/a.css\"")),
    };
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!("the {what} names no host"));
    };
    if authority.as_str().contains('@') {
        return Err("credentials are not allowed".to_string());
    }
    let key = PrimaryKey::new(scheme, authority.as_str(), &uri);
    Ok(without_scheme(key.as_str()).to_string())
}

fn tag(text: &str) -> Result<String, String> {
    if text.is_empty() || text.bytes().any(|b| b.is_ascii_whitespace() || b == b',' || b.is_ascii_control()) {
        return Err("a tag is one non-empty word without spaces or commas".to_string());
    }
    Ok(text.to_string())
}

fn host(text: &str) -> Result<String, String> {
    let host = text.to_ascii_lowercase();
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if !valid {
        return Err(format!("not a host name: {text:?} (give host or host:port, no scheme or path)"));
    }
    let bare = host.strip_suffix(":80").or_else(|| host.strip_suffix(":443")).unwrap_or(&host);
    Ok(bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_full_body_is_normalised() {
        let body = br#"{"urls": ["http://Example.COM:80/a.css?x=1", "https://example.com/a.css?x=1"],
            "prefixes": ["http://example.com/img/"], "tags": ["product-42"], "hosts": ["Example.com:443"],
            "soft": true, "id": "retry-1"}"#;
        let (s, id) = parse(body).expect("valid");
        assert_eq!(s.urls, ["example.com/a.css?x=1"], "one URL whatever the scheme");
        assert_eq!(s.prefixes, ["example.com/img/"]);
        assert_eq!(s.tags, ["product-42"]);
        assert_eq!(s.hosts, ["example.com"]);
        assert!(s.soft && !s.everything);
        assert_eq!(id.as_deref(), Some("retry-1"));
        assert_eq!(s.kinds().collect::<Vec<_>>(), ["url", "prefix", "tag", "host"]);
    }

    #[test]
    fn bad_bodies_are_refused() {
        let cases: [&[u8]; 9] = [
            b"{not json",
            b"{}",
            br#"{"soft": true}"#,
            br#"{"everything": false}"#,
            br#"{"urls": ["/relative"]}"#,
            br#"{"urls": []}"#,
            br#"{"tags": ["two words"]}"#,
            br#"{"hosts": ["http://x/"]}"#,
            br#"{"urls": ["http://x/"], "colour": "red"}"#,
        ];
        for body in cases {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("\"t{i}\"")).collect();
        let body = format!("{{\"tags\": [{}]}}", many.join(","));
        assert_eq!(parse(body.as_bytes()), Err(RequestError::TooMany { field: "tags" }));
        assert_eq!(parse(&vec![b' '; MAX_BODY_BYTES + 1]), Err(RequestError::TooLarge));
        assert!(matches!(parse(br#"{"everything": true, "id": "a b"}"#), Err(RequestError::Id(_))));
    }

    #[test]
    fn the_token_is_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(authorize(&headers, None), Err(AuthError::NotConfigured));
        assert_eq!(authorize(&headers, Some("s3cret")), Err(AuthError::Missing));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer guess"));
        assert_eq!(authorize(&headers, Some("s3cret")), Err(AuthError::Wrong));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer s3cret"));
        assert_eq!(authorize(&headers, Some("s3cret")), Ok(()));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic s3cret"));
        assert_eq!(authorize(&headers, Some("s3cret")), Err(AuthError::Missing));
    }
}
