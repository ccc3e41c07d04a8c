//! The client address of a request: the TCP peer, unless the peer is one of `trusted_proxies`,
//! in which case `X-Forwarded-For` is read from the right (each proxy appends the address it
//! received the request from) and the first address that is not a trusted proxy is the client.
//! Anyone else's `X-Forwarded-For` is ignored, so a client cannot choose its own address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The address the per-IP limits apply to.
pub(crate) fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    // An IPv4 peer on an IPv6 socket is ::ffff:a.b.c.d.
    let mut client = peer.ip().to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> =
        headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        // A hop that is not an address (`unknown`, garbage) ends the trusted chain: the last
        // trusted hop is all that is known.
        let Some(ip) = parse_hop(hop.trim()) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, and the same with a port (`1.2.3.4:80`, `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_forwards() {
        let peer: SocketAddr = "203.0.113.7:5000".parse().unwrap();
        let ip = client_ip(&headers(&["198.51.100.1"]), peer, &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_chain_is_read_from_the_right() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        // The client's own spoofed entry is left of the real one.
        let ip = client_ip(&headers(&["1.1.1.1, 198.51.100.9", "10.0.0.5"]), peer, &trusted);
        assert_eq!(ip, "198.51.100.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_without_a_usable_header_is_the_client() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(&headers(&[]), peer, &trusted), peer.ip());
        assert_eq!(client_ip(&headers(&["unknown"]), peer, &trusted), peer.ip());
        let with_port = client_ip(&headers(&["[2001:db8::1]:443"]), peer, &trusted);
        assert_eq!(with_port, "2001:db8::1".parse::<IpAddr>().unwrap());
    }
}
