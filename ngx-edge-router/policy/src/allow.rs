//! `edge_router_origins`: the networks and addresses an API answer may point
//! the edge at. Whatever the API says, an origin outside the list is never
//! contacted. Without the directive, only loopback, link-local, unspecified,
//! multicast and broadcast addresses are refused: those are never allowed
//! implicitly, since a forged registration could otherwise make the edge
//! proxy viewers into its own host or a cloud metadata service.

use std::net::{IpAddr, SocketAddr};

/// One entry of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// `addr/prefix` (any port); a bare IP is a `/32` or `/128`.
    Net(IpAddr, u8),
    /// `ip:port` exactly.
    Exact(SocketAddr),
}

impl Allowed {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `192.0.2.7:8080`, `[2001:db8::1]:80`,
    /// `2001:db8::/32`.
    pub fn parse(s: &str) -> Result<Allowed, String> {
        let bad = || format!("invalid origin \"{s}\": expected IP, IP:port or CIDR");
        if let Ok(a) = s.parse::<SocketAddr>() {
            if a.port() == 0 {
                return Err(bad());
            }
            return Ok(Allowed::Exact(a));
        }
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Allowed::Net(ip, prefix))
    }

    pub fn matches(&self, addr: &SocketAddr) -> bool {
        match self {
            Allowed::Exact(a) => {
                canonical(a.ip()) == canonical(addr.ip()) && a.port() == addr.port()
            }
            Allowed::Net(net, prefix) => in_net(canonical(addr.ip()), canonical(*net), *prefix),
        }
    }
}

/// The operator's list; empty means "the implicit default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub entries: Vec<Allowed>,
}

impl AllowList {
    /// The exact `ip:port` entries: the origins the edge may probe for a
    /// stream when the API cannot answer (networks cannot be probed).
    pub fn exact(&self) -> Vec<SocketAddr> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Allowed::Exact(a) => Some(*a),
                Allowed::Net(..) => None,
            })
            .collect()
    }

    pub fn allows(&self, addr: &SocketAddr) -> bool {
        if self.entries.is_empty() {
            return implicitly_allowed(canonical(addr.ip()));
        }
        self.entries.iter().any(|e| e.matches(addr))
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn implicitly_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || a.octets()[0] == 0)
        }
        IpAddr::V6(a) => {
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            !(a.is_loopback() || a.is_unspecified() || a.is_multicast() || link_local)
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => mask_eq(&a.octets(), &n.octets(), prefix),
        (IpAddr::V6(a), IpAddr::V6(n)) => mask_eq(&a.octets(), &n.octets(), prefix),
        _ => false,
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let m = 0xffu8 << (8 - rest);
    (a[full] & m) == (b[full] & m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn list(items: &[&str]) -> AllowList {
        AllowList {
            entries: items.iter().map(|s| Allowed::parse(s).unwrap()).collect(),
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        for ok in [
            "10.0.0.0/8",
            "192.0.2.7",
            "192.0.2.7:8080",
            "[2001:db8::1]:80",
            "2001:db8::/32",
            "0.0.0.0/0",
        ] {
            assert!(Allowed::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/a",
            "host:80",
            "1.2.3.4:0",
            "::/129",
            "1.2.3.4/8/1",
        ] {
            assert!(Allowed::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_and_exact_addresses() {
        let l = list(&["10.0.0.0/8", "127.0.0.1:8080", "2001:db8::/32"]);
        assert!(l.allows(&sa("10.1.2.3:80")));
        assert!(!l.allows(&sa("11.0.0.1:80")));
        assert!(l.allows(&sa("127.0.0.1:8080")));
        assert!(
            !l.allows(&sa("127.0.0.1:9090")),
            "the API's port on loopback"
        );
        assert!(l.allows(&sa("[2001:db8::5]:80")));
        assert!(!l.allows(&sa("[2001:db9::5]:80")));
        assert!(
            l.allows(&sa("[::ffff:10.0.0.1]:80")),
            "v4-mapped judged as v4"
        );
        assert!(!l.allows(&sa("[::ffff:127.0.0.1]:9090")));
        let odd = list(&["172.16.0.0/12"]);
        assert!(odd.allows(&sa("172.31.255.1:80")));
        assert!(!odd.allows(&sa("172.32.0.1:80")));
    }

    #[test]
    fn only_exact_entries_are_probed() {
        let l = list(&["10.0.0.0/8", "127.0.0.1:8080", "192.0.2.1", "[::1]:81"]);
        assert_eq!(l.exact(), vec![sa("127.0.0.1:8080"), sa("[::1]:81")]);
    }

    #[test]
    fn the_implicit_default_refuses_the_edges_own_host_and_metadata() {
        let l = AllowList::default();
        assert!(l.allows(&sa("10.0.0.5:8080")));
        assert!(l.allows(&sa("203.0.113.9:80")));
        for bad in [
            "127.0.0.1:9090",
            "127.8.0.1:80",
            "169.254.169.254:80",
            "0.0.0.0:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "[::1]:80",
            "[::]:80",
            "[fe80::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
        ] {
            assert!(!l.allows(&sa(bad)), "{bad}");
        }
    }
}
