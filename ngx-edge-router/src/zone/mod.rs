//! The shared zone of `edge_router_zone`: the route cache (stream name →
//! encoded [`Route`]), the origins' failure memory and the streams' viewer
//! counts (`audience`), in red-black trees
//! allocated from the zone's slab pool.
//!
//! Every access holds the slab pool's own mutex (`ngx_shmtx_t`), like nginx's
//! C modules do: when a worker dies holding it (OOM killer, crash), the
//! master process force-unlocks it by pid, so a dead worker can never wedge
//! the others. The lock is held for one lookup or one update, never across
//! I/O. When the zone is full, a batch of the least valuable routes is
//! evicted (see `edge_router_policy::evict`), never the whole cache.
//!
//! Split by concern: the slab allocator (`alloc`), the origins' failure
//! memory (`health`), the lock-free counters and the metrics snapshot
//! (`counters`); the route cache and the lock are here.

mod alloc;
mod audience;
mod counters;
mod health;

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;
use std::rc::Rc;

use edge_router_policy::{
    after_lookup, claim_refresh, decide, evict, Decision, Health, Outcome, Prepared, Route,
    RouteKind, Timing,
};
use ngx::collections::RbTreeMap;
use ngx::core::{NgxStr, NgxString, Status};
use ngx::ffi::{ngx_int_t, ngx_shm_zone_t, ngx_shmtx_lock, ngx_shmtx_unlock, ngx_slab_pool_t};

use crate::ffi::guard;
use crate::local;

use self::alloc::ShmAlloc;
use self::counters::Counters;

type Key = NgxString<ShmAlloc>;

/// A cached route and its last use (for least-recently-used eviction).
struct Slot {
    used_ms: u64,
    route: NgxString<ShmAlloc>,
}

/// Everything in the zone, reached through the slab pool's `data` pointer.
struct Shared {
    routes: RbTreeMap<Key, Slot, ShmAlloc>,
    health: RbTreeMap<Key, Health, ShmAlloc>,
    audience: audience::Audiences,
    counters: Counters,
}

/// A route's last-use stamp is rewritten at most this often.
const USE_STAMP_MS: u64 = 1_000;

/// `shm_zone->init`: creates the shared structures in a new zone, or keeps
/// those of the previous cycle (reload with an unchanged zone).
pub unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, _data: *mut c_void) -> ngx_int_t {
    guard(Status::NGX_ERROR.into(), || {
        // SAFETY: nginx passes the zone being initialized; it is mapped.
        let Some(pool) = NonNull::new(unsafe { (*zone).shm.addr }.cast::<ngx_slab_pool_t>()) else {
            return Status::NGX_ERROR.into();
        };
        let _locked = Zone { pool }.lock_raw();
        // SAFETY: the pool header is valid and we hold its mutex.
        let sp = unsafe { &mut *pool.as_ptr() };
        if sp.data.is_null() {
            let alloc = ShmAlloc(pool);
            // SAFETY: as above.
            let size = unsafe { (*zone).shm.size };
            let (Ok(routes), Ok(health), Some(audience)) = (
                RbTreeMap::try_new_in(alloc.clone()),
                RbTreeMap::try_new_in(alloc.clone()),
                audience::Audiences::new(alloc.clone(), size),
            ) else {
                return Status::NGX_ERROR.into();
            };
            let shared = Shared {
                routes,
                health,
                audience,
                counters: Counters::new(),
            };
            let Ok(p) = ngx::allocator::allocate(shared, &alloc) else {
                return Status::NGX_ERROR.into();
            };
            sp.data = p.as_ptr().cast();
            // A full zone is handled by eviction; no "no memory" alerts.
            sp.set_log_nomem(0);
        }
        Status::NGX_OK.into()
    })
}

/// A handle to the zone of the current cycle.
#[derive(Clone, Copy)]
pub struct Zone {
    pool: NonNull<ngx_slab_pool_t>,
}

/// The zone with its mutex held; unlocks on drop.
struct Locked {
    pool: NonNull<ngx_slab_pool_t>,
    shared: Option<NonNull<Shared>>,
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: locked in `lock_raw` by this process.
        unsafe { ngx_shmtx_unlock(&mut (*self.pool.as_ptr()).mutex) }
    }
}

impl Locked {
    fn shared(&mut self) -> Option<&mut Shared> {
        // SAFETY: `data` points at the `Shared` made in `init_zone`, and the
        // mutex is held, so no other process touches it.
        self.shared.map(|mut p| unsafe { p.as_mut() })
    }
}

/// Why a route could not be stored.
#[derive(Debug)]
pub enum StoreError {
    NoZone,
    Full,
}

impl Zone {
    /// The zone registered by `edge_router_zone`, once nginx mapped it.
    pub fn new(zone: *mut ngx_shm_zone_t) -> Option<Zone> {
        // SAFETY: the zone pointer comes from the configuration and lives as
        // long as the cycle; `shm.addr` is set once the zone is mapped.
        let addr = unsafe { zone.as_ref()?.shm.addr };
        Some(Zone {
            pool: NonNull::new(addr.cast())?,
        })
    }

