//! Which address a request is charged to: the TCP peer, or — when the peer is a trusted proxy — the rightmost
//! address in `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! Each proxy appends the address it received the request from, so the rightmost entries were written by our own
//! proxies and the entries left of the first untrusted one were written by whoever the client is: anything there
//! may be forged. Walking from the right and stopping at the first address outside `throttle.trusted_proxies`
//! gives the nearest address no trusted hop can be fooled about. An entry that is not an IP address stops the walk:
//! the client is then the last trusted hop that wrote it.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed (`throttle.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts the proxies in `networks`; an empty list trusts nobody.
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies { networks }
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&addr))
    }

    /// The client a request from `peer` with `headers` is charged to.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.networks.is_empty() || !self.trusts(peer) {
            return peer;
        }
        // Fields are walked last to first, and entries within a field right to left: that is the order in which
        // the hops nearest to us wrote them.
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else { return client };
            for entry in text.rsplit(',') {
                let Some(addr) = parse_entry(entry) else { return client };
                client = addr;
                if !self.trusts(addr) {
                    return client;
                }
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an IP address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// IPv4 clients reaching an IPv6 socket (`::ffff:1.2.3.4`) are the same clients as over IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("value"));
        }
        h
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("net")).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(t.client_of(ip("203.0.113.9"), &headers(&["198.51.100.1"])), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client_of(ip("10.0.0.1"), &headers(&["1.2.3.4"])), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.168.0.0/16"]);
        let h = headers(&["6.6.6.6, 198.51.100.7, 192.168.1.1"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Across several fields, and with ports and spaces.
        let h = headers(&["6.6.6.6", " 198.51.100.7:4431 , 10.2.3.4"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_or_nothing_leaves_the_last_trusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(t.client_of(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(t.client_of(ip("10.0.0.1"), &headers(&["unknown, 10.9.9.9"])), ip("10.9.9.9"));
        // Every entry trusted: the leftmost one is as far as we can see.
        assert_eq!(t.client_of(ip("10.0.0.1"), &headers(&["10.1.1.1, 10.2.2.2"])), ip("10.1.1.1"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let t = TrustedProxies::default();
        assert_eq!(t.client_of(ip("::ffff:192.0.2.1"), &HeaderMap::new()), ip("192.0.2.1"));
    }
}
