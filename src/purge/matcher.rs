//! Which stored objects a purge selects, and the purge clock: for every URL, prefix, tag and host purged (and for
//! `everything`), the time of its latest hard and soft purge. A stored object whose content left the origin before
//! the latest purge that selects it is invalid, wherever and whenever it was stored: this is what makes a purge
//! correct across tiers in any order (an object an edge refills from a shield that has not applied the purge yet
//! carries its old origin time in `Age`/`Date`, and is rejected at its next lookup).

use std::collections::{BTreeMap, HashMap};

use super::log::Purge;
use super::request::{Selection, without_scheme};

/// The parts of a stored object's key that purges match: `host[:port]/path?query` (no scheme), the host with and
/// without its port.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    pub rest: &'a str,
    pub host: &'a str,
    pub bare_host: &'a str,
}

impl<'a> KeyParts<'a> {
    /// Reads a variant key (`scheme://host/path?query`, then the `Vary` values on their own lines).
    pub fn of(key: &'a str) -> KeyParts<'a> {
        let url = key.split('\n').next().unwrap_or(key);
        let rest = without_scheme(url);
        let host = rest.split('/').next().unwrap_or(rest);
        let bare_host = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        KeyParts { rest, host, bare_host }
    }
}

impl Selection {
    /// Whether this selection covers an object with this key and these tags (read only if tags are purged).
    pub fn matches(&self, key: &KeyParts<'_>, tags: impl FnOnce() -> Vec<String>) -> bool {
        self.everything
            || self.urls.iter().any(|u| u == key.rest)
            || self.prefixes.iter().any(|p| key.rest.starts_with(p.as_str()))
            || self.hosts.iter().any(|h| h == key.host || h == key.bare_host)
            || (!self.tags.is_empty() && tags().iter().any(|t| self.tags.contains(t)))
    }
}

/// The latest purge times (Unix milliseconds; 0: none) of one selector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    pub hard: u64,
    pub soft: u64,
}

impl Stamp {
    fn add(&mut self, at: u64, soft: bool) {
        let slot = if soft { &mut self.soft } else { &mut self.hard };
        *slot = (*slot).max(at);
    }

    fn merge(&mut self, other: Stamp) {
        self.hard = self.hard.max(other.hard);
        self.soft = self.soft.max(other.soft);
    }
}

/// What the purges say about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No purge newer than the object selects it.
    Valid,
    /// A hard purge newer than the object selects it: it must not be served.
    Purged,
    /// A soft purge at this time (Unix ms) selects it: it is stale since then and must be revalidated.
    StaleSince(u64),
}

