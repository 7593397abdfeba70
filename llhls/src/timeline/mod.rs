//! A stream's CMAF segments and parts, as this component has packaged
//! them: what the playlist lists, what a part's name refers to, where a
//! blocking request stands. Pure bookkeeping: the files are written by
//! [`crate::stream`], the playlist by [`crate::playlist`].
//!
//! Names, in the stream's folder:
//! - `<F>.m4s`: a segment, packaged from one of nginx-rtmp's fragments;
//!   `F` is the epoch plus its media sequence number;
//! - `<E>-<n>.m4s`: part `n` of the stream, counted over every segment and
//!   publish session since this process first saw the stream (`E`, its
//!   epoch: when it first saw it, in ms, unique over time), so that the
//!   preload hint always names the next part, whichever segment or
//!   session it turns out to open;
//! - `init-<H>.mp4`: an init segment, `H` a hash of its content (a new one
//!   per publish session or change of codec parameters).
//!
//! Origins that carry the same stream agree on the epoch and the numbers
//! (see [`crate::labels`]): every name is then the same on all of them.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::blocking::View;

mod relabel;

pub use relabel::shift_time;

/// 90 kHz: the media clock of segment and part times.
pub const CLOCK: u64 = 90_000;

/// One part of a segment: bytes `offset..offset+len` of its segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    /// Its number in the stream (`<E>-<n>.m4s`).
    pub n: u64,
    pub offset: u64,
    pub len: u64,
    /// 90 kHz ticks.
    pub duration: u64,
    pub independent: bool,
}

/// One segment, listed (complete) or in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// Its id: the file is `<file>.m4s` (the epoch plus its MSN).
    pub file: u64,
    /// The init segment it needs: `init-<init>.mp4` (a hash of its content).
    pub init: u64,
    /// Decode time of its first sample (90 kHz).
    pub start: u64,
    pub parts: Vec<PartEntry>,
    pub complete: bool,
    /// Listed as a segment (EXTINF and URI). A segment that just completed
    /// is first listed by its parts only, until the segment after it has a
    /// part: see [`Timeline::complete`].
    pub announced: bool,
    /// Starts a new publish session (EXT-X-DISCONTINUITY before it).
    pub discontinuity: bool,
    pub pdt: SystemTime,
    /// Its parts were merged into one entry (see [`Timeline::compact`]):
    /// it is no longer listed by parts, and its parts are not served.
    pub compacted: bool,
}

impl Segment {
    /// 90 kHz ticks: the sum of its parts.
    pub fn duration(&self) -> u64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.parts.last().map_or(0, |p| p.offset + p.len)
    }
}

/// Where a part's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLocation {
    pub file: u64,
    pub complete: bool,
    pub offset: u64,
    pub len: u64,
}

/// What asking for part `n` gets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartLookup {
    Ready(PartLocation),
    /// The next part (or the one after): worth waiting for.
    Soon,
    /// Not listed and not coming (older than the playlist, or too far
    /// ahead, or of another epoch).
    Gone,
}

#[derive(Debug)]
pub struct Timeline {
    epoch: u64,
    segments: VecDeque<Segment>,
    next_part: u64,
    /// EXT-X-DISCONTINUITY-SEQUENCE: discontinuities of segments that left.
    discontinuity_sequence: u64,
    /// Counts the changes: a rendered playlist stays right while it holds.
    revision: u64,
}

