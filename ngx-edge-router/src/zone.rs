//! The shared zone of `edge_router_zone`: the route cache (stream name →
//! encoded [`Route`]) and the origins' failure memory, in red-black trees
//! allocated from the zone's slab pool.
//!
//! Every access holds the slab pool's own mutex (`ngx_shmtx_t`), like nginx's
//! C modules do: when a worker dies holding it (OOM killer, crash), the
//! master process force-unlocks it by pid, so a dead worker can never wedge
//! the others. The lock is held for one lookup or one update, never across
//! I/O. When the zone is full, a batch of the least valuable routes is
//! evicted (see `edge_router_policy::evict`), never the whole cache.

use core::alloc::Layout;
use core::ffi::c_void;
use core::ptr::NonNull;

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::rc::Rc;

use edge_router_policy::metrics::{self, Event, OriginCounters, Snapshot};
use edge_router_policy::{
    after_lookup, claim_refresh, decide, evict, Decision, FailPolicy, Health, Outcome, Prepared,
    Route, RouteKind, Timing,
};
use ngx::allocator::{AllocError, Allocator};
use ngx::collections::RbTreeMap;
use ngx::core::{NgxStr, NgxString, Status};
use ngx::ffi::{
    ngx_int_t, ngx_shm_zone_t, ngx_shmtx_lock, ngx_shmtx_unlock, ngx_slab_alloc_locked,
    ngx_slab_free_locked, ngx_slab_pool_t,
};

use crate::ffi::guard;
use crate::local;

/// Allocates from the zone's slab pool; only used while [`Locked`] holds the
/// pool's mutex, hence the `_locked` slab functions.
#[derive(Clone)]
struct ShmAlloc(NonNull<ngx_slab_pool_t>);

// SAFETY: memory comes from the slab pool, which stays mapped for the whole
// life of the worker; every allocation and free happens with the pool's
// mutex held (the only way to reach a `ShmAlloc` is through `Locked`).
unsafe impl Allocator for ShmAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let size = layout.size().max(layout.align()).max(1);
        // SAFETY: the pool is valid and locked by the caller (see above).
        let p = unsafe { ngx_slab_alloc_locked(self.0.as_ptr(), size) };
        let p = NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
        if p.align_offset(layout.align()) != 0 {
            // SAFETY: `p` was just allocated from this pool.
            unsafe { ngx_slab_free_locked(self.0.as_ptr(), p.as_ptr().cast()) };
            return Err(AllocError);
        }
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, _layout: Layout) {
        // SAFETY: `ptr` came from `allocate` on this pool, which is locked.
        unsafe { ngx_slab_free_locked(self.0.as_ptr(), ptr.as_ptr().cast()) }
    }
}

type Key = NgxString<ShmAlloc>;

/// A cached route and its last use (for least-recently-used eviction).
struct Slot {
    used_ms: u64,
    route: NgxString<ShmAlloc>,
}

/// Counters updated without the lock (atomics in shared memory: every
/// worker adds to the same ones).
struct Counters {
    events: [AtomicU64; 9],
    latency: [AtomicU64; 10],
    latency_sum_ms: AtomicU64,
    evictions: AtomicU64,
    /// Entries in the failure memory: while 0 (the normal case) a request
    /// needs no lock to learn that no origin is down.
    health_entries: AtomicU64,
    /// Per-origin attempts and failures, in a fixed open-addressed table
    /// (claimed by a compare-and-swap of the address's hash).
    origins: [OriginSlot; ORIGIN_SLOTS],
}

/// Origins whose attempts are counted; more are not.
const ORIGIN_SLOTS: usize = 128;
/// Longest origin address kept for the metrics (`[v6]:port` fits).
const ADDR_MAX: usize = 64;