/// The latest purge times of every selector purged, built from the purge log.
#[derive(Debug, Default)]
pub struct Clock {
    everything: Stamp,
    urls: HashMap<Box<str>, Stamp>,
    hosts: HashMap<Box<str>, Stamp>,
    tags: HashMap<Box<str>, Stamp>,
    prefixes: HashMap<Box<str>, Stamp>,
    /// The lengths of the purged prefixes, with how many prefixes have each: a key is checked for a prefix of each
    /// length, one hash lookup each, instead of against every prefix.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl Clock {
    /// A clock of `purges`.
    pub fn of<'a>(purges: impl IntoIterator<Item = &'a Purge>) -> Clock {
        let mut clock = Clock::default();
        for purge in purges {
            clock.record(purge);
        }
        clock
    }

    /// Records a purge.
    pub fn record(&mut self, purge: &Purge) {
        let (at, s) = (purge.at, &purge.selection);
        if s.everything {
            self.everything.add(at, s.soft);
        }
        for (map, list) in [(&mut self.urls, &s.urls), (&mut self.hosts, &s.hosts), (&mut self.tags, &s.tags)] {
            for entry in list {
                map.entry(entry.as_str().into()).or_default().add(at, s.soft);
            }
        }
        for prefix in &s.prefixes {
            let stamp = self.prefixes.entry(prefix.as_str().into()).or_insert_with(|| {
                *self.prefix_lengths.entry(prefix.len()).or_default() += 1;
                Stamp::default()
            });
            stamp.add(at, s.soft);
        }
    }

    /// Whether no purge is recorded.
    pub fn is_empty(&self) -> bool {
        self.everything == Stamp::default()
            && self.urls.is_empty()
            && self.hosts.is_empty()
            && self.tags.is_empty()
            && self.prefixes.is_empty()
    }

    /// Whether any tag purge is recorded (only then are an object's tags read).
    pub fn has_tags(&self) -> bool {
        !self.tags.is_empty()
    }

    /// Selectors recorded (for the log size gauge's sanity; one per URL, prefix, tag, host).
    pub fn len(&self) -> usize {
        self.urls.len() + self.hosts.len() + self.tags.len() + self.prefixes.len()
    }

    /// The latest purge times that select an object with `key` and `tags`.
    pub fn latest<'t>(&self, key: &KeyParts<'_>, tags: impl IntoIterator<Item = &'t str>) -> Stamp {
        let mut stamp = self.everything;
        if let Some(s) = self.urls.get(key.rest) {
            stamp.merge(*s);
        }
        for host in [key.host, key.bare_host] {
            if let Some(s) = self.hosts.get(host) {
                stamp.merge(*s);
            }
            if key.host == key.bare_host {
                break;
            }
        }
        for &len in self.prefix_lengths.keys() {
            if len > key.rest.len() {
                break;
            }
            if let Some(s) = key.rest.get(..len).and_then(|p| self.prefixes.get(p)) {
                stamp.merge(*s);
            }
        }
        for tag in tags {
            if let Some(s) = self.tags.get(tag) {
                stamp.merge(*s);
            }
        }
        stamp
    }

    /// The verdict on an object whose content left the origin at `origin_ms`.
    pub fn verdict<'t>(&self, key: &KeyParts<'_>, tags: impl IntoIterator<Item = &'t str>, origin_ms: u64) -> Verdict {
        let stamp = self.latest(key, tags);
        if stamp.hard > origin_ms {
            Verdict::Purged
        } else if stamp.soft > origin_ms {
            Verdict::StaleSince(stamp.soft)
        } else {
            Verdict::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge(at: u64, selection: Selection) -> Purge {
        Purge { id: format!("p{at}"), at, selection }
    }

    #[test]
    fn key_parts_strip_scheme_vary_values_and_port() {
        let k = KeyParts::of("https://example.com:8443/a?b=1\naccept-language:fr\n#3");
        assert_eq!((k.rest, k.host, k.bare_host), ("example.com:8443/a?b=1", "example.com:8443", "example.com"));
        let k = KeyParts::of("http://[::1]:80/x");
        assert_eq!(k.host, "[::1]:80");
    }

    #[test]
    fn each_selector_matches_what_it_names_only() {
        let key = KeyParts::of("http://shop.example:8080/img/logo.png");
        let tags = || vec!["product-42".to_string()];
        let sel = |f: fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            s
        };
        assert!(sel(|s| s.urls = vec!["shop.example:8080/img/logo.png".into()]).matches(&key, tags));
        assert!(!sel(|s| s.urls = vec!["shop.example:8080/img/logo".into()]).matches(&key, tags));
        assert!(sel(|s| s.prefixes = vec!["shop.example:8080/img/".into()]).matches(&key, tags));
        assert!(!sel(|s| s.prefixes = vec!["shop.example/img/".into()]).matches(&key, tags));
        assert!(sel(|s| s.hosts = vec!["shop.example".into()]).matches(&key, tags));
        assert!(sel(|s| s.hosts = vec!["shop.example:8080".into()]).matches(&key, tags));
        assert!(!sel(|s| s.hosts = vec!["shop.example:9090".into()]).matches(&key, tags));
        assert!(sel(|s| s.tags = vec!["product-42".into()]).matches(&key, tags));
        assert!(!sel(|s| s.tags = vec!["product-4".into()]).matches(&key, tags));
        assert!(sel(|s| s.everything = true).matches(&key, tags));
    }

    #[test]
    fn the_clock_judges_by_origin_time_and_keeps_the_latest() {
        let mut clock = Clock::default();
        assert!(clock.is_empty());
        clock.record(&purge(1_000, Selection { prefixes: vec!["h/img/".into()], ..Selection::default() }));
        clock.record(&purge(2_000, Selection { tags: vec!["t".into()], soft: true, ..Selection::default() }));
        clock.record(&purge(500, Selection { prefixes: vec!["h/img/".into()], ..Selection::default() }));
        let key = KeyParts::of("http://h/img/a.png");
        assert_eq!(clock.verdict(&key, [], 999), Verdict::Purged, "older than the prefix purge");
        assert_eq!(clock.verdict(&key, [], 1_000), Verdict::Valid, "the latest of the two prefix purges counts");
        assert_eq!(clock.verdict(&key, ["t"], 1_500), Verdict::StaleSince(2_000));
        assert_eq!(clock.verdict(&key, ["t"], 900), Verdict::Purged, "hard wins over soft");
        assert_eq!(clock.verdict(&KeyParts::of("http://h/im"), [], 0), Verdict::Valid, "shorter than the prefix");
    }
}
