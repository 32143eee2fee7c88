//! Choosing a certificate by SNI: the [`SniMap`] of names to certificates and the rustls
//! [`ResolvesServerCert`] that reads it through an [`ArcSwap`], so a reload is one atomic swap.
//!
//! Matching rules:
//! - names compare case-insensitively, and a trailing dot in the client's name is ignored;
//! - an exact name beats a wildcard, whatever the configuration order;
//! - `*.example.com` matches exactly one extra label: `a.example.com`, but neither
//!   `example.com` nor `a.b.example.com`;
//! - when two entries claim the same name, the earlier entry wins;
//! - no SNI, or a name nobody claims, gets the first entry (the default).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;
use super::names::normalize;

/// An immutable name → certificate table; a reload builds a new one.
#[derive(Debug)]
pub(crate) struct SniMap {
    /// Served for no SNI or an unknown name: the first configured entry.
    default: Arc<CertifiedKey>,
    /// Exact names, lower-cased.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Wildcards keyed by what follows `*.` (`*.example.com` is stored as `example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// How many certificates went in (for reporting).
    count: usize,
}

impl SniMap {
    /// Builds the table from certificates in configuration order; `None` if there are none.
    pub(crate) fn new(certs: Vec<LoadedCert>) -> Option<Self> {
        let default = Arc::clone(&certs.first()?.key);
        let count = certs.len();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in certs {
            for name in cert.names {
                let (table, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut wildcard, parent.to_owned()),
                    None => (&mut exact, name),
                };
                // Earlier entries win, so only fill names not taken yet.
                table.entry(key).or_insert_with(|| Arc::clone(&cert.key));
            }
        }
        Some(Self { default, exact, wildcard, count })
    }

    /// Number of certificates in the table.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The certificate for a client-sent server name (or the default).
    pub(crate) fn lookup(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        server_name.map(normalize).and_then(|name| self.find(&name)).unwrap_or(&self.default)
    }

    /// Exact match first, then a wildcard covering exactly the first label.
    fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(key) = self.exact.get(name) {
            return Some(key);
        }
        match name.split_once('.') {
            Some((label, parent)) if !label.is_empty() && !parent.is_empty() => self.wildcard.get(parent),
            _ => None,
        }
    }
}

/// The rustls certificate resolver behind every [`super::TlsTerminator`] acceptor.
#[derive(Debug)]
pub(crate) struct SniResolver {
    map: ArcSwap<SniMap>,
}

impl SniResolver {
    /// A resolver serving `map`.
    pub(crate) fn new(map: SniMap) -> Self {
        Self { map: ArcSwap::from_pointee(map) }
    }

    /// Atomically replaces the table; handshakes already past certificate selection keep theirs.
    pub(crate) fn replace(&self, map: SniMap) {
        self.map.store(Arc::new(map));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let map = self.map.load();
        Some(Arc::clone(map.lookup(client_hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::load_cert;
    use crate::tls::testutil::Fixture;

    /// Loads one self-signed cert per name list, in order.
    fn map_of(fx: &Fixture, entries: &[&[&str]]) -> (SniMap, Vec<Arc<CertifiedKey>>) {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let loaded: Vec<LoadedCert> = entries
            .iter()
            .enumerate()
            .map(|(i, names)| {
                let c = fx.self_signed(&format!("c{i}"), names);
                load_cert(&c.cert, &c.key, &provider).expect("load")
            })
            .collect();
        let keys = loaded.iter().map(|l| Arc::clone(&l.key)).collect();
        (SniMap::new(loaded).expect("non-empty"), keys)
    }

    fn same(a: &Arc<CertifiedKey>, b: &Arc<CertifiedKey>) -> bool {
        Arc::ptr_eq(a, b)
    }

    #[test]
    fn empty_list_has_no_map() {
        assert!(SniMap::new(Vec::new()).is_none());
    }

    #[test]
    fn exact_names_and_default() {
        let fx = Fixture::new();
        let (map, k) = map_of(&fx, &[&["a.test"], &["b.test"]]);
        assert_eq!(map.len(), 2);
        assert!(same(map.lookup(Some("a.test")), &k[0]));
        assert!(same(map.lookup(Some("b.test")), &k[1]));
        assert!(same(map.lookup(Some("B.Test.")), &k[1]));
        assert!(same(map.lookup(Some("c.test")), &k[0]));
        assert!(same(map.lookup(None), &k[0]));
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let fx = Fixture::new();
        let (map, k) = map_of(&fx, &[&["default.test"], &["*.example.com"]]);
        assert!(same(map.lookup(Some("a.example.com")), &k[1]));
        assert!(same(map.lookup(Some("A.EXAMPLE.COM")), &k[1]));
        assert!(same(map.lookup(Some("example.com")), &k[0]));
        assert!(same(map.lookup(Some("a.b.example.com")), &k[0]));
        assert!(same(map.lookup(Some(".example.com")), &k[0]));
        assert!(same(map.lookup(Some("aexample.com")), &k[0]));
    }

    #[test]
    fn exact_beats_wildcard_and_first_entry_wins_duplicates() {
        let fx = Fixture::new();
        let (map, k) = map_of(&fx, &[&["*.example.com"], &["www.example.com"], &["www.example.com", "x.test"]]);
        assert!(same(map.lookup(Some("www.example.com")), &k[1]));
        assert!(same(map.lookup(Some("api.example.com")), &k[0]));
        assert!(same(map.lookup(Some("x.test")), &k[2]));
    }

    #[test]
    fn replace_swaps_what_lookups_see() {
        let fx = Fixture::new();
        let (first, k1) = map_of(&fx, &[&["a.test"]]);
        let (second, k2) = map_of(&fx, &[&["a.test"]]);
        let resolver = SniResolver::new(first);
        assert!(same(resolver.map.load().lookup(Some("a.test")), &k1[0]));
        resolver.replace(second);
        assert!(same(resolver.map.load().lookup(Some("a.test")), &k2[0]));
    }
}
