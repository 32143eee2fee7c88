//! The checks that turn the file's shape ([`FileConfig`]) into the validated model ([`Config`]), defaults filled
//! in. Every section is checked even after a problem is found, so that one run reports everything.

use std::net::SocketAddr;
use std::time::Duration;

use serde_spanned::Spanned;

use super::check::{Checker, open};
use super::document::Problem;
use super::file::{
    AdminFile, CacheFile, ClusterFile, CompressionFile, Field, FileConfig, OriginFile, PurgeFile, ServerFile,
    ThrottleFile,
};
use super::model::*;
use super::topology;

/// What validation reads from outside the file.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `EDGECACHE_ADMIN_TOKEN`: the admin token when the file sets none (the file wins when both do).
    pub admin_token: Option<String>,
    /// This machine's host name: the default `node.id`.
    pub hostname: Option<String>,
}

impl Env {
    /// Reads the environment variable and the host name of the running process.
    pub fn from_process() -> Env {
        let admin_token = std::env::var("EDGECACHE_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
        let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty());
        Env { admin_token, hostname }
    }
}

/// Content codings edgecache can produce.
pub const ALGORITHMS: [&str; 3] = ["br", "gzip", "zstd"];

/// The value `admin.listen` takes to turn the admin listener off.
pub const ADMIN_OFF: &str = "off";

/// Smallest accepted `server.max_header_size`: hyper refuses read buffers below 8KiB.
pub const MIN_HEADER_SIZE: u64 = 8 * 1024;

/// Checks `file` and builds the model; `None` when `ck` has recorded any problem.
pub fn validate(file: FileConfig, ck: &mut Checker<'_>, env: &Env) -> Option<Config> {
    let (server, addrs) = server(open(file.server), ck);
    let (origin_pos, origin_file) = open(file.origin);
    let origin_given = origin_file.url.is_some();
    let origin = self::origin(origin_file, ck);
    let cache = cache(open(file.cache).1, ck);
    let (cluster_pos, cluster_file) = open(file.cluster);
    let secret_given = cluster_file.secret.is_some();
    let (mut cluster, fallback_pos) = cluster(cluster_file, ck);
    let compression = compression(open(file.compression).1, ck);
    let throttle = throttle(open(file.throttle).1, ck);
    let admin = admin(open(file.admin).1, ck, env, &addrs);
    let log = LogConfig { access: open(file.log).1.access.map(|a| a.into_inner()).unwrap_or(false) };
    let purge = purge(open(file.purge).1, ck);
    let topo = topology::Inputs {
        node: open(file.node),
        pops: file.pops.map(|p| p.into_inner()).unwrap_or_default(),
        hostname: env.hostname.clone(),
        origin_pos,
        origin_given,
        cluster_pos,
        secret_given,
        fallback_pos,
    };
    let (node, pops, fallback) = topology::check(topo, cluster.parent_fallback, ck);
    cluster.parent_fallback = fallback;
    if !ck.problems.is_empty() {
        return None;
    }
    Some(Config { node, server, origin, cache, pops, cluster, compression, throttle, admin, log, purge })
}

/// An address some listener binds, with its place and key, to find two listeners on one address.
type Bound = (SocketAddr, usize, String);

