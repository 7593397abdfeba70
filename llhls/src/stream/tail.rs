//! Packaging the fragment nginx-rtmp is writing: reading it as it grows,
//! cutting it into parts, writing the CMAF segment and closing it once
//! nginx-rtmp lists it; and deleting what left the playlist.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::files::{fragment_number, open_noatime, read_full, write_atomic};
use super::{StreamState, GRACE};
use crate::cmaf::{Chunk, Packager};
use crate::parts::{Closed, Expected, FragmentScanner};
use crate::playlist::{self, Upstream};
use crate::timeline::{Segment, CLOCK};
use crate::ts::{self, TS_CLOCK};

/// A fragment nginx-rtmp is writing.
#[derive(Debug)]
pub(super) struct Tail {
    pub(super) msn: u64,
    /// The fragment's file name (`<n>.ts`) once found: `n` is the MSN with
    /// nginx-rtmp's sequential naming, a millisecond timestamp with
    /// `hls_fragment_naming system`.
    pub(super) name: Option<(u64, String)>,
    /// Number in the name of the last listed fragment (the tail's is larger).
    pub(super) after: Option<u64>,
    pub(super) file: Option<File>,
    pub(super) scanner: FragmentScanner,
    /// The packaged segment being written (`.<n>.m4s`, renamed to
    /// `<n>.m4s` once complete).
    pub(super) out: Option<File>,
    pub(super) written: u64,
    /// Its segment opens a new publish session (after another one).
    pub(super) discontinuity: bool,
}

/// A publish session: one timeline of timestamps.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) packager: Packager,
    /// The init segment in force (`init-<n>.mp4`).
    pub(super) init: Option<u64>,
    /// When its first fragment was created (whole milliseconds).
    pub(super) wall: Option<SystemTime>,
    /// That wall clock and the decode time of its first segment: every
    /// segment's date-time follows from its decode time (continuous, the
    /// same on every reload).
    pub(super) anchor: Option<(SystemTime, u64)>,
    /// Decode time (33-bit) where the last packaged segment ended.
    pub(super) end: Option<u64>,
    /// Length of the last complete fragment (plans the next one's parts).
    pub(super) length: Option<Expected>,
}

impl Session {
    pub(super) fn new() -> Session {
        Session {
            packager: Packager::default(),
            init: None,
            wall: None,
            anchor: None,
            end: None,
            length: None,
        }
    }
}

impl StreamState {
    /// A fragment to read from its start: `msn`, its file once known
    /// (`name`), the number of the last listed one before it (`after`).
    pub(super) fn new_tail(
        &self,
        msn: u64,
        name: Option<(u64, String)>,
        after: Option<u64>,
    ) -> Tail {
        Tail {
            msn,
            name,
            after,
            file: None,
            scanner: FragmentScanner::with_expected(self.settings.part_target, self.session.length),
            out: None,
            written: 0,
            discontinuity: false,
        }
    }

    /// The decode time of the first frame of the fragment after `t` (the
    /// end of `t`'s last frame): nginx-rtmp writes that keyframe into the
    /// new fragment as it lists the last one, so it is on disk by now.
    pub(super) fn next_fragment_start(&self, up: &Upstream, t: &Tail) -> Option<u64> {
        let after = t.name.as_ref().map(|(n, _)| *n).or(t.after)?;
        let probe = Tail {
            msn: up.next_msn(),
            name: None,
            after: Some(after),
            file: None,
            scanner: FragmentScanner::new(self.settings.part_target),
            out: None,
            written: 0,
            discontinuity: false,
        };
        let (_, name) = self.find_tail(&probe)?;
        let mut f = open_noatime(&self.dir.join(name)).ok()?;
        let mut buf = vec![0u8; 256 * 1024];
        let n = read_full(&mut f, &mut buf).ok()?;
        let mut sc = FragmentScanner::new(self.settings.part_target);
        sc.push(&buf[..n]);
        sc.first_ts()
    }

