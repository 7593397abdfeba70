//! Wire types and validation rules shared by discovery, the API and the edge
//! module. One place defines what a stream name, a manifest and an origin host
//! may look like, so that the three components can never disagree.

use serde::{Deserialize, Serialize};

pub mod delivery;
pub mod layout;
pub mod playback;
pub mod recording;
pub mod window;

/// Longest accepted stream name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest accepted origin host (`hostname-or-IP[:port]`).
pub const MAX_HOST_LEN: usize = 255;
/// Longest accepted manifest file name.
pub const MAX_MANIFEST_LEN: usize = 128;

/// What an origin's discovery sends to `POST /streams`: "`host` serves stream
/// `name`, whose playlist is `<name>/<manifest>` on that host".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    pub name: String,
    pub manifest: String,
    pub host: String,
    /// SHA-256 (lowercase hex) of the stream key that started this
    /// publish, as the API records a name's owner: lets the registry get
    /// its owner records back from the heartbeats after it lost them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One live origin of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub host: String,
    pub manifest: String,
    /// Unix milliseconds when this origin's current registration of the
    /// stream began: kept across heartbeats, new after the registration
    /// expired or was deleted. Distinguishes publish sessions (e.g. in a
    /// segment cache key). 0 when the API did not send it.
    #[serde(default)]
    pub since: u64,
}

/// `GET /streams/{name}`: `name`, `manifest`, `host` stay compatible with the
/// seed (one live origin); `origins` lists every live origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub name: String,
    pub manifest: String,
    pub host: String,
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// Playback needs a signed link (`/t/<token>/<name>/…`, see
    /// [`playback`]): the stream key configuration marks the name
    /// `:signed`. Absent (false) in answers of unsigned streams and of APIs
    /// that predate it, so older readers and answers keep working.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed: bool,
    /// Viewers across every edge with a fresh report (0 when none, or from
    /// an API that does not count them).
    #[serde(default)]
    pub viewers: u64,
}

/// JSON error body of every 4xx/5xx answer: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Why a value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Name,
    Manifest,
    Host,
    Owner,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::Name => "invalid stream name: expected [A-Za-z0-9_-]{1,64}",
            Invalid::Manifest => "invalid manifest: expected a plain file name ending in .m3u8",
            Invalid::Host => "invalid host: expected hostname-or-IP[:port]",
            Invalid::Owner => "invalid owner: expected a SHA-256 in lowercase hex",
        })
    }
}

impl std::error::Error for Invalid {}

/// `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_name(name: &str) -> bool {
    is_valid_name_bytes(name.as_bytes())
}

/// A stream's name or a recording's (`<name>~<start>`).
pub fn is_valid_playback_name(name: &str) -> bool {
    recording::is_valid_playback_name_bytes(name.as_bytes())
}

