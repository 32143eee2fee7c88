//! Which consistent hashing owns keys in a pop: our rendezvous (HRW) ring over xxh3 (`edgecache::cluster::Ring`)
//! against `hashring` 0.3 (the crate the design card names) with 160 virtual nodes per node.
//!
//! Printed first (not timed): over 100,000 keys (`http://cdn.test/obj/N`), for 3 and 10 nodes, how far the busiest
//! node is above the average, and the share of keys that change owner when one node leaves and when one joins.
//! Then criterion times one owner lookup and one ordered candidate list (owner + 2 fallbacks).
//!
//! `cargo bench --bench ring`.

use std::hash::{Hash, Hasher};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use edgecache::cluster::ring::key_hash;
use edgecache::cluster::{Member, Ring};
use hashring::HashRing;

const KEYS: usize = 100_000;
const VNODES: usize = 160;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("http://cdn.test/obj/{i}")).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("edge-{i}")).collect()
}

fn hrw(ids: &[String]) -> Ring {
    Ring::new(ids.iter().map(|id| Member::new(id, "http://127.0.0.1:1".parse().expect("url"))).collect())
}

/// One virtual node of `hashring`: the node's index and the replica number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VNode {
    node: usize,
    replica: usize,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        format!("edge-{}-{}", self.node, self.replica).hash(state);
    }
}

fn hashring_of(nodes: impl Iterator<Item = usize>) -> HashRing<VNode> {
    let mut ring = HashRing::new();
    for node in nodes {
        for replica in 0..VNODES {
            ring.add(VNode { node, replica });
        }
    }
    ring
}

fn hrw_owners(ring: &Ring, keys: &[String]) -> Vec<String> {
    keys.iter().map(|k| ring.owner(key_hash(k)).map(|m| m.id.to_string()).unwrap_or_default()).collect()
}

fn hashring_owners(ring: &HashRing<VNode>, keys: &[String]) -> Vec<String> {
    keys.iter().map(|k| ring.get(k).map(|v| format!("edge-{}", v.node)).unwrap_or_default()).collect()
}

fn busiest_over_average(owners: &[String], n: usize) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for o in owners {
        *counts.entry(o.as_str()).or_insert(0usize) += 1;
    }
    let busiest = counts.values().copied().max().unwrap_or(0) as f64;
    (busiest / (owners.len() as f64 / n as f64) - 1.0) * 100.0
}

fn moved(a: &[String], b: &[String]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64 * 100.0
}

fn figures() {
    let keys = keys();
    println!("keys: {KEYS}; hashring: {VNODES} virtual nodes per node");
    println!(
        "{:<10} {:>5} {:>16} {:>16} {:>16} {:>10}",
        "ring", "nodes", "busiest vs avg", "moved on leave", "moved on join", "1/N"
    );
    for n in [3, 10] {
        let all = ids(n);
        let (hrw_all, hrw_less, hrw_more) = (hrw(&all), hrw(&all[1..]), hrw(&ids(n + 1)));
        let (a, l, m) = (hrw_owners(&hrw_all, &keys), hrw_owners(&hrw_less, &keys), hrw_owners(&hrw_more, &keys));
        println!(
            "{:<10} {:>5} {:>15.2}% {:>15.2}% {:>15.2}% {:>9.2}%",
            "hrw-xxh3",
            n,
            busiest_over_average(&a, n),
            moved(&a, &l),
            moved(&a, &m),
            100.0 / n as f64
        );
        let (h_all, h_less, h_more) = (hashring_of(0..n), hashring_of(1..n), hashring_of(0..=n));
        let (a, l, m) =
            (hashring_owners(&h_all, &keys), hashring_owners(&h_less, &keys), hashring_owners(&h_more, &keys));
        println!(
            "{:<10} {:>5} {:>15.2}% {:>15.2}% {:>15.2}% {:>9.2}%",
            "hashring",
            n,
            busiest_over_average(&a, n),
            moved(&a, &l),
            moved(&a, &m),
            100.0 / n as f64
        );
    }
}

fn lookups(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("ring");
    for n in [3, 10] {
        let ring = hrw(&ids(n));
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("hrw-xxh3/owner", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(ring.owner(key_hash(&keys[i])).map(|m| m.id.len()))
            })
        });
        group.bench_with_input(BenchmarkId::new("hrw-xxh3/candidates", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(ring.candidates(key_hash(&keys[i])).len())
            })
        });
        let hashring = hashring_of(0..n);
        group.bench_with_input(BenchmarkId::new("hashring/owner", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(hashring.get(&keys[i]).map(|v| v.node))
            })
        });
        group.bench_with_input(BenchmarkId::new("hashring/replicas-3", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(hashring.get_with_replicas(&keys[i], 2).map(|v| v.len()))
            })
        });
    }
    group.finish();
}

fn main() {
    figures();
    let mut criterion = Criterion::default().configure_from_args();
    lookups(&mut criterion);
    criterion.final_summary();
}
