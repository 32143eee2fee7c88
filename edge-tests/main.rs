//! Integration tests: real origins, real edgecache nodes and real clients on 127.0.0.1.

mod support;

mod caching;
mod cluster;
mod coalescing;
mod compression;
mod config;
mod conformance_directives;
mod conformance_freshness;
mod conformance_headers;
mod conformance_invalidation;
mod conformance_kit;
mod conformance_ranges;
mod conformance_request;
mod conformance_revalidation;
mod conformance_vary;
mod dashboards;
mod deploy_configs;
mod lifecycle;
mod observability;
mod proxying;
mod purge;
mod purge_fanout;
mod purge_tiers;
mod streaming;
mod throttling;
mod tiers;
mod tls;
