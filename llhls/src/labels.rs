//! Agreeing with the other origins of a stream on its labels.
//!
//! Every origin of a replicated stream packages the same media: the origin
//! that took the publish relays it to its peers as it arrives, with its
//! timestamps, and nginx-rtmp cuts fragments at the same keyframes
//! (`hls_fragment_slicing aligned`), this component parts at the same
//! frames. What differs is what each origin calls them: the epoch in part
//! names (when its component first saw the stream), the media sequence
//! numbers (nginx-rtmp's count on that origin), the part count, the
//! discontinuity count and the date-times (its clock at the session's
//! start). A player that moves from one origin to another must get the
//! playlist it had, continued; and the edge's cache and collapsing key on
//! those names.
//!
//! So origins compare notes: each one tells, for its last segments, where
//! they start in the stream's own time (the decode time of their first
//! sample, the same on every origin) and what it calls them. Two origins
//! that list a segment starting at the same decode time name it the same
//! way, or one of them adopts the other's: the labels of the older epoch,
//! and within one epoch the larger numbers (an origin that missed segments
//! counted fewer). All of them settle on one set of labels, and an origin
//! that comes back takes the labels the others already give. [`decide`] is that rule; the files are
//! renamed by [`crate::stream`], the peers asked by [`crate::sync`].

use std::cmp::Reverse;

use serde_json::{json, Value};

/// What an origin calls one of its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Decode time of its first sample (90 kHz): the stream's own clock.
    pub start: u64,
    pub msn: u64,
    /// Number of its first part.
    pub part: u64,
    /// Its discontinuity number (EXT-X-DISCONTINUITY-SEQUENCE plus the
    /// discontinuities listed up to it).
    pub disc: u64,
    /// Its EXT-X-PROGRAM-DATE-TIME, milliseconds since 1970.
    pub pdt_ms: u64,
}

/// An origin's labels for a stream: its epoch and its last segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub epoch: u64,
    pub marks: Vec<Mark>,
}

/// How to take a peer's labels: what to add to each of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adoption {
    pub epoch: u64,
    pub msn: i64,
    pub part: i64,
    pub disc: i64,
    pub pdt_ms: i64,
}

/// What comparing with one peer concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No segment in common (another session, or not packaged yet).
    Unknown,
    /// The same labels.
    Agreed,
    /// Ours sort first: the peer adopts them.
    Ours,
    /// Theirs sort first: adopt them.
    Adopt(Adoption),
    /// The same labels for the latest segment, but ours mark a
    /// discontinuity theirs do not, before it: media this origin missed.
    /// Numbering what precedes it as they do is impossible; this origin
    /// stops listing it (the segments before the one that starts at this
    /// decode time).
    Forget(u64),
}

impl Mark {
    fn numbers(&self) -> (u64, u64, u64, u64) {
        (self.msn, self.part, self.disc, self.pdt_ms)
    }

    /// The order within one epoch: the larger count of segments and parts
    /// wins, then the fewer discontinuities, then the earlier date.
    fn rank(&self) -> (u64, u64, Reverse<u64>, Reverse<u64>) {
        (
            self.msn,
            self.part,
            Reverse(self.disc),
            Reverse(self.pdt_ms),
        )
    }
}

/// Whether labels `a` (with epoch `ea`) win over `b`'s: the older epoch
/// (the labels origins settled on first), and within one epoch the origin
/// that did not miss media. Origins of one epoch disagree only after one
/// of them missed some (its relay broke, its nginx-rtmp restarted or
/// froze): it counted fewer segments and parts, and its playlist marks a
/// discontinuity where the media it missed should be. That origin takes
/// the others' labels; theirs, which their viewers hold, never change
/// because of it. A new publish session's date-times are each origin's
/// clock at its start, and the earlier one is kept.
fn wins(ea: u64, a: &Mark, eb: u64, b: &Mark) -> bool {
    ea < eb || (ea == eb && a.rank() > b.rank())
}

/// Compares `ours` with a `peer`'s on the latest segment both list, then
/// on an earlier one. (A decode time can start two segments of one
/// playlist: an encoder that reconnects starts its timestamps again; the
/// latest one is the peer's latest, an earlier one must have our number.)
pub fn decide(ours: &Labels, peer: &Labels) -> Verdict {
    let latest = ours.marks.iter().enumerate().rev().find_map(|(i, m)| {
        peer.marks
            .iter()
            .rev()
            .find(|p| p.start == m.start)
            .map(|p| (i, m, p))
    });
    let Some((last_i, m, p)) = latest else {
        return Verdict::Unknown;
    };
    if ours.epoch == peer.epoch && m.numbers() == p.numbers() {
        let earlier = ours.marks[..last_i].iter().find_map(|e| {
            peer.marks
                .iter()
                .find(|q| q.start == e.start && q.msn == e.msn)
                .map(|q| (e, q))
        });
        // discontinuities between an earlier segment and the latest both
        // list: more of ours are media this origin missed
        if let Some((e, q)) = earlier {
            let mine = m.disc.saturating_sub(e.disc);
            let theirs = p.disc.saturating_sub(q.disc);
            if mine > theirs {
                let last_marked = (1..=last_i)
                    .rev()
                    .find(|i| ours.marks[*i].disc > ours.marks[i - 1].disc);
                if let Some(i) = last_marked {
                    return Verdict::Forget(ours.marks[i].start);
                }
            }
        }
        return Verdict::Agreed;
    }
    if wins(ours.epoch, m, peer.epoch, p) {
        return Verdict::Ours;
    }
    let d = |a: u64, b: u64| a as i64 - b as i64;
    Verdict::Adopt(Adoption {
        epoch: peer.epoch,
        msn: d(p.msn, m.msn),
        part: d(p.part, m.part),
        disc: d(p.disc, m.disc),
        pdt_ms: d(p.pdt_ms, m.pdt_ms),
    })
}

