//! Cutting one fragment, as it grows, into parts at video PES starts.
//!
//! nginx-rtmp appends whole TS packets (one `write` per packet) and writes
//! every PES contiguously, so every byte before a video PES start is final
//! and no other PES is in progress there: a part `[start, next video PES
//! start)` can be published as soon as that next PES start has been read.
//! A reader may see half a packet (writes straddle page boundaries): only
//! whole packets are parsed, the rest waits for the next push.

use crate::demux::{Demux, Unit};
use crate::ts::{self, PACKET_LEN, TS_CLOCK};

/// Slack for RTMP's whole-millisecond timestamps (90 kHz ticks): a span of
/// frames can be a millisecond or so off its nominal length.
const ROUNDING: i64 = 180;

/// A byte range of the parent fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub offset: u64,
    pub len: u64,
    /// Seconds, from the video decode timestamps.
    pub duration: f64,
    /// Starts with a keyframe (random-access flag on its first video packet).
    pub independent: bool,
}

/// A part just closed, with the elementary-stream units that start in it
/// and the decode time of the frame after it (its end), when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    pub part: Part,
    pub units: Vec<Unit>,
    pub end: Option<u64>,
}

/// The length of a fragment to come, as frames of the main PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub frames: i64,
    /// Mean frame duration (90 kHz ticks).
    pub frame_ticks: i64,
}

/// Incremental scanner of one fragment file.
#[derive(Debug)]
pub struct FragmentScanner {
    target: i64,
    pending: Vec<u8>,
    /// Bytes parsed (whole packets) from the start of the file.
    parsed: u64,
    pmt_pid: Option<u16>,
    /// The PID parts are cut on: video if the PMT has one, else audio.
    main_pid: Option<u16>,
    part_start: u64,
    part_start_ts: Option<u64>,
    part_independent: bool,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    frame_ticks: i64,
    /// Video frames read (main PID PES starts).
    frames: i64,
    /// Index of the first frame of the part in progress.
    part_first_frame: i64,
    /// The fragment's expected length, from the previous one: parts are
    /// then planned so that the last one is not a sliver.
    expected: Option<Expected>,
    /// Frames the part in progress should hold (planned at its start).
    goal_frames: Option<i64>,
    parts: Vec<Part>,
    finished: bool,
    demux: Demux,
    /// Parts closed since [`FragmentScanner::take_closed`] last ran.
    closed: Vec<Closed>,
}

impl FragmentScanner {
    /// `part_target`: the advertised PART-TARGET in seconds.
    pub fn new(part_target: f64) -> Self {
        FragmentScanner {
            target: (part_target * TS_CLOCK).round() as i64,
            pending: Vec::new(),
            parsed: 0,
            pmt_pid: None,
            main_pid: None,
            part_start: 0,
            part_start_ts: None,
            part_independent: false,
            first_ts: None,
            last_ts: None,
            frame_ticks: 0,
            frames: 0,
            part_first_frame: 0,
            expected: None,
            goal_frames: None,
            parts: Vec::new(),
            finished: false,
            demux: Demux::default(),
            closed: Vec::new(),
        }
    }

    /// A scanner for a fragment expected to be as long as `expected` (the
    /// previous fragment: nginx-rtmp cuts at keyframes, so fragments follow
    /// the publisher's keyframe interval).
    ///
    /// Without it, parts are as long as the target allows and the last part
    /// of a fragment is whatever remains: 0.08 s at 25 fps (4 x 0.48 s +
    /// 0.08 s). hls.js 1.7 stalled on such slivers: the segment is listed
    /// together with its last part, about 0.08 s after the part before; when
    /// that listing arrived while hls.js was still appending the part
    /// before, it took the segment for fully buffered yet kept waiting for
    /// its last part, and loaded nothing until the segment's parts left the
    /// playlist (4 s later). With the expected length, the parts of a
    /// fragment are planned so that the last one is as long as the rules
    /// allow (25 fps, 2 s: 4 x 0.44 s + 0.24 s; 30 fps: 4 x 0.5 s as before).
    pub fn with_expected(part_target: f64, expected: Option<Expected>) -> Self {
        let mut s = Self::new(part_target);
        s.expected = expected.filter(|e| e.frames > 1 && e.frame_ticks > 0);
        s
    }

