//! A route made ready for routing requests: decoded once, its origins parsed
//! into targets and their session stamps formatted, so that a worker serving
//! many requests from the same cached route does that work once per change
//! of the route rather than once per request.

use crate::route::Route;
use crate::target::Target;

/// A decoded route and what every request routed by it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub route: Route,
    /// `route.origins[i]` parsed (`None`: not an address or a DNS name; such
    /// an origin is never contacted).
    pub targets: Vec<Option<Target>>,
    /// `route.origins[i].since` in decimal: the publish session part of
    /// cache keys.
    pub sessions: Vec<Box<[u8]>>,
}

impl Prepared {
    pub fn new(route: Route) -> Prepared {
        let targets = route
            .origins
            .iter()
            .map(|o| Target::parse(&o.addr))
            .collect();
        let sessions = route
            .origins
            .iter()
            .map(|o| o.since.to_string().into_bytes().into_boxed_slice())
            .collect();
        Prepared {
            route,
            targets,
            sessions,
        }
    }

    /// Decodes an encoded route (see [`Route::decode`]).
    pub fn decode(encoded: &[u8]) -> Option<Prepared> {
        Route::decode(encoded).map(Prepared::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteOrigin;

    #[test]
    fn targets_and_sessions_follow_the_origins() {
        let route = Route::found(
            vec![
                RouteOrigin::new("10.0.0.1:8080", 1_700_000_000_123),
                RouteOrigin::new("origin-2:8080", 7),
                RouteOrigin::new("bad_host!", 0),
            ],
            5,
        );
        let p = Prepared::decode(route.encode().as_bytes()).unwrap();
        assert_eq!(p.route, route);
        assert_eq!(
            p.targets,
            vec![
                Some(Target::Addr("10.0.0.1:8080".parse().unwrap())),
                Some(Target::Name {
                    host: "origin-2".into(),
                    port: 8080
                }),
                None,
            ]
        );
        let sessions: Vec<&[u8]> = p.sessions.iter().map(|s| &s[..]).collect();
        assert_eq!(sessions, [&b"1700000000123"[..], b"7", b"0"]);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Prepared::decode(b"F 1 2 3").is_none());
        assert!(Prepared::decode(b"\xff").is_none());
    }
}
