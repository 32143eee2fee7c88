//! The outcome of one request at this node, named once: it prints the node's `Cache-Status` entry (RFC 9211) and
//! gives the `cache_status` label of the metrics and logs, so all three agree by construction.

use std::fmt;

use http::header::HeaderName;

/// The `Cache-Status` field (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Why the request went upstream (RFC 9211 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Not in cache.
    UriMiss,
    /// In cache, but not the variant this request selects.
    VaryMiss,
    /// In cache but stale: revalidated or refetched.
    Stale,
    /// The client's request asked for it (e.g. `no-cache`).
    Request,
    /// The cache was not used for this request (method, ranges, uncacheable).
    Bypass,
}

impl Forward {
    fn as_str(self) -> &'static str {
        match self {
            Forward::UriMiss => "uri-miss",
            Forward::VaryMiss => "vary-miss",
            Forward::Stale => "stale",
            Forward::Request => "request",
            Forward::Bypass => "bypass",
        }
    }
}

/// The coarse outcome used as the `cache_status` metric label and in access logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Stale,
    Revalidated,
    Bypass,
    Error,
}

impl CacheOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Stale => "stale",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Error => "error",
        }
    }
}

/// This node's `Cache-Status` entry for one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// The answer's body came from the cache. Printed as `hit` only when nothing went upstream (RFC 9211);
    /// a revalidated answer prints `fwd=stale; fwd-status=304` instead.
    pub hit: bool,
    /// Why it went upstream, if it did.
    pub forward: Option<Forward>,
    /// The status the upstream answered.
    pub forward_status: Option<u16>,
    /// The response was stored.
    pub stored: bool,
    /// The request waited on another request's fetch.
    pub collapsed: bool,
    /// Freshness left, in seconds (negative when stale).
    pub ttl: Option<i64>,
    /// A short reason (why not stored, which error).
    pub detail: Option<&'static str>,
    /// Served stale (e.g. within `stale-while-revalidate`).
    pub stale: bool,
    /// The upstream failed (this node answered with an error of its own).
    pub error: bool,
}

impl CacheStatus {
    /// A fresh hit with `ttl` seconds left.
    pub fn hit(ttl: i64) -> CacheStatus {
        CacheStatus { hit: true, ttl: Some(ttl), ..CacheStatus::default() }
    }

    /// Went upstream for `forward`.
    pub fn forwarded(forward: Forward) -> CacheStatus {
        CacheStatus { forward: Some(forward), ..CacheStatus::default() }
    }

    /// The coarse outcome for metrics and logs.
    pub fn outcome(&self) -> CacheOutcome {
        if self.error {
            CacheOutcome::Error
        } else if self.hit && self.stale {
            CacheOutcome::Stale
        } else if self.hit && self.forward_status == Some(304) {
            CacheOutcome::Revalidated
        } else if self.hit {
            CacheOutcome::Hit
        } else if self.forward == Some(Forward::Bypass) {
            CacheOutcome::Bypass
        } else {
            CacheOutcome::Miss
        }
    }

    /// The entry, as it appears in the header: `node-id; hit; ttl=42`.
    pub fn entry<'a>(&'a self, node: &'a str) -> impl fmt::Display + 'a {
        Entry { node, status: self }
    }
}

struct Entry<'a> {
    node: &'a str,
    status: &'a CacheStatus,
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entry = Vec::with_capacity(64);
        self.status.write_entry(self.node, &mut entry);
        // Every part written is ASCII or the node id, which is a `str`.
        f.write_str(&String::from_utf8_lossy(&entry))
    }
}

impl CacheStatus {
    /// Appends the entry (`node-id; hit; ttl=42`) to `out`: the bytes of the header value, without formatting
    /// machinery (this runs for every answer).
    pub fn write_entry(&self, node: &str, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(node.as_bytes());
        if self.hit && self.forward.is_none() {
            out.extend_from_slice(b"; hit");
        }
        if let Some(forward) = self.forward {
            out.extend_from_slice(b"; fwd=");
            out.extend_from_slice(forward.as_str().as_bytes());
        }
        if let Some(code) = self.forward_status {
            out.extend_from_slice(b"; fwd-status=");
            out.extend_from_slice(number.format(code).as_bytes());
        }
        if self.stored {
            out.extend_from_slice(b"; stored");
        }
        if self.collapsed {
            out.extend_from_slice(b"; collapsed");
        }
        if let Some(ttl) = self.ttl {
            out.extend_from_slice(b"; ttl=");
            out.extend_from_slice(number.format(ttl).as_bytes());
        }
        if let Some(detail) = self.detail {
            out.extend_from_slice(b"; detail=");
            out.extend_from_slice(detail.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_print_as_rfc9211() {
        assert_eq!(CacheStatus::hit(42).entry("edge-1").to_string(), "edge-1; hit; ttl=42");
        let mut miss = CacheStatus::forwarded(Forward::UriMiss);
        miss.forward_status = Some(200);
        miss.stored = true;
        miss.ttl = Some(60);
        assert_eq!(miss.entry("e").to_string(), "e; fwd=uri-miss; fwd-status=200; stored; ttl=60");
        let mut bypass = CacheStatus::forwarded(Forward::Bypass);
        bypass.detail = Some("method");
        assert_eq!(bypass.entry("e").to_string(), "e; fwd=bypass; detail=method");
    }

    #[test]
    fn outcomes() {
        assert_eq!(CacheStatus::hit(1).outcome(), CacheOutcome::Hit);
        let mut revalidated = CacheStatus::forwarded(Forward::Stale);
        revalidated.hit = true;
        revalidated.forward_status = Some(304);
        assert_eq!(revalidated.outcome(), CacheOutcome::Revalidated);
        assert_eq!(CacheStatus::forwarded(Forward::Bypass).outcome(), CacheOutcome::Bypass);
        assert_eq!(CacheStatus::forwarded(Forward::UriMiss).outcome(), CacheOutcome::Miss);
    }
}
