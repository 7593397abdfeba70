//! Origin failure memory, like nginx's `max_fails`/`fail_timeout`: an origin
//! that failed `max_fails` times within `fail_timeout` is skipped for
//! `fail_timeout` (tried only when every origin of the route is down), so
//! later requests do not pay a dead origin's timeout again.

/// `edge_router_max_fails` / `edge_router_fail_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailPolicy {
    /// 0 disables the failure memory.
    pub max_fails: u32,
    pub fail_timeout_ms: u64,
}

/// One origin's recent failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub fails: u32,
    /// Start of the current counting window.
    pub window_ms: u64,
    /// Skipped until then (0: not down).
    pub down_until_ms: u64,
}

impl Health {
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.down_until_ms != 0 && now_ms < self.down_until_ms
    }

    /// Counts a failed attempt; returns whether the origin just went down.
    pub fn record_failure(&mut self, now_ms: u64, p: &FailPolicy) -> bool {
        if p.max_fails == 0 {
            return false;
        }
        if now_ms.saturating_sub(self.window_ms) >= p.fail_timeout_ms || self.fails == 0 {
            self.window_ms = now_ms;
            self.fails = 0;
        }
        self.fails = self.fails.saturating_add(1);
        if self.fails >= p.max_fails && !self.is_down(now_ms) {
            self.down_until_ms = now_ms + p.fail_timeout_ms;
            self.fails = 0;
            return true;
        }
        false
    }

    /// A successful response clears the memory.
    pub fn record_success(&mut self) {
        *self = Health::default();
    }

    pub fn encode(&self) -> String {
        format!("{} {} {}", self.fails, self.window_ms, self.down_until_ms)
    }

    pub fn decode(s: &[u8]) -> Option<Health> {
        let s = std::str::from_utf8(s).ok()?;
        let mut it = s.split(' ');
        let h = Health {
            fails: it.next()?.parse().ok()?,
            window_ms: it.next()?.parse().ok()?,
            down_until_ms: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(h)
    }
}

/// Reorders a ranked list so that origins that are down come last, keeping
/// the viewer's order otherwise (stickiness is kept while its origin is up).
pub fn healthy_first<T>(ranked: Vec<T>, is_down: impl Fn(&T) -> bool) -> Vec<T> {
    let (up, down): (Vec<T>, Vec<T>) = ranked.into_iter().partition(|o| !is_down(o));
    up.into_iter().chain(down).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: FailPolicy = FailPolicy {
        max_fails: 2,
        fail_timeout_ms: 10_000,
    };

    #[test]
    fn goes_down_after_max_fails_within_the_window() {
        let mut h = Health::default();
        assert!(!h.record_failure(1_000, &P));
        assert!(!h.is_down(1_001));
        assert!(h.record_failure(2_000, &P));
        assert!(h.is_down(2_001));
        assert!(h.is_down(11_999));
        assert!(!h.is_down(12_000));
    }

    #[test]
    fn failures_far_apart_do_not_add_up() {
        let mut h = Health::default();
        h.record_failure(1_000, &P);
        assert!(!h.record_failure(20_000, &P));
        assert!(!h.is_down(20_001));
    }

    #[test]
    fn success_clears_and_zero_disables() {
        let mut h = Health::default();
        h.record_failure(1_000, &P);
        h.record_success();
        assert!(!h.record_failure(1_500, &P));
        let off = FailPolicy { max_fails: 0, ..P };
        let mut h = Health::default();
        for t in 0..10 {
            assert!(!h.record_failure(t, &off));
        }
        assert!(!h.is_down(10));
    }

    #[test]
    fn roundtrip() {
        let h = Health {
            fails: 1,
            window_ms: 2,
            down_until_ms: 3,
        };
        assert_eq!(Health::decode(h.encode().as_bytes()), Some(h));
        assert_eq!(Health::decode(b"1 2"), None);
        assert_eq!(Health::decode(b"1 2 3 4"), None);
    }

    #[test]
    fn down_origins_go_last_order_kept() {
        let got = healthy_first(vec!["a", "b", "c", "d"], |o| *o == "a" || *o == "c");
        assert_eq!(got, vec!["b", "d", "a", "c"]);
    }
}