    /// What this fragment tells of the next one (once it is complete).
    pub fn expected_next(&self) -> Option<Expected> {
        let (first, last) = (self.first_ts?, self.last_ts?);
        let span = ts::ts_diff(first, last);
        (self.frames > 1 && span > 0).then(|| Expected {
            frames: self.frames,
            frame_ticks: span / (self.frames - 1),
        })
    }

    /// Feeds bytes appended to the file. Returns how many parts were closed.
    pub fn push(&mut self, mut data: &[u8]) -> usize {
        let before = self.parts.len();
        if self.finished {
            return 0;
        }
        if !self.pending.is_empty() {
            let need = PACKET_LEN - self.pending.len();
            let take = need.min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == PACKET_LEN {
                let p = std::mem::take(&mut self.pending);
                self.packet(&p);
            }
        }
        let mut chunks = data.chunks_exact(PACKET_LEN);
        for p in &mut chunks {
            self.packet(p);
        }
        self.pending.extend_from_slice(chunks.remainder());
        self.parts.len() - before
    }

    fn packet(&mut self, b: &[u8]) {
        let offset = self.parsed;
        self.parsed += PACKET_LEN as u64;
        let Ok(p) = ts::parse_packet(b) else {
            return;
        };
        self.demux.packet(offset, &p);
        if !p.pusi {
            return;
        }
        if p.pid == 0 {
            if self.pmt_pid.is_none() {
                self.pmt_pid = ts::pat_pmt_pid(p.payload);
            }
            return;
        }
        if Some(p.pid) == self.pmt_pid {
            if self.main_pid.is_none() {
                if let Some(es) = ts::pmt_streams(p.payload) {
                    let video = es.iter().find(|(_, t)| ts::is_video(*t)).map(|e| e.0);
                    // fMP4 carries H.264 and AAC (ADTS, 0x0f)
                    let h264 = es.iter().find(|(_, t)| *t == 0x1b).map(|e| e.0);
                    let aac = es.iter().find(|(_, t)| *t == 0x0f).map(|e| e.0);
                    self.demux.set_pids(h264, aac);
                    self.main_pid = video.or_else(|| {
                        es.iter()
                            .find(|(_, t)| ts::is_audio(*t))
                            .map(|(pid, _)| *pid)
                    });
                }
            }
            return;
        }
        if Some(p.pid) != self.main_pid {
            return;
        }
        let Some(t) = ts::parse_pes_header(p.payload).and_then(|h| h.decode_ts()) else {
            return;
        };
        self.on_main_pes(offset, t, p.random_access);
    }

    fn on_main_pes(&mut self, offset: u64, t: u64, key: bool) {
        if let Some(last) = self.last_ts {
            let d = ts::ts_diff(last, t);
            if d > 0 && d < TS_CLOCK as i64 {
                self.frame_ticks = d;
            }
        }
        self.last_ts = Some(t);
        if self.first_ts.is_none() {
            self.first_ts = Some(t);
        }
        let index = self.frames;
        self.frames += 1;
        let Some(start) = self.part_start_ts else {
            // the first part starts at byte 0 (PAT, PMT, leading audio)
            self.part_start_ts = Some(t);
            self.part_independent = key;
            self.goal_frames = self.plan(index);
            return;
        };
        let elapsed = ts::ts_diff(start, t);
        // Cut at the target, or earlier when one more frame would overshoot
        // it (25 fps and a 0.5 s target: 0.48 s parts; 30 fps and 0.36 s:
        // 0.333 s), so parts stay <= PART-TARGET; never below half the
        // target. The frame length is the fragment's average, which evens
        // out RTMP's whole-millisecond timestamps (33/34 ms frames).
        let full = elapsed >= self.target
            || (elapsed * 2 >= self.target
                && elapsed + self.average_frame_ticks() > self.target + ROUNDING);
        // Or at the planned length (see `with_expected`).
        let planned = self
            .goal_frames
            .is_some_and(|g| index - self.part_first_frame >= g && elapsed >= self.min_part() - 90);
        if (full || planned) && offset > self.part_start {
            let part = Part {
                offset: self.part_start,
                len: offset - self.part_start,
                duration: elapsed as f64 / TS_CLOCK,
                independent: self.part_independent,
            };
            self.closed.push(Closed {
                part: part.clone(),
                units: self.demux.take_before(offset),
                end: Some(t),
            });
            self.parts.push(part);
            self.part_start = offset;
            self.part_start_ts = Some(t);
            self.part_independent = key;
            self.part_first_frame = index;
            self.goal_frames = self.plan(index);
        }
    }

