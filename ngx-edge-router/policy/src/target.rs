//! What an origin string of a route is: a socket address the edge connects
//! to as is, or a host name nginx's resolver turns into addresses first.

use std::net::{IpAddr, SocketAddr};

use rtmp_live_types::is_valid_host;

/// Longest host name accepted (RFC 1035).
const MAX_NAME: usize = 253;

/// Where an origin string points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    /// A lower-case DNS name (no trailing dot) and the port to use.
    Name {
        host: String,
        port: u16,
    },
}

impl Target {
    /// Parses `ip[:port]`, `[ipv6][:port]` or `name[:port]` (port 80 when
    /// absent). Names must be DNS names: letters, digits, `-` and `.`,
    /// labels of 1 to 63 characters not starting or ending with `-`, and
    /// not all digits (so that a mistyped address is not sent to DNS).
    pub fn parse(s: &str) -> Option<Target> {
        // Routes hold normalized `ip:port` text: the common case, quickly.
        if let Ok(a) = s.parse::<SocketAddr>() {
            return (a.port() != 0).then_some(Target::Addr(a));
        }
        if let Some(a) = socket_addr(s) {
            return Some(Target::Addr(a));
        }
        if !is_valid_host(s) || s.starts_with('[') {
            return None;
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok().filter(|&p| p != 0)?),
            None => (s, 80),
        };
        is_dns_name(host).then(|| Target::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The normalized text of the target (`ip:port` or `name:port`).
    pub fn to_text(&self) -> String {
        match self {
            Target::Addr(a) => a.to_string(),
            Target::Name { host, port } => format!("{host}:{port}"),
        }
    }
}

/// Whether `h` is a DNS host name (see [`Target::parse`]).
pub fn is_dns_name(h: &str) -> bool {
    if h.is_empty() || h.len() > MAX_NAME {
        return false;
    }
    let labels_ok = h.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    labels_ok && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// `ip[:port]` or `[ipv6][:port]` → socket address; `None` for anything
/// else, host names included (see [`Target`]).
pub fn socket_addr(host: &str) -> Option<SocketAddr> {
    if !is_valid_host(host) {
        return None;
    }
    if let Ok(a) = host.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 80))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(h: &str, p: u16) -> Option<Target> {
        Some(Target::Name {
            host: h.into(),
            port: p,
        })
    }

    #[test]
    fn addresses_and_names() {
        assert_eq!(
            Target::parse("10.0.0.5:8080"),
            Some(Target::Addr("10.0.0.5:8080".parse().unwrap()))
        );
        assert_eq!(Target::parse("origin:8080"), name("origin", 8080));
        assert_eq!(
            Target::parse("Origin-2.Live.internal"),
            name("origin-2.live.internal", 80)
        );
        assert_eq!(
            Target::parse("a1b2c3d4e5f6:8080"),
            name("a1b2c3d4e5f6", 8080)
        );
        assert_eq!(
            Target::parse("origin-2.live.internal:81")
                .unwrap()
                .to_text(),
            "origin-2.live.internal:81"
        );
    }

    #[test]
    fn not_names() {
        for bad in [
            "",
            "origin:0",
            "origin:",
            "origin:99999",
            "-origin:80",
            "origin-:80",
            "or..igin",
            "origin.",
            "1.2.3",
            "256.1.1.1:80",
            "ori_gin:80",
            "http://origin",
            "u@origin",
            "origin/x",
            "orígin",
            &"a".repeat(64),
        ] {
            assert_eq!(Target::parse(bad), None, "{bad:?}");
        }
        assert!(Target::parse(&format!("{}.x", "a".repeat(63))).is_some());
    }
}
