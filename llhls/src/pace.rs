//! When to read a fragment in progress again.
//!
//! A part can be listed once the frame after it is on disk, and nginx-rtmp
//! writes frames as they arrive, in real time. Reading every fragment every
//! tick found that frame at most a tick late, but cost a `read` per stream
//! and tick, most of them for frames nobody waits on (the middle of a
//! part). So a fragment is read every tick only from [`MARGIN`] before the
//! frame that closes its part is due (known from the frames' timestamps and
//! when the reads found them), and otherwise at most [`MAX_STEP`] apart.
//! A stream whose closing frame was once found by a read long after the
//! one before it (it may have been on disk for that long: a publisher that
//! sends ahead of real time, frames closer than the average) is read at
//! most [`SHORT_STEP`] apart for [`WARY`].

use std::time::{Duration, Instant};

use crate::ts::{self, TS_CLOCK};

/// Longest wait between two reads of a fragment in progress: more than a
/// part lasts, so a steady stream is read about once before its closing
/// frame is due, then every tick until it is found.
pub const MAX_STEP: Duration = Duration::from_millis(400);
/// Reading every tick starts this long before the closing frame is due:
/// room for frames that arrive early (network jitter).
pub const MARGIN: Duration = Duration::from_millis(30);
/// Longest wait between two reads for a while after a closing frame was
/// found late.
pub const SHORT_STEP: Duration = Duration::from_millis(50);
/// How long a stream is read in short steps after that.
pub const WARY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub tick: Duration,
}

impl Pace {
    pub fn new(tick: Duration) -> Self {
        Pace { tick }
    }

    /// The next read after the one at `now`, when the frame closing the
    /// part in progress can be on disk at `expected` at the earliest
    /// ([`FrameClock::expected`]), waiting at most `step`
    /// ([`FrameClock::step`]). Without a prediction: the next tick.
    pub fn next(&self, now: Instant, expected: Option<Instant>, step: Duration) -> Instant {
        let soonest = now + self.tick;
        let Some(expected) = expected else {
            return soonest;
        };
        let due = expected.checked_sub(MARGIN).unwrap_or(now);
        due.clamp(soonest, (now + step).max(soonest))
    }
}

/// How far (90 kHz ticks) a frame is placed from the anchor: beyond that
/// the timestamps jumped (a new publish).
const ANCHOR_REACH: i64 = 10 * TS_CLOCK as i64;

/// When a stream's frames are written, as far as the reads that found them
/// tell: a frame found by a read was not on disk at the read before it.
#[derive(Debug, Default, Clone)]
pub struct FrameClock {
    last_read: Option<Instant>,
    /// The newest frame (decode timestamp) and the reads around it.
    newest: Option<(u64, Option<Instant>, Instant)>,
    /// The last frame whose write time is known within two reads a tick
    /// apart (the earlier read, a lower bound): later frames are placed
    /// from it by their timestamps, since frames come in real time.
    anchor: Option<(u64, Instant)>,
    /// Short steps until then (see [`SHORT_STEP`]).
    wary_until: Option<Instant>,
}

impl FrameClock {
    /// A read at `now` whose newest frame is `newest` (`None`: no frame
    /// yet); `closed`: it found the frame closing a part.
    pub fn read(&mut self, now: Instant, newest: Option<u64>, closed: bool, tick: Duration) {
        if let Some(window) = self.last_read.map(|b| now - b) {
            if closed && window > 2 * tick {
                // that frame may have been on disk since the read before
                tracing::debug!(?window, "part closed by a read long after the one before");
                self.wary_until = Some(now + WARY);
            }
        }
        if let Some(pts) = newest {
            if self.newest.map_or(true, |(p, ..)| p != pts) {
                self.newest = Some((pts, self.last_read, now));
                if let Some(before) = self.last_read.filter(|b| now - *b <= 2 * tick) {
                    self.anchor = Some((pts, before));
                }
            }
        }
        self.last_read = Some(now);
    }

    /// The longest wait before the next read.
    pub fn step(&self, now: Instant) -> Duration {
        match self.wary_until {
            Some(t) if now < t => SHORT_STEP,
            _ => MAX_STEP,
        }
    }

