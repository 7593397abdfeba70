//! `rtmp-live-fanout`: many LL-HLS viewers of one stream through an edge,
//! for the edge's fan-out benchmark (`scripts/bench-fanout.sh`).
//!
//! Each viewer does what an RFC 8216bis client does at the live edge: a
//! blocking playlist reload for the next part (`_HLS_msn`/`_HLS_part`), then
//! every part it has not fetched yet, by byte range when the playlist gives
//! one. A probe follows the same playlist at the origin directly: the
//! moment it first sees a part listed there is when the part exists at the
//! origin. A viewer's delay for a part is the moment it holds the part's
//! bytes minus that moment; it counts only for parts the viewer was already
//! waiting for when they appeared (a viewer that catches up on older parts
//! measures its own lateness, not the edge).
//!
//! Viewers are spread over loopback source addresses, `per_address` each
//! (the edge limits held requests per client address, as it should).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::m3u8::{media, MediaPlaylist, Pos};

mod burst;
mod conn;
pub use burst::{burst, BurstOptions, BurstReport};
use conn::Conn;

/// A held reload is answered within the origin's hold (6 s) or refused.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The media playlist through the edge.
    pub edge: Url,
    /// The same playlist at the origin (the probe's).
    pub origin: Url,
    pub viewers: usize,
    pub seconds: f64,
    /// Viewers start spread over this many seconds.
    pub ramp: f64,
    /// Viewers per loopback source address.
    pub per_address: usize,
}

/// The run's figures (printed as JSON).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub viewers: usize,
    pub seconds: f64,
    /// Parts that appeared at the origin during the measured window.
    pub parts_at_origin: usize,
    /// Blocking reloads the probe made at the origin (to subtract from the
    /// origin's count).
    pub probe_reloads: usize,
    pub reloads: usize,
    pub parts_fetched: usize,
    pub part_bytes: u64,
    /// Non-200/206 answers and failed requests, by status ("error" for
    /// transport failures and time-outs).
    pub errors: HashMap<String, usize>,
    /// Parts counted in the delays (the viewer waited for them).
    pub delays_counted: usize,
    pub delay_ms_p50: f64,
    pub delay_ms_p90: f64,
    pub delay_ms_p99: f64,
    pub delay_ms_max: f64,
}

/// A part a viewer fetched: when it asked for it, when it had it.
struct Got {
    pos: Pos,
    asked: Instant,
    had: Instant,
}

#[derive(Default)]
struct Tally {
    reloads: usize,
    parts: usize,
    bytes: u64,
    errors: HashMap<String, usize>,
    got: Vec<Got>,
}

impl Tally {
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }
}