/// One origin's attempts and failures (for the metrics).
struct OriginSlot {
    /// The address's hash (never 0); 0: free.
    key: AtomicU64,
    /// The address's length + 1 once its bytes are written; 0 until then.
    ready: AtomicU64,
    addr: [AtomicU8; ADDR_MAX],
    selections: AtomicU64,
    failures: AtomicU64,
}

impl OriginSlot {
    fn free() -> OriginSlot {
        OriginSlot {
            key: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            addr: core::array::from_fn(|_| AtomicU8::new(0)),
            selections: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }
}

/// FNV-1a, never 0.
fn addr_hash(addr: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in addr {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

impl Counters {
    /// The slot of `addr`, claimed if new; `None` when the table is full.
    fn origin(&self, addr: &[u8]) -> Option<&OriginSlot> {
        let h = addr_hash(addr);
        let start = (h as usize) % ORIGIN_SLOTS;
        for i in 0..ORIGIN_SLOTS {
            let slot = &self.origins[(start + i) % ORIGIN_SLOTS];
            // The common case, a known origin, needs no locked instruction.
            let k = slot.key.load(Ordering::Acquire);
            if k == h {
                return Some(slot);
            }
            if k != 0 {
                continue;
            }
            match slot
                .key
                .compare_exchange(0, h, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let n = addr.len().min(ADDR_MAX);
                    for (d, &b) in slot.addr.iter().zip(&addr[..n]) {
                        d.store(b, Ordering::Relaxed);
                    }
                    slot.ready.store(n as u64 + 1, Ordering::Release);
                    return Some(slot);
                }
                Err(k) if k == h => return Some(slot),
                Err(_) => {}
            }
        }
        None
    }
}

/// Everything in the zone, reached through the slab pool's `data` pointer.
struct Shared {
    routes: RbTreeMap<Key, Slot, ShmAlloc>,
    health: RbTreeMap<Key, Health, ShmAlloc>,
    counters: Counters,
}

/// Origins remembered at most; failures of more origins are not recorded.
const MAX_HEALTH_ENTRIES: usize = 1024;
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
            let (Ok(routes), Ok(health)) = (
                RbTreeMap::try_new_in(alloc.clone()),
                RbTreeMap::try_new_in(alloc.clone()),
            ) else {
                return Status::NGX_ERROR.into();
            };
            let counters = Counters {
                events: Default::default(),
                latency: Default::default(),
                latency_sum_ms: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                health_entries: AtomicU64::new(0),
                origins: core::array::from_fn(|_| OriginSlot::free()),
            };
            let shared = Shared {
                routes,
                health,
                counters,
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

    /// Which of `addrs` are down (failed recently, see `edge_router_max_fails`).
    pub fn down(&self, addrs: &[&[u8]], now: u64) -> Vec<bool> {
        if self
            .counters()
            .is_some_and(|c| c.health_entries.load(Ordering::Acquire) == 0)
        {
            return vec![false; addrs.len()];
        }
        let mut l = self.lock();
        let Some(s) = l.shared() else {
            return vec![false; addrs.len()];
        };
        addrs
            .iter()
            .map(|a| {
                s.health
                    .get(NgxStr::from_bytes(a))
                    .is_some_and(|h| h.is_down(now))
            })
            .collect()
    }

    /// Records the result of one attempt at origin `addr` (metrics, and
    /// the failure memory); returns whether the origin just went down.
    pub fn record_attempt(&self, addr: &[u8], failed: bool, now: u64, p: &FailPolicy) -> bool {
        let Some(c) = self.counters() else {
            return false;
        };
        if let Some(slot) = c.origin(addr) {
            slot.selections.fetch_add(1, Ordering::Relaxed);
            if failed {
                slot.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        // A success with nothing remembered (the normal case) needs no lock.
        if p.max_fails == 0 || (!failed && c.health_entries.load(Ordering::Acquire) == 0) {
            return false;
        }
        let mut l = self.lock();
        let pool = self.pool;
        let Some(s) = l.shared() else { return false };
        let key = NgxStr::from_bytes(addr);
        if let Some(h) = s.health.get_mut(key) {
            if failed {
                return h.record_failure(now, p);
            }
            h.record_success();
            if s.health.remove(key).is_some() {
                s.counters.health_entries.fetch_sub(1, Ordering::AcqRel);
            }
            return false;
        }
        if !failed {
            return false;
        }
        let mut h = Health::default();
        let down = h.record_failure(now, p);
        if s.health.iter().count() >= MAX_HEALTH_ENTRIES {
            // Forget the origins that are up again first.
            let up: Vec<Vec<u8>> = s
                .health
                .iter()
                .filter(|(_, h)| !h.is_down(now))
                .map(|(k, _)| k.as_bytes().to_vec())
                .collect();
            for k in up {
                if s.health.remove(NgxStr::from_bytes(&k)).is_some() {
                    s.counters.health_entries.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        if let Ok(k) = NgxString::try_from_bytes_in(addr, ShmAlloc(pool)) {
            if s.health.try_insert(k, h).is_ok() {
                s.counters.health_entries.fetch_add(1, Ordering::AcqRel);
            }
        }
        down
    }

    /// The counters, reachable without the lock.
    fn counters(&self) -> Option<&Counters> {
        // SAFETY: `data` points at the `Shared` made in `init_zone`, which
        // lives as long as the zone; only its atomics are used here.
        unsafe { (*self.pool.as_ptr()).data.cast::<Shared>().as_ref() }.map(|s| &s.counters)
    }

    /// Counts one request's route event.
    pub fn count(&self, e: Event) {
        if let Some(c) = self.counters() {
            c.events[e.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records how long an API lookup took.
    pub fn observe_lookup(&self, ms: u64) {
        if let Some(c) = self.counters() {
            c.latency[metrics::bucket(ms)].fetch_add(1, Ordering::Relaxed);
            c.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
        }
    }

    /// Everything the metrics handler reports.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        let mut snap = Snapshot::default();
        if let Some(c) = self.counters() {
            for (i, v) in c.events.iter().enumerate() {
                snap.events[i] = v.load(Ordering::Relaxed);
            }
            for (i, v) in c.latency.iter().enumerate() {
                snap.latency[i] = v.load(Ordering::Relaxed);
            }
            snap.latency_sum_ms = c.latency_sum_ms.load(Ordering::Relaxed);
            snap.evictions = c.evictions.load(Ordering::Relaxed);
        }
        let mut l = self.lock();
        // SAFETY: the pool header is valid while the zone is mapped.
        let sp = unsafe { &*self.pool.as_ptr() };
        // SAFETY: a plain integer set once at startup.
        let page = unsafe { ngx::ffi::ngx_pagesize } as u64;
        snap.zone_bytes = (sp.end as u64).saturating_sub(sp.start as u64);
        snap.zone_used_bytes = snap.zone_bytes.saturating_sub(sp.pfree as u64 * page);
        let Some(s) = l.shared() else { return snap };
        for (_, slot) in s.routes.iter() {
            snap.routes += 1;
            if Route::decode(slot.route.as_bytes()).is_some_and(|r| r.kind == RouteKind::NotFound) {
                snap.negative_routes += 1;
            }
        }
        for slot in &s.counters.origins {
            let n = slot.ready.load(Ordering::Acquire);
            if n == 0 {
                continue;
            }
            let addr: Vec<u8> = slot.addr[..(n - 1) as usize]
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            snap.origins.push(OriginCounters {
                down: s
                    .health
                    .get(NgxStr::from_bytes(&addr))
                    .is_some_and(|h| h.is_down(now)),
                addr: String::from_utf8_lossy(&addr).into_owned(),
                selections: slot.selections.load(Ordering::Relaxed),
                failures: slot.failures.load(Ordering::Relaxed),
            });
        }
        snap.origins.sort_by(|a, b| a.addr.cmp(&b.addr));
        snap
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
