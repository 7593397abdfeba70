//! Which routes leave a full zone. Live routes are what viewers need, so they
//! go last: first entries past every use (expired), then "not found" entries
//! (a flood of random names creates only those), then found routes, least
//! recently used first. A batch is evicted at once (about an eighth of the
//! zone) so that a full zone is not scanned on every insert.

/// One cached entry as eviction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Past its usable life (a found route beyond `stale`, a negative one
    /// beyond `negative`).
    pub expired: bool,
    /// A "not found" entry.
    pub negative: bool,
    /// Last use (ms).
    pub used_ms: u64,
}

/// Indices into `entries` to evict: every expired entry, and at least
/// `max(min, len / 8)` entries in all when there are that many.
pub fn victims(entries: &[Candidate], min: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| {
        let c = &entries[i];
        (!c.expired, !c.negative, c.used_ms)
    });
    let expired = entries.iter().filter(|c| c.expired).count();
    let want = expired.max(min).max(entries.len() / 8).min(entries.len());
    order.truncate(want);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(expired: bool, negative: bool, used_ms: u64) -> Candidate {
        Candidate {
            expired,
            negative,
            used_ms,
        }
    }

    #[test]
    fn expired_then_negative_then_least_recently_used() {
        let e = [
            c(false, false, 10), // 0 live, old
            c(false, true, 50),  // 1 negative
            c(true, false, 90),  // 2 expired
            c(false, false, 99), // 3 live, recent
            c(false, true, 20),  // 4 negative, older
        ];
        assert_eq!(victims(&e, 1), vec![2]);
        assert_eq!(victims(&e, 3), vec![2, 4, 1]);
        assert_eq!(victims(&e, 4), vec![2, 4, 1, 0]);
        assert_eq!(victims(&e, 9).len(), 5);
    }

    #[test]
    fn a_flood_of_unknown_names_never_evicts_live_routes_first() {
        let mut e: Vec<Candidate> = (0..1000).map(|i| c(false, true, 1_000 + i)).collect();
        e.push(c(false, false, 0)); // the live route, not used for a while
        let v = victims(&e, 1);
        assert_eq!(v.len(), 1001 / 8);
        assert!(!v.contains(&1000));
    }

    #[test]
    fn empty() {
        assert!(victims(&[], 4).is_empty());
    }
}