impl Labels {
    pub fn to_json(&self) -> Value {
        let marks: Vec<Value> = self
            .marks
            .iter()
            .map(|m| json!([m.start, m.msn, m.part, m.disc, m.pdt_ms]))
            .collect();
        json!({ "epoch": self.epoch, "segments": marks })
    }

    /// A peer's answer; `None` if it is not one (at most 64 segments read).
    pub fn from_json(v: &Value) -> Option<Labels> {
        let epoch = v.get("epoch")?.as_u64()?;
        let mut marks = Vec::new();
        for s in v.get("segments")?.as_array()?.iter().take(64) {
            let a = s.as_array()?;
            let n = |i: usize| a.get(i).and_then(Value::as_u64);
            marks.push(Mark {
                start: n(0)?,
                msn: n(1)?,
                part: n(2)?,
                disc: n(3)?,
                pdt_ms: n(4)?,
            });
        }
        Some(Labels { epoch, marks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(epoch: u64, first_msn: u64, first_part: u64, starts: &[u64]) -> Labels {
        Labels {
            epoch,
            marks: starts
                .iter()
                .enumerate()
                .map(|(i, s)| Mark {
                    start: *s,
                    msn: first_msn + i as u64,
                    part: first_part + 6 * i as u64,
                    disc: 0,
                    pdt_ms: epoch + s / 90,
                })
                .collect(),
        }
    }

    #[test]
    fn the_later_labels_adopt_the_earlier_ones_on_a_common_segment() {
        let a = labels(1_000, 7, 40, &[180_000, 360_000, 540_000]);
        // b saw the stream 3 ms later, and only from the second segment
        let b = labels(1_003, 0, 0, &[360_000, 540_000, 720_000]);
        assert_eq!(decide(&a, &b), Verdict::Ours);
        let Verdict::Adopt(x) = decide(&b, &a) else {
            panic!("b adopts a's labels");
        };
        assert_eq!(
            x,
            Adoption {
                epoch: 1_000,
                // on the latest segment both list (540,000): 9 and 1
                msn: 8,
                // its first part: 52 and 6
                part: 46,
                disc: 0,
                pdt_ms: -3,
            }
        );
    }

    #[test]
    fn equal_labels_agree_and_other_sessions_say_nothing() {
        let a = labels(1_000, 7, 40, &[180_000, 360_000]);
        assert_eq!(decide(&a, &a.clone()), Verdict::Agreed);
        let other = labels(900, 0, 0, &[5, 10]);
        assert_eq!(decide(&a, &other), Verdict::Unknown);
        assert_eq!(
            decide(
                &a,
                &Labels {
                    epoch: 1,
                    marks: vec![]
                }
            ),
            Verdict::Unknown
        );
    }

    #[test]
    fn within_an_epoch_the_origin_that_counted_fewer_moves_forward() {
        let a = labels(1_000, 7, 40, &[180_000]);
        // b's nginx-rtmp restarted and missed two segments: it numbers the
        // same segment 5, not 7
        let mut b = a.clone();
        b.marks[0].msn = 5;
        b.marks[0].part = 28;
        assert_eq!(decide(&a, &b), Verdict::Ours);
        let Verdict::Adopt(x) = decide(&b, &a) else {
            panic!("b moves forward");
        };
        assert_eq!((x.msn, x.part), (2, 12));
        // one that missed media and marked a discontinuity there takes the
        // other's numbers, never the reverse (the order is total)
        let mut c = a.clone();
        c.marks[0].disc = 1;
        assert_eq!(decide(&a, &c), Verdict::Ours);
        let Verdict::Adopt(x) = decide(&c, &a) else {
            panic!("c drops its extra discontinuity");
        };
        assert_eq!(x.disc, -1);
        // a new session: the earlier date wins
        let mut d = a.clone();
        d.marks[0].pdt_ms += 8;
        assert_eq!(decide(&a, &d), Verdict::Ours);
        assert!(matches!(decide(&d, &a), Verdict::Adopt(x) if x.pdt_ms == -8));
    }

    #[test]
    fn an_origin_that_marked_missed_media_forgets_what_preceded_it() {
        let starts = [0, 180_000, 360_000, 540_000, 720_000, 900_000];
        // the other origin: one session throughout, discontinuity 1
        let mut other = labels(1_000, 0, 0, &starts);
        other.marks.iter_mut().for_each(|m| m.disc = 1);
        // this one missed media before 540,000 and marked it there; its
        // numbers for the latest segment are the other's
        let mut mine = other.clone();
        mine.marks.iter_mut().take(3).for_each(|m| m.disc = 0);
        assert_eq!(decide(&mine, &other), Verdict::Forget(540_000));
        assert_eq!(decide(&other, &mine), Verdict::Agreed);
        // once forgotten, the segments both list agree
        mine.marks.drain(..3);
        assert_eq!(decide(&mine, &other), Verdict::Agreed);
    }

    #[test]
    fn answers_round_trip_and_bad_ones_are_refused() {
        let a = labels(1_000, 7, 40, &[180_000, 360_000]);
        assert_eq!(Labels::from_json(&a.to_json()), Some(a));
        for bad in [
            json!({}),
            json!({"epoch": -1, "segments": []}),
            json!({"epoch": 1, "segments": [[1, 2, 3]]}),
            json!({"epoch": 1, "segments": [[1, 2, 3, 4, "x"]]}),
        ] {
            assert_eq!(Labels::from_json(&bad), None, "{bad}");
        }
    }
}
