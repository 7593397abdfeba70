//! Counting a stream's viewers in a bounded space: a HyperLogLog sketch per
//! time bucket, over registers the module keeps in nginx shared memory.
//!
//! Why not a crate: the sketches live in a fixed-size block of shared memory
//! written by every worker (no heap, no pointers), which the HyperLogLog
//! crates' heap-owned types cannot do; what is needed here is the register
//! update and the estimator (Flajolet et al. 2007, with linear counting for
//! small counts, as in Heule et al. 2013), a few lines each.
//!
//! A viewer is seen on every request (players reload their playlist every
//! part or segment, 0.3-2 s); the count is the union of the current and the
//! previous bucket of [`BUCKET_MS`], so it covers 10-20 s of requests and a
//! viewer who left drops out within [`WINDOW_MS`].

/// Register index bits: 4,096 registers, a relative standard error of about
/// 1.6 % (and about 1 % at 1,000 viewers, where linear counting applies).
pub const PRECISION: u32 = 12;
/// Registers per sketch (one byte each).
pub const REGISTERS: usize = 1 << PRECISION;
/// Length of one time bucket.
pub const BUCKET_MS: u64 = 10_000;
/// A viewer counts this long after their last request at most.
pub const WINDOW_MS: u64 = 2 * BUCKET_MS;
/// Sketches per stream: the current bucket and the previous one.
pub const BUCKETS: usize = 2;

/// One stream's viewer sketches: [`BUCKETS`] sketches, each tagged with the
/// bucket (time / [`BUCKET_MS`]) it counts. Plain bytes, so that it can sit
/// in shared memory as is.
#[repr(C)]
pub struct Audience {
    epochs: [u64; BUCKETS],
    registers: [[u8; REGISTERS]; BUCKETS],
}

impl Default for Audience {
    fn default() -> Self {
        Audience {
            epochs: [u64::MAX; BUCKETS],
            registers: [[0; REGISTERS]; BUCKETS],
        }
    }
}

/// Register index and rank of a 64-bit hash: the low [`PRECISION`] bits
/// choose the register, the rank is the position of the first 1 bit in the
/// rest (1-based).
fn index_rank(hash: u64) -> (usize, u8) {
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = hash >> PRECISION;
    let rank = (rest.trailing_zeros().min(64 - PRECISION) + 1) as u8;
    (index, rank)
}

impl Audience {
    /// Records the viewer whose key hashes to `hash` at `now_ms`.
    pub fn see(&mut self, hash: u64, now_ms: u64) {
        let epoch = now_ms / BUCKET_MS;
        let slot = (epoch % BUCKETS as u64) as usize;
        if self.epochs[slot] != epoch {
            self.epochs[slot] = epoch;
            self.registers[slot] = [0; REGISTERS];
        }
        let (i, rank) = index_rank(hash);
        let reg = &mut self.registers[slot][i];
        if *reg < rank {
            *reg = rank;
        }
    }

    /// True when no viewer was seen within the window.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        let epoch = now_ms / BUCKET_MS;
        !self.epochs.iter().any(|&e| live(e, epoch))
    }

    /// The number of distinct viewers seen in the current and the previous
    /// bucket at `now_ms`, estimated.
    pub fn count(&self, now_ms: u64) -> u64 {
        let epoch = now_ms / BUCKET_MS;
        let mut merged = [0u8; REGISTERS];
        let mut any = false;
        for (slot, &e) in self.epochs.iter().enumerate() {
            if live(e, epoch) {
                any = true;
                for (m, &r) in merged.iter_mut().zip(self.registers[slot].iter()) {
                    *m = (*m).max(r);
                }
            }
        }
        if !any {
            return 0;
        }
        estimate(&merged)
    }
}

fn live(bucket: u64, now: u64) -> bool {
    bucket != u64::MAX && bucket <= now && now - bucket < BUCKETS as u64
}

