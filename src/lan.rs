//! # The room's network: the names students' phones reach this laptop by (`--lan`)
//!
//! In a lecture the server runs on the lecturer's laptop and a hundred phones join over the
//! room's Wi-Fi. For that to work, the server must know the names the phones will use — the
//! laptop's addresses on the room's network, and its host name — because three things are
//! keyed on them: the Origin allow-list (a page loaded from `http://192.168.1.23:8080` sends
//! that origin, and anything not on the list gets `403`), the certificate's names (a phone
//! opening `https://192.168.1.23:8443` checks the address against the SAN), and the join URL
//! printed for the lecturer.
//!
//! [`detect`] asks the operating system for its interface addresses (`getifaddrs`, through the
//! `if-addrs` crate; the road not taken: parsing `ip addr` output, which differs between
//! systems and versions) and keeps those a phone on the same network can reach
//! ([`usable_address`], [`excluded_interface`]): not loopback, not link-local (an IPv6
//! `fe80::` address needs a zone index no URL bar accepts), not on a container bridge or a VPN
//! tunnel. The host name comes along as `<host>` and `<host>.local` (mDNS, which most laptops
//! and phones resolve on a local network). `--lan-addr` replaces all of this with exactly the
//! names given: for networks detection gets wrong, port forwarding, and tests.
//!
//! Everything besides [`detect`] is pure and tested on given addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A name a client may use for this machine: an IP address or a DNS name (lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Dns(String),
}

impl Host {
    /// Parses a `--lan-addr` value: an IPv4 or IPv6 address (brackets allowed), or a DNS name
    /// (letters, digits, hyphens; labels of 1–63 characters; at most 253 in all). Anything else
    /// is refused, so a name can go into a URL, an origin and a certificate without escaping.
    pub fn parse(text: &str) -> Result<Host, String> {
        let text = text.trim();
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(format!("{text} is not an address a client can connect to"));
            }
            return Ok(Host::Ip(ip));
        }
        let name = text.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        // A name of digits and dots only would be read as an IPv4 address by browsers.
        let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if name.is_empty() || name.len() > 253 || numeric || !name.split('.').all(label_ok) {
            return Err(format!(
                "{text:?} is neither an IP address nor a host name (letters, digits, hyphens, dots)"
            ));
        }
        Ok(Host::Dns(name))
    }

    /// The host as it appears in a URL or an origin: IPv6 in brackets.
    pub fn url_host(&self) -> String {
        match self {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Dns(name) => name.clone(),
        }
    }

    /// The host as a certificate's SAN entry holds it (no brackets).
    pub fn san(&self) -> String {
        match self {
            Host::Ip(ip) => ip.to_string(),
            Host::Dns(name) => name.clone(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_host())
    }
}

impl std::str::FromStr for Host {
    type Err = String;

    fn from_str(s: &str) -> Result<Host, String> {
        Host::parse(s)
    }
}

/// One address of one interface, as the operating system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface's name (`wlp2s0`, `en0`, `docker0`, …).
    pub interface: String,
    pub ip: IpAddr,
    /// Length of the network prefix (`24` for a /24).
    pub prefix: u8,
    /// A point-to-point link (VPN tunnels usually are).
    pub point_to_point: bool,
}

/// The names this server is reached by on the room's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanNames {
    /// In order of preference: the first plain-HTTP URL is the one the QR code carries.
    pub hosts: Vec<Host>,
    /// The networks the addresses lie in, for the local CA's name constraints: an interface's
    /// own prefix when detected (a new DHCP lease on the same network stays covered), the
    /// single address when given with `--lan-addr`.
    pub networks: Vec<(IpAddr, u8)>,
    /// True when the names came from `--lan-addr` (used as given, never filtered).
    pub given: bool,
}

/// Interface name prefixes that are never the room's network: container bridges and their
/// veth ends, hypervisors' host-only networks, VPN and overlay tunnels. A phone on the Wi-Fi
/// cannot reach these addresses (or should not: a VPN address leads into another network).
pub const EXCLUDED_INTERFACES: &[&str] = &[
    "docker",
    "br-",
    "veth",
    "virbr",
    "vboxnet",
    "vmnet",
    "lxc",
    "lxd",
    "cni",
    "flannel",
    "podman",
    "kube",
    "cali",
    "tun",
    "tap",
    "wg",
    "utun",
    "zt",
    "tailscale",
    "ppp",
    "ipsec",
    "gif",
    "stf",
    "awdl",
    "llw",
    "anpi",
    "bridge",
    "lo",
];