    /// The mean distance between the fragment's frames so far (the last
    /// one's while there are only two).
    fn average_frame_ticks(&self) -> i64 {
        match (self.first_ts, self.last_ts) {
            (Some(first), Some(last)) if self.frames > 2 => {
                (ts::ts_diff(first, last) / (self.frames - 1)).max(1)
            }
            _ => self.frame_ticks,
        }
    }

    /// The shortest part allowed before a fragment's last one: 85 % of the
    /// target (RFC 8216bis 4.4.4.9).
    fn min_part(&self) -> i64 {
        (self.target * 85 + 99) / 100
    }

    /// Frames for the part starting at frame `index`, when the fragment's
    /// length can be predicted: the remaining frames split into as few
    /// parts as the target allows, each at least `min_part` long. `None`:
    /// no prediction, or the part will be the fragment's last (cut as
    /// usual, or by the end of the fragment).
    fn plan(&self, index: i64) -> Option<i64> {
        let e = self.expected?;
        let f = e.frame_ticks;
        // frames of a full part (where the `full` rule cuts)
        let max = ((self.target + ROUNDING) / f).max(1);
        let min = (self.min_part() + f - 1) / f;
        let left = e.frames - index;
        if left <= max {
            return None;
        }
        let parts = (left + max - 1) / max;
        Some((left / parts).max(min).min(max))
    }

    /// Media time (90 kHz ticks) from the newest frame read to the frame
    /// expected to close the part in progress, by its plan or the cut rule
    /// of [`Self::push`] at the fragment's average frame rate. `None` until
    /// that can be told (fewer than two frames). The watcher reads a
    /// fragment again only when that frame can be on disk.
    pub fn ticks_to_cut(&self) -> Option<i64> {
        let (start, last) = (self.part_start_ts?, self.last_ts?);
        let f = self.average_frame_ticks();
        if f <= 0 || self.finished {
            return None;
        }
        let seen = ts::ts_diff(start, last);
        // the `full` rule: the first whole number of frames at or past the
        // target, or the first that one more frame would push past it
        let k_target = (self.target + f - 1) / f;
        let k_over =
            ((self.target + ROUNDING - f) / f + 1).max((self.target + 2 * f - 1) / (2 * f));
        let mut cut = k_target.min(k_over).max(1) * f;
        if let Some(g) = self.goal_frames {
            let frames_left = self.part_first_frame + g - (self.frames - 1);
            cut = cut.min((seen + frames_left * f).max(self.min_part() - 90));
        }
        Some((cut - seen).max(0))
    }

    /// The fragment is complete (nginx listed it): the bytes after the last
    /// cut become the last part. `extinf`, nginx's duration of the segment,
    /// makes the parts add up to it. `next`: the decode time of the next
    /// fragment's first frame (the last part's end), when it is known;
    /// otherwise it is taken from `extinf`.
    pub fn finish(&mut self, extinf: Option<f64>, next: Option<u64>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.demux.finish();
        let end = self.parsed + self.pending.len() as u64;
        if end <= self.part_start {
            return;
        }
        let before: f64 = self.parts.iter().map(|p| p.duration).sum();
        let video = match (self.part_start_ts, self.last_ts) {
            (Some(s), Some(l)) => (ts::ts_diff(s, l) + self.frame_ticks).max(0) as f64 / TS_CLOCK,
            _ => 0.0,
        };
        let duration = match extinf {
            Some(e) if e - before > 0.0005 => e - before,
            _ => video,
        };
        let part = Part {
            offset: self.part_start,
            len: end - self.part_start,
            duration,
            independent: self.part_independent,
        };
        // the end of the last frame: the next fragment's first, else where
        // nginx's duration puts it (its EXTINF runs from keyframe to
        // keyframe; not for a fragment that opened with audio), if that is
        // within a quarter frame of a frame after the last one
        let from_extinf = extinf.zip(self.first_ts).and_then(|(e, first)| {
            let end = ts::ts_add(first, (e * TS_CLOCK).round() as i64);
            let last = self.last_ts?;
            let gap = ts::ts_diff(last, end);
            let f = self.average_frame_ticks().max(1);
            ((gap - f).abs() * 4 <= f).then_some(end)
        });
        self.closed.push(Closed {
            part: part.clone(),
            units: self.demux.take_before(u64::MAX),
            end: next.or(from_extinf),
        });
        self.parts.push(part);
    }

