//! Which stream key started each stream this origin publishes, in the form
//! the API records a name's owner (SHA-256, lowercase hex). Sent with every
//! report, so a registry that lost its owner records (a failover to a
//! replica behind, a restart without persistence) gets them back within a
//! heartbeat, and a second key mapped to the same name cannot take it
//! meanwhile. Kept in memory only: after a restart of discovery a stream's
//! owner is known again from its next publish.

use std::collections::HashMap;
use std::sync::Mutex;

use rtmp_live_types::is_valid_name;
use sha2::{Digest, Sha256};

/// Names remembered at most (an origin carries far fewer streams).
const MAX_NAMES: usize = 4096;

#[derive(Default)]
pub struct Owners {
    by_name: Mutex<HashMap<String, String>>,
}

impl Owners {
    /// The API allowed `key` and sent the publish to `location` (its last
    /// path segment is the public name).
    pub fn allowed(&self, key: &str, location: Option<&str>) {
        let Some(name) = location.and_then(public_name) else {
            return;
        };
        let hash: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut m = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_NAMES && !m.contains_key(name) {
            // an arbitrary one: its stream reports without an owner
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        m.insert(name.to_string(), hash);
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// `rtmp://host:port/app/<name>` → `<name>`, when it is a valid name.
fn public_name(location: &str) -> Option<&str> {
    let path = location.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    is_valid_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_the_api_redirect() {
        let o = Owners::default();
        o.allowed("secret-key", Some("rtmp://127.0.0.1:1935/hls/golive"));
        let h = o.get("golive").unwrap();
        assert_eq!(h.len(), 64);
        assert!(rtmp_live_types::is_valid_key_hash(&h));
        // the same hash the API writes for the key
        assert_eq!(
            h,
            "85dbe15d75ef9308c7ae0f33c7a324cc6f4bf519a2ed2f3027bd33c140a4f9aa"
        );
        o.allowed("k", Some("rtmp://h/hls/bad name"));
        o.allowed("k", None);
        o.allowed("k", Some("rtmp://h/hls/x?y=1"));
        assert!(o.get("x").is_some());
        // a new publish of the name under another key replaces it
        o.allowed("other-key", Some("rtmp://h/hls/golive"));
        assert_ne!(o.get("golive").unwrap(), h);
    }
}
