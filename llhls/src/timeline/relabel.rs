//! A timeline's labels, as the other origins of its stream see them, and
//! taking theirs (see [`crate::labels`]).

use std::time::SystemTime;

use super::Timeline;
use crate::labels::{Adoption, Labels, Mark};

/// How many of its last segments an origin tells its peers about.
const LABELLED: usize = 8;
/// The most segments it tells about (its last ones, each session's first).
const MAX_MARKS: usize = 48;

/// `t` moved by `ms` milliseconds.
pub fn shift_time(t: SystemTime, ms: i64) -> SystemTime {
    let d = std::time::Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        t + d
    } else {
        t.checked_sub(d).unwrap_or(t)
    }
}

impl Timeline {
    /// Publish sessions so far (discontinuities counted and listed): it
    /// changes when a new one begins.
    pub fn sessions(&self) -> u64 {
        self.discontinuity_sequence
            + self.segments.iter().filter(|s| s.discontinuity).count() as u64
    }

    /// What this timeline calls its last segments (see [`crate::labels`]).
    pub fn labels(&self) -> Labels {
        self.labels_at(&[])
    }

    /// [`Timeline::labels`], plus the segments that start at `at` (those
    /// another origin tells about: each can then compare them).
    pub fn labels_at(&self, at: &[u64]) -> Labels {
        let mut disc = self.discontinuity_sequence;
        let mut marks = Vec::new();
        // the first segment, each session's first and the last ones: what
        // the other origins compare (see `labels::decide`)
        let last = self.segments.len().saturating_sub(LABELLED);
        for (i, s) in self.segments.iter().enumerate() {
            disc += u64::from(s.discontinuity);
            let Some(first) = s.parts.first() else {
                continue;
            };
            if !(i == 0 || s.discontinuity || i >= last || at.contains(&s.start)) {
                continue;
            }
            let pdt_ms = s
                .pdt
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            marks.push(Mark {
                start: s.start,
                msn: s.msn,
                part: first.n,
                disc,
                pdt_ms,
            });
        }
        // a bound on what is sent (sessions in a DVR window)
        let keep = marks.len().saturating_sub(MAX_MARKS);
        Labels {
            epoch: self.epoch,
            marks: marks.split_off(keep),
        }
    }

    /// Stops listing the segments before the one that starts at `start`
    /// (see [`crate::labels::Verdict::Forget`]); its discontinuity is
    /// counted, as when the segments before it leave the window. Returns
    /// the ids of the segments dropped.
    pub fn forget_before(&mut self, start: u64) -> Vec<u64> {
        let Some(i) = self.segments.iter().position(|s| s.start == start) else {
            return Vec::new();
        };
        self.revision += 1;
        let mut dropped = Vec::new();
        for s in self.segments.drain(..i) {
            // numbers stay: the discontinuities leave into the sequence
            self.discontinuity_sequence += u64::from(s.discontinuity);
            dropped.push(s.file);
        }
        if let Some(first) = self.segments.front_mut() {
            if first.discontinuity {
                first.discontinuity = false;
                self.discontinuity_sequence += 1;
            }
        }
        dropped
    }

