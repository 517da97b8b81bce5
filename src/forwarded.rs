//! # The client's address behind a reverse proxy, trusted only from the proxy
//!
//! Behind the cluster's entry point (haproxy, `scripts/cluster/haproxy.cfg`) every request
//! arrives from the proxy's address, so the per-address limits (joins, streams) would count
//! the whole audience as one client. The proxy adds the address it saw to `X-Forwarded-For`;
//! [`client_ip`] believes that header **only when the request comes from a trusted proxy**
//! (`--trusted-proxy`, phase 2), because any client can send the header itself.
//!
//! The header is a list, `client, proxy1, proxy2`, each hop appending the address it received
//! from. Only the right end can be trusted: a client may have written anything to the left.
//! So the walk goes from the right, skipping trusted proxies, and the first address that is not
//! one of ours is the client. An entry that does not parse stops the walk: the last trusted hop
//! is then the best we know. (Road not taken: the first, leftmost entry — what many frameworks
//! return, and exactly the one a client forges.)
//!
//! For TLS passed through untouched (haproxy `mode tcp`) there is no header to add; there the
//! proxy speaks the PROXY protocol v2 before the TLS bytes, which `listener.rs` will read at
//! accept (phase 2), so socket limits count the real client from the first byte.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::{http::header::HeaderName, web, HttpRequest};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One `--trusted-proxy`: an address, or a network in CIDR notation (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<TrustedProxy, String> {
        let bad = || format!("{s:?}: give an IP address or a network like 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let net = normalise(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(TrustedProxy { net, prefix })
    }
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, normalise(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` we believe; empty (the default) believes none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<TrustedProxy>);

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|p| p.contains(ip))
    }
}

/// An IPv4 address in IPv6 clothing (`::ffff:1.2.3.4`, what a dual-stack socket reports) is
/// the IPv4 address, so a rule written for `1.2.3.4` matches it.
fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]` or with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse().ok())
}

/// The client's address: `peer` itself unless it is a trusted proxy; then the rightmost
/// address in `forwarded_for` (the header values in order, joined as one list) that is not a
/// trusted proxy.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut client = normalise(peer);
    if !trusted.trusts(client) {
        return client;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = normalise(ip);
        if !trusted.trusts(client) {
            break;
        }
    }
    client
}

/// The client address of a request, for the per-address limits: the TCP peer, or what a
/// trusted proxy (`web::Data<TrustedProxies>` in the app) says it is. `None` only when the
/// request has no peer address at all (a test request, a Unix socket).
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req.app_data::<web::Data<TrustedProxies>>();
    let Some(trusted) = trusted else {
        return Some(normalise(peer));
    };
    let values = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok());
    Some(client_ip(peer, values, trusted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]);
        for yes in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "10.200.3.4",
            "2001:db8:1::9",
        ] {
            assert!(t.trusts(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "2001:db9::1", "::1"] {
            assert!(!t.trusts(ip(no)), "{no}");
        }
        assert!(trusted(&["0.0.0.0/0"]).trusts(ip("8.8.8.8")));
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "1.2.3.4:80",
        ] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_client_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
        let t = trusted(&["127.0.0.1"]);
        let forged = ["1.2.3.4"];
        assert_eq!(client_ip(ip("203.0.113.9"), forged, &t), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("203.0.113.9"), forged, &TrustedProxies::default()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        // haproxy appended the address it saw; the client prepended a lie.
        assert_eq!(
            client_ip(proxy, ["6.6.6.6, 198.51.100.7"], &t),
            ip("198.51.100.7")
        );
        // Two proxies of ours in a row.
        assert_eq!(
            client_ip(proxy, ["198.51.100.7, 10.1.1.1"], &t),
            ip("198.51.100.7")
        );
        // The same list sent as two header lines.
        assert_eq!(
            client_ip(proxy, ["6.6.6.6", "198.51.100.7"], &t),
            ip("198.51.100.7")
        );
        // IPv6, bracketed, with a port, v4-mapped.
        assert_eq!(client_ip(proxy, ["[2001:db8::7]"], &t), ip("2001:db8::7"));
        assert_eq!(
            client_ip(proxy, ["198.51.100.7:5555"], &t),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(proxy, ["::ffff:198.51.100.7"], &t),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_missing_or_broken_header_leaves_the_last_trusted_hop() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        assert_eq!(client_ip(proxy, [], &t), proxy);
        assert_eq!(client_ip(proxy, [""], &t), proxy);
        assert_eq!(client_ip(proxy, ["unknown"], &t), proxy);
        // Garbage to the left of a trusted hop: that hop is what we know.
        assert_eq!(
            client_ip(proxy, ["198.51.100.7, junk, 10.1.1.1"], &t),
            ip("10.1.1.1")
        );
        // Every hop trusted: the leftmost of them.
        assert_eq!(client_ip(proxy, ["10.2.2.2, 10.1.1.1"], &t), ip("10.2.2.2"));
    }

    #[test]
    fn client_addr_reads_the_header_only_when_the_app_trusts_the_peer() {
        let header = ("X-Forwarded-For", "6.6.6.6, 198.51.100.7");
        let from_proxy = "127.0.0.1:40000".parse().unwrap();
        let req = TestRequest::default()
            .peer_addr(from_proxy)
            .insert_header(header)
            .app_data(web::Data::new(trusted(&["127.0.0.1"])))
            .to_http_request();
        assert_eq!(client_addr(&req), Some(ip("198.51.100.7")));
        // No --trusted-proxy: the header is ignored.
        let req = TestRequest::default()
            .peer_addr(from_proxy)
            .insert_header(header)
            .to_http_request();
        assert_eq!(client_addr(&req), Some(ip("127.0.0.1")));
        // From somebody else: ignored too.
        let req = TestRequest::default()
            .peer_addr("192.0.2.1:40000".parse().unwrap())
            .insert_header(header)
            .app_data(web::Data::new(trusted(&["127.0.0.1"])))
            .to_http_request();
        assert_eq!(client_addr(&req), Some(ip("192.0.2.1")));
    }
}
