//! Proof that a request comes from another node of the cluster.
//!
//! A node sends `Edgecache-Peer: <its node.id>` and `Edgecache-Peer-Auth: <cluster.secret>` with every request to
//! a peer or parent. The receiver trusts the peer fields only when the secret matches (compared in constant time);
//! otherwise it removes both and treats the request as any client's. Neither field is ever forwarded to the origin
//! or returned to a client. Without a configured secret nothing is trusted.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use subtle::ConstantTimeEq;

/// The sending node's id, on node-to-node requests.
pub const PEER_HEADER: HeaderName = HeaderName::from_static("edgecache-peer");
/// The cluster secret, proving the sender is a node of the cluster.
pub const PEER_AUTH_HEADER: HeaderName = HeaderName::from_static("edgecache-peer-auth");

/// Signs outgoing node-to-node requests and checks incoming ones with `cluster.secret`.
#[derive(Clone)]
pub struct PeerAuth {
    secret: Option<HeaderValue>,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerAuth").field("secret", &self.secret.as_ref().map(|_| "<set>")).finish()
    }
}

impl PeerAuth {
    /// With `cluster.secret` (`None`: no request is ever trusted as a peer's).
    pub fn new(secret: Option<&str>) -> PeerAuth {
        PeerAuth { secret: secret.and_then(|s| HeaderValue::from_str(s).ok()).map(sensitive) }
    }

    /// Marks a request to a peer as coming from `node_id`. Without a secret, nothing is added.
    pub fn sign(&self, headers: &mut HeaderMap, node_id: &str) {
        let Some(secret) = &self.secret else { return };
        let Ok(id) = HeaderValue::from_str(node_id) else { return };
        headers.insert(PEER_HEADER, id);
        headers.insert(PEER_AUTH_HEADER, secret.clone());
    }

    /// The id of the peer that sent this request, if it proved it is one; the proof is removed either way, and
    /// the peer id too when the proof fails, so nothing unproven travels further.
    pub fn verify(&self, headers: &mut HeaderMap) -> Option<String> {
        let presented = headers.remove(PEER_AUTH_HEADER);
        let claimed = headers.get(PEER_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let proven = match (&self.secret, presented, &claimed) {
            (Some(secret), Some(presented), Some(_)) => bool::from(secret.as_bytes().ct_eq(presented.as_bytes())),
            _ => false,
        };
        if proven {
            claimed
        } else {
            headers.remove(PEER_HEADER);
            None
        }
    }

    /// Removes both peer fields (before a request goes to the origin, or a response to a client).
    pub fn strip(headers: &mut HeaderMap) {
        headers.remove(PEER_HEADER);
        headers.remove(PEER_AUTH_HEADER);
    }
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(auth: &PeerAuth) -> HeaderMap {
        let mut headers = HeaderMap::new();
        auth.sign(&mut headers, "edge-1");
        headers
    }

    #[test]
    fn a_signed_request_is_trusted_and_loses_its_proof() {
        let auth = PeerAuth::new(Some("s3cret"));
        let mut headers = signed(&auth);
        assert_eq!(auth.verify(&mut headers).as_deref(), Some("edge-1"));
        assert!(!headers.contains_key(PEER_AUTH_HEADER));
        assert_eq!(headers.get(PEER_HEADER).map(|v| v.as_bytes()), Some(&b"edge-1"[..]));
    }

    #[test]
    fn a_wrong_or_missing_secret_is_not_trusted_and_the_claim_is_removed() {
        let auth = PeerAuth::new(Some("s3cret"));
        let mut forged = signed(&PeerAuth::new(Some("guess")));
        assert_eq!(auth.verify(&mut forged), None);
        assert!(forged.is_empty());

        let mut bare = HeaderMap::new();
        bare.insert(PEER_HEADER, HeaderValue::from_static("edge-1"));
        assert_eq!(auth.verify(&mut bare), None);
        assert!(bare.is_empty());
    }

    #[test]
    fn without_a_secret_nothing_is_signed_or_trusted() {
        let none = PeerAuth::new(None);
        assert!(signed(&none).is_empty());
        let mut forged = signed(&PeerAuth::new(Some("x")));
        assert_eq!(none.verify(&mut forged), None);
    }
}
