//! What a proxy changes in the messages it forwards: hop-by-hop fields removed (RFC 9110 §7.6.1), `Via` added on
//! both ways, `X-Forwarded-For` / `X-Forwarded-Proto` and `Surrogate-Capability` added to requests, `Host` kept,
//! and loop detection by `Via`.

use std::net::IpAddr;

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Version};

use crate::cache::map_lookup;
use crate::policy::targeted::{SURROGATE_CAPABILITY, SURROGATE_DEVICE_TOKEN};

/// Fields that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop fields, including those named in `Connection`, and `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Targeted cache-control fields addressed to this cache alone: kept in the stored object, where the policy reads
/// them, passed on to the other nodes of the cluster (which are edgecache too), and removed from every answer to a
/// client. `CDN-Cache-Control` is not among them: it is for every CDN cache on the way, and RFC 9213 §3 has a CDN
/// forward it so that a CDN downstream (a customer's own, or a second CDN) can obey it too.
pub static TARGETED_CACHE_CONTROL: [HeaderName; 2] =
    [HeaderName::from_static("edgecache-cache-control"), HeaderName::from_static("surrogate-control")];

/// The lengths of the names `strip_cdn_fields` removes (a test keeps them in step with the names).
const CDN_FIELD_LENGTHS: [usize; 4] = [9, 13, 17, 23];

/// Removes what is for this CDN only from an answer on its way to a client (not to another node): its own targeted
/// cache-control fields and the tag fields (`Surrogate-Key`, `Cache-Tag`), as Fastly and Cloudflare do.
pub fn strip_cdn_fields(headers: &mut HeaderMap) {
    let cdn_fields = || TARGETED_CACHE_CONTROL.iter().chain(&crate::purge::tags::TAG_FIELDS);
    // Most answers carry none: one pass over the names settles that, nearly every name by its length alone.
    let for_the_cdn =
        |name: &HeaderName| CDN_FIELD_LENGTHS.contains(&name.as_str().len()) && cdn_fields().any(|f| f == name);
    if !headers.keys().any(for_the_cdn) {
        return;
    }
    for name in cdn_fields() {
        headers.remove(name);
    }
}

/// The `Via` entry of this node for a message received with `version`: `1.1 edge-1`.
pub fn via_entry(version: Version, node_id: &str) -> String {
    let protocol = match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    format!("{protocol} {node_id}")
}

/// This node's `Via` entries, built once: one per protocol version a message can arrive with.
#[derive(Debug, Clone)]
pub struct ViaEntries {
    http10: HeaderValue,
    http11: HeaderValue,
    http2: HeaderValue,
}

impl ViaEntries {
    /// The entries of the node named `node_id` (config validation keeps ids to header-safe characters).
    pub fn new(node_id: &str) -> ViaEntries {
        let entry = |version| {
            let text = via_entry(version, node_id);
            // What `from_static` accepts (it panics on anything else): tab and visible ASCII.
            if crate::cache::fields::visible_text(text.as_bytes()).is_none() {
                return HeaderValue::from_static("1.1 edgecache");
            }
            // Static: every answer carries a copy, and copying a static value touches no shared counter.
            HeaderValue::from_static(interned(text))
        };
        ViaEntries { http10: entry(Version::HTTP_10), http11: entry(Version::HTTP_11), http2: entry(Version::HTTP_2) }
    }

    /// The entry for a message received with `version`.
    pub fn for_version(&self, version: Version) -> &HeaderValue {
        match version {
            Version::HTTP_2 => &self.http2,
            Version::HTTP_10 | Version::HTTP_09 => &self.http10,
            _ => &self.http11,
        }
    }
}

/// `text` kept for the life of the process, once per distinct text (a node's `Via` entries: a handful).
fn interned(text: String) -> &'static str {
    static TEXTS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    let mut texts = TEXTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&kept) = texts.get(text.as_str()) {
        return kept;
    }
    let kept: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(kept);
    kept
}

/// Whether a request already passed through the node named `node_id` (its own id in `Via`): a loop.
pub fn is_loop(headers: &HeaderMap, node_id: &str) -> bool {
    map_lookup::all(headers, &header::VIA)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|hop| hop.split_whitespace().nth(1) == Some(node_id))
}

/// Adds `X-Forwarded-For` (appending the client's address) and `X-Forwarded-Proto`.
pub fn add_forwarded_for(headers: &mut HeaderMap, client: IpAddr, scheme: &str) {
    let previous: Vec<String> = headers
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let mut list = previous.join(", ");
    if !list.is_empty() {
        list.push_str(", ");
    }
    list.push_str(&client.to_string());
    if let Ok(value) = HeaderValue::from_str(&list) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static(static_scheme(scheme)));
    }
}

/// Announces this cache to the upstream as a surrogate (Edge Architecture 1.0): appends
/// [`SURROGATE_CAPABILITY`] to `Surrogate-Capability` unless an edgecache node nearer the client already did.
pub fn add_surrogate_capability(headers: &mut HeaderMap) {
    let name = HeaderName::from_static("surrogate-capability");
    let announced = map_lookup::all(headers, &name)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .any(|member| member.split('=').next().is_some_and(|token| token.trim() == SURROGATE_DEVICE_TOKEN));
    if !announced {
        headers.append(name, HeaderValue::from_static(SURROGATE_CAPABILITY));
    }
}

fn static_scheme(scheme: &str) -> &'static str {
    if scheme == "https" { "https" } else { "http" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cdn_field_lengths_are_those_of_the_cdn_fields() {
        let mut lengths: Vec<usize> =
            TARGETED_CACHE_CONTROL.iter().chain(&crate::purge::tags::TAG_FIELDS).map(|f| f.as_str().len()).collect();
        lengths.sort_unstable();
        lengths.dedup();
        assert_eq!(lengths, CDN_FIELD_LENGTHS);
    }

    #[test]
    fn via_entries_are_kept_once_and_a_node_id_outside_visible_ascii_falls_back() {
        let a = ViaEntries::new("edge-7");
        let b = ViaEntries::new("edge-7");
        assert_eq!(a.for_version(Version::HTTP_2), "2 edge-7");
        assert_eq!(interned("1.1 edge-7".to_string()).as_ptr(), interned("1.1 edge-7".to_string()).as_ptr());
        assert_eq!(a.for_version(Version::HTTP_11), b.for_version(Version::HTTP_11));
        assert_eq!(ViaEntries::new("edge-\u{e9}").for_version(Version::HTTP_11), "1.1 edgecache");
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_fields() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn via_detects_loops_by_node_id() {
        let mut h = HeaderMap::new();
        h.append(header::VIA, ViaEntries::new("edge-1").for_version(Version::HTTP_11).clone());
        h.append(header::VIA, ViaEntries::new("shield-1").for_version(Version::HTTP_2).clone());
        assert!(is_loop(&h, "edge-1"));
        assert!(is_loop(&h, "shield-1"));
        assert!(!is_loop(&h, "edge"));
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarded_for(&mut h, "127.0.0.1".parse().expect("ip"), "https");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn the_surrogate_capability_is_announced_once_per_chain() {
        let mut h = HeaderMap::new();
        h.insert("surrogate-capability", HeaderValue::from_static("abc=\"ESI/1.0\""));
        add_surrogate_capability(&mut h);
        let values: Vec<_> = h.get_all("surrogate-capability").iter().collect();
        assert_eq!(values, ["abc=\"ESI/1.0\"", SURROGATE_CAPABILITY]);
        add_surrogate_capability(&mut h);
        assert_eq!(h.get_all("surrogate-capability").iter().count(), 2, "a nearer edgecache node announced it already");
    }
}
