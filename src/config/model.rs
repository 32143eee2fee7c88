//! The validated configuration model: what every other part of edgecache reads.
//!
//! Values here are already checked and have their defaults filled in; sizes are bytes and durations are
//! `std::time::Duration`. The TOML file types and the checks that produce this model live beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use serde::Serialize;

/// The whole, validated configuration of one node.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub node: NodeConfig,
    pub server: ServerConfig,
    pub origin: OriginConfig,
    pub cache: CacheConfig,
    pub pops: Vec<PopConfig>,
    pub cluster: ClusterConfig,
    pub compression: CompressionConfig,
    pub throttle: ThrottleConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub purge: PurgeConfig,
}

/// `[node]`: who this node is.
#[derive(Debug, Clone, Serialize)]
pub struct NodeConfig {
    /// Unique in the whole topology; names this node in `Cache-Status`, `Via` and metrics.
    pub id: String,
    /// The `[[pops]]` entry this node belongs to; `None` for a standalone node.
    pub pop: Option<String>,
}

/// `[server]`: the data-plane listeners and their limits.
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Plain HTTP/1.1 and h2c listeners.
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners (HTTP/1.1 and h2 by ALPN).
    pub tls_listen: Vec<SocketAddr>,
    /// Certificates, chosen by SNI; the first one also answers clients that send no (or an unknown) name.
    pub tls: Vec<TlsCertConfig>,
    /// Largest request head (request line + headers) accepted; larger gets 431 (414 when the request line alone
    /// does not fit).
    #[serde(serialize_with = "ser::size")]
    pub max_header_size: u64,
    /// Most request header fields accepted; more gets 431.
    pub max_headers: usize,
    /// A client must send its whole request head within this time (slowloris guard).
    #[serde(serialize_with = "ser::duration")]
    pub header_read_timeout: Duration,
    /// An idle keep-alive connection is closed after this long.
    #[serde(serialize_with = "ser::duration")]
    pub idle_timeout: Duration,
    /// On SIGTERM, in-flight requests get this long to finish before the process exits anyway.
    #[serde(serialize_with = "ser::duration")]
    pub drain_timeout: Duration,
}

/// One `[[server.tls]]` certificate entry. Paths are resolved against the config file's folder.
#[derive(Debug, Clone, Serialize)]
pub struct TlsCertConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[origin]`: where misses go.
#[derive(Debug, Clone, Serialize)]
pub struct OriginConfig {
    /// Base URL of the origin (`http://` or `https://`); required for a standalone node or a pop without parent.
    #[serde(serialize_with = "ser::opt_uri")]
    pub url: Option<Uri>,
    #[serde(serialize_with = "ser::duration")]
    pub connect_timeout: Duration,
    /// Longest wait for the origin's response head.
    #[serde(serialize_with = "ser::duration")]
    pub response_timeout: Duration,
    /// Idle pooled connections to the origin are closed after this long.
    #[serde(serialize_with = "ser::duration")]
    pub pool_idle_timeout: Duration,
    /// Most idle pooled connections kept per origin host.
    pub pool_max_idle_per_host: usize,
    /// Extra PEM CA bundle trusted for an `https://` origin, besides the built-in web roots.
    pub ca_file: Option<PathBuf>,
}

/// `[cache]`: the in-memory store.
#[derive(Debug, Clone, Serialize)]
pub struct CacheConfig {
    /// Total bytes of cached responses (headers + bodies).
    #[serde(serialize_with = "ser::size")]
    pub memory: u64,
    /// Larger responses stream through uncached.
    #[serde(serialize_with = "ser::size")]
    pub max_object_size: u64,
    /// A request waiting on another request's fetch of the same key goes to the origin itself once it has waited
    /// this long without a response head.
    #[serde(serialize_with = "ser::duration")]
    pub lock_timeout: Duration,
}

/// One `[[pops]]` entry of the topology.
#[derive(Debug, Clone, Serialize)]
pub struct PopConfig {
    pub name: String,
    pub parent: Option<String>,
    pub nodes: Vec<PopNodeConfig>,
}