    /// The parts closed since the last call, with their media.
    pub fn take_closed(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.closed)
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn into_parts(self) -> Vec<Part> {
        self.parts
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Where the next part will start (for EXT-X-PRELOAD-HINT).
    pub fn next_part_start(&self) -> u64 {
        self.part_start
    }

    /// Bytes fed so far (including a partial packet).
    pub fn bytes(&self) -> u64 {
        self.parsed + self.pending.len() as u64
    }

    pub fn first_ts(&self) -> Option<u64> {
        self.first_ts
    }

    pub fn last_ts(&self) -> Option<u64> {
        self.last_ts
    }

    /// Seconds of main-PID media seen (first to last decode timestamp).
    pub fn elapsed(&self) -> f64 {
        match (self.first_ts, self.last_ts) {
            (Some(f), Some(l)) => ts::ts_diff(f, l).max(0) as f64 / TS_CLOCK,
            _ => 0.0,
        }
    }

    /// Typical frame duration in ticks (0 until two frames were seen).
    pub fn frame_ticks(&self) -> i64 {
        self.frame_ticks
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ts::tests::{nginx_pat_pmt, pes_packets};

    /// A fragment like nginx-rtmp writes: header, leading audio, then 30 fps
    /// video (keyframes where `key(i)`), an audio PES every 5 frames.
    pub fn fragment(frames: usize, start: u64, key: impl Fn(usize) -> bool) -> (Vec<u8>, Vec<u64>) {
        let mut f = nginx_pat_pmt();
        let (mut vcc, mut acc) = (0u8, 0u8);
        f.extend(pes_packets(0x101, &mut acc, start - 9000, None, false, 700));
        let mut video_offsets = Vec::new();
        for i in 0..frames {
            let t = start + i as u64 * 3000;
            video_offsets.push(f.len() as u64);
            f.extend(pes_packets(
                0x100,
                &mut vcc,
                t,
                None,
                key(i),
                if key(i) { 9000 } else { 2500 },
            ));
            if i % 5 == 4 {
                f.extend(pes_packets(0x101, &mut acc, t - 12000, None, false, 700));
            }
        }
        (f, video_offsets)
    }

    #[test]
    fn cuts_every_half_second_at_video_pes_starts() {
        let (f, vo) = fragment(60, 63_000, |i| i == 0);
        let mut s = FragmentScanner::new(0.5);
        assert_eq!(s.push(&f), 3);
        let p = s.parts();
        assert_eq!(p[0].offset, 0);
        assert_eq!(p[1].offset, vo[15]);
        assert_eq!(p[2].offset, vo[30]);
        assert_eq!(s.next_part_start(), vo[45]);
        for q in p {
            assert!((q.duration - 0.5).abs() < 1e-9, "{q:?}");
        }
        assert!(p[0].independent && !p[1].independent);
        s.finish(Some(1.967), None);
        let p = s.parts();
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].offset + p[3].len, f.len() as u64);
        assert!((p[3].duration - 0.467).abs() < 1e-9);
        // the parts tile the file
        let mut at = 0;
        for q in p {
            assert_eq!(q.offset, at);
            at += q.len;
        }
        assert_eq!(at, f.len() as u64);
    }

    #[test]
    fn byte_by_byte_growth_gives_the_same_parts() {
        let (f, _) = fragment(40, 90_000, |i| i == 0 || i == 22);
        let mut whole = FragmentScanner::new(0.5);
        whole.push(&f);
        let mut bits = FragmentScanner::new(0.5);
        // odd chunk sizes, like page-by-page visibility of 188-byte writes
        for c in f.chunks(97) {
            bits.push(c);
        }
        assert_eq!(whole.parts(), bits.parts());
        assert_eq!(bits.bytes(), f.len() as u64);
        // no part is closed before the PES that ends it is complete on disk
        let mut s = FragmentScanner::new(0.5);
        let p1 = whole.parts()[1].offset as usize;
        s.push(&f[..p1 + 187]);
        assert_eq!(s.parts().len(), 0);
        s.push(&f[p1 + 187..p1 + 188]);
        assert_eq!(s.parts().len(), 1);
    }

