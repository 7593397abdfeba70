//! The edge container's list of origins (`EDGE_ORIGINS`), made exact: each
//! `name:port` entry is kept and followed by `ip:port` for every IPv4
//! address the name resolves to now (each origin's discovery registers the
//! origin under such an address), so that the edge contacts exactly its
//! origins and, while the API is down, probes exactly them. Other entries
//! (an `ip:port`, a network, a `*` pattern, a bare name) stay as given.
//! Pure: the resolver is a parameter (see `rtmp-live-render edge`).

use std::net::Ipv4Addr;

/// `origins` (space-separated) with every `name:port` expanded by
/// `resolve(name)`; `None` while a name resolves to nothing.
pub fn expand(origins: &str, resolve: impl Fn(&str) -> Vec<Ipv4Addr>) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for e in origins.split_whitespace() {
        let Some((host, port)) = e.rsplit_once(':') else {
            out.push(e.to_string());
            continue;
        };
        if e.contains(['*', '/', '[']) || host.parse::<Ipv4Addr>().is_ok() {
            out.push(e.to_string());
            continue;
        }
        let mut addrs = resolve(host);
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return None;
        }
        out.push(e.to_string());
        out.extend(addrs.iter().map(|a| format!("{a}:{port}")));
    }
    Some(out.join(" "))
}

/// The host of `API_URL` (`http://api:9090/x` → `api`).
pub fn api_host(api_url: &str) -> &str {
    let rest = api_url.split_once("://").map_or(api_url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
}

/// The addresses of `getent ahostsv4` output (the first column of each
/// line; a name's addresses come once per socket type).
pub fn parse_getent(text: &str) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(host: &str) -> Vec<Ipv4Addr> {
        match host {
            "origin" => vec![
                [10, 0, 0, 9].into(),
                [10, 0, 0, 3].into(),
                [10, 0, 0, 9].into(),
            ],
            "gone" => vec![],
            _ => vec![[192, 0, 2, 1].into()],
        }
    }

    #[test]
    fn names_gain_their_addresses_and_the_rest_stays() {
        assert_eq!(
            expand("origin:8080 10.1.2.3:80 10.0.0.0/8 *:8080 plain", dns).unwrap(),
            "origin:8080 10.0.0.3:8080 10.0.0.9:8080 10.1.2.3:80 10.0.0.0/8 *:8080 plain"
        );
        assert_eq!(expand("origin:8080 gone:80", dns), None);
        assert_eq!(expand("", dns).unwrap(), "");
    }

    #[test]
    fn getent_output_gives_each_address_once() {
        let text =
            "10.89.0.9       STREAM origin\n10.89.0.9       DGRAM  \n10.89.0.3       RAW    \n";
        assert_eq!(
            parse_getent(text),
            [Ipv4Addr::new(10, 89, 0, 3), Ipv4Addr::new(10, 89, 0, 9)]
        );
        assert!(parse_getent("").is_empty());
    }

    #[test]
    fn the_api_host_of_its_url() {
        assert_eq!(api_host("http://api:9090/x"), "api");
        assert_eq!(api_host("http://10.0.0.2:9090"), "10.0.0.2");
        assert_eq!(api_host("api"), "api");
    }
}
