//! The effective config as TOML: what `edgecache check` prints.
//!
//! The model serializes itself the way an operator writes values (`"256MiB"`, `"30s"`); this file only adds what
//! the model cannot say by itself: `admin.listen = "off"` for a disabled admin listener, and secrets masked.

use serde::Serialize;

use super::model::*;
use super::validate::ADMIN_OFF;

/// What secrets are printed as.
pub const MASK: &str = "<set>";

/// The file's layout, sections in the order the reference config documents them.
#[derive(Serialize)]
struct Effective<'a> {
    node: &'a NodeConfig,
    server: &'a ServerConfig,
    origin: &'a OriginConfig,
    cache: &'a CacheConfig,
    cluster: Cluster<'a>,
    compression: &'a CompressionConfig,
    throttle: &'a ThrottleConfig,
    admin: Admin<'a>,
    log: &'a LogConfig,
    purge: &'a PurgeConfig,
    pops: &'a [PopConfig],
}

/// `[cluster]` with the secret masked.
#[derive(Serialize)]
struct Cluster<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    parent_fallback: ParentFallback,
    #[serde(serialize_with = "duration")]
    probe_interval: std::time::Duration,
    hot_key_rate: u32,
    #[serde(serialize_with = "duration")]
    hot_key_ttl: std::time::Duration,
}

fn duration<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::units::format_duration(*d))
}

/// `[admin]` with `"off"` for no listener (the token is masked by the model's own serializer).
#[derive(Serialize)]
struct Admin<'a> {
    listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

/// Prints `cfg` as TOML that `parse` reads back.
pub fn to_toml(cfg: &Config) -> String {
    let out = Effective {
        node: &cfg.node,
        server: &cfg.server,
        origin: &cfg.origin,
        cache: &cfg.cache,
        cluster: Cluster {
            secret: cfg.cluster.secret.as_ref().map(|_| MASK),
            parent_fallback: cfg.cluster.parent_fallback,
            probe_interval: cfg.cluster.probe_interval,
            hot_key_rate: cfg.cluster.hot_key_rate,
            hot_key_ttl: cfg.cluster.hot_key_ttl,
        },
        compression: &cfg.compression,
        throttle: &cfg.throttle,
        admin: Admin {
            listen: cfg.admin.listen.map_or_else(|| ADMIN_OFF.to_string(), |a| a.to_string()),
            token: cfg.admin.token.as_ref().map(|_| MASK),
        },
        log: &cfg.log,
        purge: &cfg.purge,
        pops: &cfg.pops,
    };
    match toml::to_string_pretty(&out) {
        Ok(body) => {
            format!("# effective configuration of node {:?}; secrets are shown as \"{MASK}\"\n\n{body}", cfg.node.id)
        }
        Err(e) => format!("# the effective configuration cannot be printed as TOML: {e}\n"),
    }
}
