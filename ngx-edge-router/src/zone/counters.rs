//! Counters every worker adds to without the lock (atomics in shared
//! memory), and the snapshot the metrics handler reports.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use edge_router_policy::metrics::{self, Event, OriginCounters, Snapshot};
use edge_router_policy::{Route, RouteKind};
use ngx::core::NgxStr;

use super::{Shared, Zone};

/// Counters updated without the lock (atomics in shared memory: every
/// worker adds to the same ones).
pub(super) struct Counters {
    pub(super) events: [AtomicU64; 9],
    pub(super) latency: [AtomicU64; 10],
    pub(super) latency_sum_ms: AtomicU64,
    pub(super) evictions: AtomicU64,
    /// Viewer requests not counted: the audience table was full.
    pub(super) audience_full: AtomicU64,
    /// Entries in the failure memory: while 0 (the normal case) a request
    /// needs no lock to learn that no origin is down.
    pub(super) health_entries: AtomicU64,
    /// Per-origin attempts and failures, in a fixed open-addressed table
    /// (claimed by a compare-and-swap of the address's hash).
    pub(super) origins: [OriginSlot; ORIGIN_SLOTS],
}

/// Origins whose attempts are counted; more are not.
const ORIGIN_SLOTS: usize = 128;
/// Longest origin address kept for the metrics (`[v6]:port` fits).
const ADDR_MAX: usize = 64;

/// One origin's attempts and failures (for the metrics).
pub(super) struct OriginSlot {
    /// The address's hash (never 0); 0: free.
    pub(super) key: AtomicU64,
    /// The address's length + 1 once its bytes are written; 0 until then.
    pub(super) ready: AtomicU64,
    pub(super) addr: [AtomicU8; ADDR_MAX],
    pub(super) selections: AtomicU64,
    pub(super) failures: AtomicU64,
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
    /// All zero: a new zone's.
    pub(super) fn new() -> Counters {
        Counters {
            events: Default::default(),
            latency: Default::default(),
            latency_sum_ms: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            audience_full: AtomicU64::new(0),
            health_entries: AtomicU64::new(0),
            origins: core::array::from_fn(|_| OriginSlot::free()),
        }
    }

    /// The slot of `addr`, claimed if new; `None` when the table is full.
    pub(super) fn origin(&self, addr: &[u8]) -> Option<&OriginSlot> {
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

impl Zone {
    /// The counters, reachable without the lock.
    pub(super) fn counters(&self) -> Option<&Counters> {
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
            snap.audience_full = c.audience_full.load(Ordering::Relaxed);
        }
        let mut l = self.lock();
        // SAFETY: the pool header is valid while the zone is mapped.
        let sp = unsafe { &*self.pool.as_ptr() };
        // SAFETY: a plain integer set once at startup.
        let page = unsafe { ngx::ffi::ngx_pagesize } as u64;
        snap.zone_bytes = (sp.end as u64).saturating_sub(sp.start as u64);
        snap.zone_used_bytes = snap.zone_bytes.saturating_sub(sp.pfree as u64 * page);
        let Some(s) = l.shared() else { return snap };
        for (k, a) in s.audience.streams.iter() {
            let n = a.count(now);
            if n > 0 && edge_router_policy::is_valid_stream_name(k.as_bytes()) {
                snap.viewers
                    .push((String::from_utf8_lossy(k.as_bytes()).into_owned(), n));
            }
        }
        snap.viewers.sort();
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