    #[test]
    fn part_at_a_mid_segment_keyframe_is_independent() {
        // keyframe at frame 30 (1.0 s): the part starting there is independent
        let (f, vo) = fragment(60, 90_000, |i| i == 0 || i == 30);
        let mut s = FragmentScanner::new(0.5);
        s.push(&f);
        let p = s.parts();
        assert_eq!(p[2].offset, vo[30]);
        assert!(p[2].independent);
        assert!(!p[1].independent);
    }

    #[test]
    fn parts_never_exceed_the_target_at_25_fps() {
        // 25 fps: 3600 ticks per frame; 0.5 s is not a whole number of frames
        let mut f = nginx_pat_pmt();
        let mut cc = 0;
        for i in 0..50u64 {
            f.extend(pes_packets(0x100, &mut cc, i * 3600, None, i == 0, 2000));
        }
        let mut s = FragmentScanner::new(0.5);
        s.push(&f);
        assert!(!s.parts().is_empty());
        for p in s.parts() {
            assert!(p.duration <= 0.5 && p.duration >= 0.425, "{p:?}");
        }
        assert_eq!(s.frame_ticks(), 3600);
    }

    /// Fed packet by packet, every frame's `ticks_to_cut` points at the
    /// frame that then closes the part, planned or not.
    #[test]
    fn ticks_to_cut_predicts_the_closing_frame() {
        for (fps, target, expected) in [
            (30, 0.36, false),
            (25, 0.36, true),
            (25, 0.5, false),
            (60, 0.36, true),
        ] {
            let frag = video(120, fps);
            let mut prev = FragmentScanner::new(target);
            prev.push(&frag);
            prev.finish(None, None);
            let mut s = FragmentScanner::with_expected(
                target,
                expected.then(|| prev.expected_next()).flatten(),
            );
            let mut predicted = None;
            let mut checked = 0;
            for p in frag.chunks(PACKET_LEN) {
                let (parts, last) = (s.parts().len(), s.last_ts());
                s.push(p);
                if s.parts().len() > parts {
                    // the frame just read closed a part
                    // the right frame (RTMP's timestamps are whole ms)
                    let off = ts::ts_diff(predicted.expect("a prediction"), s.last_ts().unwrap());
                    assert!(
                        off.abs() < s.frame_ticks() / 2,
                        "{fps} fps, {target} s, part {parts}: {off}"
                    );
                    checked += 1;
                }
                if s.last_ts() != last {
                    predicted = s.ticks_to_cut().map(|t| s.last_ts().unwrap() + t as u64);
                }
            }
            assert!(checked >= 5, "{fps} fps: {checked} parts checked");
        }
    }

    /// `frames` of video at `fps` (ms-rounded timestamps, like RTMP's),
    /// keyframe first.
    pub fn video(frames: u64, fps: u64) -> Vec<u8> {
        let mut f = nginx_pat_pmt();
        let mut cc = 0;
        for i in 0..frames {
            let t = 900_000 + (i * 1000 / fps) * 90;
            f.extend(pes_packets(0x100, &mut cc, t, None, i == 0, 2000));
        }
        f
    }

    /// Part durations of `(frames, fps)` cut with `expected`, and what it
    /// tells of the next fragment.
    fn durations(
        (frames, fps): (u64, u64),
        expected: Option<Expected>,
    ) -> (Vec<f64>, Option<Expected>) {
        durations_at(0.5, (frames, fps), expected)
    }

    fn durations_at(
        target: f64,
        (frames, fps): (u64, u64),
        expected: Option<Expected>,
    ) -> (Vec<f64>, Option<Expected>) {
        let mut s = FragmentScanner::with_expected(target, expected);
        s.push(&video(frames, fps));
        // nginx's EXTINF: up to the next keyframe
        s.finish(Some(frames as f64 / fps as f64), None);
        let d = s
            .parts()
            .iter()
            .map(|p| (p.duration * 1000.0).round() / 1000.0);
        (d.collect(), s.expected_next())
    }

