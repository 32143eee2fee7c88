//! RFC 9111 decisions, kept apart from the data plane: may a response be stored, for how long is it fresh, may a
//! stored response answer this request, how to revalidate it, and how the outcome is named in `Cache-Status`.
//!
//! Our own implementation of the shared-cache rules (RFC 9111, RFC 9110 §13, RFC 5861, RFC 8246, RFC 9211,
//! RFC 9213); README "Standards" lists what is followed and where we deliberately differ.

pub mod age;
pub mod cache_status;
pub mod conditional;
pub mod directives;
pub mod freshness;
pub mod request;
pub mod targeted;

pub use cache_status::{CacheOutcome, CacheStatus, Forward};
pub use freshness::{Freshness, FreshnessAt, NotStorable, StoreDecision};
pub use request::{RequestDirectives, Usability};
pub use targeted::TARGETED_FIELDS;