    /// Packages listed fragments this process has not seen being written
    /// (a late start): each becomes a segment, its parts cut as if tailed.
    pub(super) fn package_listed(&mut self, up: &Upstream) {
        let segs: Vec<_> = up.segments.iter().collect();
        for (i, s) in segs.iter().enumerate() {
            let Some(num) = fragment_number(&s.uri) else {
                continue;
            };
            let Ok(data) = std::fs::read(self.dir.join(&s.uri)) else {
                continue;
            };
            let mut t = self.new_tail(s.msn, Some((num, s.uri.clone())), None);
            t.scanner.push(&data);
            // the end of its last frame: the next listed fragment's first,
            // or for the last listed one the fragment being written after it
            let next = match segs.get(i + 1) {
                Some(n) => std::fs::read(self.dir.join(&n.uri)).ok().and_then(|d| {
                    let mut sc = FragmentScanner::new(self.settings.part_target);
                    sc.push(&d[..d.len().min(256 * 1024)]);
                    sc.first_ts()
                }),
                None => self.next_fragment_start(up, &t),
            };
            // the fragment was written about its duration before the next
            // one's start, which is about now for the last listed one
            let back: f64 = segs[i..].iter().map(|s| s.duration).sum();
            let created = SystemTime::now() - Duration::from_secs_f64(back);
            if next.is_none() && i + 1 == segs.len() {
                // its end comes with the next fragment's first frame
                self.package_at(&mut t, created);
                let wait = Duration::from_secs_f64(2.0 * self.settings.part_target);
                self.closing = Some((t, s.duration, Instant::now() + wait));
                continue;
            }
            t.scanner.finish(Some(s.duration), next);
            self.package_at(&mut t, created);
            self.complete(t);
        }
    }

    /// Packages the parts `t`'s scanner closed: each becomes a chunk,
    /// appended to the segment file, and a part of the timeline.
    pub(super) fn package(&mut self, t: &mut Tail) {
        let now = SystemTime::now();
        let back = Duration::from_secs_f64(t.scanner.elapsed());
        self.package_at(t, now.checked_sub(back).unwrap_or(now));
    }

    /// As [`Self::package`], `created` being when the fragment started.
    pub(super) fn package_at(&mut self, t: &mut Tail, created: SystemTime) {
        for closed in t.scanner.take_closed() {
            let first = t.out.is_none();
            if first {
                self.start_segment(t, &closed, created);
            }
            let Some(chunk) = self
                .session
                .packager
                .package(&closed.units, closed.end, first)
            else {
                continue;
            };
            if let Err(e) = self.write_chunk(t, &chunk) {
                tracing::warn!(dir = %self.dir.display(), "writing a part: {e}");
                continue;
            }
            if let Some(end) = closed.end {
                self.session.end = Some(end);
            }
        }
    }

    /// The first part of `t` closed: a new session if its timestamps do
    /// not follow the last segment's (a new publish; nginx-rtmp marks it
    /// too, but only once the fragment is listed).
    pub(super) fn start_segment(&mut self, t: &mut Tail, closed: &Closed, created: SystemTime) {
        let first = closed
            .units
            .iter()
            .find(|u| u.kind == crate::demux::Kind::Video)
            .map(|u| u.dts);
        let jumped = match (self.session.end, first) {
            (Some(end), Some(first)) => ts::ts_diff(end, first).abs() > TS_CLOCK as i64,
            _ => false,
        };
        if jumped {
            self.session = Session::new();
        }
        t.discontinuity = jumped;
        if self.session.anchor.is_none() {
            // whole milliseconds, so that every date-time is exact: the
            // anchor's decode time is set by the first chunk
            let ms = created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.session.wall = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        }
    }

