//! Integration tests: real origins, real edgecache nodes and real clients on 127.0.0.1.

mod support;

mod caching;
mod config;
mod lifecycle;
mod proxying;
mod streaming;
mod throttling;
mod tls;
