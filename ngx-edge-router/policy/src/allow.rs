//! `edge_router_origins`: the networks, addresses and host names an API
//! answer may point the edge at. Whatever the API says, an origin outside
//! the list is never contacted. A host name must match a name entry, and
//! every address it resolves to must pass the address entries too (or the
//! implicit default when the list has none): a name is judged by the same
//! list as a literal address. Without the directive, only loopback, link-local, unspecified,
//! multicast and broadcast addresses are refused: those are never allowed
//! implicitly, since a forged registration could otherwise make the edge
//! proxy viewers into its own host or a cloud metadata service.

use std::net::{IpAddr, SocketAddr};

use crate::target::is_dns_name;

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `addr/prefix` (any port); a bare IP is a `/32` or `/128`.
    Net(IpAddr, u8),
    /// `ip:port` exactly.
    Exact(SocketAddr),
    /// A host name (`origin`, `*.origins.internal`, or `*` for any name),
    /// lower case, with an optional port.
    Name(String, Option<u16>),
}

impl Allowed {
    /// Parses `10.0.0.0/8`, `192.0.2.7`, `192.0.2.7:8080`, `[2001:db8::1]:80`,
    /// `2001:db8::/32`, `origin`, `origin:8080`, `*.live.internal:8080`, `*:8080`.
    pub fn parse(s: &str) -> Result<Allowed, String> {
        let bad = || format!("invalid origin \"{s}\": expected IP, IP:port, CIDR or name[:port]");
        if let Some(n) = parse_name(s) {
            return n.map_err(|()| bad());
        }
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
            Allowed::Name(..) => false,
        }
    }

    fn matches_name(&self, host: &str, port: u16) -> bool {
        let Allowed::Name(pattern, want) = self else {
            return false;
        };
        let host_ok = match pattern.strip_prefix('*') {
            Some("") => true,
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => host == pattern,
        };
        host_ok && want.is_none_or(|p| p == port)
    }
}

/// A name entry: `Some(Ok)`, `Some(Err)` when it looks like a name but is not
/// a valid one, `None` when it is no name (an address or network).
fn parse_name(s: &str) -> Option<Result<Allowed, ()>> {
    if s.starts_with('[') || s.contains('/') || s.parse::<IpAddr>().is_ok() {
        return None;
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => Some(p),
            _ => return Some(Err(())),
        },
    };
    let host = host.to_ascii_lowercase();
    let valid = match host.strip_prefix('*') {
        Some("") => true,
        Some(rest) => rest.strip_prefix('.').is_some_and(is_dns_name),
        None => is_dns_name(&host),
    };
    Some(if valid {
        Ok(Allowed::Name(host, port))
    } else {
        Err(())
    })
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
                Allowed::Net(..) | Allowed::Name(..) => None,
            })
            .collect()
    }

    /// Whether an API answer may name the address `addr`.
    pub fn allows(&self, addr: &SocketAddr) -> bool {
        if self.entries.is_empty() {
            return implicitly_allowed(canonical(addr.ip()));
        }
        self.entries.iter().any(|e| e.matches(addr))
    }

    /// Whether an API answer may name host `host` (lower case) on `port`.
    /// Without a list, any name is (its addresses are still checked).
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        self.entries.is_empty() || self.entries.iter().any(|e| e.matches_name(host, port))
    }

    /// Whether an allowed name may resolve to `addr`: the address entries
    /// decide, or the implicit default when there are none.
    pub fn allows_resolved(&self, addr: &SocketAddr) -> bool {
        let mut addresses = self
            .entries
            .iter()
            .filter(|e| !matches!(e, Allowed::Name(..)))
            .peekable();
        if addresses.peek().is_none() {
            return implicitly_allowed(canonical(addr.ip()));
        }
        addresses.any(|e| e.matches(addr))
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
            "origin",
            "origin:8080",
            "*.live.internal",
            "*:8080",
            "*",
        ] {
            assert!(Allowed::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/a",
            "host:0",
            "host:x",
            "ho_st",
            "*.",
            "a.*",
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
    fn names_and_what_they_resolve_to() {
        let l = list(&["origin:8080", "*.live.internal", "10.89.0.0/16"]);
        assert!(l.allows_name("origin", 8080));
        assert!(!l.allows_name("origin", 9090), "the API's port");
        assert!(!l.allows_name("evil", 8080));
        assert!(l.allows_name("a.live.internal", 81));
        assert!(!l.allows_name("live.internal", 81));
        assert!(!l.allows_name("a.live.internal.evil", 81));
        assert!(l.allows_resolved(&sa("10.89.0.7:8080")));
        assert!(!l.allows_resolved(&sa("169.254.169.254:80")));
        // Names only: what they resolve to is judged by the implicit default.
        let names = list(&["*:8080"]);
        assert!(names.allows_name("a1b2c3", 8080));
        assert!(!names.allows_name("a1b2c3", 22));
        assert!(names.allows_resolved(&sa("10.89.0.7:8080")));
        assert!(!names.allows_resolved(&sa("127.0.0.1:8080")));
        assert!(
            !names.allows(&sa("10.89.0.7:8080")),
            "a literal address is no name"
        );
        // Without a list: any name, never into the edge's own host.
        let none = AllowList::default();
        assert!(none.allows_name("anything", 80));
        assert!(!none.allows_resolved(&sa("127.0.0.1:80")));
    }

    #[test]
    fn only_exact_entries_are_probed() {
        let l = list(&[
            "10.0.0.0/8",
            "127.0.0.1:8080",
            "192.0.2.1",
            "[::1]:81",
            "origin:80",
        ]);
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
