//! Viewer counts in the zone: one [`Audience`] (two HyperLogLog sketches,
//! 8 KB) per stream with viewers, in a red-black tree of the slab pool, at
//! most a quarter of the zone's size (the rest stays for routes), and when
//! the edge last sent its report to the API.
//!
//! Only routed requests are counted (a stream that exists), so a viewer
//! cannot make the table grow with made-up names. A stream's entry leaves
//! when a new stream needs room and nobody watched it within the window.

use core::sync::atomic::Ordering;

use edge_router_policy::Audience;
use ngx::core::{NgxStr, NgxString};

use super::alloc::ShmAlloc;
use super::{Shared, Zone};

/// Slab pages an entry takes (the sketches, the key and the tree node,
/// rounded up to whole 4 KB pages by the slab allocator).
const ENTRY_BYTES: usize = 3 * 4096;

/// The audience part of the zone's shared structures.
pub(super) struct Audiences {
    pub(super) streams: ngx::collections::RbTreeMap<super::Key, Audience, ShmAlloc>,
    /// Entries in `streams`.
    pub(super) len: usize,
    /// Most streams counted at once.
    pub(super) cap: usize,
    /// When a worker last claimed sending the report (nginx's ms clock).
    pub(super) report_ms: u64,
}

impl Audiences {
    pub(super) fn new(alloc: ShmAlloc, zone_bytes: usize) -> Option<Audiences> {
        Some(Audiences {
            streams: ngx::collections::RbTreeMap::try_new_in(alloc).ok()?,
            len: 0,
            cap: (zone_bytes / 4 / ENTRY_BYTES).max(1),
            report_ms: 0,
        })
    }
}

impl Zone {
    /// Records viewer `hash` watching `name` at `now` (not when the table
    /// is full of streams being watched: see the metrics); and, with
    /// `report` (an interval in ms), whether this caller is the one to send
    /// the viewer report now. One hold of the lock for both.
    pub fn see(&self, name: &[u8], hash: u64, now: u64, report: Option<u64>) -> bool {
        let mut l = self.lock();
        let pool = self.pool;
        let Some(s) = l.shared() else {
            return false;
        };
        let due = report.is_some_and(|interval| claim_report(s, now, interval));
        if let Some(a) = s.audience.streams.get_mut(NgxStr::from_bytes(name)) {
            a.see(hash, now);
            return due;
        }
        if s.audience.len >= s.audience.cap && !evict_idle(s, now) {
            s.counters.audience_full.fetch_add(1, Ordering::Relaxed);
            return due;
        }
        let alloc = ShmAlloc(pool);
        let Ok(key) = NgxString::try_from_bytes_in(name, alloc) else {
            s.counters.audience_full.fetch_add(1, Ordering::Relaxed);
            return due;
        };
        let mut a = Audience::default();
        a.see(hash, now);
        if s.audience.streams.try_insert(key, a).is_err() {
            s.counters.audience_full.fetch_add(1, Ordering::Relaxed);
            return due;
        }
        s.audience.len += 1;
        due
    }

    /// Each counted stream's current number of viewers.
    pub fn audiences(&self, now: u64) -> Vec<(Vec<u8>, u64)> {
        let mut l = self.lock();
        let Some(s) = l.shared() else {
            return Vec::new();
        };
        s.audience
            .streams
            .iter()
            .map(|(k, a)| (k.as_bytes().to_vec(), a.count(now)))
            .collect()
    }
}

/// Claims sending the viewer report (one worker every `interval` ms).
fn claim_report(s: &mut Shared, now: u64, interval: u64) -> bool {
    if s.audience.report_ms != 0 && now.saturating_sub(s.audience.report_ms) < interval {
        return false;
    }
    s.audience.report_ms = now;
    true
}

/// Drops the entries nobody watched within the window; false if none.
fn evict_idle(s: &mut Shared, now: u64) -> bool {
    let idle: Vec<Vec<u8>> = s
        .audience
        .streams
        .iter()
        .filter(|(_, a)| a.is_idle(now))
        .map(|(k, _)| k.as_bytes().to_vec())
        .collect();
    for k in &idle {
        if s.audience.streams.remove(NgxStr::from_bytes(k)).is_some() {
            s.audience.len -= 1;
        }
    }
    !idle.is_empty()
}
