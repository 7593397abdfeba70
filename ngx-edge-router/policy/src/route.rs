//! A cached route: what the API said about one stream, and when.
//!
//! Routes live in nginx shared memory as short strings, so they are encoded
//! as text: `F <fetched_ms> <failed_ms> <host> <host>...` for a found stream,
//! `N <fetched_ms> <failed_ms>` for a stream the API does not know.

/// Found (with origins) or not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Found,
    NotFound,
}

/// One stream's cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    /// When the API last answered for this stream (ms, nginx clock).
    pub fetched_ms: u64,
    /// When a lookup last failed (API down, garbage), 0 if never since
    /// `fetched_ms`; used to back off while serving stale.
    pub failed_ms: u64,
    /// Normalized origin addresses (`ip:port`), as the API listed them.
    pub origins: Vec<String>,
}

impl Route {
    pub fn found(origins: Vec<String>, now_ms: u64) -> Route {
        Route {
            kind: RouteKind::Found,
            fetched_ms: now_ms,
            failed_ms: 0,
            origins,
        }
    }

    pub fn not_found(now_ms: u64) -> Route {
        Route {
            kind: RouteKind::NotFound,
            fetched_ms: now_ms,
            failed_ms: 0,
            origins: Vec::new(),
        }
    }

    pub fn encode(&self) -> String {
        let tag = match self.kind {
            RouteKind::Found => 'F',
            RouteKind::NotFound => 'N',
        };
        let mut s = format!("{tag} {} {}", self.fetched_ms, self.failed_ms);
        for o in &self.origins {
            s.push(' ');
            s.push_str(o);
        }
        s
    }

    /// Decodes [`Route::encode`]'s output; `None` for anything else.
    pub fn decode(s: &[u8]) -> Option<Route> {
        let s = std::str::from_utf8(s).ok()?;
        let mut it = s.split(' ');
        let kind = match it.next()? {
            "F" => RouteKind::Found,
            "N" => RouteKind::NotFound,
            _ => return None,
        };
        let fetched_ms = it.next()?.parse().ok()?;
        let failed_ms = it.next()?.parse().ok()?;
        let origins: Vec<String> = it.map(str::to_owned).collect();
        if kind == RouteKind::Found && origins.is_empty() {
            return None;
        }
        Some(Route {
            kind,
            fetched_ms,
            failed_ms,
            origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let r = Route::found(vec!["10.0.0.5:8080".into(), "[::1]:80".into()], 1234);
        assert_eq!(Route::decode(r.encode().as_bytes()), Some(r));
        let n = Route {
            failed_ms: 99,
            ..Route::not_found(7)
        };
        assert_eq!(Route::decode(n.encode().as_bytes()), Some(n));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "X 1 2 a", "F 1 2", "F x 2 a", "F 1", "N"] {
            assert_eq!(Route::decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(Route::decode(&[0xff, 0x20]), None);
    }
}
