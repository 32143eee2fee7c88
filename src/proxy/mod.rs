//! The data plane: accepting connections, the life of each request, what is forwarded and how, the client to the
//! origin, and the responses this node writes itself.

pub mod body;
pub mod fetched_body;
pub mod forward;
mod head_limit;
pub mod head_update;
pub mod head_watch;
pub mod host_field;
pub mod interim;
pub mod invalidate;
pub mod listener;
pub mod max_forwards;
pub mod pipeline;
pub mod probe;
pub mod range;
pub mod respond;
pub mod served;
mod throttled;
pub mod transfer_coding;
pub mod upstream;

pub use body::ProxyBody;
pub use pipeline::{ClientConn, OriginTarget, Proxy};
pub use upstream::Upstream;
