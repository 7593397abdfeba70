//! Rule 9: blocking playlist reloads (6.2.5.2) and the production cadence
//! they reveal (6.2.1).

use super::ids_media::*;
use crate::findings::Issue;
use crate::m3u8::{MediaPlaylist, Pos};

/// What a blocking request asked for: `_HLS_msn` and maybe `_HLS_part`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub msn: u64,
    pub part: Option<u64>,
}

impl Request {
    pub fn query(&self) -> String {
        match self.part {
            Some(p) => format!("_HLS_msn={}&_HLS_part={p}", self.msn),
            None => format!("_HLS_msn={}", self.msn),
        }
    }
}

/// The request a strict client sends for the next part after `pl`; with
/// `past_last` (and no part of the next segment listed yet) it asks for the
/// part after the last one of the last complete segment, which the server
/// MUST treat as part 0 of the next segment (6.2.5.2).
pub fn next_request(pl: &MediaPlaylist, past_last: bool) -> Request {
    let next = pl.next_part();
    if !pl.has_parts && pl.part_target.is_none() {
        return Request {
            msn: pl.next_msn(),
            part: None,
        };
    }
    if past_last && next.part == 0 {
        if let Some(s) = pl.segments.last().filter(|s| !s.parts.is_empty()) {
            return Request {
                msn: s.msn,
                part: Some(s.parts.len() as u64),
            };
        }
    }
    Request {
        msn: next.msn,
        part: Some(next.part),
    }
}

/// Whether `pl` satisfies `req` (6.2.5.2): it has the segment `msn` (or a
/// later one), or the part (`msn`, `part`) or a later part; a part index
/// past the last part of a complete segment means part 0 of the next.
pub fn satisfies(pl: &MediaPlaylist, req: Request) -> bool {
    let Some(part) = req.part else {
        return pl.last_msn().is_some_and(|m| m >= req.msn);
    };
    let want = match pl.segment(req.msn) {
        Some(s) if part >= s.parts.len() as u64 => Pos {
            msn: req.msn.saturating_add(1),
            part: 0,
        },
        _ => Pos { msn: req.msn, part },
    };
    if pl.last_msn().is_some_and(|m| m >= want.msn) {
        return true;
    }
    pl.last_part().is_some_and(|last| last >= want)
}

/// The Advance Part Limit (6.2.5.2): 3 / PART-TARGET below 1 s, else 3.
pub fn advance_part_limit(part_target: f64) -> f64 {
    if part_target < 1.0 {
        3.0 / part_target
    } else {
        3.0
    }
}

/// Judges the answer to a blocking request: `status`, how long it was held
/// (`held`, seconds), the parsed playlist if 200.
pub fn answer(
    req: Request,
    status: Option<u16>,
    held: f64,
    td: f64,
    pl: Option<&MediaPlaylist>,
) -> Vec<Issue> {
    let mut out = Vec::new();
    let key = req.query();
    let limit = 3.0 * td;
    if held > limit + 0.5 && status != Some(503) {
        out.push(Issue::new(
            &BLOCKING_HELD_TOO_LONG,
            key.clone(),
            format!("{key}: held {held:.2} s (> 3 x TARGETDURATION = {limit:.0} s) without 503"),
        ));
    }
    match (status, pl) {
        (Some(200), Some(pl)) if !satisfies(pl, req) => {
            out.push(Issue::new(
                &BLOCKING_TOO_OLD,
                key.clone(),
                format!(
                    "{key}: answered after {held:.2} s with a playlist ending at msn {} part {:?}",
                    pl.next_msn(),
                    pl.last_part()
                ),
            ));
        }
        (Some(503), _) => out.push(Issue::new(
            &BLOCKING_UNAVAILABLE,
            key.clone(),
            format!("{key}: 503 after {held:.2} s"),
        )),
        (Some(s), _) if s != 200 => out.push(Issue::new(
            &BLOCKING_STATUS,
            key.clone(),
            format!("{key}: status {s} after {held:.2} s"),
        )),
        _ => {}
    }
    out
}