fn server((pos, s): (usize, ServerFile), ck: &mut Checker<'_>) -> (ServerConfig, Vec<Bound>) {
    let mut bound: Vec<Bound> = Vec::new();
    let mut addrs = |field: &Field<Vec<Spanned<String>>>, key: &str, default: &[SocketAddr], ck: &mut Checker<'_>| {
        let Some(list) = field else {
            bound.extend(default.iter().map(|a| (*a, pos, format!("{key} (by default)"))));
            return default.to_vec();
        };
        let mut out = Vec::new();
        for (i, text) in list.get_ref().iter().enumerate() {
            let key = format!("{key}[{i}]");
            let Some(addr) = ck.socket_addr(text, &key) else {
                continue;
            };
            if let Some((_, _, other)) = bound.iter().find(|(a, _, _)| *a == addr) {
                ck.report(text.span().start, &key, format!("{addr} is already used by {other}"));
            }
            bound.push((addr, text.span().start, key));
            out.push(addr);
        }
        out
    };
    let listen = addrs(&s.listen, "server.listen", &[SocketAddr::from(([127, 0, 0, 1], 8080))], ck);
    let tls_listen = addrs(&s.tls_listen, "server.tls_listen", &[], ck);
    let given_empty = |f: &Field<Vec<Spanned<String>>>| f.as_ref().is_none_or(|l| l.get_ref().is_empty());
    if let Some(l) = s.listen.as_ref().filter(|_| given_empty(&s.listen) && given_empty(&s.tls_listen)) {
        ck.report(l.span().start, "server.listen", "no listener: set server.listen or server.tls_listen");
    }
    let mut tls = Vec::new();
    for (i, entry) in s.tls.as_ref().map(|t| t.get_ref().as_slice()).unwrap_or_default().iter().enumerate() {
        let at = entry.span().start;
        let mut path = |field: &Field<String>, name: &str| match field {
            Some(v) => ck.existing_file(v, &format!("server.tls[{i}].{name}")),
            None => {
                ck.report(at, format!("server.tls[{i}].{name}"), "required");
                Default::default()
            }
        };
        let cert = path(&entry.get_ref().cert, "cert");
        let key = path(&entry.get_ref().key, "key");
        tls.push(TlsCertConfig { cert, key });
    }
    if !tls_listen.is_empty() && tls.is_empty() {
        let at = s.tls_listen.as_ref().map_or(pos, |l| l.span().start);
        ck.report(
            at,
            "server.tls",
            "at least one [[server.tls]] certificate is required when server.tls_listen is set",
        );
    }
    let config = ServerConfig {
        listen,
        tls_listen,
        tls,
        max_header_size: ck.size(&s.max_header_size, "server.max_header_size", 64 * 1024, MIN_HEADER_SIZE),
        max_headers: ck.integer(&s.max_headers, "server.max_headers", 1, 10_000).map_or(100, |n| n as usize),
        header_read_timeout: ck.duration(&s.header_read_timeout, "server.header_read_timeout", Duration::from_secs(10)),
        idle_timeout: ck.duration(&s.idle_timeout, "server.idle_timeout", Duration::from_secs(60)),
        drain_timeout: ck.duration(&s.drain_timeout, "server.drain_timeout", Duration::from_secs(30)),
    };
    (config, bound)
}

fn origin(o: OriginFile, ck: &mut Checker<'_>) -> OriginConfig {
    OriginConfig {
        url: o.url.as_ref().and_then(|u| ck.base_url(u, "origin.url")),
        connect_timeout: ck.duration(&o.connect_timeout, "origin.connect_timeout", Duration::from_secs(2)),
        response_timeout: ck.duration(&o.response_timeout, "origin.response_timeout", Duration::from_secs(30)),
        pool_idle_timeout: ck.duration(&o.pool_idle_timeout, "origin.pool_idle_timeout", Duration::from_secs(90)),
        pool_max_idle_per_host: ck
            .integer(&o.pool_max_idle_per_host, "origin.pool_max_idle_per_host", 0, 100_000)
            .map_or(256, |n| n as usize),
        ca_file: o.ca_file.as_ref().map(|p| ck.existing_file(p, "origin.ca_file")),
    }
}

fn cache(c: CacheFile, ck: &mut Checker<'_>) -> CacheConfig {
    let memory = ck.size(&c.memory, "cache.memory", 256 << 20, 1);
    let max_object_size = ck.size(&c.max_object_size, "cache.max_object_size", 16 << 20, 1);
    if max_object_size > memory {
        let (mem, max) = (super::units::format_size(memory), super::units::format_size(max_object_size));
        match (&c.max_object_size, &c.memory) {
            (Some(v), _) => {
                ck.report(v.span().start, "cache.max_object_size", format!("{max} exceeds cache.memory ({mem})"))
            }
            (None, Some(v)) => ck.report(
                v.span().start,
                "cache.memory",
                format!("{mem} is less than cache.max_object_size ({max}, its default); lower that too"),
            ),
            (None, None) => {}
        }
    }
    let lock_timeout = ck.duration(&c.lock_timeout, "cache.lock_timeout", Duration::from_secs(5));
    CacheConfig { memory, max_object_size, lock_timeout }
}

