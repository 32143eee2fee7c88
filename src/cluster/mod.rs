//! The cluster: how the nodes of the topology (`[[pops]]`) recognise each other. Node-to-node requests carry a
//! proof made from `cluster.secret` (`peer_auth`); a client that sends the peer fields without it is any client.

pub mod peer_auth;

pub use peer_auth::{PEER_AUTH_HEADER, PEER_HEADER, PeerAuth};