/// A node of a pop, as peers reach it.
#[derive(Debug, Clone, Serialize)]
pub struct PopNodeConfig {
    pub id: String,
    #[serde(serialize_with = "ser::uri")]
    pub url: Uri,
}

/// `[cluster]`: node-to-node settings.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterConfig {
    pub secret: Option<String>,
    pub parent_fallback: ParentFallback,
    /// How often this node probes the other nodes of its pop and of its parent pop.
    #[serde(serialize_with = "ser::duration")]
    pub probe_interval: Duration,
    /// Requests per second for one key, at a node that does not own it, from which the node keeps a short copy of
    /// its own (hot keys); 0 turns it off.
    pub hot_key_rate: u32,
    /// How long such a copy is kept (never longer than the object is fresh).
    #[serde(serialize_with = "ser::duration")]
    pub hot_key_ttl: Duration,
}

impl ClusterConfig {
    /// Default of `cluster.probe_interval`.
    pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);
    /// Default of `cluster.hot_key_rate`.
    pub const DEFAULT_HOT_KEY_RATE: u32 = 50;
    /// Default of `cluster.hot_key_ttl`.
    pub const DEFAULT_HOT_KEY_TTL: Duration = Duration::from_secs(2);
}

/// What a node does when every node of its parent pop is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParentFallback {
    Origin,
    Error,
}

/// `[compression]`.
#[derive(Debug, Clone, Serialize)]
pub struct CompressionConfig {
    /// Content codings in order of preference (`br`, `gzip`, `zstd`).
    pub algorithms: Vec<String>,
    #[serde(serialize_with = "ser::size")]
    pub min_size: u64,
    /// Media types compressed: `type/subtype`, `type/*` or `+suffix` (default: text, JSON, JavaScript, XML, SVG,
    /// wasm, fonts; see `compress::rules::DEFAULT_TYPES`).
    pub types: Vec<String>,
    /// gzip level, 1 to 9 (default 6).
    pub gzip_level: u32,
    /// Brotli quality, 0 to 11 (default 5: 11 runs at under 1 MB/s).
    pub brotli_level: u32,
    /// zstd level, 1 to 19 (default 3).
    pub zstd_level: u32,
}

impl CompressionConfig {
    /// The defaults: br then gzip, 1KiB and larger, the default types, gzip 6, brotli 5, zstd 3.
    pub fn defaults() -> CompressionConfig {
        CompressionConfig {
            algorithms: vec!["br".to_string(), "gzip".to_string()],
            min_size: 1024,
            types: crate::compress::rules::DEFAULT_TYPES.iter().map(|t| t.to_string()).collect(),
            gzip_level: 6,
            brotli_level: 5,
            zstd_level: 3,
        }
    }
}

/// `[throttle]`: every limit is off while it is `None`.
#[derive(Debug, Clone, Serialize)]
pub struct ThrottleConfig {
    pub client_rate: Option<u32>,
    pub client_burst: Option<u32>,
    pub origin_rate: Option<u32>,
    pub origin_burst: Option<u32>,
    pub origin_max_inflight: Option<u32>,
    /// Longest a request waits for the origin budget before it is answered stale or with 503.
    #[serde(serialize_with = "ser::duration")]
    pub origin_queue_timeout: Duration,
    /// Cache hits take no client token (default `false`: `client_rate` counts every request).
    pub exempt_hits: bool,
    /// Proxies whose `X-Forwarded-For` names the client: the rightmost address not in these networks is charged.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ThrottleConfig {
    /// Default of `throttle.origin_queue_timeout`.
    pub const DEFAULT_ORIGIN_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