/// The `[cluster]` section, and where `parent_fallback` is written in the file, if it is.
fn cluster(c: ClusterFile, ck: &mut Checker<'_>) -> (ClusterConfig, Option<usize>) {
    let secret = ck.non_empty(&c.secret, "cluster.secret");
    let parent_fallback = match c.parent_fallback.as_ref().map(|v| (v.span().start, v.get_ref().as_str())) {
        None | Some((_, "origin")) => ParentFallback::Origin,
        Some((_, "error")) => ParentFallback::Error,
        Some((at, other)) => {
            ck.report(at, "cluster.parent_fallback", format!("{other:?} is not one of \"origin\", \"error\""));
            ParentFallback::Origin
        }
    };
    let probe_interval =
        ck.duration(&c.probe_interval, "cluster.probe_interval", ClusterConfig::DEFAULT_PROBE_INTERVAL);
    let hot_key_rate = ck
        .integer(&c.hot_key_rate, "cluster.hot_key_rate", 0, 1_000_000)
        .map_or(ClusterConfig::DEFAULT_HOT_KEY_RATE, |n| n as u32);
    let hot_key_ttl = ck.duration(&c.hot_key_ttl, "cluster.hot_key_ttl", ClusterConfig::DEFAULT_HOT_KEY_TTL);
    let config = ClusterConfig { secret, parent_fallback, probe_interval, hot_key_rate, hot_key_ttl };
    (config, c.parent_fallback.as_ref().map(|v| v.span().start))
}

fn compression(c: CompressionFile, ck: &mut Checker<'_>) -> CompressionConfig {
    let mut algorithms: Vec<String> = Vec::new();
    match &c.algorithms {
        None => algorithms = vec!["br".to_string(), "gzip".to_string()],
        Some(list) => {
            for (i, name) in list.get_ref().iter().enumerate() {
                let key = format!("compression.algorithms[{i}]");
                let at = name.span().start;
                if !ALGORITHMS.contains(&name.get_ref().as_str()) {
                    ck.report(at, key, format!("{:?} is not one of \"br\", \"gzip\", \"zstd\"", name.get_ref()));
                } else if algorithms.contains(name.get_ref()) {
                    ck.report(at, key, format!("{:?} is listed twice", name.get_ref()));
                } else {
                    algorithms.push(name.get_ref().clone());
                }
            }
        }
    }
    let defaults = CompressionConfig::defaults();
    let types = match &c.types {
        None => defaults.types,
        Some(list) => {
            for (i, entry) in list.get_ref().iter().enumerate() {
                if let Err(reason) = crate::compress::rules::check_type_entry(entry.get_ref()) {
                    ck.report(entry.span().start, format!("compression.types[{i}]"), reason);
                }
            }
            list.get_ref().iter().map(|e| e.get_ref().trim().to_string()).collect()
        }
    };
    let min_size = ck.size(&c.min_size, "compression.min_size", 1024, 0);
    let mut level = |field: &Field<i64>, key: &str, min: i64, max: i64, default: u32| {
        ck.integer(field, key, min, max).and_then(|n| u32::try_from(n).ok()).unwrap_or(default)
    };
    CompressionConfig {
        algorithms,
        min_size,
        types,
        gzip_level: level(&c.gzip_level, "compression.gzip_level", 1, 9, defaults.gzip_level),
        brotli_level: level(&c.brotli_level, "compression.brotli_level", 0, 11, defaults.brotli_level),
        zstd_level: level(&c.zstd_level, "compression.zstd_level", 1, 19, defaults.zstd_level),
    }
}