    /// Appends a chunk to `t`'s segment file (opening it, and the
    /// timeline's segment, with the first one) and lists it as a part.
    pub(super) fn write_chunk(&mut self, t: &mut Tail, chunk: &Chunk) -> io::Result<()> {
        t.name.as_ref().ok_or(io::ErrorKind::NotFound)?;
        let msn = self.segment_msn(t.msn, t.out.is_none());
        // the segment's id: the same on every origin that agreed on the
        // labels (see `crate::labels`)
        let num = self.timeline.epoch() + msn;
        if let Some(init) = &chunk.init {
            // named by its content: the same on every origin, whenever its
            // component first saw the stream
            let id = xxhash_rust::xxh3::xxh3_64(init);
            write_atomic(&self.dir.join(playlist::init_uri(id)), init)?;
            self.session.init = Some(id);
            if !self.inits.contains(&id) {
                self.inits.push(id);
            }
        }
        let Some(init) = self.session.init else {
            return Err(io::Error::other("no init segment"));
        };
        if t.out.is_none() {
            if t.discontinuity && !self.timeline.segments().is_empty() {
                self.hold_back();
            }
            let path = self.dir.join(format!(".{num}.m4s"));
            t.out = Some(File::create(path)?);
            t.written = 0;
            let wall = self.session.wall.unwrap_or_else(SystemTime::now);
            let (wall, at) = *self.session.anchor.get_or_insert((wall, chunk.start));
            let offset = chunk.start.saturating_sub(at);
            let pdt = wall + Duration::from_micros(offset * 1_000_000 / CLOCK);
            let discontinuity = t.discontinuity && !self.timeline.segments().is_empty();
            self.timeline.begin(Segment {
                msn,
                file: num,
                init,
                start: chunk.start,
                parts: vec![],
                complete: false,
                announced: false,
                discontinuity,
                pdt,
                compacted: false,
            });
        }
        let out = t.out.as_mut().expect("opened above");
        out.write_all(&chunk.bytes)?;
        let len = chunk.bytes.len() as u64;
        self.timeline
            .add_part(t.written, len, chunk.duration, chunk.independent);
        t.written += len;
        Ok(())
    }

    /// `t` is listed: its segment file takes its name.
    pub(super) fn complete(&mut self, t: Tail) {
        self.session.length = t.scanner.expected_next();
        if t.name.is_none() || t.out.is_none() {
            return;
        }
        let Some(num) = self.timeline.in_progress().map(|s| s.file) else {
            return;
        };
        let tmp = self.dir.join(format!(".{num}.m4s"));
        if let Err(e) = std::fs::rename(&tmp, self.dir.join(format!("{num}.m4s"))) {
            tracing::warn!(dir = %self.dir.display(), "segment {num}: {e}");
            return;
        }
        if let (Some(seg), Some(rec)) = (self.timeline.complete(), self.recorder.as_mut()) {
            rec.segment(seg);
        }
        // the next segment's first part is due a part later; if it does not
        // come (the publisher left), the segment is listed anyway
        let wait = Duration::from_secs_f64(2.0 * self.settings.part_target + 0.25);
        self.announce_at = Some(Instant::now() + wait);
    }

    /// Finishes `t` (listed by nginx-rtmp, `extinf` long), its last frame
    /// ending at `next` (the next fragment's first decode time) if known.
    pub(super) fn close(&mut self, mut t: Tail, extinf: f64, next: Option<u64>) {
        // a next fragment of another publish session (timestamps that do not
        // follow) says nothing of this one's end
        let next = next.filter(|n| {
            t.scanner
                .last_ts()
                .is_some_and(|last| (0..=TS_CLOCK as i64).contains(&ts::ts_diff(last, *n)))
        });
        t.scanner.finish(Some(extinf), next);
        self.package(&mut t);
        self.complete(t);
    }

    /// Finishes the listed fragment that waits for the next one's first
    /// frame: with `next` (that decode time), or when the wait is over.
    /// Returns whether it did.
    pub(super) fn close_pending(&mut self, next: Option<u64>) -> bool {
        let due = self
            .closing
            .as_ref()
            .is_some_and(|(_, _, until)| next.is_some() || Instant::now() >= *until);
        if !due {
            return false;
        }
        let (t, extinf, _) = self.closing.take().expect("checked above");
        self.close(t, extinf, next);
        true
    }

    pub(super) fn discard(&mut self, path: PathBuf) {
        self.trash.push_back((Instant::now(), path));
    }

