//! Who owns a key inside a pop: rendezvous (highest random weight) hashing over xxh3.
//!
//! Every member gets a score for a key, `mix(xxh3(key) ^ seed(member))`; the member with the highest score owns
//! the key, and the members sorted by score are the ordered candidates, so failover is "the next one". A ring is
//! immutable: membership changes build a new one (see `membership`), and removing a member moves exactly the keys
//! it owned, nothing else. Measured against `hashring` 0.3 in `benches/ring.rs` (figures in benches/README.md).

use std::sync::Arc;

use http::Uri;
use xxhash_rust::xxh3::xxh3_64;

/// A node a key can be routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `node.id`, unique in the topology.
    pub id: Arc<str>,
    /// Where the other nodes reach it (its `[[pops]]` url).
    pub url: Uri,
    /// Its hash seed, from its id: the same on every node.
    seed: u64,
}

impl Member {
    /// A member named `id`, reached at `url`.
    pub fn new(id: &str, url: Uri) -> Member {
        Member { id: id.into(), url, seed: xxh3_64(id.as_bytes()) }
    }
}

/// The hash of a routing key (the cache key's URL part), computed once per request.
pub fn key_hash(key: &str) -> u64 {
    xxh3_64(key.as_bytes())
}

/// A member's score for a key hash: a 64-bit finaliser (SplitMix64) over the key hash and the member's seed.
fn score(key_hash: u64, seed: u64) -> u64 {
    let mut z = key_hash ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An immutable set of members and the order they take for each key.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    members: Vec<Member>,
}

impl Ring {
    /// A ring over `members` (their order does not matter).
    pub fn new(members: Vec<Member>) -> Ring {
        Ring { members }
    }

    /// The members, in the order given.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// How many members the ring has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The owner of a key hash: the member with the highest score (ties go to the larger seed).
    pub fn owner(&self, key_hash: u64) -> Option<&Member> {
        self.members.iter().max_by_key(|m| (score(key_hash, m.seed), m.seed))
    }

    /// Every member, best first: the owner, then who takes the key if the owner is gone, and so on.
    pub fn candidates(&self, key_hash: u64) -> Vec<&Member> {
        let mut scored: Vec<(u64, &Member)> = self.members.iter().map(|m| (score(key_hash, m.seed), m)).collect();
        scored.sort_unstable_by_key(|&(score, m)| std::cmp::Reverse((score, m.seed)));
        scored.into_iter().map(|(_, m)| m).collect()
    }

    /// The same ring without the members `keep` refuses.
    pub fn filtered(&self, keep: impl Fn(&Member) -> bool) -> Ring {
        Ring { members: self.members.iter().filter(|m| keep(m)).cloned().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> Ring {
        let members = (0..n)
            .map(|i| Member::new(&format!("node-{i}"), format!("http://127.0.0.1:{}", 8000 + i).parse().expect("url")))
            .collect();
        Ring::new(members)
    }

    fn owners(ring: &Ring, keys: usize) -> Vec<Arc<str>> {
        (0..keys).map(|k| ring.owner(key_hash(&format!("http://example.com/{k}"))).expect("owner").id.clone()).collect()
    }

    #[test]
    fn load_is_balanced_within_five_percent() {
        for n in [3, 10] {
            let r = ring(n);
            let keys = 100_000;
            let owned = owners(&r, keys);
            let busiest =
                r.members().iter().map(|m| owned.iter().filter(|o| **o == m.id).count()).max().expect("members");
            let average = keys as f64 / n as f64;
            assert!((busiest as f64) <= average * 1.05, "{n} nodes: busiest {busiest}, average {average}");
        }
    }

    #[test]
    fn a_member_leaving_moves_only_its_keys_and_joining_moves_them_back() {
        let all = ring(10);
        let without = all.filtered(|m| &*m.id != "node-3");
        let (before, after) = (owners(&all, 20_000), owners(&without, 20_000));
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let owned_by_3 = before.iter().filter(|o| &***o == "node-3").count();
        assert_eq!(moved, owned_by_3, "only node-3's keys moved");
        assert!(moved as f64 <= 20_000.0 * 1.1 / 10.0);
    }

    #[test]
    fn candidates_start_with_the_owner_and_name_every_member_once() {
        let r = ring(5);
        for k in 0..100 {
            let h = key_hash(&format!("/k{k}"));
            let c = r.candidates(h);
            assert_eq!(c.len(), 5);
            assert_eq!(c[0], r.owner(h).expect("owner"));
            let mut ids: Vec<&str> = c.iter().map(|m| &*m.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 5);
            // Without the owner, the second candidate owns the key.
            let rest = r.filtered(|m| m.id != c[0].id);
            assert_eq!(rest.owner(h).map(|m| &m.id), Some(&c[1].id));
        }
    }

    #[test]
    fn an_empty_ring_has_no_owner() {
        assert!(Ring::default().owner(1).is_none());
        assert!(Ring::default().candidates(1).is_empty());
    }
}
