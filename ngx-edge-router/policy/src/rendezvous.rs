//! Sticky origin choice by rendezvous (highest-random-weight) hashing: each
//! (stream, viewer, origin) triple gets a score and a viewer uses the origins
//! in descending score order. Adding or removing one origin only moves the
//! viewers whose top origin changed, and a viewer whose origin disappears
//! moves to its next-best one.

/// FNV-1a over the parts with separators, then a splitmix64 finalizer so that
/// similar inputs spread over the whole range. Stable across processes and
/// builds (unlike `std`'s randomly keyed hasher).
fn score(stream: &[u8], viewer: &[u8], origin: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [stream, b"\0", viewer, b"\0", origin] {
        for &b in part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Indices of `origins`, best first, for this viewer of this stream.
pub fn rank<S: AsRef<[u8]>>(stream: &[u8], viewer: &[u8], origins: &[S]) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = origins
        .iter()
        .enumerate()
        .map(|(i, o)| (score(stream, viewer, o.as_ref()), i))
        .collect();
    // Ties (practically impossible) break on the origin string for determinism.
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| origins[a.1].as_ref().cmp(origins[b.1].as_ref()))
    });
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Ranks the distinct origin names of `names` (which may repeat, one entry
/// per resolved address) for this viewer; returns indexes into `names`,
/// each origin's addresses together and in their order.
pub fn rank_grouped(stream: &[u8], viewer_key: &[u8], names: &[&str]) -> Vec<usize> {
    if !(1..names.len()).any(|i| names[..i].contains(&names[i])) {
        return rank(stream, viewer_key, names);
    }
    let mut distinct: Vec<&str> = Vec::with_capacity(names.len());
    for n in names {
        if !distinct.contains(n) {
            distinct.push(n);
        }
    }
    rank(stream, viewer_key, &distinct)
        .into_iter()
        .flat_map(|d| {
            let want = distinct[d];
            names
                .iter()
                .enumerate()
                .filter(move |(_, n)| **n == want)
                .map(|(i, _)| i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top<'a>(viewer: &str, origins: &[&'a str]) -> &'a str {
        origins[rank(b"golive", viewer.as_bytes(), origins)[0]]
    }

    #[test]
    fn deterministic_and_order_independent() {
        let a = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
        let b = ["10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"];
        for v in 0..200 {
            let v = format!("192.168.1.{v}");
            assert_eq!(top(&v, &a), top(&v, &a));
            assert_eq!(top(&v, &a), top(&v, &b));
        }
    }

    #[test]
    fn spreads_viewers() {
        let o = ["10.0.0.1:80", "10.0.0.2:80"];
        let first = (0..1000)
            .filter(|v| top(&format!("v{v}"), &o) == o[0])
            .count();
        assert!(
            (350..=650).contains(&first),
            "{first} of 1000 on the first origin"
        );
    }

    #[test]
    fn only_viewers_of_a_removed_origin_move() {
        let three = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
        let two = ["10.0.0.1:80", "10.0.0.3:80"];
        let mut moved = 0;
        for v in 0..1000 {
            let v = format!("v{v}");
            let before = top(&v, &three);
            let after = top(&v, &two);
            if before == "10.0.0.2:80" {
                moved += 1;
                // Its next-best choice among the full set.
                let ranked = rank(b"golive", v.as_bytes(), &three);
                assert_eq!(after, three[ranked[1]]);
            } else {
                assert_eq!(before, after, "viewer {v} moved without reason");
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn an_origins_addresses_stay_together_in_its_rank() {
        // two origins by name, the first resolved to two addresses
        let names = ["a.example:80", "b.example:80", "a.example:80"];
        let r = rank_grouped(b"golive", b"v1", &names);
        let mut sorted = r.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2], "a permutation");
        let distinct = ["a.example:80", "b.example:80"];
        let best = distinct[rank(b"golive", b"v1", &distinct)[0]];
        if best == "a.example:80" {
            assert_eq!(r, [0, 2, 1]);
        } else {
            assert_eq!(r, [1, 0, 2]);
        }
        // the same viewer ranks the names alike with one address each
        for v in 0..100 {
            let v = format!("v{v}");
            let grouped = rank_grouped(b"golive", v.as_bytes(), &names);
            let plain = rank(b"golive", v.as_bytes(), &distinct);
            assert_eq!(names[grouped[0]], distinct[plain[0]]);
        }
        // no repeats: exactly `rank`
        let o = ["x:1", "y:1", "z:1"];
        assert_eq!(rank_grouped(b"s", b"v", &o), rank(b"s", b"v", &o));
    }

    #[test]
    fn rank_is_a_permutation() {
        let o = ["a", "b", "c", "d"];
        let mut r = rank(b"s", b"v", &o);
        r.sort_unstable();
        assert_eq!(r, vec![0, 1, 2, 3]);
        assert!(rank::<&str>(b"s", b"v", &[]).is_empty());
    }
}