/// The HyperLogLog estimate of a sketch's registers, with linear counting
/// while registers are still empty and the raw estimate is small.
pub fn estimate(registers: &[u8; REGISTERS]) -> u64 {
    let m = REGISTERS as f64;
    let mut sum = 0.0;
    let mut zeros = 0usize;
    for &r in registers {
        // 2^-r, built from its exponent bits (no division per register:
        // counts are computed under the zone's lock)
        sum += f64::from_bits((1023 - u64::from(r.min(64))) << 52);
        if r == 0 {
            zeros += 1;
        }
    }
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let raw = alpha * m * m / sum;
    let e = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    e.round() as u64
}

/// The edge's viewer report for the API, `{"streams":{"<name>":<n>,...}}`:
/// streams with at least one viewer; names that are not valid stream names
/// are left out (they never reach the zone, but the report does not rely on
/// it: it has no escaping to get wrong).
pub fn report_json<'a>(streams: impl IntoIterator<Item = (&'a [u8], u64)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"streams\":{");
    let mut first = true;
    for (name, n) in streams {
        if n == 0 || !crate::is_valid_stream_name(name) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(n.to_string().as_bytes());
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-mixed 64-bit hash of `i` (SplitMix64's finalizer).
    fn h(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn boxed() -> Box<Audience> {
        Box::default()
    }

    #[test]
    fn empty_and_small() {
        let mut a = boxed();
        assert_eq!(a.count(0), 0);
        assert!(a.is_idle(0));
        a.see(h(1), 5);
        a.see(h(1), 6);
        assert_eq!(a.count(7), 1);
        for i in 0..10 {
            a.see(h(i), 8);
        }
        assert_eq!(a.count(9), 10);
    }

    #[test]
    fn within_five_percent_from_a_hundred_to_a_million() {
        for n in [100u64, 1_000, 10_000, 100_000, 1_000_000] {
            for trial in 0..3u64 {
                let mut a = boxed();
                for i in 0..n {
                    a.see(h(i + trial * 10_000_000), 1_000);
                }
                let c = a.count(1_000) as f64;
                let err = (c - n as f64).abs() / n as f64;
                assert!(
                    err < 0.05,
                    "n={n} trial={trial}: {c} ({:.1} %)",
                    err * 100.0
                );
            }
        }
    }

    #[test]
    fn repeated_requests_count_once() {
        let mut a = boxed();
        for t in 0..100 {
            for i in 0..1_000 {
                a.see(h(i), 1_000 + t * 50);
            }
        }
        let c = a.count(6_000);
        assert!((980..=1_020).contains(&c), "{c}");
    }

    #[test]
    fn viewers_who_left_drop_out_within_the_window() {
        let mut a = boxed();
        for i in 0..500 {
            a.see(h(i), 1_000);
        }
        // 250 of them stay, requesting every second.
        let mut t = 1_000;
        while t <= 1_000 + WINDOW_MS {
            for i in 0..250 {
                a.see(h(i), t);
            }
            t += 1_000;
        }
        let c = a.count(t);
        assert!((240..=260).contains(&c), "{c}");
        // Nobody at all: zero once the window has passed.
        assert_eq!(a.count(t + WINDOW_MS), 0);
        assert!(a.is_idle(t + WINDOW_MS));
    }

    #[test]
    fn a_viewer_is_counted_across_a_bucket_boundary() {
        let mut a = boxed();
        a.see(h(7), BUCKET_MS - 1);
        assert_eq!(a.count(BUCKET_MS + 1), 1);
        assert_eq!(a.count(2 * BUCKET_MS + 1), 0);
    }

    #[test]
    fn report() {
        let r = report_json([
            (&b"golive"[..], 3),
            (&b"idle"[..], 0),
            (&b"bad\"name"[..], 4),
            (&b"b"[..], 1),
        ]);
        assert_eq!(r, br#"{"streams":{"golive":3,"b":1}}"#);
        assert_eq!(report_json([]), br#"{"streams":{}}"#);
    }

    #[test]
    fn rank_of_a_zero_hash_is_bounded() {
        assert_eq!(index_rank(0), (0, (64 - PRECISION + 1) as u8));
        assert_eq!(index_rank(1 << PRECISION), (0, 1));
    }
}
