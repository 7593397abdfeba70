//! A cached route: what the API said about one stream, and when.
//!
//! Routes live in nginx shared memory as short strings, so they are encoded
//! as text:
//! `F <fetched> <failed> <refresh> <missing> <host>#<since> ...` for a found
//! stream (`S ...` when its playback needs a signed link), `N <fetched> <failed> <refresh> <missing>` for a stream the API
//! does not know. All times are milliseconds of nginx's monotonic clock,
//! except `since`, which is the API's wall-clock registration time.

/// Found (with origins) or not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Found,
    NotFound,
}

/// One origin of a route: its address and the start of its registration
/// (a new publish session registers anew, so `since` changes with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOrigin {
    /// Normalized `ip:port`.
    pub addr: String,
    /// Unix ms when the origin's current registration began (0: unknown).
    pub since: u64,
}

impl RouteOrigin {
    pub fn new(addr: impl Into<String>, since: u64) -> RouteOrigin {
        RouteOrigin {
            addr: addr.into(),
            since,
        }
    }
}

/// One stream's cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    /// When the API last answered for this stream (for a found route: last
    /// confirmed it).
    pub fetched_ms: u64,
    /// When a lookup last failed (API down, garbage, or a "not found" inside
    /// the grace window), 0 if never since `fetched_ms`; used to back off
    /// while serving stale.
    pub failed_ms: u64,
    /// When a worker claimed the background refresh of this route (0: none).
    pub refresh_ms: u64,
    /// When the API first said "not found" for this still-found route (0:
    /// it did not).
    pub missing_ms: u64,
    /// The origins, as the API listed them.
    pub origins: Vec<RouteOrigin>,
    /// Playback of this stream needs a signed link (the stream's
    /// configuration says so; see `rtmp_live_types::playback`).
    pub signed: bool,
}

impl Route {
    pub fn found(origins: Vec<RouteOrigin>, now_ms: u64) -> Route {
        Route {
            kind: RouteKind::Found,
            fetched_ms: now_ms,
            failed_ms: 0,
            refresh_ms: 0,
            missing_ms: 0,
            origins,
            signed: false,
        }
    }

    /// This route with playback signing required (`signed`) or not.
    pub fn with_signed(self, signed: bool) -> Route {
        Route { signed, ..self }
    }

    pub fn not_found(now_ms: u64) -> Route {
        Route {
            kind: RouteKind::NotFound,
            fetched_ms: now_ms,
            failed_ms: 0,
            refresh_ms: 0,
            missing_ms: 0,
            origins: Vec::new(),
            signed: false,
        }
    }

    /// The origin addresses, in the API's order.
    pub fn addrs(&self) -> Vec<String> {
        self.origins.iter().map(|o| o.addr.clone()).collect()
    }

    pub fn encode(&self) -> String {
        let tag = match self.kind {
            RouteKind::Found if self.signed => 'S',
            RouteKind::Found => 'F',
            RouteKind::NotFound => 'N',
        };
        let mut s = format!(
            "{tag} {} {} {} {}",
            self.fetched_ms, self.failed_ms, self.refresh_ms, self.missing_ms
        );
        for o in &self.origins {
            s.push(' ');
            s.push_str(&o.addr);
            s.push('#');
            s.push_str(&o.since.to_string());
        }
        s
    }

    /// Decodes [`Route::encode`]'s output; `None` for anything else.
    pub fn decode(s: &[u8]) -> Option<Route> {
        let s = std::str::from_utf8(s).ok()?;
        let mut it = s.split(' ');
        let (kind, signed) = match it.next()? {
            "F" => (RouteKind::Found, false),
            "S" => (RouteKind::Found, true),
            "N" => (RouteKind::NotFound, false),
            _ => return None,
        };
        let mut num = || it.next()?.parse::<u64>().ok();
        let (fetched_ms, failed_ms, refresh_ms, missing_ms) = (num()?, num()?, num()?, num()?);
        let origins = it
            .map(|o| {
                let (addr, since) = o.split_once('#')?;
                (!addr.is_empty()).then_some(())?;
                Some(RouteOrigin::new(addr, since.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        if (kind == RouteKind::Found) == origins.is_empty() {
            return None;
        }
        Some(Route {
            kind,
            fetched_ms,
            failed_ms,
            refresh_ms,
            missing_ms,
            origins,
            signed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let r = Route {
            refresh_ms: 5,
            missing_ms: 6,
            ..Route::found(
                vec![
                    RouteOrigin::new("10.0.0.5:8080", 1_700_000_000_000),
                    RouteOrigin::new("[::1]:80", 0),
                ],
                1234,
            )
        };
        assert_eq!(Route::decode(r.encode().as_bytes()), Some(r.clone()));
        let signed = r.with_signed(true);
        assert!(signed.encode().starts_with("S "));
        assert_eq!(Route::decode(signed.encode().as_bytes()), Some(signed));
        let n = Route {
            failed_ms: 99,
            ..Route::not_found(7)
        };
        assert_eq!(Route::decode(n.encode().as_bytes()), Some(n));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "X 1 2 3 4 a#1",
            "F 1 2 3 4",
            "S 1 2 3 4",
            "F x 2 3 4 a#1",
            "F 1 2 3 4 a",
            "F 1 2 3 4 a#x",
            "F 1 2 3 4 #1",
            "N 1 2 3 4 a#1",
            "F 1",
            "N",
        ] {
            assert_eq!(Route::decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(Route::decode(&[0xff, 0x20]), None);
    }
}
