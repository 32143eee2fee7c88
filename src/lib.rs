//! edgecache: an edge CDN. A caching reverse proxy that one team drops in front of its origin and then grows into
//! tiers of PoPs. See ARCHITECTURE.md for the life of a request and where each part lives.

pub mod config;
pub mod tls;
