//! Turns the API's `GET /streams/{name}` body into the list of origins the
//! edge may contact. Only addresses the API returned, validated, ever become
//! upstream peers; anything odd is an error, never a panic.

use rtmp_live_types::StreamInfo;

use crate::route::RouteOrigin;
use crate::target::Target;

/// At most this many origins per stream are kept.
pub const MAX_ORIGINS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Not JSON of the expected shape.
    Malformed(String),
    /// The answer names another stream.
    WrongStream,
    /// No usable origin (all invalid).
    NoOrigins,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Malformed(e) => write!(f, "malformed API response: {e}"),
            ApiError::WrongStream => f.write_str("API response names another stream"),
            ApiError::NoOrigins => {
                f.write_str("API response has no usable origin (IP[:port] or name[:port])")
            }
        }
    }
}

/// Parses a 200 answer for stream `name` into normalized `ip:port` or
/// `name:port` origins (port 80 when absent, see [`Target`]) with their registration times, in the API's order,
/// without duplicates; and whether playback of the stream needs a signed
/// link.
pub fn parse_api_body(name: &str, body: &[u8]) -> Result<(Vec<RouteOrigin>, bool), ApiError> {
    let info: StreamInfo =
        serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))?;
    if info.name != name {
        return Err(ApiError::WrongStream);
    }
    let hosts = info
        .origins
        .iter()
        .map(|o| (o.host.as_str(), o.since))
        .chain(std::iter::once((info.host.as_str(), 0)));
    let mut out: Vec<RouteOrigin> = Vec::new();
    for (host, since) in hosts {
        if let Some(target) = Target::parse(host) {
            let s = target.to_text();
            if !out.iter().any(|o| o.addr == s) && out.len() < MAX_ORIGINS {
                out.push(RouteOrigin::new(s, since));
            }
        }
    }
    if out.is_empty() {
        return Err(ApiError::NoOrigins);
    }
    Ok((out, info.signed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(r: Result<(Vec<RouteOrigin>, bool), ApiError>) -> Vec<String> {
        r.unwrap().0.into_iter().map(|o| o.addr).collect()
    }

    #[test]
    fn seed_shape_and_origins() {
        let body = br#"{"name":"golive","manifest":"index.m3u8","host":"10.0.0.5:8080",
            "origins":[{"host":"10.0.0.5:8080","manifest":"index.m3u8"},{"host":"10.0.0.6","manifest":"index.m3u8"}]}"#;
        assert_eq!(
            addrs(parse_api_body("golive", body)),
            vec!["10.0.0.5:8080", "10.0.0.6:80"]
        );
        let seed = br#"{"name":"golive","manifest":"index.m3u8","host":"127.0.0.1:8080"}"#;
        assert_eq!(
            addrs(parse_api_body("golive", seed)),
            vec!["127.0.0.1:8080"]
        );
    }

    #[test]
    fn registration_times_are_kept() {
        let body = br#"{"name":"a","manifest":"index.m3u8","host":"10.0.0.5:8080",
            "origins":[{"host":"10.0.0.5:8080","manifest":"index.m3u8","since":1700000000123}]}"#;
        assert_eq!(
            parse_api_body("a", body).unwrap(),
            (
                vec![RouteOrigin::new("10.0.0.5:8080", 1_700_000_000_123)],
                false
            )
        );
    }

    #[test]
    fn names_are_kept_normalized() {
        let body = br#"{"name":"a","manifest":"index.m3u8","host":"Origin-1:8080",
            "origins":[{"host":"origin-1:8080","manifest":"index.m3u8"},{"host":"b.live","manifest":"index.m3u8"}]}"#;
        assert_eq!(
            addrs(parse_api_body("a", body)),
            vec!["origin-1:8080", "b.live:80"]
        );
    }

    #[test]
    fn ipv6() {
        let body = br#"{"name":"a","manifest":"index.m3u8","host":"[::1]:9000"}"#;
        assert_eq!(addrs(parse_api_body("a", body)), vec!["[::1]:9000"]);
    }

    #[test]
    fn garbage_is_an_error() {
        for body in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"{\"name\":\"a\"}",
            b"\xff\xfe",
            b"<html>502</html>",
        ] {
            assert!(
                matches!(parse_api_body("a", body), Err(ApiError::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn forged_or_unusable_hosts_are_dropped() {
        let body = br#"{"name":"a","manifest":"m.m3u8","host":"http://evil/","origins":[
            {"host":"evil.example:0","manifest":"m.m3u8"},{"host":"1.2.3.4:0","manifest":"m.m3u8"},
            {"host":"u@1.2.3.4","manifest":"m.m3u8"}]}"#;
        assert_eq!(parse_api_body("a", body), Err(ApiError::NoOrigins));
    }

    #[test]
    fn other_stream_is_refused() {
        let body = br#"{"name":"b","manifest":"index.m3u8","host":"10.0.0.5:8080"}"#;
        assert_eq!(parse_api_body("a", body), Err(ApiError::WrongStream));
    }

    #[test]
    fn origins_are_capped_and_deduplicated() {
        let origins: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"host":"10.0.0.{}:80","manifest":"i.m3u8"}}"#, i % 20))
            .collect();
        let body = format!(
            r#"{{"name":"a","manifest":"i.m3u8","host":"10.0.0.0:80","origins":[{}]}}"#,
            origins.join(",")
        );
        let got = parse_api_body("a", body.as_bytes()).unwrap().0;
        assert_eq!(got.len(), MAX_ORIGINS);
        assert_eq!(got[0].addr, "10.0.0.0:80");
    }

    #[test]
    fn a_recording_is_routed_like_a_stream() {
        let body =
            br#"{"name":"golive~1765000000123","manifest":"index.m3u8","host":"10.0.0.5:8080",
            "origins":[{"host":"10.0.0.5:8080","manifest":"index.m3u8","since":1765000000123}]}"#;
        let (origins, _) = parse_api_body("golive~1765000000123", body).unwrap();
        assert_eq!(origins[0].since, 1_765_000_000_123);
        assert!(crate::is_valid_playback_name(b"golive~1765000000123"));
        assert!(!crate::is_valid_stream_name(b"golive~1765000000123"));
        assert!(!crate::is_valid_playback_name(b"golive~x"));
        assert_eq!(parse_api_body("golive~1", body), Err(ApiError::WrongStream));
    }
}
