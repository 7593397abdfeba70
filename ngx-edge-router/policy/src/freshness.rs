//! When a cached route may be used, when it must be looked up again, and what
//! to do when the lookup fails.

use crate::route::{Route, RouteKind};

/// The `edge_router_valid`, `_negative` and `_stale` settings, plus how long
/// to wait after a failed lookup before trying the API again (while serving
/// stale routes meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub valid_ms: u64,
    pub negative_ms: u64,
    pub stale_ms: u64,
    pub retry_ms: u64,
}

/// The value of `$edge_router_cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Fresh cached route.
    Hit,
    /// Looked up at the API for this request.
    Miss,
    /// Served from an expired route because the API failed.
    Stale,
    /// Served from an expired route while another request refreshes it.
    Updating,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
        }
    }
}

/// What to do with a request, given the cached entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Route with these origins.
    Serve(Vec<String>, CacheStatus),
    /// The API said the stream does not exist (recently enough).
    NotFound,
    /// Ask the API. `stale` holds origins usable if the lookup fails (or by
    /// requests that arrive while it runs).
    Lookup { stale: Option<Vec<String>> },
}

/// Decides from the cached entry `route` at time `now_ms`.
pub fn decide(route: Option<&Route>, now_ms: u64, t: &Timing) -> Decision {
    let Some(route) = route else {
        return Decision::Lookup { stale: None };
    };
    let age = now_ms.saturating_sub(route.fetched_ms);
    match route.kind {
        RouteKind::Found if age < t.valid_ms => {
            Decision::Serve(route.origins.clone(), CacheStatus::Hit)
        }
        RouteKind::Found if age < t.stale_ms => {
            let recently_failed =
                route.failed_ms != 0 && now_ms.saturating_sub(route.failed_ms) < t.retry_ms;
            if recently_failed {
                Decision::Serve(route.origins.clone(), CacheStatus::Stale)
            } else {
                Decision::Lookup {
                    stale: Some(route.origins.clone()),
                }
            }
        }
        RouteKind::NotFound if age < t.negative_ms => Decision::NotFound,
        _ => Decision::Lookup { stale: None },
    }
}

/// The entry to store after a failed lookup, if the old one can still serve.
pub fn on_lookup_failure(route: Option<&Route>, now_ms: u64, t: &Timing) -> Option<Route> {
    let route = route?;
    let usable =
        route.kind == RouteKind::Found && now_ms.saturating_sub(route.fetched_ms) < t.stale_ms;
    usable.then(|| Route {
        failed_ms: now_ms,
        ..route.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        valid_ms: 5_000,
        negative_ms: 1_000,
        stale_ms: 900_000,
        retry_ms: 1_000,
    };

    fn found(at: u64) -> Route {
        Route::found(vec!["10.0.0.1:80".into()], at)
    }

    #[test]
    fn missing_entry_needs_lookup() {
        assert_eq!(decide(None, 10, &T), Decision::Lookup { stale: None });
    }

    #[test]
    fn fresh_route_is_a_hit() {
        let r = found(1_000);
        assert_eq!(
            decide(Some(&r), 5_999, &T),
            Decision::Serve(r.origins.clone(), CacheStatus::Hit)
        );
    }

    #[test]
    fn expired_route_is_looked_up_with_stale_fallback() {
        let r = found(1_000);
        assert_eq!(
            decide(Some(&r), 6_000, &T),
            Decision::Lookup {
                stale: Some(r.origins.clone())
            }
        );
    }

    #[test]
    fn after_failure_stale_is_served_without_asking_again_for_a_while() {
        let r = on_lookup_failure(Some(&found(0)), 10_000, &T).expect("usable");
        assert_eq!(
            decide(Some(&r), 10_500, &T),
            Decision::Serve(r.origins.clone(), CacheStatus::Stale)
        );
        assert_eq!(
            decide(Some(&r), 11_000, &T),
            Decision::Lookup {
                stale: Some(r.origins.clone())
            }
        );
    }

    #[test]
    fn stale_window_ends() {
        let r = found(0);
        assert_eq!(
            decide(Some(&r), 900_000, &T),
            Decision::Lookup { stale: None }
        );
        assert_eq!(on_lookup_failure(Some(&r), 900_000, &T), None);
    }

    #[test]
    fn negative_entries_expire_quickly() {
        let n = Route::not_found(0);
        assert_eq!(decide(Some(&n), 999, &T), Decision::NotFound);
        assert_eq!(
            decide(Some(&n), 1_000, &T),
            Decision::Lookup { stale: None }
        );
        assert_eq!(on_lookup_failure(Some(&n), 500, &T), None);
    }

    #[test]
    fn clock_going_backwards_counts_as_fresh() {
        let r = found(10_000);
        assert!(matches!(
            decide(Some(&r), 5_000, &T),
            Decision::Serve(_, CacheStatus::Hit)
        ));
    }
}
