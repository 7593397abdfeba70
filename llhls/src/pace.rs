//! When to read a fragment in progress again.
//!
//! A part can be listed once the frame after it is on disk, and nginx-rtmp
//! writes frames as they arrive, in real time. Reading every fragment every
//! tick found that frame at most a tick late, but cost a `read` per stream
//! and tick, most of them for frames nobody waits on (the middle of a
//! part). So a fragment is read every tick only from shortly before the
//! frame that closes its part is due, and in steps of at most [`MAX_STEP`]
//! before that (a publisher that bursts ahead is then found at most that
//! late).

use std::time::{Duration, Instant};

use crate::ts::{self, TS_CLOCK};

/// Longest wait between two reads of a fragment in progress.
pub const MAX_STEP: Duration = Duration::from_millis(150);
/// Reading every tick starts this long before the closing frame is due:
/// room for frames that arrive early (network jitter).
pub const MARGIN: Duration = Duration::from_millis(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub tick: Duration,
}

impl Pace {
    pub fn new(tick: Duration) -> Self {
        Pace { tick }
    }

    /// The next read after the one at `now`, when the frame closing the
    /// part in progress comes `to_cut` after a frame written no earlier
    /// than `written`. Without a prediction: the next tick.
    pub fn next(
        &self,
        now: Instant,
        written: Option<Instant>,
        to_cut: Option<Duration>,
    ) -> Instant {
        let soonest = now + self.tick;
        let (Some(written), Some(to_cut)) = (written, to_cut) else {
            return soonest;
        };
        let due = (written + to_cut).checked_sub(MARGIN).unwrap_or(now);
        due.clamp(soonest, (now + MAX_STEP).max(soonest))
    }
}

/// When the frames of one fragment were written, as far as the reads that
/// found them tell: a frame found by a read was not there at the read
/// before it.
#[derive(Debug, Default, Clone)]
pub struct FrameClock {
    last_read: Option<Instant>,
    /// The newest frame (decode timestamp) and the reads around it.
    newest: Option<(u64, Option<Instant>, Instant)>,
    /// A frame whose write time is known within two reads a tick apart:
    /// later ones are placed from it by their timestamps (frames come in
    /// real time).
    anchor: Option<(u64, Instant)>,
}

impl FrameClock {
    /// A read at `now` whose newest frame is `newest` (`None`: no frame
    /// yet).
    pub fn read(&mut self, now: Instant, newest: Option<u64>, tick: Duration) {
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

    /// No earlier than this the newest frame was written (`frame`: the
    /// frame duration; frames are not written faster than that).
    pub fn newest_written(&self, frame: Duration) -> Option<Instant> {
        let (pts, before, seen) = self.newest?;
        let mut t = seen.checked_sub(frame).unwrap_or(seen);
        if let Some(b) = before {
            t = t.max(b);
        }
        if let Some((apts, at)) = self.anchor {
            let d = ts::ts_diff(apts, pts);
            if d >= 0 {
                t = t.max(at + Duration::from_secs_f64(d as f64 / TS_CLOCK));
            }
        }
        Some(t.min(seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames written at `at(i)` (seconds), a part closed by every
    /// `per_part`-th frame; reads as `Pace` schedules them. Returns the
    /// reads per part and the worst delay from a closing frame's write to
    /// the read that found it.
    fn run(fps: f64, per_part: i64, at: impl Fn(i64) -> f64) -> (f64, Duration) {
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
        let (mut reads, mut worst) = (0u32, Duration::ZERO);
        while newest < frames - 1 {
            reads += 1;
            let on_disk = (0..frames)
                .take_while(|&i| time(at(i)) <= now)
                .last()
                .unwrap_or(-1);
            for i in newest + 1..=on_disk {
                if i > 0 && i % per_part == 0 {
                    worst = worst.max(now - time(at(i)));
                }
            }
            newest = on_disk;
            clock.read(now, (newest >= 0).then(|| pts(newest)), tick);
            let to_cut = Duration::from_secs_f64((per_part - newest % per_part) as f64 / fps);
            now = pace.next(now, clock.newest_written(frame), Some(to_cut));
        }
        (reads as f64 / (frames / per_part) as f64, worst)
    }

    #[test]
    fn steady_frames_are_found_within_a_tick_with_few_reads() {
        for (fps, per_part) in [(30.0, 10), (25.0, 9), (60.0, 21)] {
            let (reads, worst) = run(fps, per_part, |i| i as f64 / fps);
            assert!(worst <= Duration::from_millis(10), "{fps} fps: {worst:?}");
            // every tick would be 36 reads a part
            eprintln!("{fps} fps: {reads:.1} reads a part, worst {worst:?}");
            assert!(reads <= 8.0, "{fps} fps: {reads} reads a part");
        }
    }

    #[test]
    fn jittered_frames_are_found_within_a_tick() {
        // frames up to 25 ms late, irregularly
        let (reads, worst) = run(30.0, 10, |i| {
            i as f64 / 30.0 + ((i * 7919) % 26) as f64 / 1000.0
        });
        assert!(worst <= Duration::from_millis(10), "{worst:?}");
        eprintln!("jitter: {reads:.1} reads a part, worst {worst:?}");
        assert!(reads <= 10.0, "{reads}");
    }

    #[test]
    fn a_burst_is_found_within_the_longest_step() {
        // the publisher stalls for 0.5 s every 2 s, then sends at once
        let (_, worst) = run(30.0, 10, |i| {
            let t = i as f64 / 30.0;
            let (n, r) = ((t / 2.0).floor(), t % 2.0);
            if r < 0.5 {
                n * 2.0 + 0.5
            } else {
                t
            }
        });
        assert!(worst <= MAX_STEP + Duration::from_millis(10), "{worst:?}");
    }

    #[test]
    fn no_prediction_means_the_next_tick() {
        let pace = Pace::new(Duration::from_millis(10));
        let now = Instant::now();
        assert_eq!(pace.next(now, None, None), now + pace.tick);
        assert_eq!(pace.next(now, Some(now), None), now + pace.tick);
        assert_eq!(FrameClock::default().newest_written(Duration::ZERO), None);
    }
}