/// True for interfaces whose name marks a container bridge, a hypervisor network, a VPN or an
/// overlay tunnel, or loopback.
pub fn excluded_interface(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    EXCLUDED_INTERFACES.iter().any(|p| name.starts_with(p))
}

/// True for an address a phone on the same network can connect to: not loopback, unspecified,
/// multicast or link-local (IPv4 169.254/16: no DHCP answered; IPv6 fe80::/10: needs a zone
/// index that URLs cannot carry).
pub fn usable_address(ip: IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_broadcast(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// The network `ip/prefix` lies in (the address with its host bits cleared).
pub fn network_of(ip: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match ip {
        IpAddr::V4(v4) => {
            let prefix = prefix.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), prefix)
        }
        IpAddr::V6(v6) => {
            let prefix = prefix.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), prefix)
        }
    }
}

/// The host names for a system host name: `<host>` and `<host>.local` (or, for a fully
/// qualified name, the name and `<first label>.local`). `localhost` and invalid names give
/// nothing: on a phone they name the phone itself, or nothing at all.
pub fn host_names(system: &str) -> Vec<Host> {
    let Ok(Host::Dns(name)) = Host::parse(system) else {
        return Vec::new();
    };
    let first = name.split('.').next().unwrap_or_default().to_string();
    if first == "localhost" || first.is_empty() {
        return Vec::new();
    }
    let mdns = format!("{first}.local");
    let mut names = vec![Host::Dns(name.clone())];
    if name != mdns {
        names.insert(0, Host::Dns(mdns));
    }
    names
}

impl LanNames {
    /// Exactly the names of `--lan-addr`, in the order given.
    pub fn given(hosts: &[Host]) -> LanNames {
        let mut names = LanNames {
            given: true,
            ..LanNames::default()
        };
        for host in hosts {
            names.push(host.clone(), None);
        }
        names
    }

    /// The usable addresses among `found`, in a fixed order — IPv4 first (what every phone
    /// handles), then IPv6 — followed by `hostnames`.
    pub fn select(found: &[InterfaceAddr], hostnames: Vec<Host>) -> LanNames {
        let mut usable: Vec<&InterfaceAddr> = found
            .iter()
            .filter(|a| !a.point_to_point && !excluded_interface(&a.interface))
            .filter(|a| usable_address(a.ip))
            .collect();
        // Stable: within a family, the order the system listed them in.
        usable.sort_by_key(|a| a.ip.is_ipv6());
        let mut names = LanNames::default();
        for a in usable {
            names.push(Host::Ip(a.ip), Some(a.prefix));
        }
        for host in hostnames {
            names.push(host, None);
        }
        names
    }

    fn push(&mut self, host: Host, prefix: Option<u8>) {
        if self.hosts.contains(&host) {
            return;
        }
        if let Host::Ip(ip) = host {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            let network = network_of(ip, prefix.unwrap_or(full));
            if !self.networks.contains(&network) {
                self.networks.push(network);
            }
        }
        self.hosts.push(host);
    }

    /// Leaves out detected addresses a listener on `listener` cannot be reached on: IPv6 ones
    /// when it is `0.0.0.0`, and all but its own when it is bound to one address. Names given
    /// with `--lan-addr` stay (port forwarding may well lead there), as do host names.
    pub fn reachable_through(mut self, listener: SocketAddr) -> LanNames {
        if self.given {
            return self;
        }
        let bound = listener.ip();
        let keep = |ip: &IpAddr| match bound {
            IpAddr::V4(v4) if v4.is_unspecified() => ip.is_ipv4(),
            IpAddr::V6(v6) if v6.is_unspecified() => true,
            _ => *ip == bound,
        };
        self.hosts.retain(|h| match h {
            Host::Ip(ip) => keep(ip),
            Host::Dns(_) => true,
        });
        self.networks.retain(|(ip, _)| keep(ip));
        self
    }

