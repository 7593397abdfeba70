//! Who the simulated viewers are: which edge each one watches through, its
//! source address and its playback session id, and from that the truth a
//! perfect counter would report (distinct viewer keys per edge).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use serde::Serialize;

/// How the viewers present themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// Every viewer has its own source address, and sends no session id
    /// (a browser player).
    Distinct,
    /// Viewers share source addresses, `group` per address (a NAT, a
    /// campus), and each sends `X-Playback-Session-Id` (an Apple player).
    Shared,
    /// Half distinct, half shared, alternating, on every edge.
    Mixed,
}

/// What the edges count a viewer by (`edge_router_viewer_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Key {
    /// `$remote_addr`: viewers behind one address are one viewer.
    Addr,
    /// `$remote_addr/$http_x_playback_session_id`: a session id tells
    /// viewers behind one address apart.
    AddrSession,
}

/// One simulated viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    /// The edge (index into the edges) it watches through.
    pub edge: usize,
    pub addr: Ipv4Addr,
    /// Sent as `X-Playback-Session-Id`.
    pub session: Option<String>,
}

impl Who {
    /// The key the edge counts this viewer by.
    pub fn key(&self, key: Key) -> String {
        match key {
            Key::Addr => self.addr.to_string(),
            Key::AddrSession => {
                format!("{}/{}", self.addr, self.session.as_deref().unwrap_or(""))
            }
        }
    }
}

/// The `i`-th address of a pool: 127.`pool`.x.y, y in 1..=250.
fn address(pool: u8, i: usize) -> Ipv4Addr {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    Ipv4Addr::new(
        127,
        pool,
        u8::try_from(i / 250).unwrap_or(u8::MAX),
        1 + (i % 250) as u8,
    )
}

/// Most viewers of each kind (the address pools' size).
pub const MAX_VIEWERS: usize = 250 * 256;

