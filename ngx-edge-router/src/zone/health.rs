//! The origins' failure memory (`edge_router_max_fails`): which origins are
//! down, and each attempt's result. A request needs no lock while nothing
//! is remembered (the normal case).

use core::sync::atomic::Ordering;

use edge_router_policy::{FailPolicy, Health};
use ngx::core::{NgxStr, NgxString};

use super::alloc::ShmAlloc;
use super::Zone;

/// Origins remembered at most; failures of more origins are not recorded.
const MAX_HEALTH_ENTRIES: usize = 1024;

impl Zone {
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
}
