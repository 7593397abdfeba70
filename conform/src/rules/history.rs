//! Rules across reloads (5, 6, 7): what a playlist may and may not change
//! from one revision to the next. [`History`] remembers every segment and
//! part it saw (a bounded window) and compares each new revision with it.

use std::collections::BTreeMap;

use super::ids::*;
use crate::findings::Issue;
use crate::m3u8::{MediaPlaylist, Part};

/// What the history remembers of a complete segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegRec {
    pub uri: String,
    pub duration: f64,
    pub pdt_ms: Option<i64>,
    pub discontinuity: bool,
}

/// Segments kept below the current MEDIA-SEQUENCE (for late comparisons).
const KEEP_BEHIND: u64 = 64;

#[derive(Debug, Default)]
pub struct History {
    target_duration: Option<u64>,
    media_sequence: Option<u64>,
    disc_seq: Option<u64>,
    segments: BTreeMap<u64, SegRec>,
    parts: BTreeMap<u64, Vec<Part>>,
    /// Parts listed per MSN in the last absorbed revision.
    listed: BTreeMap<u64, usize>,
    pending_pdt: Option<(u64, i64)>,
    /// End of the newest revision absorbed: (next MSN, pending parts).
    newest: Option<(u64, usize)>,
}

fn end_of(pl: &MediaPlaylist) -> (u64, usize) {
    let pending = pl.pending.as_ref().map(|p| p.parts.len()).unwrap_or(0);
    (pl.next_msn(), pending)
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded segment `msn`.
    pub fn segment(&self, msn: u64) -> Option<&SegRec> {
        self.segments.get(&msn)
    }

    /// Parts recorded for `msn`.
    pub fn parts(&self, msn: u64) -> Option<&[Part]> {
        self.parts.get(&msn).map(|v| v.as_slice())
    }

    /// Whether `pl` ends before the newest revision already absorbed.
    pub fn is_stale(&self, pl: &MediaPlaylist) -> bool {
        self.newest.is_some_and(|n| end_of(pl) < n)
    }

    /// Compares a full (not delta) revision with what was seen before, then
    /// records it. A revision older than one already absorbed is reported as
    /// stale and not recorded.
    pub fn absorb(&mut self, pl: &MediaPlaylist) -> Vec<Issue> {
        let mut out = Vec::new();
        if self.is_stale(pl) {
            let (msn, parts) = self.newest.unwrap_or_default();
            out.push(Issue::new(
                &STALE_RELOAD,
                "stale",
                format!(
                    "a reload ended at msn {} (+{} parts) after one ending at msn {msn} (+{parts} parts) was received",
                    pl.next_msn(),
                    end_of(pl).1
                ),
            ));
            return out;
        }
        self.sequence_numbers(pl, &mut out);
        self.segments_unchanged(pl, &mut out);
        self.parts_unchanged(pl, &mut out);
        self.newest = Some(end_of(pl));
        self.target_duration = pl.target_duration.or(self.target_duration);
        self.media_sequence = Some(pl.media_sequence);
        self.disc_seq = Some(pl.discontinuity_sequence);
        let floor = pl.media_sequence.saturating_sub(KEEP_BEHIND);
        self.segments = self.segments.split_off(&floor);
        self.parts = self.parts.split_off(&floor);
        out
    }

    fn sequence_numbers(&self, pl: &MediaPlaylist, out: &mut Vec<Issue>) {
        if let (Some(old), Some(new)) = (self.target_duration, pl.target_duration) {
            if old != new {
                out.push(Issue::new(
                    &TARGET_DURATION_CHANGED,
                    format!("{old}->{new}"),
                    format!("TARGETDURATION changed from {old} to {new}"),
                ));
            }
        }
        let (Some(old_ms), Some(old_ds)) = (self.media_sequence, self.disc_seq) else {
            return;
        };
        let (new_ms, new_ds) = (pl.media_sequence, pl.discontinuity_sequence);
        if new_ms < old_ms {
            out.push(Issue::new(
                &MEDIA_SEQUENCE_DECREASED,
                format!("{old_ms}->{new_ms}"),
                format!("MEDIA-SEQUENCE went from {old_ms} to {new_ms}"),
            ));
            return;
        }
        let left: Option<Vec<bool>> = (old_ms..new_ms)
            .map(|m| self.segments.get(&m).map(|s| s.discontinuity))
            .collect();
        let expected = left.map(|l| old_ds.saturating_add(l.iter().filter(|d| **d).count() as u64));
        if new_ds < old_ds || expected.is_some_and(|e| e != new_ds) {
            let want = expected
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!(">= {old_ds}"));
            out.push(Issue::new(
                &DISCONTINUITY_SEQUENCE,
                format!("ms {new_ms} ds {new_ds}"),
                format!(
                    "DISCONTINUITY-SEQUENCE is {new_ds} at MEDIA-SEQUENCE {new_ms}, expected {want} (was {old_ds} at {old_ms})"
                ),
            ));
        }
    }

    fn segments_unchanged(&mut self, pl: &MediaPlaylist, out: &mut Vec<Issue>) {
        for s in &pl.segments {
            let now = SegRec {
                uri: s.uri.clone(),
                duration: s.duration,
                pdt_ms: s.meta.pdt_ms,
                discontinuity: s.meta.discontinuity,
            };
            let key = format!("msn {}", s.msn);
            if let Some((msn, pdt)) = self.pending_pdt {
                if msn == s.msn && now.pdt_ms.is_some_and(|p| (p - pdt).abs() > 1) {
                    out.push(Issue::new(
                        &PDT_CHANGED,
                        key.clone(),
                        format!(
                            "{key}: PROGRAM-DATE-TIME moved by {} ms when the segment completed",
                            now.pdt_ms.unwrap_or(0) - pdt
                        ),
                    ));
                }
            }
            match self.segments.get(&s.msn) {
                None => {
                    self.segments.insert(s.msn, now);
                }
                Some(old) => {
                    if old.uri != now.uri
                        || (old.duration - now.duration).abs() > 1e-6
                        || old.discontinuity != now.discontinuity
                    {
                        out.push(Issue::new(
                            &SEGMENT_CHANGED,
                            key.clone(),
                            format!(
                                "{key} was {} EXTINF {:.3}{}, now {} EXTINF {:.3}{}",
                                old.uri,
                                old.duration,
                                if old.discontinuity {
                                    " after a DISCONTINUITY"
                                } else {
                                    ""
                                },
                                now.uri,
                                now.duration,
                                if now.discontinuity {
                                    " after a DISCONTINUITY"
                                } else {
                                    ""
                                },
                            ),
                        ));
                    }
                    if let (Some(a), Some(b)) = (old.pdt_ms, now.pdt_ms) {
                        if (a - b).abs() > 1 {
                            out.push(Issue::new(
                                &PDT_CHANGED,
                                key,
                                format!(
                                    "msn {}: PROGRAM-DATE-TIME moved by {} ms across reloads",
                                    s.msn,
                                    b - a
                                ),
                            ));
                        }
                    }
                }
            }
        }
        self.pending_pdt = pl
            .pending
            .as_ref()
            .and_then(|p| p.meta.pdt_ms.map(|d| (p.msn, d)));
    }

    fn parts_unchanged(&mut self, pl: &MediaPlaylist, out: &mut Vec<Issue>) {
        let mut listed: BTreeMap<u64, usize> = BTreeMap::new();
        let lists = pl
            .segments
            .iter()
            .map(|s| (s.msn, &s.parts))
            .chain(pl.pending.iter().map(|p| (p.msn, &p.parts)));
        for (msn, parts) in lists {
            listed.insert(msn, parts.len());
            if parts.is_empty() {
                continue;
            }
            let known = self.parts.entry(msn).or_default();
            for (i, (a, b)) in known.iter().zip(parts.iter()).enumerate() {
                if a != b {
                    out.push(Issue::new(
                        &PART_CHANGED,
                        format!("msn {msn} part {i}"),
                        format!("msn {msn} part {i} was {} DURATION {:.3}{} {:?}, now {} DURATION {:.3}{} {:?}",
                            a.uri, a.duration, if a.independent { " INDEPENDENT" } else { "" }, a.byterange,
                            b.uri, b.duration, if b.independent { " INDEPENDENT" } else { "" }, b.byterange),
                    ));
                }
            }
            if parts.len() < known.len() {
                out.push(Issue::new(
                    &PARTS_NOT_APPENDED,
                    format!("msn {msn}"),
                    format!(
                        "msn {msn} listed {} parts, now {} (parts only leave all together)",
                        known.len(),
                        parts.len()
                    ),
                ));
            } else {
                *known = parts.clone();
            }
        }
        // Parts that left: early (6), out of order (5).
        let td = pl.target_duration.unwrap_or(0) as f64;
        for (&msn, &before) in &self.listed {
            if before == 0 || listed.get(&msn) != Some(&0) || pl.segment(msn).is_none() {
                continue;
            }
            let after = pl.seconds_after(msn);
            if after <= 3.0 * td - 0.001 {
                out.push(Issue::new(
                    &PART_REMOVED_EARLY,
                    format!("msn {msn}"),
                    format!(
                        "the {before} parts of msn {msn} were removed while only {after:.3} s of media followed them (< 3 x TARGETDURATION = {:.0} s)",
                        3.0 * td
                    ),
                ));
            }
            if let Some((&older, _)) = listed.iter().find(|(m, n)| **m < msn && **n > 0) {
                out.push(Issue::new(
                    &PARTS_REMOVED_OUT_OF_ORDER,
                    format!("msn {msn}"),
                    format!("the parts of msn {msn} were removed while msn {older} still lists its parts"),
                ));
            }
        }
        self.listed = listed;
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