    fn lock_raw(&self) -> Locked {
        // SAFETY: the pool header is valid while the zone is mapped.
        unsafe { ngx_shmtx_lock(&mut (*self.pool.as_ptr()).mutex) };
        Locked {
            pool: self.pool,
            shared: None,
        }
    }

    fn lock(&self) -> Locked {
        let mut l = self.lock_raw();
        // SAFETY: the pool header is valid; `data` is set by `init_zone`.
        l.shared = NonNull::new(unsafe { (*self.pool.as_ptr()).data }.cast());
        l
    }

    /// Decides what to do with a request for `name` and, when the route
    /// must be refreshed, claims that refresh for the caller (so that one
    /// worker refreshes it, not all of them). Returns the decision and the
    /// route it was made from.
    pub fn consult(&self, name: &[u8], now: u64, t: &Timing) -> (Decision, Option<Rc<Prepared>>) {
        let mut l = self.lock();
        let Some(s) = l.shared() else {
            return (Decision::Lookup, None);
        };
        let Some(slot) = s.routes.get_mut(NgxStr::from_bytes(name)) else {
            return (Decision::Lookup, None);
        };
        let route = local::prepared(name, slot.route.as_bytes());
        let decision = decide(route.as_ref().map(|p| &p.route), now, t);
        if now.saturating_sub(slot.used_ms) >= USE_STAMP_MS {
            slot.used_ms = now;
        }
        if let (Decision::ServeAndRefresh, Some(p)) = (&decision, &route) {
            let claimed = claim_refresh(&p.route, now);
            let _ = put(s, self.pool, name, &claimed, now, t);
        }
        (decision, route)
    }

    /// Stores what a finished lookup means for `name`.
    pub fn store_outcome(
        &self,
        name: &[u8],
        outcome: &Outcome,
        now: u64,
        t: &Timing,
    ) -> Result<(), StoreError> {
        let mut l = self.lock();
        let s = l.shared().ok_or(StoreError::NoZone)?;
        let old = s
            .routes
            .get(NgxStr::from_bytes(name))
            .and_then(|slot| Route::decode(slot.route.as_bytes()));
        match after_lookup(old.as_ref(), outcome, now, t) {
            Some(route) => put(s, self.pool, name, &route, now, t),
            None => Ok(()),
        }
    }

    /// Gives up this worker's claim to refresh `name` (its lookup could not
    /// run or was cut short), so that the next request claims it.
    pub fn release_refresh(&self, name: &[u8], now: u64, t: &Timing) {
        let mut l = self.lock();
        let Some(s) = l.shared() else { return };
        let Some(mut r) = s
            .routes
            .get(NgxStr::from_bytes(name))
            .and_then(|slot| Route::decode(slot.route.as_bytes()))
        else {
            return;
        };
        if r.refresh_ms != 0 {
            r.refresh_ms = 0;
            let _ = put(s, self.pool, name, &r, now, t);
        }
    }
}

/// Inserts or replaces `name`'s route, evicting a batch of the least
/// valuable routes when the zone is full.
fn put(
    s: &mut Shared,
    pool: NonNull<ngx_slab_pool_t>,
    name: &[u8],
    route: &Route,
    now: u64,
    t: &Timing,
) -> Result<(), StoreError> {
    let value = route.encode();
    let used_ms = s
        .routes
        .remove(NgxStr::from_bytes(name))
        .map_or(now, |old| old.used_ms);
    for attempt in 0..3 {
        if attempt > 0 {
            evict_batch(s, now, t, 4 * attempt);
        }
        let alloc = ShmAlloc(pool);
        let (Ok(k), Ok(v)) = (
            NgxString::try_from_bytes_in(name, alloc.clone()),
            NgxString::try_from_bytes_in(value.as_bytes(), alloc),
        ) else {
            continue;
        };
        if s.routes.try_insert(k, Slot { used_ms, route: v }).is_ok() {
            return Ok(());
        }
    }
    Err(StoreError::Full)
}

fn evict_batch(s: &mut Shared, now: u64, t: &Timing, min: usize) {
    let entries: Vec<(Vec<u8>, evict::Candidate)> = s
        .routes
        .iter()
        .map(|(k, slot)| {
            let route = Route::decode(slot.route.as_bytes());
            let (expired, negative) = match &route {
                Some(r) => {
                    let age = now.saturating_sub(r.fetched_ms);
                    match r.kind {
                        RouteKind::Found => (age >= t.stale_ms, false),
                        RouteKind::NotFound => (age >= t.negative_ms, true),
                    }
                }
                None => (true, true),
            };
            let c = evict::Candidate {
                expired,
                negative,
                used_ms: slot.used_ms,
            };
            (k.as_bytes().to_vec(), c)
        })
        .collect();
    let candidates: Vec<evict::Candidate> = entries.iter().map(|(_, c)| *c).collect();
    let victims = evict::victims(&candidates, min);
    s.counters
        .evictions
        .fetch_add(victims.len() as u64, Ordering::Relaxed);
    for i in victims {
        let _ = s.routes.remove(NgxStr::from_bytes(&entries[i].0));
    }
}
