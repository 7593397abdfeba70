//! Stream keys (secret key → public name) and the report token.

use std::collections::HashMap;

use rtmp_live_types::is_valid_name;
use subtle::ConstantTimeEq;

/// Parsed `STREAM_KEYS`.
#[derive(Debug, Clone)]
pub struct StreamKeys(HashMap<String, String>);

impl StreamKeys {
    /// `key` or `key=name`, comma-separated; both parts must be valid names.
    pub fn parse(s: &str) -> Result<StreamKeys, String> {
        let mut map = HashMap::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, name) = entry.split_once('=').unwrap_or((entry, entry));
            let (key, name) = (key.trim(), name.trim());
            if !is_valid_name(key) || !is_valid_name(name) {
                return Err(format!(
                    "invalid entry {entry:?}: key and name must match [A-Za-z0-9_-]{{1,64}}"
                ));
            }
            if map.insert(key.to_string(), name.to_string()).is_some() {
                return Err(format!("duplicate key in entry {entry:?}"));
            }
        }
        if map.is_empty() {
            return Err("no stream key configured".into());
        }
        Ok(StreamKeys(map))
    }

    /// The public name for a secret key. Every configured key is compared in
    /// constant time, so timing does not reveal how close a guess was.
    pub fn public_name(&self, key: &str) -> Option<&str> {
        let mut found = None;
        for (k, name) in &self.0 {
            if bool::from(k.as_bytes().ct_eq(key.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// Whether an `Authorization` header value carries `token`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = StreamKeys::parse("golive, s3cr3t=show ,x_1=x_1").unwrap();
        assert_eq!(k.public_name("golive"), Some("golive"));
        assert_eq!(k.public_name("s3cr3t"), Some("show"));
        assert_eq!(k.public_name("show"), None);
        assert_eq!(k.public_name(""), None);
        assert!(StreamKeys::parse("").is_err());
        assert!(StreamKeys::parse("a b").is_err());
        assert!(StreamKeys::parse("k=../x").is_err());
        assert!(StreamKeys::parse("a,a=b").is_err());
    }

    #[test]
    fn bearer() {
        assert!(bearer_matches(Some("Bearer t0k"), "t0k"));
        assert!(!bearer_matches(Some("Bearer t0"), "t0k"));
        assert!(!bearer_matches(Some("t0k"), "t0k"));
        assert!(!bearer_matches(None, "t0k"));
    }
}
