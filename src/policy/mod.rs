//! RFC 9111 decisions, kept apart from the data plane: may a response be stored, for how long is it fresh, may a
//! stored response answer this request, how to revalidate it, and how the outcome is named in `Cache-Status`.
//!
//! Freshness and storability start from `http-cache-semantics` (wrapped in [`freshness`]); what it lacks for a
//! shared cache (stale-while-revalidate, stale-if-error, request directives, 304 header updates) is filled here.

pub mod cache_status;
pub mod conditional;
pub mod directives;
pub mod freshness;
pub mod request;

pub use cache_status::{CacheOutcome, CacheStatus, Forward};
pub use freshness::{Freshness, NotStorable, StoreDecision};
pub use request::{RequestDirectives, Usability};