    #[test]
    fn the_last_part_of_a_predicted_fragment_is_not_a_sliver() {
        // 25 fps, 2 s: as long as the target allows, the last part is 0.08 s
        let (alone, next) = durations((50, 25), None);
        assert_eq!(alone, vec![0.48, 0.48, 0.48, 0.48, 0.08]);
        let next = next.unwrap();
        assert_eq!(
            next,
            Expected {
                frames: 50,
                frame_ticks: 3600
            }
        );
        // planned from the previous fragment: 4 x 0.44 (>= 85 % of the
        // target) and 0.24
        let (planned, _) = durations((50, 25), Some(next));
        assert_eq!(planned, vec![0.44, 0.44, 0.44, 0.44, 0.24]);
        // 30 fps (ms-rounded), 2 s: 4 x 0.5 s either way
        let (alone, next) = durations((60, 30), None);
        assert_eq!(alone, vec![0.5, 0.5, 0.5, 0.5]);
        assert_eq!(durations((60, 30), next).0, vec![0.5, 0.5, 0.5, 0.5]);
        // 25 fps, 4 s keyframe interval: 8 x 0.44 + 0.48
        let (_, next) = durations((100, 25), None);
        let (planned, _) = durations((100, 25), next);
        assert_eq!(planned[..8], [0.44; 8]);
        assert_eq!(planned[8..], [0.48]);
        // a keyframe later than predicted: full parts after the plan
        let two_s = Expected {
            frames: 50,
            frame_ticks: 3600,
        };
        let (late, _) = durations((62, 25), Some(two_s));
        assert_eq!(late, vec![0.44, 0.44, 0.44, 0.44, 0.48, 0.24]);
        // every part but the last is within [85 %, 100 %] of the target
        for d in [planned, late] {
            for p in &d[..d.len() - 1] {
                assert!((0.425..=0.5).contains(p), "{d:?}");
            }
        }
    }

    #[test]
    fn the_default_target_fits_common_frame_rates() {
        // 0.36 s: whole frames at 24, 25, 30, 50 and 60 fps, every part
        // within [85 %, 100 %] of the target but the last, and no sliver
        let target = 0.36;
        for (fps, parts) in [(24, 6), (25, 6), (30, 6), (50, 6), (60, 6)] {
            let (_, next) = durations_at(target, (2 * fps, fps), None);
            let (d, _) = durations_at(target, (2 * fps, fps), next);
            assert_eq!(d.len(), parts, "{fps} fps: {d:?}");
            for p in &d[..d.len() - 1] {
                assert!(
                    (0.85 * target..=target + 0.001).contains(p),
                    "{fps} fps: {d:?}"
                );
            }
            let last = d[d.len() - 1];
            assert!((0.2..=target + 0.001).contains(&last), "{fps} fps: {d:?}");
            assert!(
                (d.iter().sum::<f64>() - 2.0).abs() < 0.01,
                "{fps} fps: {d:?}"
            );
        }
        // 30 fps: ten frames a part
        let (_, next) = durations_at(target, (60, 30), None);
        let (d, _) = durations_at(target, (60, 30), next);
        assert!(d.iter().all(|p| (0.333..=0.334).contains(p)), "{d:?}");
    }

    #[test]
    fn millisecond_rounded_30_fps_gives_half_second_parts() {
        // RTMP timestamps are whole ms: frames 33 or 34 ms apart
        let mut f = nginx_pat_pmt();
        let mut cc = 0;
        for i in 0..60u64 {
            f.extend(pes_packets(
                0x100,
                &mut cc,
                (i * 1000 / 30) * 90,
                None,
                i == 0,
                2000,
            ));
        }
        let mut s = FragmentScanner::new(0.5);
        s.push(&f);
        s.finish(Some(2.0), None);
        let d: Vec<f64> = s.parts().iter().map(|p| p.duration).collect();
        assert_eq!(d, vec![0.5, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn finish_without_extinf_uses_video_time_and_handles_wrap() {
        let start = (1u64 << 33) - 20 * 3000;
        let mut f = nginx_pat_pmt();
        let mut cc = 0;
        for i in 0..40u64 {
            f.extend(pes_packets(
                0x100,
                &mut cc,
                (start + i * 3000) & ((1 << 33) - 1),
                None,
                i == 0,
                500,
            ));
        }
        let mut s = FragmentScanner::new(0.5);
        s.push(&f);
        assert_eq!(s.parts().len(), 2);
        assert!((s.elapsed() - 39.0 / 30.0).abs() < 1e-9);
        s.finish(None, None);
        let last = s.parts().last().unwrap();
        assert!((last.duration - (10.0 / 30.0)).abs() < 1e-9, "{last:?}");
        assert!(s.is_finished());
        assert_eq!(s.push(&f), 0);
    }
}