/// The `i`-th loopback source address (127.0.1.1, 127.0.1.2, ...).
fn source(i: usize) -> IpAddr {
    let i = i as u32;
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

/// Playlists parsed so far, by their bytes: thousands of viewers receive
/// the same revision, and parsing it once keeps the load generator's own
/// CPU out of the delays it measures.
#[derive(Default)]
pub struct Parsed(Mutex<HashMap<Vec<u8>, Arc<MediaPlaylist>>>);

impl Parsed {
    /// Revisions kept (a few seconds of parts).
    const KEEP: usize = 64;

    fn get(&self, body: Vec<u8>) -> Arc<MediaPlaylist> {
        if let Some(pl) = self.0.lock().expect("not poisoned").get(&body) {
            return Arc::clone(pl);
        }
        let pl = Arc::new(media::parse(&body).0);
        let mut map = self.0.lock().expect("not poisoned");
        if map.len() >= Self::KEEP {
            map.clear();
        }
        map.insert(body, Arc::clone(&pl));
        pl
    }
}

async fn playlist(
    c: &mut Conn,
    url: &Url,
    want: Option<Pos>,
    parsed: &Parsed,
) -> Result<Arc<MediaPlaylist>, String> {
    let url = match want {
        Some(p) => crate::follow::http::with_query(
            url,
            &format!("_HLS_msn={}&_HLS_part={}", p.msn, p.part),
        ),
        None => url.clone(),
    };
    match c.get(&url, None, TIMEOUT).await? {
        (200, body) => Ok(parsed.get(body)),
        (status, _) => Err(status.to_string()),
    }
}

/// The position after `pos`, given whether it ended its segment.
fn after(pos: Pos, last: bool) -> Pos {
    if last {
        Pos {
            msn: pos.msn + 1,
            part: 0,
        }
    } else {
        Pos {
            msn: pos.msn,
            part: pos.part + 1,
        }
    }
}

/// Follows `url` until `end` from the next part on: `on_part` is called for
/// every part from the wanted one on, in order, with the playlist it came in.
/// Returns the number of reloads.
async fn follow(
    c: &mut Conn,
    url: &Url,
    end: Instant,
    tally: &mut Tally,
    fetch: bool,
    seen: &Mutex<HashMap<Pos, Instant>>,
    parsed: &Parsed,
) {
    let mut want = loop {
        if Instant::now() >= end {
            return;
        }
        match playlist(c, url, None, parsed).await {
            Ok(pl) => break pl.next_part(),
            Err(e) => {
                tally.error(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    while Instant::now() < end {
        let asked = Instant::now();
        tally.reloads += 1;
        let pl = match playlist(c, url, Some(want), parsed).await {
            Ok(pl) => pl,
            Err(e) => {
                tally.error(e);
                continue;
            }
        };
        let now = Instant::now();
        let mut moved = false;
        let from = want;
        for (pos, part, _, last) in pl.parts().into_iter().filter(|(p, ..)| *p >= from) {
            moved = true;
            want = after(pos, last);
            if !fetch {
                seen.lock().expect("not poisoned").entry(pos).or_insert(now);
                continue;
            }
            let Ok(part_url) = url.join(&part.uri) else {
                tally.error("bad part URI".into());
                continue;
            };
            let range = part
                .byterange
                .map(|r| (r.offset, r.end().saturating_sub(1)));
            match c.get(&part_url, range, TIMEOUT).await {
                Ok((200 | 206, body)) => {
                    tally.parts += 1;
                    tally.bytes += body.len() as u64;
                    tally.got.push(Got {
                        pos,
                        asked,
                        had: Instant::now(),
                    });
                }
                Ok((status, _)) => tally.error(status.to_string()),
                Err(e) => tally.error(e),
            }
        }
        if !moved {
            // The wanted part never came: its segment ended before it, or
            // the viewer fell out of the window.
            want = if pl.segment(want.msn).is_some() {
                Pos {
                    msn: want.msn + 1,
                    part: 0,
                }
            } else {
                pl.next_part()
            };
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the viewers and the probe; the report.
pub async fn run(o: Options) -> Report {
    let seen: Arc<Mutex<HashMap<Pos, Instant>>> = Arc::default();
    let parsed: Arc<Parsed> = Arc::default();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(o.ramp + o.seconds);
    let probe = {
        let (seen, url) = (Arc::clone(&seen), o.origin.clone());
        tokio::spawn(async move {
            let mut t = Tally::default();
            match Conn::new(&url, None) {
                Ok(mut c) => {
                    follow(&mut c, &url, end, &mut t, false, &seen, &Parsed::default()).await
                }
                Err(e) => t.error(e),
            }
            t
        })
    };
    let per = o.per_address.max(1);
    let mut jobs = Vec::with_capacity(o.viewers);
    for v in 0..o.viewers {
        let (seen, url, parsed) = (Arc::clone(&seen), o.edge.clone(), Arc::clone(&parsed));
        let delay = Duration::from_secs_f64(o.ramp * v as f64 / o.viewers.max(1) as f64);
        jobs.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut t = Tally::default();
            match Conn::new(&url, Some(source(v / per))) {
                Ok(mut c) => follow(&mut c, &url, end, &mut t, true, &seen, &parsed).await,
                Err(e) => t.error(e),
            }
            t
        }));
    }
    let mut report = Report {
        viewers: o.viewers,
        seconds: o.seconds,
        ..Report::default()
    };
    let mut delays = Vec::new();
    let mut tallies = Vec::new();
    for j in jobs {
        if let Ok(t) = j.await {
            tallies.push(t);
        }
    }
    if let Ok(p) = probe.await {
        report.probe_reloads = p.reloads;
        for (e, n) in p.errors {
            *report.errors.entry(format!("probe {e}")).or_default() += n;
        }
    }
    let seen = seen.lock().expect("not poisoned");
    // the measured window: after every viewer started
    let measured_from = start + Duration::from_secs_f64(o.ramp);
    report.parts_at_origin = seen.values().filter(|t| **t >= measured_from).count();
    for t in tallies {
        report.reloads += t.reloads;
        report.parts_fetched += t.parts;
        report.part_bytes += t.bytes;
        for (e, n) in t.errors {
            *report.errors.entry(e).or_default() += n;
        }
        for g in t.got {
            let Some(&at) = seen.get(&g.pos) else {
                continue;
            };
            if at >= measured_from && g.asked <= at {
                delays.push(g.had.saturating_duration_since(at).as_secs_f64() * 1000.0);
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    report.delays_counted = delays.len();
    report.delay_ms_p50 = percentile(&delays, 0.50);
    report.delay_ms_p90 = percentile(&delays, 0.90);
    report.delay_ms_p99 = percentile(&delays, 0.99);
    report.delay_ms_max = delays.last().copied().unwrap_or(0.0);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_part_follows_the_segment_end() {
        let p = Pos { msn: 4, part: 2 };
        assert_eq!(after(p, false), Pos { msn: 4, part: 3 });
        assert_eq!(after(p, true), Pos { msn: 5, part: 0 });
    }

    #[test]
    fn sources_are_distinct_loopback_addresses() {
        let a: Vec<IpAddr> = (0..600).map(source).collect();
        assert!(a.iter().all(|x| x.is_loopback()));
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), a.len());
    }

    #[test]
    fn percentiles_pick_from_the_sorted_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