/// Byte-slice variant of [`is_valid_name`] (nginx hands out bytes, not `str`).
pub fn is_valid_name_bytes(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A plain file name (no `/`, `\`, no `..`, no leading dot) ending in `.m3u8`.
pub fn is_valid_manifest(manifest: &str) -> bool {
    let stem_ok = manifest
        .strip_suffix(".m3u8")
        .is_some_and(|stem| !stem.is_empty());
    stem_ok
        && manifest.len() <= MAX_MANIFEST_LEN
        && !manifest.starts_with('.')
        && !manifest.contains("..")
        && manifest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `hostname-or-IPv4[:port]` or `[IPv6][:port]`: no scheme, path, userinfo,
/// query or whitespace. The edge proxies to this value, so the check is strict.
pub fn is_valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return false;
    }
    let (addr, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((a, p)) => (Some(a), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !ok {
            return false;
        }
    }
    match addr {
        None => true,
        Some(a) => a.parse::<std::net::Ipv4Addr>().is_ok() || is_hostname(a),
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner `-`.
fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // all-numeric dotted names that are not valid IPv4 addresses are rejected
        && !h.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $ty:ident, $check:path, $invalid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Invalid> {
                if $check(&s) {
                    Ok($ty(s))
                } else {
                    Err($invalid)
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                $ty::try_from(s.to_string())
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

validated_string!(
    /// A stream name that passed [`is_valid_name`]; deserializing or parsing
    /// anything else fails with [`Invalid::Name`].
    StreamName,
    is_valid_name,
    Invalid::Name
);
validated_string!(
    /// What may be played: a stream's name or a recording's
    /// (`<name>~<start>`, see [`recording`]); anything else fails with
    /// [`Invalid::Name`].
    PlaybackName,
    is_valid_playback_name,
    Invalid::Name
);
validated_string!(
    /// An origin host that passed [`is_valid_host`].
    Host,
    is_valid_host,
    Invalid::Host
);
validated_string!(
    /// A manifest file name that passed [`is_valid_manifest`].
    Manifest,
    is_valid_manifest,
    Invalid::Manifest
);

validated_string!(
    /// A stream key's SHA-256 in lowercase hex ([`is_valid_key_hash`]).
    KeyHash,
    is_valid_key_hash,
    Invalid::Owner
);

/// 64 lowercase hex digits: a SHA-256 as the API writes a key's.
pub fn is_valid_key_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A [`StreamReport`] whose fields were validated while deserializing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidReport {
    pub name: StreamName,
    pub manifest: Manifest,
    pub host: Host,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<KeyHash>,
}

impl From<ValidReport> for StreamReport {
    fn from(r: ValidReport) -> StreamReport {
        StreamReport {
            name: r.name.into_string(),
            manifest: r.manifest.into_string(),
            host: r.host.into_string(),
            owner: r.owner.map(KeyHash::into_string),
        }
    }
}

impl StreamReport {
    /// Checks every field; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_valid_name(&self.name) {
            return Err(Invalid::Name);
        }
        if !is_valid_manifest(&self.manifest) {
            return Err(Invalid::Manifest);
        }
        if !is_valid_host(&self.host) {
            return Err(Invalid::Host);
        }
        if self.owner.as_deref().is_some_and(|o| !is_valid_key_hash(o)) {
            return Err(Invalid::Owner);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["golive", "a", "A-b_9", &"x".repeat(64)] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "..", "é", "a.b", &"x".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn manifests() {
        for ok in ["index.m3u8", "master.m3u8", "a-b_c.1.m3u8"] {
            assert!(is_valid_manifest(ok), "{ok}");
        }
        for bad in [
            "",
            ".m3u8",
            "index.ts",
            "../index.m3u8",
            "a/index.m3u8",
            "a\\b.m3u8",
            ".hidden.m3u8",
            "a..m3u8",
            "index.m3u8 ",
            "index.M3U8x",
        ] {
            assert!(!is_valid_manifest(bad), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            "10.0.0.5:8080",
            "127.0.0.1",
            "origin",
            "origin-1.example.com:80",
            "[::1]:8080",
            "[::1]",
            "localhost:65535",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "http://x",
            "x/y",
            "user@x",
            "x:0",
            "x:65536",
            "x:",
            ":80",
            "a b",
            "x:80/",
            "x?y",
            "-x",
            "x..y",
            "[::1",
            "[zz]:80",
            "1.2.3.4.5",
            "999.1.1.1",
            "x:8o",
            "[::1]x",
            "x#y",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn info_roundtrip_and_seed_compat() {
        let seed = r#"{"name":"golive","manifest":"index.m3u8","host":"10.0.0.5:8080"}"#;
        let info: StreamInfo = serde_json::from_str(seed).unwrap();
        assert!(info.origins.is_empty());
        let report: StreamReport = serde_json::from_str(seed).unwrap();
        assert_eq!(report.validate(), Ok(()));
        let valid: ValidReport = serde_json::from_str(seed).unwrap();
        assert_eq!(StreamReport::from(valid), report);
        let with_since = r#"{"name":"a","manifest":"i.m3u8","host":"h",
            "origins":[{"host":"h","manifest":"i.m3u8","since":1700000000123},
                       {"host":"g","manifest":"i.m3u8"}]}"#;
        let info: StreamInfo = serde_json::from_str(with_since).unwrap();
        assert_eq!(info.origins[0].since, 1_700_000_000_123);
        assert_eq!(info.origins[1].since, 0, "older APIs send no since");
    }

    #[test]
    fn newtypes_validate() {
        assert_eq!("golive".parse::<StreamName>().unwrap().as_str(), "golive");
        assert_eq!("../x".parse::<StreamName>(), Err(Invalid::Name));
        assert!("10.0.0.5:8080".parse::<Host>().is_ok());
        assert_eq!("http://x".parse::<Host>(), Err(Invalid::Host));
        assert_eq!("a/i.m3u8".parse::<Manifest>(), Err(Invalid::Manifest));
        let bad: Result<ValidReport, _> =
            serde_json::from_str(r#"{"name":"a b","manifest":"i.m3u8","host":"h"}"#);
        assert!(bad.unwrap_err().to_string().contains("invalid stream name"));
        let n: StreamName = serde_json::from_str("\"ok\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"ok\"");
    }
}
