//! The config file's shape: serde types that mirror the TOML keys one to one.
//!
//! Every table denies unknown keys, and every key is optional here (a missing required key is reported by
//! `validate`, with a better message than serde's). Values keep their place in the file (`Spanned`) so that
//! `validate` can name the line of a bad value. Sizes, durations, addresses and URLs stay text here; `validate`
//! reads them into the model.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_spanned::Spanned;

/// An optional value with its place in the file.
pub type Field<T> = Option<Spanned<T>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node: Field<NodeFile>,
    pub server: Field<ServerFile>,
    pub origin: Field<OriginFile>,
    pub cache: Field<CacheFile>,
    pub pops: Field<Vec<Spanned<PopFile>>>,
    pub cluster: Field<ClusterFile>,
    pub compression: Field<CompressionFile>,
    pub throttle: Field<ThrottleFile>,
    pub admin: Field<AdminFile>,
    pub log: Field<LogFile>,
    pub purge: Field<PurgeFile>,
}

/// `[node]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub id: Field<String>,
    pub pop: Field<String>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Field<Vec<Spanned<String>>>,
    pub tls_listen: Field<Vec<Spanned<String>>>,
    pub tls: Field<Vec<Spanned<TlsFile>>>,
    pub max_header_size: Field<RawSize>,
    pub max_headers: Field<i64>,
    pub header_read_timeout: Field<String>,
    pub idle_timeout: Field<String>,
    pub drain_timeout: Field<String>,
}

/// One `[[server.tls]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Field<String>,
    pub key: Field<String>,
}

/// `[origin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginFile {
    pub url: Field<String>,
    pub connect_timeout: Field<String>,
    pub response_timeout: Field<String>,
    pub pool_idle_timeout: Field<String>,
    pub pool_max_idle_per_host: Field<i64>,
    pub ca_file: Field<String>,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    pub memory: Field<RawSize>,
    pub max_object_size: Field<RawSize>,
    pub lock_timeout: Field<String>,
}

/// One `[[pops]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopFile {
    pub name: Field<String>,
    pub parent: Field<String>,
    pub nodes: Field<Vec<Spanned<PopNodeFile>>>,
}

/// One node of a pop: `{ id = "...", url = "..." }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopNodeFile {
    pub id: Field<String>,
    pub url: Field<String>,
}

/// `[cluster]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub secret: Field<String>,
    pub parent_fallback: Field<String>,
    pub probe_interval: Field<String>,
    pub hot_key_rate: Field<i64>,
    pub hot_key_ttl: Field<String>,
}

/// `[compression]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    pub algorithms: Field<Vec<Spanned<String>>>,
    pub min_size: Field<RawSize>,
    pub types: Field<Vec<Spanned<String>>>,
    pub gzip_level: Field<i64>,
    pub brotli_level: Field<i64>,
    pub zstd_level: Field<i64>,
}

/// `[throttle]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleFile {
    pub client_rate: Field<i64>,
    pub client_burst: Field<i64>,
    pub origin_rate: Field<i64>,
    pub origin_burst: Field<i64>,
    pub origin_max_inflight: Field<i64>,
    pub origin_queue_timeout: Field<String>,
    pub exempt_hits: Field<bool>,
    pub trusted_proxies: Field<Vec<Spanned<String>>>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Field<String>,
    pub token: Field<String>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub access: Field<bool>,
}

/// `[purge]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeFile {
    pub allow: Field<Vec<Spanned<String>>>,
    pub fanout_timeout: Field<String>,
    pub sync_interval: Field<String>,
    pub log_max_entries: Field<i64>,
    pub log_max_age: Field<String>,
    pub tag_index_max: Field<i64>,
}

/// A size as written: an integer number of bytes or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSize {
    /// `memory = 1048576`
    Bytes(i64),
    /// `memory = "1MiB"`
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawSizeVisitor;

        impl Visitor<'_> for RawSizeVisitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like \"256MiB\" or a number of bytes")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v).map(RawSize::Bytes).map_err(|_| E::custom("size too large"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_string()))
            }
        }

        deserializer.deserialize_any(RawSizeVisitor)
    }
}
