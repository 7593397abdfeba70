//! Stream keys (secret key → public name, signed or not) and the tokens
//! that may write the registry. The limit on failed `/authorize` attempts
//! is in `limiter.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use rtmp_live_types::{is_valid_host, is_valid_name};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The value of an `Authorization: Bearer <value>` header (scheme case
/// insensitive, surrounding spaces dropped), `None` for any other header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, rest) = header?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// Shortest accepted stream key: keys are secrets, not names.
pub const MIN_KEY_LEN: usize = 16;

/// The suffix of a `key=name:signed` entry: the name is played only through
/// signed playback links. Names cannot hold `:`, so it is unambiguous.
pub const SIGNED_SUFFIX: &str = ":signed";

/// Parsed `STREAM_KEYS`.
#[derive(Debug, Clone, Default)]
pub struct StreamKeys {
    keys: Vec<(String, String)>,
    /// Names marked `:signed`.
    signed: BTreeSet<String>,
}

impl StreamKeys {
    /// `key` or `key=name[:signed]`, comma-separated; both parts must be
    /// valid names and every key at least [`MIN_KEY_LEN`] characters long.
    /// Every entry of a name must agree on `:signed`: a name reachable both
    /// signed and unsigned would not be protected.
    pub fn parse(s: &str) -> Result<StreamKeys, String> {
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut signed = BTreeSet::new();
        let mut unsigned = BTreeSet::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, name) = entry.split_once('=').unwrap_or((entry, entry));
            let (key, name) = (key.trim(), name.trim());
            let (name, is_signed) = match name.strip_suffix(SIGNED_SUFFIX) {
                Some(n) if entry.contains('=') => (n, true),
                _ => (name, false),
            };
            if !is_valid_name(key) || !is_valid_name(name) {
                // The entry holds a secret: do not echo it.
                return Err(format!(
                    "entry #{}: key and name must match [A-Za-z0-9_-]{{1,64}} (a signed \
                     name is written key=name{SIGNED_SUFFIX})",
                    keys.len() + 1
                ));
            }
            if key.len() < MIN_KEY_LEN {
                return Err(format!(
                    "entry #{} (name {name:?}): the key is {} characters long, at least \
                     {MIN_KEY_LEN} are required (stream keys are secrets; e.g. 32 hex \
                     characters from /dev/urandom)",
                    keys.len() + 1,
                    key.len()
                ));
            }
            if keys.iter().any(|(k, _)| k == key) {
                return Err(format!("entry #{}: duplicate key", keys.len() + 1));
            }
            if is_signed {
                &mut signed
            } else {
                &mut unsigned
            }
            .insert(name.to_string());
            if signed.contains(name) && unsigned.contains(name) {
                return Err(format!(
                    "entry #{} (name {name:?}): every entry of a name must agree on \
                     {SIGNED_SUFFIX}",
                    keys.len() + 1
                ));
            }
            keys.push((key.to_string(), name.to_string()));
        }
        if keys.is_empty() {
            return Err("no stream key configured".into());
        }
        Ok(StreamKeys { keys, signed })
    }

    /// Whether `name` is played only through signed playback links.
    pub fn is_signed(&self, name: &str) -> bool {
        self.signed.contains(name)
    }

    /// Whether any name is signed.
    pub fn any_signed(&self) -> bool {
        !self.signed.is_empty()
    }

    /// The public name for a secret key. Every configured key is compared in
    /// constant time, so timing does not reveal how close a guess was.
    pub fn public_name(&self, key: &str) -> Option<&str> {
        let mut found = None;
        for (k, name) in &self.keys {
            if bool::from(k.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// What the owner record stores instead of a stream key: hex SHA-256.
pub fn key_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who may write the registry (`POST /streams`, `DELETE /streams/{name}`).
#[derive(Debug, Clone)]
pub struct Tokens {
    /// `API_REPORT_TOKEN`: allowed for any host.
    any_host: Option<String>,
    /// `API_ORIGIN_TOKENS`: each token with the hosts it may write.
    per_origin: Vec<(String, Arc<Vec<String>>)>,
}

/// A caller that presented a valid token (or any caller when no token is
/// configured, in the insecure mode).
#[derive(Debug, Clone)]
pub struct Writer {
    /// `None`: any host.
    hosts: Option<Arc<Vec<String>>>,
}

impl Writer {
    /// Whether this caller may write registrations of `host`.
    pub fn may_write(&self, host: &str) -> bool {
        match &self.hosts {
            None => true,
            Some(hs) => hs.iter().any(|h| h == host),
        }
    }

    /// `Ok` when this caller may write registrations of `host`; else a 403
    /// (logged, naming `what` was refused).
    pub fn refuse_host(&self, host: &str, what: &str) -> Result<(), ApiError> {
        if self.may_write(host) {
            return Ok(());
        }
        tracing::warn!(host = ?host, "{what} refused: the token is not allowed for this host");
        Err(ApiError::Forbidden(format!(
            "this token may not write registrations of host {host}"
        )))
    }

    /// True when the token is limited to some hosts.
    pub fn is_per_origin(&self) -> bool {
        self.hosts.is_some()
    }
}

impl Tokens {
    /// `report_token`: any host; `origin_tokens`: `tok=host|host,tok2=host`.
    pub fn parse(
        report_token: Option<&str>,
        origin_tokens: Option<&str>,
    ) -> Result<Tokens, String> {
        let any_host = report_token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let mut per_origin: Vec<(String, Arc<Vec<String>>)> = Vec::new();
        for (i, entry) in origin_tokens
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let n = i + 1;
            let Some((tok, hosts)) = entry.split_once('=') else {
                return Err(format!("entry #{n}: expected token=host[|host...]"));
            };
            let tok = tok.trim();
            if tok.is_empty() || tok.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(format!(
                    "entry #{n}: the token must be printable ASCII without spaces"
                ));
            }
            let hosts: Vec<String> = hosts
                .split('|')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect();
            if hosts.is_empty() {
                return Err(format!("entry #{n}: no host"));
            }
            if let Some(bad) = hosts.iter().find(|h| !is_valid_host(h)) {
                return Err(format!(
                    "entry #{n}: invalid host {bad:?}: expected hostname-or-IP[:port]"
                ));
            }
            if per_origin.iter().any(|(t, _)| t == tok) || any_host.as_deref() == Some(tok) {
                return Err(format!("entry #{n}: duplicate token"));
            }
            per_origin.push((tok.to_string(), Arc::new(hosts)));
        }
        Ok(Tokens {
            any_host,
            per_origin,
        })
    }

    /// No token at all is configured (writes are open).
    pub fn is_open(&self) -> bool {
        self.any_host.is_none() && self.per_origin.is_empty()
    }

    /// Shortest configured token, to warn about weak ones.
    pub fn shortest(&self) -> Option<usize> {
        self.any_host
            .iter()
            .chain(self.per_origin.iter().map(|(t, _)| t))
            .map(String::len)
            .min()
    }

    /// The caller behind an `Authorization` header value. Every configured
    /// token is compared in constant time, whichever matches.
    pub fn check(&self, header: Option<&str>) -> Result<Writer, ApiError> {
        if self.is_open() {
            return Ok(Writer { hosts: None });
        }
        let given = bearer(header).ok_or(ApiError::Unauthorized)?;
        let mut found: Option<Writer> = None;
        if let Some(t) = &self.any_host {
            if bool::from(t.as_bytes().ct_eq(given.as_bytes())) {
                found = Some(Writer { hosts: None });
            }
        }
        for (t, hosts) in &self.per_origin {
            if bool::from(t.as_bytes().ct_eq(given.as_bytes())) {
                found = Some(Writer {
                    hosts: Some(hosts.clone()),
                });
            }
        }
        found.ok_or(ApiError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0123456789abcdef";
    const K2: &str = "s3cr3t-s3cr3t-s3cr3t";

    #[test]
    fn keys() {
        let k = StreamKeys::parse(&format!("{K1}, {K2}=show ,{K2}x=show")).unwrap();
        assert_eq!(k.public_name(K1), Some(K1));
        assert_eq!(k.public_name(K2), Some("show"));
        assert_eq!(k.public_name("show"), None);
        assert_eq!(k.public_name(""), None);
        assert!(StreamKeys::parse("").is_err());
        assert!(StreamKeys::parse(" , ").is_err());
        assert!(StreamKeys::parse("a b c d e f g h i j k").is_err());
        assert!(StreamKeys::parse(&format!("{K1}=../x")).is_err());
        assert!(StreamKeys::parse(&format!("{K1},{K1}=b")).is_err());
    }

    #[test]
    fn signed_names() {
        let k =
            StreamKeys::parse(&format!("{K1}=show:signed,{K2}=show:signed,{K2}x=open")).unwrap();
        assert_eq!(k.public_name(K1), Some("show"));
        assert!(k.is_signed("show") && !k.is_signed("open") && k.any_signed());
        assert!(!StreamKeys::parse(K1).unwrap().any_signed());
        // One name, signed in one entry only: refused.
        let e = StreamKeys::parse(&format!("{K1}=show:signed,{K2}=show")).unwrap_err();
        assert!(e.contains(":signed") && !e.contains(K1), "{e}");
        // Bare keys cannot be signed; other suffixes are invalid names.
        assert!(StreamKeys::parse(&format!("{K1}:signed")).is_err());
        assert!(StreamKeys::parse(&format!("{K1}=show:other")).is_err());
        assert!(StreamKeys::parse(&format!("{K1}=:signed")).is_err());
    }

    #[test]
    fn short_keys_are_refused_in_both_forms() {
        let e = StreamKeys::parse("golive").unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        let e = StreamKeys::parse(&format!("{K1},short=show")).unwrap_err();
        assert!(e.contains("at least 16") && !e.contains("short="), "{e}");
        assert!(StreamKeys::parse("0123456789abcde=show").is_err()); // 15
        assert!(StreamKeys::parse("0123456789abcdef=show").is_ok()); // 16
    }

    #[test]
    fn hash_is_not_the_key() {
        let h = key_hash(K1);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(K1));
        assert_eq!(h, key_hash(K1));
        assert_ne!(h, key_hash(K2));
    }

    #[test]
    fn tokens() {
        let t = Tokens::parse(
            Some("any-host-token"),
            Some("tokA=10.0.0.5:8080|origin1:8080, tokB=10.0.0.6:8080"),
        )
        .unwrap();
        let w = t.check(Some("Bearer any-host-token")).unwrap();
        assert!(w.may_write("10.0.0.9:1") && !w.is_per_origin());
        let a = t.check(Some("Bearer tokA")).unwrap();
        assert!(a.may_write("10.0.0.5:8080") && a.may_write("origin1:8080"));
        assert!(!a.may_write("10.0.0.6:8080") && a.is_per_origin());
        let b = t.check(Some("bearer tokB")).unwrap();
        assert!(b.may_write("10.0.0.6:8080") && !b.may_write("10.0.0.5:8080"));
        for bad in [
            None,
            Some("tokA"),
            Some("Bearer tok"),
            Some("Bearer "),
            Some("Basic tokA"),
        ] {
            assert!(
                matches!(t.check(bad), Err(ApiError::Unauthorized)),
                "{bad:?}"
            );
        }
        assert!(Tokens::parse(None, None).unwrap().is_open());
        assert!(Tokens::parse(Some(" "), Some("")).unwrap().is_open());
        assert!(Tokens::parse(None, Some("tok")).is_err());
        assert!(Tokens::parse(None, Some("tok=")).is_err());
        assert!(Tokens::parse(None, Some("tok=http://x")).is_err());
        assert!(Tokens::parse(None, Some("t=a:1,t=b:1")).is_err());
        assert!(Tokens::parse(Some("t"), Some("t=a:1")).is_err());
    }
}