impl Timeline {
    pub fn new(epoch: u64) -> Timeline {
        Timeline {
            epoch,
            segments: VecDeque::new(),
            next_part: 0,
            discontinuity_sequence: 0,
            revision: 0,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn segments(&self) -> &VecDeque<Segment> {
        &self.segments
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Changes with every change of what the playlist would list.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The number the next part will have (the preload hint's).
    pub fn next_part(&self) -> u64 {
        self.next_part
    }

    pub fn in_progress(&self) -> Option<&Segment> {
        self.segments.back().filter(|s| !s.complete)
    }

    /// Opens segment `seg` (no parts yet). An unfinished segment before it
    /// is dropped (its fragment ended without being listed).
    pub fn begin(&mut self, mut seg: Segment) {
        self.revision += 1;
        if self.segments.back().is_some_and(|s| !s.complete) {
            self.segments.pop_back();
        }
        seg.parts.clear();
        seg.complete = false;
        seg.compacted = false;
        self.segments.push_back(seg);
    }

    /// Adds the next part to the segment in progress; its number is
    /// assigned here. Returns it. The segments before it are listed as
    /// segments from now on.
    pub fn add_part(
        &mut self,
        offset: u64,
        len: u64,
        duration: u64,
        independent: bool,
    ) -> Option<PartEntry> {
        self.revision += 1;
        self.segments.back().filter(|s| !s.complete)?;
        self.announce();
        let seg = self.segments.back_mut().filter(|s| !s.complete)?;
        let p = PartEntry {
            n: self.next_part,
            offset,
            len,
            duration,
            independent,
        };
        self.next_part += 1;
        seg.parts.push(p);
        Some(p)
    }

    /// The segment in progress is complete (nginx-rtmp listed it). It is
    /// listed as a segment once the next one has its first part (or on
    /// [`Timeline::announce`]): until then the playlist shows all its parts
    /// and a preload hint, as a segment in progress. So a playlist never
    /// ends with a complete segment followed by nothing but the hint:
    /// video.js (VHS 3) keeps the parts of its previous playlist when the
    /// new one lists none after its last segment, asks for the part it
    /// already has again, and a cache that kept that answer held it there
    /// until it expired. Parts are listed as they complete all the same.
    pub fn complete(&mut self) -> Option<&Segment> {
        self.revision += 1;
        let seg = self.segments.back_mut().filter(|s| !s.complete)?;
        if seg.parts.is_empty() {
            self.segments.pop_back();
            return None;
        }
        seg.complete = true;
        seg.announced = false;
        self.segments.back()
    }

    /// Lists every complete segment as a segment (the next one got its
    /// first part, or none is coming soon: the publisher left).
    pub fn announce(&mut self) {
        self.revision += 1;
        for s in self.segments.iter_mut().filter(|s| s.complete) {
            s.announced = true;
        }
    }

    /// A complete segment waits to be listed as one.
    pub fn unannounced(&self) -> bool {
        self.segments.iter().any(|s| s.complete && !s.announced)
    }

    /// Drops the oldest complete segments while the others still span
    /// `window` (90 kHz ticks). Returns the files no longer listed.
    pub fn trim_to(&mut self, window: u64) -> Vec<u64> {
        self.revision += 1;
        let mut total: u64 = self.segments.iter().map(Segment::duration).sum();
        let mut gone = Vec::new();
        while let Some(front) = self.segments.front() {
            let d = front.duration();
            if !front.complete || total - d < window {
                break;
            }
            total -= d;
            let s = self.segments.pop_front().expect("front exists");
            // the first segment's discontinuity is counted once it leaves
            if s.discontinuity {
                self.discontinuity_sequence += 1;
            }
            gone.push(s.file);
        }
        gone
    }

    /// Merges the parts of the listed segments that end more than `keep`
    /// ticks (90 kHz) before the end of the playlist into one entry each:
    /// a DVR window holds hundreds of segments whose parts no playlist
    /// lists any more (parts are listed for the last three target
    /// durations), and their entries would be most of the memory it takes.
    /// Their parts are then not served: clients only ask for listed ones.
    pub fn compact(&mut self, keep: u64) {
        let total: u64 = self.segments.iter().map(Segment::duration).sum();
        let boundary = total.saturating_sub(keep);
        let mut end = 0;
        for s in self.segments.iter_mut() {
            end += s.duration();
            if end > boundary || !(s.complete && s.announced) {
                break;
            }
            if s.compacted || s.parts.is_empty() {
                continue;
            }
            let first = s.parts[0];
            let merged = PartEntry {
                n: first.n,
                offset: first.offset,
                len: s.bytes() - first.offset,
                duration: s.duration(),
                independent: first.independent,
            };
            s.parts = vec![merged];
            s.compacted = true;
        }
    }

    /// The init segments still needed.
    pub fn inits(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.segments.iter().map(|s| s.init).collect();
        v.dedup();
        v
    }

    pub fn part(&self, n: u64) -> PartLookup {
        if n >= self.next_part {
            // the hinted part, or the one after it (a client that raced
            // ahead by one); further is not worth holding a request for
            return if n <= self.next_part + 1 {
                PartLookup::Soon
            } else {
                PartLookup::Gone
            };
        }
        for s in self.segments.iter().rev() {
            let Some(first) = s.parts.first() else {
                continue;
            };
            if n >= first.n {
                if s.compacted {
                    return PartLookup::Gone;
                }
                return match s.parts.iter().find(|p| p.n == n) {
                    Some(p) => PartLookup::Ready(PartLocation {
                        file: s.file,
                        complete: s.complete,
                        offset: p.offset,
                        len: p.len,
                    }),
                    None => PartLookup::Gone,
                };
            }
        }
        PartLookup::Gone
    }

    /// Where a blocking reload stands (see [`crate::blocking`]).
    pub fn view(&self, part_target: f64) -> Option<View> {
        // (a segment begun with no part yet is not listed)
        let last = self
            .segments
            .iter()
            .rev()
            .find(|s| s.complete || !s.parts.is_empty())?;
        let (current_msn, current_parts) = if last.complete && last.announced {
            (last.msn + 1, 0)
        } else {
            (last.msn, last.parts.len() as u64)
        };
        let previous_parts = self
            .segments
            .iter()
            .rev()
            .find(|s| s.complete && s.announced && s.msn + 1 == current_msn)
            .map(|s| s.parts.len() as u64)
            .filter(|n| *n > 0);
        Some(View {
            current_msn,
            current_parts,
            previous_parts,
            part_target,
        })
    }

    /// `(LAST-MSN, LAST-PART)` of this playlist, as a sibling's rendition
    /// report gives them.
    pub fn last_part(&self) -> Option<(u64, Option<u64>)> {
        let last = self.segments.iter().rev().find(|s| !s.parts.is_empty())?;
        Some((last.msn, Some(last.parts.len() as u64 - 1)))
    }

    /// Seconds from the start of the first listed segment to the end of the
    /// last part (the playlist's span).
    pub fn span(&self) -> f64 {
        self.segments.iter().map(Segment::duration).sum::<u64>() as f64 / CLOCK as f64
    }
}

/// A segment of 2 s starts (none of its parts yet), for tests.
#[cfg(test)]
pub(crate) fn test_segment(msn: u64, file: u64, disc: bool) -> Segment {
    Segment {
        msn,
        file,
        init: 100,
        start: msn * 180_000,
        parts: vec![],
        complete: false,
        announced: false,
        discontinuity: disc,
        pdt: std::time::UNIX_EPOCH,
        compacted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::test_segment as seg;
    use super::*;

    #[test]
    fn parts_are_numbered_across_segments_and_found_by_number() {
        let mut t = Timeline::new(100);
        t.begin(seg(5, 100, true));
        assert_eq!(t.part(0), PartLookup::Soon);
        assert_eq!(t.part(1), PartLookup::Soon);
        assert_eq!(t.part(2), PartLookup::Gone);
        t.add_part(0, 1000, 30_000, true);
        t.add_part(1000, 500, 30_000, false);
        assert_eq!(t.view(0.36).unwrap().current_parts, 2);
        assert!(t.complete().is_some());
        // complete, but shown as the segment in progress until the next
        // one has a part (or it is announced)
        assert!(t.unannounced());
        let v = t.view(0.36).unwrap();
        assert_eq!(
            (v.current_msn, v.current_parts, v.previous_parts),
            (5, 2, None)
        );
        t.announce();
        let v = t.view(0.36).unwrap();
        assert_eq!(
            (v.current_msn, v.current_parts, v.previous_parts),
            (6, 0, Some(2))
        );
        t.begin(seg(6, 102, false));
        t.add_part(0, 800, 30_000, true);
        assert_eq!(
            t.part(1),
            PartLookup::Ready(PartLocation {
                file: 100,
                complete: true,
                offset: 1000,
                len: 500
            })
        );
        assert_eq!(
            t.part(2),
            PartLookup::Ready(PartLocation {
                file: 102,
                complete: false,
                offset: 0,
                len: 800
            })
        );
        assert_eq!(t.next_part(), 3);
        assert_eq!(t.last_part(), Some((6, Some(0))));
        assert_eq!(t.segments()[0].duration(), 60_000);
        // the first segment leaves (the second still spans the window):
        // its parts are gone, its discontinuity counted
        assert!(t.trim_to(60_001).is_empty());
        assert_eq!(t.trim_to(30_000), vec![100]);
        assert_eq!(t.discontinuity_sequence(), 1);
        assert_eq!(t.part(0), PartLookup::Gone);
        // a segment in progress is never trimmed
        assert!(t.trim_to(0).is_empty());
        assert_eq!(t.segments().len(), 1);
    }

    #[test]
    fn old_segments_keep_their_duration_and_bytes_but_not_their_parts() {
        let mut t = Timeline::new(1);
        for (i, file) in [10u64, 12, 14].iter().enumerate() {
            t.begin(seg(i as u64, *file, false));
            for k in 0..6 {
                t.add_part(k * 100, 100, 30_000, k == 0);
            }
            t.complete();
        }
        t.announce();
        let before: Vec<(u64, u64)> = t
            .segments()
            .iter()
            .map(|s| (s.duration(), s.bytes()))
            .collect();
        // the last segment (180,000 ticks) is kept whole
        t.compact(180_000);
        let after: Vec<(u64, u64)> = t
            .segments()
            .iter()
            .map(|s| (s.duration(), s.bytes()))
            .collect();
        assert_eq!(before, after);
        let parts: Vec<usize> = t.segments().iter().map(|s| s.parts.len()).collect();
        assert_eq!(parts, vec![1, 1, 6]);
        assert!(t.segments()[0].parts[0].independent);
        // a compacted segment's parts are gone; the kept one's are served
        assert_eq!(t.part(0), PartLookup::Gone);
        assert_eq!(t.part(7), PartLookup::Gone);
        assert!(matches!(t.part(13), PartLookup::Ready(_)));
        // twice is the same
        t.compact(180_000);
        assert_eq!(t.segments()[0].parts.len(), 1);
        assert_eq!(t.segments()[0].duration(), 180_000);
    }

    #[test]
    fn an_unlisted_segment_in_progress_is_replaced() {
        let mut t = Timeline::new(1);
        t.begin(seg(1, 10, false));
        t.add_part(0, 10, 100, true);
        t.begin(seg(1, 12, true));
        assert_eq!(t.segments().len(), 1);
        assert_eq!(t.segments()[0].file, 12);
        // a segment with no part is not listed
        assert!(t.complete().is_none());
        assert!(t.segments().is_empty());
    }
}
