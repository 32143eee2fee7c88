//! edgecache: an edge CDN. A caching reverse proxy that one team drops in front of its origin and then grows into
//! tiers of PoPs. See ARCHITECTURE.md for the life of a request and where each part lives.

pub mod admin;
pub mod app;
pub mod cache;
pub mod cluster;
pub mod coalesce;
pub mod compress;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod purge;
pub mod throttle;
pub mod tls;
