//! When a cached route may be used, when it must be looked up again (in the
//! foreground, or in the background while the old route keeps serving), and
//! what to store once a lookup ends.

use crate::classify::Outcome;
use crate::route::{Route, RouteKind};

/// The `edge_router_valid`, `_negative`, `_stale` and `_grace` settings, how
/// long to wait after a failed lookup before trying the API again (serving
/// stale routes meanwhile), and how long one worker's claim to refresh a
/// route in the background keeps the others from refreshing it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub valid_ms: u64,
    pub negative_ms: u64,
    pub stale_ms: u64,
    pub retry_ms: u64,
    /// A found route survives "not found" answers for this long after the API
    /// last confirmed it (the registry lost its data and the origin's next
    /// heartbeat will restore it).
    pub grace_ms: u64,
    pub refresh_claim_ms: u64,
}

/// The value of `$edge_router_cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Fresh cached route.
    Hit,
    /// Looked up at the API for this request.
    Miss,
    /// Served from an expired route because the API failed (or said "not
    /// found" inside the grace window).
    Stale,
    /// Served from an expired route while it is refreshed in the background.
    Updating,
    /// The API could not answer and the edge had no route: found by probing
    /// the operator's origins (`edge_router_probe`).
    Probed,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Probed => "PROBED",
        }
    }
}

/// What to do with a request, given the cached entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Route with this entry's origins.
    Serve(CacheStatus),
    /// Route with this entry's origins and refresh it in the background; the
    /// caller has claimed the refresh (see [`claim_refresh`]).
    ServeAndRefresh,
    /// The API said the stream does not exist (recently enough).
    NotFound,
    /// No usable route: ask the API and wait for the answer.
    Lookup,
}

/// Decides from the cached entry `route` at time `now_ms`. A viewer request
/// never waits for the API while a usable route exists.
pub fn decide(route: Option<&Route>, now_ms: u64, t: &Timing) -> Decision {
    let Some(route) = route else {
        return Decision::Lookup;
    };
    let age = now_ms.saturating_sub(route.fetched_ms);
    // A stamp is set and not in the future.
    let since = |ms: u64| ms != 0 && now_ms >= ms;
    match route.kind {
        RouteKind::Found if age < t.valid_ms && route.missing_ms == 0 => {
            Decision::Serve(CacheStatus::Hit)
        }
        RouteKind::Found if age < t.stale_ms => {
            if since(route.failed_ms) && now_ms - route.failed_ms < t.retry_ms {
                Decision::Serve(CacheStatus::Stale)
            } else if since(route.refresh_ms) && now_ms - route.refresh_ms < t.refresh_claim_ms {
                Decision::Serve(CacheStatus::Updating)
            } else {
                Decision::ServeAndRefresh
            }
        }
        RouteKind::NotFound if age < t.negative_ms => Decision::NotFound,
        _ => Decision::Lookup,
    }
}

/// Marks `route` as being refreshed by the caller from `now_ms` on.
pub fn claim_refresh(route: &Route, now_ms: u64) -> Route {
    Route {
        refresh_ms: now_ms.max(1),
        ..route.clone()
    }
}

/// Where the grace window of a found route starts. Before any "not found":
/// when it was last known good — confirmed by the API, or still served
/// because the API failed (after an outage the registry may have expired
/// every stream until the origins' next heartbeat). After the first "not
/// found": that answer, so that a stream that really ended is dropped
/// `grace` later.
fn grace_anchor(r: &Route) -> u64 {
    if r.missing_ms != 0 {
        r.missing_ms
    } else {
        r.fetched_ms.max(r.failed_ms)
    }
}