fn throttle(t: ThrottleFile, ck: &mut Checker<'_>) -> ThrottleConfig {
    let max = i64::from(u32::MAX);
    let mut limit = |field: &Field<i64>, key: &str| ck.integer(field, key, 1, max).and_then(|n| u32::try_from(n).ok());
    let config = ThrottleConfig {
        client_rate: limit(&t.client_rate, "throttle.client_rate"),
        client_burst: limit(&t.client_burst, "throttle.client_burst"),
        origin_rate: limit(&t.origin_rate, "throttle.origin_rate"),
        origin_burst: limit(&t.origin_burst, "throttle.origin_burst"),
        origin_max_inflight: limit(&t.origin_max_inflight, "throttle.origin_max_inflight"),
        origin_queue_timeout: ck.duration(
            &t.origin_queue_timeout,
            "throttle.origin_queue_timeout",
            ThrottleConfig::DEFAULT_ORIGIN_QUEUE_TIMEOUT,
        ),
        exempt_hits: t.exempt_hits.as_ref().is_some_and(|v| *v.get_ref()),
        trusted_proxies: trusted_proxies(&t.trusted_proxies, ck),
    };
    for (burst, rate, scope) in
        [(&t.client_burst, &t.client_rate, "client"), (&t.origin_burst, &t.origin_rate, "origin")]
    {
        if let (Some(b), None) = (burst, rate) {
            ck.report(b.span().start, format!("throttle.{scope}_burst"), format!("needs throttle.{scope}_rate"));
        }
    }
    config
}

/// `throttle.trusted_proxies`: networks (`"10.0.0.0/8"`, `"2001:db8::/32"`) or single addresses.
fn trusted_proxies(field: &Field<Vec<Spanned<String>>>, ck: &mut Checker<'_>) -> Vec<ipnet::IpNet> {
    networks(field, "throttle.trusted_proxies", ck)
}

/// A list of networks (`"10.0.0.0/8"`, `"2001:db8::/32"`) or single addresses under `key`.
fn networks(field: &Field<Vec<Spanned<String>>>, key: &str, ck: &mut Checker<'_>) -> Vec<ipnet::IpNet> {
    let Some(list) = field else { return Vec::new() };
    let mut networks = Vec::new();
    for (i, text) in list.get_ref().iter().enumerate() {
        let value = text.get_ref().trim();
        let parsed =
            value.parse::<ipnet::IpNet>().or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => networks.push(net.trunc()),
            Err(_) => ck.report(
                text.span().start,
                format!("{key}[{i}]"),
                format!("invalid network {value:?}: expected an address or CIDR, like \"10.0.0.0/8\" or \"::1\""),
            ),
        }
    }
    networks
}

fn admin(a: AdminFile, ck: &mut Checker<'_>, env: &Env, bound: &[Bound]) -> AdminConfig {
    let listen = match &a.listen {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9901))),
        Some(v) if v.get_ref() == ADMIN_OFF => None,
        Some(v) => ck.socket_addr(v, "admin.listen").inspect(|addr| {
            if let Some((_, _, other)) = bound.iter().find(|(b, _, _)| b == addr) {
                ck.report(v.span().start, "admin.listen", format!("{addr} is already used by {other}"));
            }
        }),
    };
    let token = ck.non_empty(&a.token, "admin.token").or_else(|| env.admin_token.clone());
    AdminConfig { listen, token }
}

fn purge(p: PurgeFile, ck: &mut Checker<'_>) -> PurgeConfig {
    let d = PurgeConfig::default();
    let max_count = |field: &Field<i64>, key: &str, default: usize, ck: &mut Checker<'_>| {
        ck.integer(field, key, 1, 100_000_000).map_or(default, |n| n as usize)
    };
    PurgeConfig {
        allow: networks(&p.allow, "purge.allow", ck),
        fanout_timeout: ck.duration(&p.fanout_timeout, "purge.fanout_timeout", d.fanout_timeout),
        sync_interval: ck.duration(&p.sync_interval, "purge.sync_interval", d.sync_interval),
        log_max_entries: max_count(&p.log_max_entries, "purge.log_max_entries", d.log_max_entries, ck),
        log_max_age: ck.duration(&p.log_max_age, "purge.log_max_age", d.log_max_age),
        tag_index_max: max_count(&p.tag_index_max, "purge.tag_index_max", d.tag_index_max, ck),
    }
}

/// Problems of `ck`, minus those about keys the structural pass already reported and removed.
pub fn keep_new(problems: Vec<Problem>, removed: &[String]) -> Vec<Problem> {
    problems
        .into_iter()
        .filter(|p| {
            !removed
                .iter()
                .any(|r| p.key == *r || p.key.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with(['.', '['])))
        })
        .collect()
}