/// The deliberate bad requests the checker sends (rate-limited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `_HLS_msn` = last MSN + 3.
    MsnTooFar,
    /// `_HLS_part` past the Advance Part Limit.
    PartTooFar,
    /// `_HLS_part` without `_HLS_msn`.
    PartWithoutMsn,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::PartWithoutMsn, Probe::MsnTooFar, Probe::PartTooFar];

    /// The query of the probe against the current playlist.
    pub fn query(self, pl: &MediaPlaylist) -> String {
        let next = pl.next_part();
        match self {
            Probe::MsnTooFar => format!(
                "_HLS_msn={}",
                pl.last_msn().unwrap_or(pl.next_msn()).saturating_add(3)
            ),
            Probe::PartTooFar => {
                let limit = advance_part_limit(pl.part_target.unwrap_or(1.0)).ceil() as u64;
                format!(
                    "_HLS_msn={}&_HLS_part={}",
                    next.msn,
                    next.part.saturating_add(limit).saturating_add(2)
                )
            }
            Probe::PartWithoutMsn => format!("_HLS_part={}", next.part),
        }
    }

    /// Judges the answer: 400 within 1 s expected.
    pub fn judge(self, query: &str, status: Option<u16>, secs: f64) -> Vec<Issue> {
        let rule = match self {
            Probe::MsnTooFar => &MSN_TOO_FAR_ACCEPTED,
            Probe::PartTooFar => &PART_TOO_FAR_ACCEPTED,
            Probe::PartWithoutMsn => &PART_WITHOUT_MSN_ACCEPTED,
        };
        let key = format!("{self:?}");
        match status {
            Some(400) if secs > 1.0 => vec![Issue::new(
                &BAD_REQUEST_SLOW,
                key,
                format!("{query}: 400 after {secs:.2} s"),
            )],
            Some(400) => Vec::new(),
            s => vec![Issue::new(
                rule,
                key,
                format!(
                    "{query}: answered {} after {secs:.2} s instead of 400",
                    s.map(|s| s.to_string())
                        .unwrap_or_else(|| "nothing (timeout)".into())
                ),
            )],
        }
    }
}

/// Cadence (6.2.1): `count` new parts, the first at `first`, appeared
/// `gap` seconds after part `prev` (seen by requests that waited for them).
pub fn part_cadence(
    prev: Pos,
    first: Pos,
    count: usize,
    gap: f64,
    part_target: f64,
) -> Option<Issue> {
    let key = format!("msn {} part {}", first.msn, first.part);
    let what = if count > 1 {
        format!("{count} parts from {key} appeared together")
    } else {
        format!("{key} appeared")
    };
    (gap > part_target + 0.1).then(|| {
        Issue::new(
            &PART_CADENCE,
            key.clone(),
            format!(
                "{what} {gap:.3} s after msn {} part {} (PART-TARGET {part_target:.3} s)",
                prev.msn, prev.part
            ),
        )
    })
}

/// Cadence (6.2.1): `gap` seconds between two new segments.
pub fn segment_cadence(msn: u64, gap: f64, td: f64) -> Option<Issue> {
    (gap > 1.5 * td + 0.1).then(|| {
        Issue::new(
            &SEGMENT_CADENCE,
            format!("msn {msn}"),
            format!("msn {msn} appeared {gap:.3} s after the previous segment (1.5 x TARGETDURATION = {:.1} s)", 1.5 * td),
        )
    })
}

/// Hold-time distribution of next-part requests, in milliseconds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HoldStats {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn hold_stats(samples: &[f64]) -> HoldStats {
    if samples.is_empty() {
        return HoldStats::default();
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
    HoldStats {
        count: s.len(),
        p50_ms: at(0.5).round(),
        p99_ms: at(0.99).round(),
        max_ms: (s[s.len() - 1] * 1000.0).round(),
    }
}

#[cfg(test)]
#[path = "blocking_tests.rs"]
mod tests;