/// The entry to store once a lookup ended with `outcome`, given the entry
/// cached now (`old`); `None`: leave the cache as it is.
pub fn after_lookup(
    old: Option<&Route>,
    outcome: &Outcome,
    now_ms: u64,
    t: &Timing,
) -> Option<Route> {
    let usable = old
        .filter(|r| r.kind == RouteKind::Found && now_ms.saturating_sub(r.fetched_ms) < t.stale_ms);
    match outcome {
        Outcome::Found(origins, signed) => {
            let mut origins = origins.clone();
            // Right after an API outage (the route was served stale because
            // lookups failed) the registry lists only the origins that have
            // reported again so far; the others follow within a heartbeat.
            // Dropping them now would move their viewers to an origin whose
            // segment names differ (404s): they stay for one validity
            // period, until the next lookup.
            if let Some(r) = usable.filter(|r| r.failed_ms != 0 && r.missing_ms == 0) {
                for o in &r.origins {
                    if !origins.iter().any(|n| n.addr == o.addr) {
                        origins.push(o.clone());
                    }
                }
            }
            Some(Route::found(origins, now_ms).with_signed(*signed))
        }
        Outcome::NotFound => match usable {
            // Recently known good: "not found" does not drop it at once.
            Some(r) if now_ms.saturating_sub(grace_anchor(r)) < t.grace_ms => Some(Route {
                failed_ms: now_ms.max(1),
                refresh_ms: 0,
                missing_ms: if r.missing_ms == 0 {
                    now_ms.max(1)
                } else {
                    r.missing_ms
                },
                ..r.clone()
            }),
            _ => Some(Route::not_found(now_ms)),
        },
        Outcome::Failed(_) => usable.map(|r| Route {
            failed_ms: now_ms.max(1),
            refresh_ms: 0,
            ..r.clone()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::LookupError;
    use crate::route::RouteOrigin;

    const T: Timing = Timing {
        valid_ms: 5_000,
        negative_ms: 1_000,
        stale_ms: 900_000,
        retry_ms: 1_000,
        grace_ms: 15_000,
        refresh_claim_ms: 4_000,
    };

    fn found(at: u64) -> Route {
        Route::found(vec![RouteOrigin::new("10.0.0.1:80", 7)], at)
    }

    #[test]
    fn a_lookup_carries_the_streams_signing() {
        let r = after_lookup(
            None,
            &Outcome::Found(vec![RouteOrigin::new("10.0.0.1:80", 9)], true),
            7,
            &T,
        )
        .unwrap();
        assert!(r.signed);
        // kept while the API fails
        let kept = after_lookup(
            Some(&r),
            &Outcome::Failed(crate::LookupError::Transport),
            8,
            &T,
        );
        assert!(kept.unwrap().signed);
    }

    #[test]
    fn missing_entry_needs_lookup() {
        assert_eq!(decide(None, 10, &T), Decision::Lookup);
    }

    #[test]
    fn fresh_route_is_a_hit() {
        assert_eq!(
            decide(Some(&found(1_000)), 5_999, &T),
            Decision::Serve(CacheStatus::Hit)
        );
    }

    #[test]
    fn expired_route_serves_and_is_refreshed_once() {
        let r = found(1_000);
        assert_eq!(decide(Some(&r), 6_000, &T), Decision::ServeAndRefresh);
        let claimed = claim_refresh(&r, 6_000);
        // Everyone else serves the old route without asking the API.
        assert_eq!(
            decide(Some(&claimed), 6_001, &T),
            Decision::Serve(CacheStatus::Updating)
        );
        // A claim whose worker never finished (killed, aborted) expires.
        assert_eq!(
            decide(Some(&claimed), 10_000, &T),
            Decision::ServeAndRefresh
        );
    }

    #[test]
    fn after_failure_stale_is_served_without_asking_again_for_a_while() {
        let failed = Outcome::Failed(LookupError::Status(503));
        let r = after_lookup(Some(&found(0)), &failed, 10_000, &T).expect("usable");
        assert_eq!(r.refresh_ms, 0);
        assert_eq!(
            decide(Some(&r), 10_500, &T),
            Decision::Serve(CacheStatus::Stale)
        );
        assert_eq!(decide(Some(&r), 11_000, &T), Decision::ServeAndRefresh);
    }

    #[test]
    fn stale_window_ends() {
        let r = found(0);
        assert_eq!(decide(Some(&r), 900_000, &T), Decision::Lookup);
        let failed = Outcome::Failed(LookupError::TooBig);
        assert_eq!(after_lookup(Some(&r), &failed, 900_000, &T), None);
    }

    #[test]
    fn negative_entries_expire_quickly() {
        let n = Route::not_found(0);
        assert_eq!(decide(Some(&n), 999, &T), Decision::NotFound);
        assert_eq!(decide(Some(&n), 1_000, &T), Decision::Lookup);
        let failed = Outcome::Failed(LookupError::Transport);
        assert_eq!(after_lookup(Some(&n), &failed, 500, &T), None);
    }

    #[test]
    fn a_confirmed_route_survives_not_found_inside_the_grace_window() {
        let r = found(0);
        let kept = after_lookup(Some(&r), &Outcome::NotFound, 6_000, &T).expect("kept");
        assert_eq!(kept.kind, RouteKind::Found);
        assert_eq!(kept.missing_ms, 6_000);
        // Served as stale, asked again after the retry interval.
        assert_eq!(
            decide(Some(&kept), 6_500, &T),
            Decision::Serve(CacheStatus::Stale)
        );
        assert_eq!(decide(Some(&kept), 7_000, &T), Decision::ServeAndRefresh);
        // The API knows it again: a plain fresh route.
        let back = after_lookup(
            Some(&kept),
            &Outcome::Found(r.origins.clone(), false),
            7_100,
            &T,
        )
        .unwrap();
        assert_eq!(back.missing_ms, 0);
        assert_eq!(
            decide(Some(&back), 7_200, &T),
            Decision::Serve(CacheStatus::Hit)
        );
        // Still "not found" a grace window after the first one: gone.
        let again = after_lookup(Some(&kept), &Outcome::NotFound, 20_000, &T).unwrap();
        assert_eq!(again.kind, RouteKind::Found);
        let gone = after_lookup(Some(&again), &Outcome::NotFound, 21_000, &T).unwrap();
        assert_eq!(gone.kind, RouteKind::NotFound);
    }

    #[test]
    fn after_an_outage_the_first_not_found_does_not_drop_a_route_still_in_use() {
        // Confirmed long ago, served stale through an outage (the API failed
        // until a second ago); the API is back but the registry expired.
        let failed = Outcome::Failed(LookupError::Transport);
        let stale = after_lookup(Some(&found(0)), &failed, 300_000, &T).unwrap();
        let kept = after_lookup(Some(&stale), &Outcome::NotFound, 301_000, &T).unwrap();
        assert_eq!(kept.kind, RouteKind::Found);
        // A route nobody served for longer than the grace window is dropped.
        let old = found(0);
        let gone = after_lookup(Some(&old), &Outcome::NotFound, 100_000, &T).unwrap();
        assert_eq!(gone.kind, RouteKind::NotFound);
    }

    #[test]
    fn after_an_outage_origins_not_reported_again_yet_stay_for_one_period() {
        let two = Route::found(
            vec![
                RouteOrigin::new("10.0.0.1:80", 7),
                RouteOrigin::new("10.0.0.2:80", 8),
            ],
            0,
        );
        let failed = Outcome::Failed(LookupError::Transport);
        let stale = after_lookup(Some(&two), &failed, 30_000, &T).unwrap();
        // The API is back; only the first origin has reported again.
        let first = Outcome::Found(vec![RouteOrigin::new("10.0.0.1:80", 9)], false);
        let back = after_lookup(Some(&stale), &first, 31_000, &T).unwrap();
        let addrs: Vec<&str> = back.origins.iter().map(|o| o.addr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(
            back.origins[0].since, 9,
            "the API's answer wins where it has one"
        );
        assert_eq!((back.fetched_ms, back.failed_ms), (31_000, 0));
        // One validity period later the API's list is the route.
        let next = after_lookup(Some(&back), &first, 36_000, &T).unwrap();
        assert_eq!(next.origins.len(), 1);
        // Without an outage an origin the API no longer lists goes at once,
        // and so after a "not found" (the stream moved).
        let direct = after_lookup(Some(&two), &first, 1_000, &T).unwrap();
        assert_eq!(direct.origins.len(), 1);
        let missing = after_lookup(Some(&two), &Outcome::NotFound, 1_000, &T).unwrap();
        let moved = after_lookup(Some(&missing), &first, 2_000, &T).unwrap();
        assert_eq!(moved.origins.len(), 1);
    }

    #[test]
    fn a_fresh_route_that_went_missing_is_not_a_hit() {
        let kept = after_lookup(Some(&found(0)), &Outcome::NotFound, 100, &T).unwrap();
        assert_eq!(
            decide(Some(&kept), 200, &T),
            Decision::Serve(CacheStatus::Stale)
        );
    }

    #[test]
    fn clock_going_backwards_counts_as_fresh() {
        assert_eq!(
            decide(Some(&found(10_000)), 5_000, &T),
            Decision::Serve(CacheStatus::Hit)
        );
    }
}