/// A well-mixed 64-bit value of `x` (SplitMix64's finalizer).
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A session id shaped like the UUIDs Apple players send
/// (`8-4-4-4-12` upper-case hex, version 4), unique per `(seed, i)`.
pub fn session_id(seed: u64, i: usize) -> String {
    let a = mix(seed ^ mix(i as u64));
    let b = mix(a);
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// The viewers: viewer `i` watches through edge `i % edges`; its kind
/// (for [`Identity::Mixed`]) alternates with `i / edges`, so that every
/// edge gets both kinds. Distinct viewers take addresses from 127.1.0.0/16,
/// shared ones from 127.2.0.0/16, `group` per address in the order they
/// come (consecutive shared viewers watch through different edges: a
/// household's viewers need not share an edge).
pub fn crowd(
    viewers: usize,
    edges: usize,
    identity: Identity,
    group: usize,
    seed: u64,
) -> Vec<Who> {
    let edges = edges.max(1);
    let group = group.max(1);
    let (mut distinct, mut shared) = (0usize, 0usize);
    (0..viewers)
        .map(|i| {
            let is_shared = match identity {
                Identity::Distinct => false,
                Identity::Shared => true,
                Identity::Mixed => (i / edges) % 2 == 1,
            };
            let edge = i % edges;
            if is_shared {
                shared += 1;
                Who {
                    edge,
                    addr: address(2, (shared - 1) / group),
                    session: Some(session_id(seed, i)),
                }
            } else {
                distinct += 1;
                Who {
                    edge,
                    addr: address(1, distinct - 1),
                    session: None,
                }
            }
        })
        .collect()
}

/// Which viewers stay when only `keep` (0..=1) of them do: that fraction
/// of each edge's viewers of each kind, spread evenly over them (so that
/// the edges and the kinds of a mixed crowd keep the same share).
pub fn stayers(crowd: &[Who], keep: f64) -> Vec<bool> {
    let keep = keep.clamp(0.0, 1.0);
    let mut seen: HashMap<(usize, bool), usize> = HashMap::new();
    crowd
        .iter()
        .map(|w| {
            let n = seen.entry((w.edge, w.session.is_some())).or_default();
            let j = *n as f64;
            *n += 1;
            ((j + 1.0) * keep).floor() > (j * keep).floor()
        })
        .collect()
}

/// Distinct keys per edge among the viewers for which `watching(i)`.
pub fn truth(
    crowd: &[Who],
    edges: usize,
    key: Key,
    watching: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut sets: Vec<HashSet<String>> = vec![HashSet::new(); edges.max(1)];
    for (i, w) in crowd.iter().enumerate() {
        if watching(i) {
            sets[w.edge].insert(w.key(key));
        }
    }
    sets.iter().map(HashSet::len).collect()
}

/// Distinct source addresses per edge.
pub fn addresses(crowd: &[Who], edges: usize) -> Vec<usize> {
    truth(crowd, edges, Key::Addr, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_viewers_have_their_own_addresses() {
        let c = crowd(1000, 2, Identity::Distinct, 10, 1);
        assert_eq!(truth(&c, 2, Key::Addr, |_| true), [500, 500]);
        assert_eq!(truth(&c, 2, Key::AddrSession, |_| true), [500, 500]);
        assert!(c
            .iter()
            .all(|w| w.session.is_none() && w.addr.is_loopback()));
    }

    #[test]
    fn shared_viewers_are_told_apart_only_by_their_session() {
        let c = crowd(1000, 2, Identity::Shared, 10, 1);
        // 100 addresses of 10 viewers, 5 of each on each edge
        assert_eq!(addresses(&c, 2), [100, 100]);
        assert_eq!(truth(&c, 2, Key::Addr, |_| true), [100, 100]);
        assert_eq!(truth(&c, 2, Key::AddrSession, |_| true), [500, 500]);
    }

    #[test]
    fn a_mixed_crowd_gives_every_edge_both_kinds() {
        let c = crowd(1000, 2, Identity::Mixed, 10, 1);
        for e in 0..2 {
            let on: Vec<&Who> = c.iter().filter(|w| w.edge == e).collect();
            assert_eq!(on.len(), 500);
            assert_eq!(on.iter().filter(|w| w.session.is_some()).count(), 250);
        }
        // 250 distinct addresses on each edge, and the 50 shared ones
        // (each with 5 viewers on each edge) on both
        assert_eq!(addresses(&c, 2), [300, 300]);
        assert_eq!(truth(&c, 2, Key::AddrSession, |_| true), [500, 500]);
        let pools: HashSet<u8> = c.iter().map(|w| w.addr.octets()[1]).collect();
        assert_eq!(pools, HashSet::from([1, 2]));
    }

    #[test]
    fn session_ids_look_like_uuids_and_differ() {
        let ids: HashSet<String> = (0..10_000).map(|i| session_id(7, i)).collect();
        assert_eq!(ids.len(), 10_000);
        let id = session_id(7, 3);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(session_id(7, 3), session_id(8, 3));
    }

    #[test]
    fn half_stay_on_every_edge_and_of_every_kind() {
        let c = crowd(1000, 2, Identity::Mixed, 10, 1);
        let s = stayers(&c, 0.5);
        assert_eq!(truth(&c, 2, Key::AddrSession, |i| s[i]), [250, 250]);
        let kept_shared = (0..1000)
            .filter(|&i| s[i] && c[i].session.is_some())
            .count();
        assert_eq!(kept_shared, 250);
        let count = |keep| stayers(&c, keep).iter().filter(|&&x| x).count();
        assert_eq!(count(0.3), 300);
        assert_eq!(count(1.0), 1000);
        assert_eq!(count(0.0), 0);
        let d = crowd(1000, 2, Identity::Distinct, 10, 1);
        let s = stayers(&d, 0.5);
        assert_eq!(truth(&d, 2, Key::Addr, |i| s[i]), [250, 250]);
    }

    #[test]
    fn addresses_are_unique_per_pool() {
        let a: HashSet<Ipv4Addr> = (0..MAX_VIEWERS).map(|i| address(1, i)).collect();
        assert_eq!(a.len(), MAX_VIEWERS);
        assert!(a.iter().all(|x| x.octets()[3] != 0));
    }
}