    /// Takes another origin's labels (see [`crate::labels`]): every number
    /// moves by the adoption's amounts, the current session's date-times by
    /// its shift. Segment ids are `epoch + msn` (see
    /// [`crate::stream`]) and move with them (init segments are named by
    /// their content). Returns the segment ids renamed, old to new, and
    /// those of the segments dropped.
    ///
    /// An origin that missed media marked a discontinuity there that the
    /// others do not have; when fewer discontinuities than that left its
    /// playlist, numbering the segments after it as the others do means
    /// listing nothing before it: the segments before it are dropped, and
    /// it no longer marks anything (nothing listed precedes it).
    pub fn relabel(&mut self, a: &Adoption) -> (Vec<(u64, u64)>, Vec<u64>) {
        self.revision += 1;
        let mut dropped = Vec::new();
        // one epoch, but this origin counted fewer segments or parts: it
        // missed media, and marked a discontinuity there. What precedes it
        // was counted as the others count it and cannot move with what
        // follows: it is no longer listed (the others have it).
        if a.epoch == self.epoch && (a.msn != 0 || a.part != 0) {
            if let Some(i) = self.segments.iter().rposition(|s| s.discontinuity) {
                for s in self.segments.drain(..i) {
                    self.discontinuity_sequence += u64::from(s.discontinuity);
                    dropped.push(s.file);
                }
                self.segments[0].discontinuity = false;
                self.discontinuity_sequence += 1;
            }
        }
        let mut excess = a
            .disc
            .unsigned_abs()
            .saturating_sub(self.discontinuity_sequence);
        let mut forgotten = 0;
        while a.disc < 0 && excess > 0 {
            let Some(i) = self.segments.iter().position(|s| s.discontinuity) else {
                break;
            };
            dropped.extend(self.segments.drain(..i).map(|s| s.file));
            self.segments[0].discontinuity = false;
            excess -= 1;
            forgotten += 1;
        }
        let shift = |v: u64, d: i64| v.saturating_add_signed(d);
        let id = |old: u64| shift(old, a.epoch as i64 - self.epoch as i64 + a.msn);
        let mut files = Vec::new();
        // date-times are the current session's: its segments move, earlier
        // sessions' keep theirs (each session has its own anchor)
        let session = self
            .segments
            .iter()
            .rposition(|s| s.discontinuity)
            .unwrap_or(0);
        for (i, s) in self.segments.iter_mut().enumerate() {
            if i >= session {
                s.pdt = shift_time(s.pdt, a.pdt_ms);
            }
            files.push((s.file, id(s.file)));
            s.msn = shift(s.msn, a.msn);
            s.file = id(s.file);
            for p in s.parts.iter_mut() {
                p.n = shift(p.n, a.part);
            }
        }
        self.next_part = shift(self.next_part, a.part);
        self.discontinuity_sequence = shift(self.discontinuity_sequence, a.disc + forgotten);
        self.epoch = a.epoch;
        (files, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::test_segment as seg;
    use crate::timeline::PartLookup;
    use std::time::UNIX_EPOCH;

    /// `n` complete segments of one 2 s part each, ids 1,000 + MSN, those
    /// numbered in `flagged` after a discontinuity.
    fn timeline_of(n: u64, flagged: &[u64]) -> Timeline {
        let mut t = Timeline::new(1_000);
        for msn in 0..n {
            t.begin(seg(msn, 1_000 + msn, flagged.contains(&msn)));
            t.add_part(0, 100, 180_000, true);
            t.complete();
        }
        t.announce();
        t
    }

    #[test]
    fn relabelling_moves_every_number_and_the_ids_with_them() {
        let mut t = Timeline::new(1_000);
        for msn in 3..5u64 {
            let mut s = seg(msn, 1_000 + msn, msn == 3);
            s.init = 1_003;
            s.pdt = UNIX_EPOCH + std::time::Duration::from_secs(86_400 + msn * 2);
            t.begin(s);
            for k in 0..3 {
                t.add_part(k * 100, 100, 30_000, k == 0);
            }
            t.complete();
        }
        t.announce();
        let before = t.labels();
        assert_eq!(before.marks.len(), 2);
        assert_eq!(
            (
                before.marks[1].msn,
                before.marks[1].part,
                before.marks[1].disc
            ),
            (4, 3, 1)
        );
        let a = Adoption {
            epoch: 900,
            msn: 10,
            part: 50,
            disc: 2,
            pdt_ms: -4,
        };
        let (files, dropped) = t.relabel(&a);
        assert_eq!(files, vec![(1_003, 913), (1_004, 914)]);
        assert!(dropped.is_empty());
        assert!(t.segments().iter().all(|s| s.init == 1_003));
        let after = t.labels();
        assert_eq!(after.epoch, 900);
        for (b, a) in before.marks.iter().zip(&after.marks) {
            assert_eq!(a.start, b.start);
            assert_eq!(
                (a.msn, a.part, a.disc),
                (b.msn + 10, b.part + 50, b.disc + 2)
            );
            assert_eq!(a.pdt_ms + 4, b.pdt_ms);
        }
        assert_eq!(t.next_part(), 56);
        assert!(matches!(t.part(53), PartLookup::Ready(_)));
        assert_eq!(t.part(2), PartLookup::Gone);
        // the other origin's labels, now ours: agreed
        assert_eq!(
            crate::labels::decide(&after, &after.clone()),
            crate::labels::Verdict::Agreed
        );
    }

    #[test]
    fn a_discontinuity_the_others_do_not_have_is_forgotten_with_what_precedes_it() {
        // media missed before segment 2: a discontinuity the other origin
        // does not list
        let mut t = timeline_of(4, &[2]);
        assert_eq!(t.labels().marks.last().map(|m| m.disc), Some(1));
        let a = Adoption {
            epoch: 1_000,
            msn: 0,
            part: 0,
            disc: -1,
            pdt_ms: 0,
        };
        let (files, dropped) = t.relabel(&a);
        assert_eq!(dropped, vec![1_000, 1_001]);
        assert_eq!(files, vec![(1_002, 1_002), (1_003, 1_003)]);
        assert_eq!(t.discontinuity_sequence(), 0);
        assert!(!t.segments()[0].discontinuity);
        let marks = t.labels().marks;
        assert_eq!(
            marks.iter().map(|m| (m.msn, m.disc)).collect::<Vec<_>>(),
            vec![(2, 0), (3, 0)]
        );
    }

    #[test]
    fn an_origin_that_counted_fewer_drops_what_precedes_the_media_it_missed() {
        let mut t = timeline_of(4, &[2]);
        // the others number segment 2 (its first after the gap) 9, with no
        // discontinuity: one epoch, more segments, one discontinuity less
        let a = Adoption {
            epoch: 1_000,
            msn: 7,
            part: 7,
            disc: -1,
            pdt_ms: 0,
        };
        let (files, dropped) = t.relabel(&a);
        assert_eq!(dropped, vec![1_000, 1_001]);
        assert_eq!(files, vec![(1_002, 1_009), (1_003, 1_010)]);
        let marks: Vec<(u64, u64, u64)> = t
            .labels()
            .marks
            .iter()
            .map(|m| (m.msn, m.part, m.disc))
            .collect();
        assert_eq!(marks, vec![(9, 9, 0), (10, 10, 0)]);
        assert!(t.segments().iter().all(|s| !s.discontinuity));
    }

    #[test]
    fn forgetting_what_precedes_a_discontinuity_keeps_the_numbers() {
        let mut t = Timeline::new(1_000);
        for msn in 0..5u64 {
            t.begin(seg(msn, 1_000 + msn, msn == 1 || msn == 3));
            t.add_part(0, 100, 180_000, true);
            t.complete();
        }
        t.announce();
        let before: Vec<(u64, u64)> = t.labels().marks.iter().map(|m| (m.msn, m.disc)).collect();
        // the first, each session's first, the last ones
        assert_eq!(before, vec![(0, 0), (1, 1), (2, 1), (3, 2), (4, 2)]);
        assert_eq!(t.forget_before(3 * 180_000), vec![1_000, 1_001, 1_002]);
        let after: Vec<(u64, u64)> = t.labels().marks.iter().map(|m| (m.msn, m.disc)).collect();
        assert_eq!(after, vec![(3, 2), (4, 2)]);
        assert!(!t.segments()[0].discontinuity);
        assert_eq!(t.discontinuity_sequence(), 2);
        assert!(t.forget_before(42).is_empty());
    }
}