    /// The names' origins on `scheme` at `port`, as a browser sends them (a default port left
    /// out; IPv6 in brackets).
    pub fn origins(&self, scheme: &str, port: u16) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| format!("{scheme}://{}", authority(h, scheme, port)))
            .collect()
    }

    /// The URL of the player page under each name.
    pub fn urls(&self, scheme: &str, port: u16) -> Vec<String> {
        self.origins(scheme, port)
            .into_iter()
            .map(|o| format!("{o}/"))
            .collect()
    }

    /// The names as SAN entries, after the loopback ones every generated certificate has.
    pub fn san_names(&self) -> Vec<String> {
        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        for host in &self.hosts {
            let san = host.san();
            if !names.contains(&san) {
                names.push(san);
            }
        }
        names
    }

    /// The names only, for the log.
    pub fn describe(&self) -> String {
        self.hosts
            .iter()
            .map(Host::url_host)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The names every generated certificate carries.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

fn authority(host: &Host, scheme: &str, port: u16) -> String {
    let default = if scheme == "https" { 443 } else { 80 };
    if port == default {
        host.url_host()
    } else {
        format!("{}:{port}", host.url_host())
    }
}

/// This machine's names on the room's network: its usable interface addresses and its host
/// name. An interface list the system will not give is logged and treated as empty.
pub fn detect() -> LanNames {
    let found = match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .map(|i| InterfaceAddr {
                point_to_point: i.is_p2p(),
                prefix: match &i.addr {
                    if_addrs::IfAddr::V4(a) => a.prefixlen,
                    if_addrs::IfAddr::V6(a) => a.prefixlen,
                },
                ip: i.ip(),
                interface: i.name,
            })
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "could not list the network interfaces; use --lan-addr");
            Vec::new()
        }
    };
    LanNames::select(
        &found,
        system_host_name().map_or_else(Vec::new, |h| host_names(&h)),
    )
}

