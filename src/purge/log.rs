//! The purge log of one node: every purge it applied (its id, its time, what it selects), a grow-only set keyed
//! by id, so applying a purge twice is harmless and logs merged in any order converge. Each entry gets a local
//! sequence number; peers pull what they lack with a cursor (`GET /.edgecache/purges?since=SEQ`). The log is
//! bounded: entries older than the longest lifetime of any stored object (or `purge.log_max_age`) leave it, and
//! beyond `purge.log_max_entries` the oldest do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::request::Selection;

/// One purge, as every node records it and as nodes send it to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purge {
    pub id: String,
    /// When the node that received it accepted it, in Unix milliseconds. Objects whose content left the origin
    /// before this time are what it invalidates.
    pub at: u64,
    #[serde(flatten)]
    pub selection: Selection,
}

/// One page of a node's log, as `GET /.edgecache/purges` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    /// Changes when the node restarts: a cursor of another epoch starts again from 0.
    pub epoch: u64,
    /// The cursor for the next pull.
    pub next: u64,
    /// Whether more entries follow `next` already.
    pub more: bool,
    pub purges: Vec<Purge>,
}

/// Most purges in one page.
pub const PAGE_SIZE: usize = 1_000;

/// The log.
pub struct PurgeLog {
    epoch: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, u64>,
    by_seq: BTreeMap<u64, Arc<Purge>>,
    next_seq: u64,
}

/// What pruning removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Entries removed because they outlived every object they could invalidate.
    pub expired: usize,
    /// The newest entry removed by the size cap while still within its lifetime, if any: objects older than it
    /// must be revalidated, as its record is gone.
    pub dropped_until: Option<u64>,
}

impl Default for PurgeLog {
    fn default() -> PurgeLog {
        PurgeLog::new()
    }
}

impl PurgeLog {
    /// An empty log with a fresh epoch.
    pub fn new() -> PurgeLog {
        let epoch = now_ms() ^ u64::from(std::process::id()).rotate_left(40);
        PurgeLog { epoch, inner: Mutex::new(Inner { next_seq: 1, ..Inner::default() }) }
    }

    /// Adds a purge; `false` if one with its id is already there (nothing changes then).
    pub fn insert(&self, purge: Purge) -> bool {
        let Ok(mut inner) = self.inner.lock() else { return false };
        if inner.by_id.contains_key(&purge.id) {
            return false;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.by_id.insert(purge.id.clone(), seq);
        inner.by_seq.insert(seq, Arc::new(purge));
        true
    }

    /// The recorded purge with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Purge>> {
        let inner = self.inner.lock().ok()?;
        inner.by_id.get(id).and_then(|seq| inner.by_seq.get(seq)).cloned()
    }

    /// Entries after cursor `since` (of epoch `epoch`; another epoch reads from the start).
    pub fn page(&self, since: u64, epoch: Option<u64>) -> Page {
        let since = if epoch == Some(self.epoch) { since } else { 0 };
        let Ok(inner) = self.inner.lock() else {
            return Page { epoch: self.epoch, next: since, more: false, purges: Vec::new() };
        };
        let mut purges = Vec::new();
        let mut next = since;
        let mut more = false;
        for (seq, purge) in inner.by_seq.range(since.saturating_add(1)..) {
            if purges.len() == PAGE_SIZE {
                more = true;
                break;
            }
            purges.push(Purge::clone(purge));
            next = *seq;
        }
        Page { epoch: self.epoch, next, more, purges }
    }

    /// Every entry (to rebuild the clock).
    pub fn all(&self) -> Vec<Arc<Purge>> {
        self.inner.lock().map(|inner| inner.by_seq.values().cloned().collect()).unwrap_or_default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|inner| inner.by_seq.len()).unwrap_or(0)
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At `now_ms`: removes entries older than `expire_after` (no object they could invalidate is still fresh),
    /// then drops, while still within it, those older than `max_age` and the oldest beyond `max_entries`.
    pub fn prune(&self, now_ms: u64, expire_after: Duration, max_age: Duration, max_entries: usize) -> Pruned {
        let Ok(mut inner) = self.inner.lock() else { return Pruned::default() };
        let before = |age: Duration| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        let (expired, too_old) = (before(expire_after), before(max_age));
        let mut pruned = Pruned::default();
        let mut remove: Vec<(u64, bool)> = Vec::new();
        let mut live: Vec<(u64, u64)> = Vec::new();
        for (seq, purge) in &inner.by_seq {
            if purge.at < expired {
                remove.push((*seq, true));
            } else {
                live.push((purge.at, *seq));
            }
        }
        live.sort_unstable();
        let over = live.len().saturating_sub(max_entries);
        for (i, (at, seq)) in live.into_iter().enumerate() {
            if i >= over && at >= too_old {
                break;
            }
            pruned.dropped_until = Some(pruned.dropped_until.map_or(at, |d: u64| d.max(at)));
            remove.push((seq, false));
        }
        for (seq, expired) in remove {
            if let Some(purge) = inner.by_seq.remove(&seq) {
                inner.by_id.remove(&purge.id);
                pruned.expired += usize::from(expired);
            }
        }
        pruned
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// A time in Unix milliseconds (0 before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge(id: &str, at: u64) -> Purge {
        Purge { id: id.to_string(), at, selection: Selection { everything: true, ..Selection::default() } }
    }

    #[test]
    fn the_same_id_is_applied_once_and_pages_follow_the_cursor() {
        let log = PurgeLog::new();
        assert!(log.insert(purge("a", 10)));
        assert!(!log.insert(purge("a", 99)), "a second copy changes nothing");
        assert_eq!(log.get("a").map(|p| p.at), Some(10));
        assert!(log.insert(purge("b", 20)));
        let page = log.page(0, None);
        assert_eq!(page.purges.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let later = log.page(page.next, Some(page.epoch));
        assert!(later.purges.is_empty() && later.next == page.next);
        assert_eq!(log.page(page.next, Some(page.epoch ^ 1)).purges.len(), 2, "another epoch starts over");
    }

    #[test]
    fn pruning_expires_old_entries_and_caps_the_size() {
        let log = PurgeLog::new();
        for (i, at) in [1_000u64, 5_000, 6_000, 7_000].iter().enumerate() {
            log.insert(purge(&format!("p{i}"), *at));
        }
        let pruned = log.prune(10_000, Duration::from_secs(6), Duration::from_secs(60), 2);
        assert_eq!(pruned.expired, 1, "p0 is older than 6 s");
        assert_eq!(pruned.dropped_until, Some(5_000), "p1 goes over the cap");
        assert_eq!(log.len(), 2);
        assert!(log.get("p3").is_some() && log.get("p1").is_none());
        let pruned = log.prune(10_000, Duration::from_secs(6), Duration::from_millis(3_500), 10);
        assert_eq!((pruned.expired, pruned.dropped_until), (0, Some(6_000)), "p2 is older than the max age");
        assert_eq!(log.len(), 1);
    }
}
