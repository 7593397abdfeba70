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
pub(crate) mod tests;