    /// Deletes what left the playlist more than [`GRACE`] ago, and init
    /// segments no listed segment needs any more.
    pub(super) fn collect_trash(&mut self) {
        while self
            .trash
            .front()
            .is_some_and(|(t, _)| t.elapsed() >= GRACE)
        {
            let (_, path) = self.trash.pop_front().expect("front exists");
            let _ = std::fs::remove_file(path);
        }
        let needed = self.timeline.inits();
        let current = self.session.init;
        let (keep, gone): (Vec<u64>, Vec<u64>) = self
            .inits
            .iter()
            .partition(|n| needed.contains(n) || Some(**n) == current);
        self.inits = keep;
        for n in gone {
            self.discard(self.dir.join(playlist::init_uri(n)));
        }
    }

    /// The file of the fragment in progress: `<msn>.ts` (sequential
    /// naming), else the lowest-numbered `.ts` above the last listed one
    /// (system naming: names are the creation time in ms).
    pub(super) fn find_tail(&self, t: &Tail) -> Option<(u64, String)> {
        let seq = format!("{}.ts", t.msn);
        let seq_possible = match t.after {
            Some(a) => a < t.msn,
            None => true,
        };
        if seq_possible && self.dir.join(&seq).is_file() {
            return Some((t.msn, seq));
        }
        // sequential naming (the last listed one is `<msn - 1>.ts`): not
        // created yet; its creation event names it (`offer`)
        let after = t.after.filter(|a| a.wrapping_add(1) != t.msn)?;
        std::fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = fragment_number(&name)?;
                (n > after).then_some((n, name))
            })
            .min()
    }

    /// Reads what was appended to the fragment in progress. `drain`: up to
    /// its end; otherwise a read shorter than the buffer ends it (the rest,
    /// if any was written meanwhile, is read on the next tick: one system
    /// call per fragment and tick instead of two).
    pub(super) fn read_tail(&mut self, t: &mut Tail, drain: bool) -> bool {
        if t.file.is_none() {
            if t.name.is_none() {
                t.name = self.find_tail(t);
            }
            let Some((_, name)) = &t.name else {
                return false;
            };
            match open_noatime(&self.dir.join(name)) {
                Ok(f) => t.file = Some(f),
                Err(_) => return false,
            }
        }
        let Some(f) = t.file.as_mut() else {
            return false;
        };
        let mut grew = false;
        loop {
            match f.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    t.scanner.push(&self.buf[..n]);
                    grew = true;
                    if !drain && n < self.buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), msn = t.msn, "read: {e}");
                    break;
                }
            }
        }
        grew
    }

    /// Reads what nginx-rtmp appended to the fragment in progress and
    /// packages the parts it completes. Returns true if a part was added.
    pub fn pump(&mut self) -> bool {
        let Some(mut t) = self.tail.take() else {
            return false;
        };
        let parts_before = self.timeline.next_part();
        let closed_before = t.scanner.parts().len();
        self.read_tail(&mut t, false);
        let now = Instant::now();
        if t.file.is_some() {
            let closed = t.scanner.parts().len() != closed_before;
            self.clock
                .read(now, t.scanner.last_ts(), closed, self.settings.pace.tick);
        }
        let ticks = |n: i64| Duration::from_secs_f64(n.max(0) as f64 / TS_CLOCK);
        let cut = t
            .scanner
            .last_ts()
            .zip(t.scanner.ticks_to_cut())
            .map(|(last, left)| ts::ts_add(last, left));
        self.due = self.settings.pace.next(
            now,
            cut.and_then(|c| self.clock.expected(c, ticks(t.scanner.frame_ticks()))),
            self.clock.step(now),
        );
        if self.closing.is_some() && t.scanner.first_ts().is_none() {
            // the listed fragment waits for this one's first frame: read
            // every tick until it is there
            self.due = now + self.settings.pace.tick;
        }
        let mut changed = false;
        if self.closing.is_some() {
            if let Some(first) = t.scanner.first_ts() {
                changed |= self.close_pending(Some(first));
            }
        }
        if self.closing.is_none() {
            self.package(&mut t);
        }
        changed |= self.timeline.next_part() != parts_before;
        self.tail = Some(t);
        changed
    }
}