/// `gethostname(2)`; `None` if it fails or is not UTF-8.
pub fn system_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end]).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(interface: &str, ip: &str, prefix: u8) -> InterfaceAddr {
        InterfaceAddr {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
            prefix,
            point_to_point: false,
        }
    }

    fn hosts(names: &LanNames) -> Vec<String> {
        names.hosts.iter().map(Host::url_host).collect()
    }

    #[test]
    fn origins_name_both_schemes_at_the_actual_ports_with_ipv6_in_brackets() {
        let names = LanNames::given(&[
            Host::parse("192.0.2.10").unwrap(),
            Host::parse("2001:db8::10").unwrap(),
            Host::parse("Lecture-Laptop.local").unwrap(),
        ]);
        assert_eq!(
            names.origins("http", 8080),
            vec![
                "http://192.0.2.10:8080",
                "http://[2001:db8::10]:8080",
                "http://lecture-laptop.local:8080",
            ]
        );
        assert_eq!(
            names.origins("https", 8443),
            vec![
                "https://192.0.2.10:8443",
                "https://[2001:db8::10]:8443",
                "https://lecture-laptop.local:8443",
            ]
        );
        // Default ports are left out, as browsers leave them out of the Origin header.
        assert_eq!(names.origins("http", 80)[1], "http://[2001:db8::10]");
        assert_eq!(names.origins("https", 443)[0], "https://192.0.2.10");
        assert_eq!(names.urls("http", 8080)[0], "http://192.0.2.10:8080/");
    }

    #[test]
    fn the_certificate_names_are_the_loopback_ones_then_the_lan_ones_without_brackets() {
        let names = LanNames::given(&[
            Host::parse("[2001:db8::10]").unwrap(),
            Host::parse("192.0.2.10").unwrap(),
            Host::parse("::1").unwrap(),
        ]);
        assert_eq!(
            names.san_names(),
            vec![
                "localhost",
                "127.0.0.1",
                "::1",
                "2001:db8::10",
                "192.0.2.10"
            ]
        );
        // Given addresses are constrained exactly, as single addresses.
        assert_eq!(
            names.networks,
            vec![
                ("2001:db8::10".parse().unwrap(), 128),
                ("192.0.2.10".parse().unwrap(), 32),
                ("::1".parse().unwrap(), 128),
            ]
        );
    }

    #[test]
    fn container_vpn_loopback_and_link_local_addresses_are_left_out() {
        let mut tunnel = addr("enp0s31f6", "10.8.0.6", 24);
        tunnel.point_to_point = true;
        let found = [
            addr("lo", "127.0.0.1", 8),
            addr("lo", "::1", 128),
            addr("docker0", "172.17.0.1", 16),
            addr("br-5f1c2a", "172.18.0.1", 16),
            addr("veth12ab", "fe80::1c", 64),
            addr("tun0", "10.9.0.2", 24),
            addr("wg0", "10.10.0.2", 24),
            addr("tailscale0", "100.64.0.5", 32),
            addr("virbr0", "192.168.122.1", 24),
            addr("wlp2s0", "fe80::a1:b2ff:fec3:d4e5", 64),
            addr("wlp2s0", "169.254.7.7", 16),
            tunnel,
            addr("wlp2s0", "2001:db8:5:6::abc", 64),
            addr("wlp2s0", "192.168.1.23", 24),
            addr("enp0s31f6", "10.20.30.40", 16),
        ];
        let names = LanNames::select(&found, host_names("lecture-laptop"));
        assert_eq!(
            hosts(&names),
            vec![
                "192.168.1.23",
                "10.20.30.40",
                "[2001:db8:5:6::abc]",
                "lecture-laptop.local",
                "lecture-laptop",
            ]
        );
        // Detected addresses are constrained to their interface's network.
        assert_eq!(
            names.networks,
            vec![
                ("192.168.1.0".parse().unwrap(), 24),
                ("10.20.0.0".parse().unwrap(), 16),
                ("2001:db8:5:6::".parse().unwrap(), 64),
            ]
        );
        for kind in [
            "docker0", "br-0a1b", "veth9", "tun1", "wg-vpn", "utun3", "zt7", "lo0",
        ] {
            assert!(excluded_interface(kind), "{kind}");
        }
        for real in ["wlp2s0", "en0", "eth0", "enp0s31f6", "wlan0"] {
            assert!(!excluded_interface(real), "{real}");
        }
    }

    #[test]
    fn a_wildcard_listener_advertises_only_the_family_it_serves_and_a_bound_one_only_itself() {
        let found = [
            addr("wlp2s0", "192.168.1.23", 24),
            addr("eth0", "10.0.0.5", 8),
            addr("wlp2s0", "2001:db8::23", 64),
        ];
        let names = LanNames::select(&found, host_names("pc.example.org"));
        let on = |a: &str| hosts(&names.clone().reachable_through(a.parse().unwrap()));
        assert_eq!(
            on("[::]:8080"),
            vec![
                "192.168.1.23",
                "10.0.0.5",
                "[2001:db8::23]",
                "pc.local",
                "pc.example.org"
            ]
        );
        assert_eq!(
            on("0.0.0.0:8080"),
            vec!["192.168.1.23", "10.0.0.5", "pc.local", "pc.example.org"]
        );
        assert_eq!(
            on("10.0.0.5:8080"),
            vec!["10.0.0.5", "pc.local", "pc.example.org"]
        );
        // --lan-addr is taken as given, whatever the listener.
        let given = LanNames::given(&[Host::parse("192.0.2.10").unwrap()]);
        assert_eq!(
            hosts(&given.reachable_through("127.0.0.1:0".parse().unwrap())),
            vec!["192.0.2.10"]
        );
    }

    #[test]
    fn a_lan_addr_is_an_ip_literal_or_a_host_name_and_nothing_else() {
        assert_eq!(
            Host::parse(" [2001:DB8::10] "),
            Ok(Host::Ip("2001:db8::10".parse().unwrap()))
        );
        assert_eq!(
            Host::parse("Laptop.Local."),
            Ok(Host::Dns("laptop.local".into()))
        );
        for bad in [
            "",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "http://x",
            "a b",
            "x,permitted;DNS:evil.example",
            "-x.local",
            "a..b",
            "999.1.1.1",
            "é.local",
            "x@y",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Host::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn the_host_name_gives_its_mdns_name_unless_it_is_localhost() {
        let names = |h: &str| host_names(h).iter().map(Host::url_host).collect::<Vec<_>>();
        assert_eq!(
            names("Lecture-Laptop"),
            vec!["lecture-laptop.local", "lecture-laptop"]
        );
        assert_eq!(names("pc.example.org"), vec!["pc.local", "pc.example.org"]);
        assert_eq!(names("pc.local"), vec!["pc.local"]);
        assert!(names("localhost").is_empty());
        assert!(names("localhost.localdomain").is_empty());
        assert!(names("bad_name").is_empty());
    }

    #[test]
    fn networks_clear_the_host_bits() {
        assert_eq!(
            network_of("192.168.1.23".parse().unwrap(), 24),
            ("192.168.1.0".parse().unwrap(), 24)
        );
        assert_eq!(
            network_of("2001:db8:1:2:3:4:5:6".parse().unwrap(), 64),
            ("2001:db8:1:2::".parse().unwrap(), 64)
        );
        assert_eq!(
            network_of("10.1.2.3".parse().unwrap(), 0),
            ("0.0.0.0".parse().unwrap(), 0)
        );
    }
}