    /// Every throttle off (the defaults).
    pub fn off() -> ThrottleConfig {
        ThrottleConfig {
            client_rate: None,
            client_burst: None,
            origin_rate: None,
            origin_burst: None,
            origin_max_inflight: None,
            origin_queue_timeout: ThrottleConfig::DEFAULT_ORIGIN_QUEUE_TIMEOUT,
            exempt_hits: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[admin]`: the admin listener.
#[derive(Debug, Clone, Serialize)]
pub struct AdminConfig {
    /// `None` disables the admin listener.
    pub listen: Option<SocketAddr>,
    /// Bearer token for the admin API (or `EDGECACHE_ADMIN_TOKEN`).
    #[serde(serialize_with = "ser::secret")]
    pub token: Option<String>,
}

/// `[log]`: what is logged besides events (levels and format come from `RUST_LOG` and `--log-format`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogConfig {
    /// One access line per request (target `access`) at INFO level; `false` writes it at DEBUG only.
    pub access: bool,
}

/// `[purge]`: purge fan-out, the purge log and the tag index.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeConfig {
    /// Client networks allowed to send the `PURGE` method on the data plane (with the admin token); default nobody.
    pub allow: Vec<ipnet::IpNet>,
    /// How long the node that received a purge waits for every other node to confirm it before answering 202.
    #[serde(serialize_with = "ser::duration")]
    pub fanout_timeout: Duration,
    /// How often a node pulls the purge logs of its peers (catch-up after a partition).
    #[serde(serialize_with = "ser::duration")]
    pub sync_interval: Duration,
    /// Most purges kept in the purge log.
    pub log_max_entries: usize,
    /// Longest a purge is kept in the log (it is dropped sooner once older than every stored object's lifetime).
    #[serde(serialize_with = "ser::duration")]
    pub log_max_age: Duration,
    /// Most (tag, object) pairs the tag index holds.
    pub tag_index_max: usize,
}

impl Default for PurgeConfig {
    fn default() -> PurgeConfig {
        PurgeConfig {
            allow: Vec::new(),
            fanout_timeout: Duration::from_secs(2),
            sync_interval: Duration::from_secs(5),
            log_max_entries: 100_000,
            log_max_age: Duration::from_secs(24 * 3600),
            tag_index_max: 1_000_000,
        }
    }
}

/// Serializers that print values the way an operator writes them in the file.
mod ser {
    use std::time::Duration;

    use http::Uri;
    use serde::Serializer;

    pub fn size<S: Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::config::units::format_size(*bytes))
    }

    pub fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::config::units::format_duration(*d))
    }

    pub fn uri<S: Serializer>(u: &Uri, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&u.to_string())
    }

    pub fn opt_uri<S: Serializer>(u: &Option<Uri>, s: S) -> Result<S::Ok, S::Error> {
        match u {
            Some(u) => s.serialize_some(&u.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn secret<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_some("<set>"),
            None => s.serialize_none(),
        }
    }
}

impl Config {
    /// A standalone node with every default, fetching from `origin`; used by the demo and by tests.
    pub fn standalone(id: &str, listen: SocketAddr, origin: Uri) -> Config {
        Config {
            node: NodeConfig { id: id.to_string(), pop: None },
            server: ServerConfig {
                listen: vec![listen],
                tls_listen: Vec::new(),
                tls: Vec::new(),
                max_header_size: 64 * 1024,
                max_headers: 100,
                header_read_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                drain_timeout: Duration::from_secs(30),
            },
            origin: OriginConfig {
                url: Some(origin),
                connect_timeout: Duration::from_secs(2),
                response_timeout: Duration::from_secs(30),
                pool_idle_timeout: Duration::from_secs(90),
                pool_max_idle_per_host: 256,
                ca_file: None,
            },
            cache: CacheConfig {
                memory: 256 * 1024 * 1024,
                max_object_size: 16 * 1024 * 1024,
                lock_timeout: Duration::from_secs(5),
            },
            pops: Vec::new(),
            cluster: ClusterConfig {
                secret: None,
                parent_fallback: ParentFallback::Origin,
                probe_interval: ClusterConfig::DEFAULT_PROBE_INTERVAL,
                hot_key_rate: ClusterConfig::DEFAULT_HOT_KEY_RATE,
                hot_key_ttl: ClusterConfig::DEFAULT_HOT_KEY_TTL,
            },
            compression: CompressionConfig::defaults(),
            throttle: ThrottleConfig::off(),
            admin: AdminConfig { listen: None, token: None },
            log: LogConfig::default(),
            purge: PurgeConfig::default(),
        }
    }
}