    /// When the frame with timestamp `pts` (the newest one or a later one)
    /// should be on disk at the earliest, if frames keep coming in real
    /// time: placed from the newest frame (written no earlier than the read
    /// before the one that found it, nor than a `frame` before that read)
    /// or from the anchor, whichever is later. A publisher that catches up
    /// after a delay sends frames earlier than that: those are found late
    /// once, then in [`SHORT_STEP`]s.
    pub fn expected(&self, pts: u64, frame: Duration) -> Option<Instant> {
        let (newest, before, seen) = self.newest?;
        let place = |at: Instant, from: u64| {
            let d = ts::ts_diff(from, pts);
            (0..=ANCHOR_REACH)
                .contains(&d)
                .then(|| at + Duration::from_secs_f64(d as f64 / TS_CLOCK))
        };
        let mut written = seen.checked_sub(frame).unwrap_or(seen);
        if let Some(b) = before {
            written = written.max(b);
        }
        let from_newest = place(written, newest);
        let from_anchor = self.anchor.and_then(|(a, at)| place(at, a));
        from_newest.max(from_anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames written at `at(i)` (seconds), a part closed by every
    /// `per_part`-th frame; reads as `Pace` schedules them. Returns the
    /// reads per part and, for each closing frame, the delay from its write
    /// to the read that found it.
    fn run(fps: f64, per_part: i64, at: impl Fn(i64) -> f64) -> (f64, Vec<Duration>) {
        let tick = Duration::from_millis(10);
        let pace = Pace::new(tick);
        let t0 = Instant::now();
        let time = |s: f64| t0 + Duration::from_secs_f64(s);
        let frame = Duration::from_secs_f64(1.0 / fps);
        let pts = |i: i64| (i as f64 * TS_CLOCK / fps) as u64;
        let frames = 600;
        let mut now = time(at(0));
        let mut clock = FrameClock::default();
        let mut newest = -1i64;
        let (mut reads, mut late) = (0u32, Vec::new());
        while newest < frames - 1 {
            reads += 1;
            let on_disk = (0..frames)
                .take_while(|&i| time(at(i)) <= now)
                .last()
                .unwrap_or(-1);
            let mut closed = false;
            for i in newest + 1..=on_disk {
                if i > 0 && i % per_part == 0 {
                    late.push(now - time(at(i)));
                    closed = true;
                }
            }
            newest = on_disk;
            clock.read(now, (newest >= 0).then(|| pts(newest)), closed, tick);
            let cut = pts(newest + per_part - newest % per_part);
            now = pace.next(now, clock.expected(cut, frame), clock.step(now));
        }
        (reads as f64 / (frames / per_part) as f64, late)
    }

    fn worst(late: &[Duration]) -> Duration {
        late.iter().copied().max().unwrap_or_default()
    }

    #[test]
    fn steady_frames_are_found_within_a_tick_with_few_reads() {
        for (fps, per_part) in [(30.0, 10), (25.0, 9), (60.0, 21)] {
            let (reads, late) = run(fps, per_part, |i| i as f64 / fps);
            let worst = worst(&late);
            assert!(worst <= Duration::from_millis(10), "{fps} fps: {worst:?}");
            // every tick would be 36 reads a part
            eprintln!("{fps} fps: {reads:.1} reads a part, worst {worst:?}");
            assert!(reads <= 6.0, "{fps} fps: {reads} reads a part");
        }
    }

    #[test]
    fn jittered_frames_are_found_within_a_tick() {
        // frames up to 25 ms late, irregularly
        let (reads, late) = run(30.0, 10, |i| {
            i as f64 / 30.0 + ((i * 7919) % 26) as f64 / 1000.0
        });
        let worst = worst(&late);
        assert!(worst <= Duration::from_millis(10), "{worst:?}");
        eprintln!("jitter: {reads:.1} reads a part, worst {worst:?}");
        assert!(reads <= 10.0, "{reads}");
    }

    #[test]
    fn a_stall_then_a_burst_is_found_within_a_tick() {
        // the publisher stalls for 0.5 s every 2 s, then sends at once
        let (_, late) = run(30.0, 10, |i| {
            let t = i as f64 / 30.0;
            let (n, r) = ((t / 2.0).floor(), t % 2.0);
            if r < 0.5 {
                n * 2.0 + 0.5
            } else {
                t
            }
        });
        assert!(worst(&late) <= Duration::from_millis(10), "{late:?}");
    }

    #[test]
    fn a_publisher_behind_then_catching_up_is_found_within_a_tick() {
        // frames 60-119 come 80 ms late, then the rest on time again (the
        // first of them at once, with the last late one)
        let late_by = 0.08;
        let (_, late) = run(30.0, 10, |i| match i {
            60..=119 => i as f64 / 30.0 + late_by,
            120.. => (i as f64 / 30.0).max(119.0 / 30.0 + late_by),
            _ => i as f64 / 30.0,
        });
        assert!(worst(&late) <= Duration::from_millis(10), "{late:?}");
    }

    #[test]
    fn closing_frames_found_late_make_the_steps_short() {
        // every closing frame comes with the three frames before it, 133 ms
        // early (a sender that bunches frames): the first is found late,
        // the others within a short step
        let (_, late) = run(30.0, 10, |i| match i % 10 {
            6..=9 if i > 10 => (i - i % 10 + 6) as f64 / 30.0,
            0 if i > 0 => (i - 4) as f64 / 30.0,
            _ => i as f64 / 30.0,
        });
        assert!(late[0] > SHORT_STEP, "{late:?}");
        assert!(
            worst(&late[1..]) <= SHORT_STEP + Duration::from_millis(10),
            "{late:?}"
        );
    }

    #[test]
    fn no_prediction_means_the_next_tick() {
        let pace = Pace::new(Duration::from_millis(10));
        let now = Instant::now();
        assert_eq!(pace.next(now, None, MAX_STEP), now + pace.tick);
        assert_eq!(FrameClock::default().expected(0, Duration::ZERO), None);
    }
}
