//! One stream folder (`<HLS>/<name>/`): nginx-rtmp's playlist and the
//! fragment in progress, read as they grow; the CMAF segments, parts and
//! init segments packaged from them, written beside them. The bookkeeping
//! is [`Timeline`]'s, the packaging [`Packager`]'s; this is the I/O.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::blocking::View;
use crate::cmaf::{Chunk, Packager};
use crate::fragments::FragmentState;
use crate::pace::{FrameClock, Pace};
use crate::parts::{Closed, Expected, FragmentScanner};
use crate::playlist::{self, LlParams, Upstream};
use crate::timeline::{Segment, Timeline, CLOCK};
use crate::ts::{self, TS_CLOCK};

/// nginx-rtmp's playlist in a stream's (or a rendition's) folder.
pub const PLAYLIST: &str = rtmp_live_types::layout::INDEX;

#[derive(Debug, Clone)]
pub struct Settings {
    pub part_target: f64,
    /// Floor of EXT-X-TARGETDURATION (the rendered value never decreases).
    pub min_target_duration: u64,
    /// When the fragment in progress is read.
    pub pace: Pace,
    /// How much the playlist holds: the oldest segments leave while the
    /// others still span this.
    pub window: Duration,
}

impl Settings {
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.part_target
    }
}

/// A fragment nginx-rtmp is writing.
#[derive(Debug)]
struct Tail {
    msn: u64,
    /// The fragment's file name (`<n>.ts`) once found: `n` is the MSN with
    /// nginx-rtmp's sequential naming, a millisecond timestamp with
    /// `hls_fragment_naming system`.
    name: Option<(u64, String)>,
    /// Number in the name of the last listed fragment (the tail's is larger).
    after: Option<u64>,
    file: Option<File>,
    scanner: FragmentScanner,
    /// The packaged segment being written (`.<n>.m4s`, renamed to
    /// `<n>.m4s` once complete).
    out: Option<File>,
    written: u64,
    /// Its segment opens a new publish session (after another one).
    discontinuity: bool,
}

/// A publish session: one timeline of timestamps.
#[derive(Debug)]
struct Session {
    packager: Packager,
    /// The init segment in force (`init-<n>.mp4`).
    init: Option<u64>,
    /// When its first fragment was created (whole milliseconds).
    wall: Option<SystemTime>,
    /// That wall clock and the decode time of its first segment: every
    /// segment's date-time follows from its decode time (continuous, the
    /// same on every reload).
    anchor: Option<(SystemTime, u64)>,
    /// Decode time (33-bit) where the last packaged segment ended.
    end: Option<u64>,
    /// Length of the last complete fragment (plans the next one's parts).
    length: Option<Expected>,
}

impl Session {
    fn new() -> Session {
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

#[derive(Debug)]
pub struct StreamState {
    dir: PathBuf,
    settings: Settings,
    upstream: Option<Upstream>,
    target_duration: u64,
    tail: Option<Tail>,
    timeline: Timeline,
    session: Session,
    /// Files that left the playlist, deleted after a grace period (clients
    /// may still ask for what the playlist they hold lists).
    trash: VecDeque<(Instant, PathBuf)>,
    /// The init segments written (`init-<n>.mp4`) and not discarded yet.
    inits: Vec<u64>,
    /// The playlist file last read (inode, size, modification time).
    playlist_id: Option<(u64, u64, i64, i64)>,
    /// When the publisher's frames are written (to time the next read).
    clock: FrameClock,
    /// When the watcher's tick reads the fragment in progress again.
    due: Instant,
    /// When a segment that completed is listed as one even though the next
    /// has no part yet (see [`Timeline::complete`]).
    announce_at: Option<Instant>,
    /// A fragment nginx-rtmp listed, waiting for the next one's first frame
    /// (the end of its last): (it, its EXTINF, the longest wait).
    closing: Option<(Tail, f64, Instant)>,
    buf: Vec<u8>,
}

/// How long files stay after they left the playlist.
const GRACE: Duration = Duration::from_secs(20);

impl StreamState {
    pub fn new(dir: PathBuf, settings: Settings) -> Self {
        let target_duration = settings.min_target_duration.max(1);
        remove_packaged(&dir);
        let epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        StreamState {
            dir,
            settings,
            upstream: None,
            target_duration,
            tail: None,
            timeline: Timeline::new(epoch),
            session: Session::new(),
            trash: VecDeque::new(),
            inits: Vec::new(),
            playlist_id: None,
            clock: FrameClock::default(),
            due: Instant::now(),
            announce_at: None,
            closing: None,
            buf: vec![0; 64 * 1024],
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub fn has_playlist(&self) -> bool {
        self.upstream.is_some()
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// Re-reads nginx-rtmp's playlist and reads what was appended to the
    /// fragment in progress. `Ok(false)`: nothing changed. An error
    /// `NotFound` means the stream is gone.
    pub fn reload_playlist(&mut self) -> io::Result<bool> {
        let text = read_playlist(&self.dir.join(PLAYLIST))?;
        self.playlist_id = None;
        let up = match playlist::parse(&text) {
            Ok(up) => up,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "unusable playlist: {e}");
                return Ok(false);
            }
        };
        if self.upstream.as_ref() == Some(&up) {
            // unchanged; still catch up with the fragment (a rescan after
            // lost inotify events lands here)
            return Ok(self.pump());
        }
        self.target_duration = self.target_duration.max(up.target_duration);
        for s in &up.segments {
            self.target_duration = self.target_duration.max(s.duration.round() as u64);
        }
        // the fragment being tailed is listed now: it is complete. Its last
        // frame lasts until the next fragment's first, which nginx-rtmp
        // writes as it lists this one: read it now, or (a read that came
        // between the two) as soon as the next fragment's tail has it.
        self.close_pending(None);
        if let Some(mut t) = self.tail.take() {
            if let Some(s) = up.segment(t.msn) {
                let extinf = s.duration;
                self.read_tail(&mut t, true);
                match self.next_fragment_start(&up, &t) {
                    Some(next) => self.close(t, extinf, Some(next)),
                    None => {
                        let wait = Duration::from_secs_f64(2.0 * self.settings.part_target);
                        self.closing = Some((t, extinf, Instant::now() + wait));
                    }
                }
            } else if t.msn >= up.next_msn() {
                self.tail = Some(t);
            }
        }
        // listed fragments this process did not tail (it started late):
        // packaged whole, once
        if self.timeline.segments().is_empty() {
            self.package_listed(&up);
            self.timeline.announce();
        }
        if up.endlist {
            self.timeline.announce();
        }
        let window = (self.settings.window.as_secs_f64() * CLOCK as f64) as u64;
        for file in self.timeline.trim_to(window) {
            self.discard(self.dir.join(format!("{file}.m4s")));
        }
        self.collect_trash();
        let next_msn = up.next_msn();
        let after = up.segments.last().and_then(|s| fragment_number(&s.uri));
        let ended = up.endlist;
        self.upstream = Some(up);
        if self.tail.is_none() && !ended {
            self.tail = Some(Tail {
                msn: next_msn,
                name: None,
                after,
                file: None,
                scanner: FragmentScanner::with_expected(
                    self.settings.part_target,
                    self.session.length,
                ),
                out: None,
                written: 0,
                discontinuity: false,
            });
        }
        self.pump();
        Ok(true)
    }

    /// The safety net's look at the stream: the playlist is read again
    /// only if its file changed since it was last read, and a fragment in
    /// progress not found yet is looked for.
    pub fn rescan(&mut self) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.dir.join(PLAYLIST))?;
        let id = Some((m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        if id == self.playlist_id {
            self.collect_trash();
            return Ok(!self.tail_open() && self.pump());
        }
        let changed = self.reload_playlist()?;
        self.playlist_id = id;
        Ok(changed)
    }

    /// The decode time of the first frame of the fragment after `t` (the
    /// end of `t`'s last frame): nginx-rtmp writes that keyframe into the
    /// new fragment as it lists the last one, so it is on disk by now.
    fn next_fragment_start(&self, up: &Upstream, t: &Tail) -> Option<u64> {
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
    fn package_listed(&mut self, up: &Upstream) {
        let segs: Vec<_> = up.segments.iter().collect();
        for (i, s) in segs.iter().enumerate() {
            let Some(num) = fragment_number(&s.uri) else {
                continue;
            };
            let Ok(data) = std::fs::read(self.dir.join(&s.uri)) else {
                continue;
            };
            let mut t = Tail {
                msn: s.msn,
                name: Some((num, s.uri.clone())),
                after: None,
                file: None,
                scanner: FragmentScanner::with_expected(
                    self.settings.part_target,
                    self.session.length,
                ),
                out: None,
                written: 0,
                discontinuity: false,
            };
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
    fn package(&mut self, t: &mut Tail) {
        let now = SystemTime::now();
        let back = Duration::from_secs_f64(t.scanner.elapsed());
        self.package_at(t, now.checked_sub(back).unwrap_or(now));
    }

    /// As [`Self::package`], `created` being when the fragment started.
    fn package_at(&mut self, t: &mut Tail, created: SystemTime) {
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
    fn start_segment(&mut self, t: &mut Tail, closed: &Closed, created: SystemTime) {
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
    fn write_chunk(&mut self, t: &mut Tail, chunk: &Chunk) -> io::Result<()> {
        let (num, _) = t.name.clone().ok_or(io::ErrorKind::NotFound)?;
        if let Some(init) = &chunk.init {
            write_atomic(&self.dir.join(playlist::init_uri(num)), init)?;
            self.session.init = Some(num);
            if !self.inits.contains(&num) {
                self.inits.push(num);
            }
        }
        let Some(init) = self.session.init else {
            return Err(io::Error::other("no init segment"));
        };
        if t.out.is_none() {
            let path = self.dir.join(format!(".{num}.m4s"));
            t.out = Some(File::create(path)?);
            t.written = 0;
            let wall = self.session.wall.unwrap_or_else(SystemTime::now);
            let (wall, at) = *self.session.anchor.get_or_insert((wall, chunk.start));
            let offset = chunk.start.saturating_sub(at);
            let pdt = wall + Duration::from_micros(offset * 1_000_000 / CLOCK);
            let discontinuity = t.discontinuity && !self.timeline.segments().is_empty();
            self.timeline.begin(Segment {
                msn: t.msn,
                file: num,
                init,
                start: chunk.start,
                parts: vec![],
                complete: false,
                announced: false,
                discontinuity,
                pdt,
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
    fn complete(&mut self, t: Tail) {
        self.session.length = t.scanner.expected_next();
        let Some((num, _)) = t.name else {
            return;
        };
        if t.out.is_none() {
            return;
        }
        let tmp = self.dir.join(format!(".{num}.m4s"));
        if let Err(e) = std::fs::rename(&tmp, self.dir.join(format!("{num}.m4s"))) {
            tracing::warn!(dir = %self.dir.display(), "segment {num}: {e}");
            return;
        }
        self.timeline.complete();
        // the next segment's first part is due a part later; if it does not
        // come (the publisher left), the segment is listed anyway
        let wait = Duration::from_secs_f64(2.0 * self.settings.part_target + 0.25);
        self.announce_at = Some(Instant::now() + wait);
    }

    /// Finishes `t` (listed by nginx-rtmp, `extinf` long), its last frame
    /// ending at `next` (the next fragment's first decode time) if known.
    fn close(&mut self, mut t: Tail, extinf: f64, next: Option<u64>) {
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
    fn close_pending(&mut self, next: Option<u64>) -> bool {
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

    /// Lists a complete segment as one once the next one's first part is
    /// overdue. Returns whether the playlist changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.closing.is_some() && self.close_pending(None) {
            return true;
        }
        match self.announce_at {
            Some(at) if now >= at => {
                self.announce_at = None;
                let changed = self.timeline.unannounced();
                self.timeline.announce();
                changed
            }
            _ => false,
        }
    }

    fn discard(&mut self, path: PathBuf) {
        self.trash.push_back((Instant::now(), path));
    }

    /// Deletes what left the playlist more than [`GRACE`] ago, and init
    /// segments no listed segment needs any more.
    fn collect_trash(&mut self) {
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
    fn find_tail(&self, t: &Tail) -> Option<(u64, String)> {
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
    fn read_tail(&mut self, t: &mut Tail, drain: bool) -> bool {
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

    /// The fragment in progress is open (its new bytes can be read).
    pub fn tail_open(&self) -> bool {
        self.tail.as_ref().is_some_and(|t| t.file.is_some())
    }

    /// When the fragment in progress should be read again (see
    /// [`crate::pace`]).
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Fragment files `nums` were created: one of them may be the fragment
    /// in progress, whose name is then known without looking for it.
    pub fn offer(&mut self, nums: &[u64]) {
        let Some(t) = self.tail.as_mut().filter(|t| t.name.is_none()) else {
            return;
        };
        let seq_possible = t.after.map_or(true, |a| a < t.msn);
        let n = if seq_possible && nums.contains(&t.msn) {
            Some(t.msn)
        } else {
            t.after
                .and_then(|a| nums.iter().copied().filter(|n| *n > a).min())
        };
        t.name = n.map(|n| (n, format!("{n}.ts")));
    }

    /// Whether a write to one of the fragments numbered `nums` may concern
    /// the fragment in progress (its own file, or any while it is unknown).
    pub fn tail_wants(&self, nums: &[u64]) -> bool {
        match &self.tail {
            Some(Tail {
                name: Some((n, _)), ..
            }) => nums.contains(n),
            Some(_) => true,
            None => false,
        }
    }

    /// What this stream's fragment `num` (`<num>.ts`) is now (see
    /// [`crate::fragments`]).
    pub fn fragment_state(&self, num: u64) -> FragmentState {
        if let Some(Tail {
            name: Some((n, _)), ..
        }) = &self.tail
        {
            if *n == num {
                return FragmentState::Growing;
            }
        }
        let Some(up) = &self.upstream else {
            return FragmentState::Unknown;
        };
        let mut listed = up.segments.iter().filter_map(|s| fragment_number(&s.uri));
        match listed.clone().min() {
            _ if listed.any(|n| n == num) => FragmentState::Complete,
            // older than every listed fragment: complete long ago
            Some(first) if num < first => FragmentState::Complete,
            _ => FragmentState::Unknown,
        }
    }

    pub fn view(&self) -> Option<View> {
        self.timeline.view(self.settings.part_target)
    }

    /// Whether the stream is still published (nginx-rtmp has not ended the
    /// playlist and a fragment is expected).
    pub fn live(&self) -> bool {
        self.tail.is_some()
    }

    /// This playlist's last segment and part, as a sibling rendition's
    /// `EXT-X-RENDITION-REPORT` gives them.
    pub fn last_part(&self) -> Option<(u64, Option<u64>)> {
        self.timeline.last_part()
    }

    pub fn params(&self) -> LlParams {
        LlParams {
            target_duration: self.target_duration,
            part_target: self.settings.part_target,
            part_hold_back: self.settings.part_hold_back(),
            skip_until: 6.0 * self.target_duration as f64,
        }
    }

    /// The LL playlist (`skip`: a delta update), `None` before the first
    /// part.
    pub fn render(&self, skip: bool, reports: &str) -> Option<String> {
        self.timeline.segments().front()?;
        let ended = self.upstream.as_ref().is_some_and(|u| u.endlist);
        Some(playlist::render(
            &self.timeline,
            &self.params(),
            skip,
            ended,
            reports,
        ))
    }

    /// Where part `n`'s bytes are now (see [`Timeline::part`]), and the
    /// path of its file.
    pub fn part_path(&self, file: u64, complete: bool) -> PathBuf {
        if complete {
            self.dir.join(format!("{file}.m4s"))
        } else {
            self.dir.join(format!(".{file}.m4s"))
        }
    }
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // the stream is gone (its playlist was deleted): so is what was
        // packaged from it
        remove_packaged(&self.dir);
    }
}

/// Deletes this component's files in a stream folder (segments, their
/// temporary names, init segments).
fn remove_packaged(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let init = name.starts_with("init-") || name.starts_with(".init-");
        if name.ends_with(".m4s") || (init && name.ends_with(".mp4")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes a file under a temporary name, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("tmp")
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The number in a fragment's file name (`<n>.ts`).
pub fn fragment_number(uri: &str) -> Option<u64> {
    uri.rsplit('/').next()?.strip_suffix(".ts")?.parse().ok()
}

/// Opens a fragment for reading without updating its access time: the file
/// is modified all the time, so with `relatime` nearly every read would
/// write the inode (a third of the reads' cost). `O_NOATIME` needs the
/// file's owner (nginx's user, as we run); otherwise a plain open.
fn open_noatime(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
        .or_else(|_| File::open(path))
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Reads a playlist (a few hundred bytes, rewritten with each fragment):
/// without updating its access time (the first read of each new file would
/// write its inode) and without asking its size first.
fn read_playlist(path: &Path) -> io::Result<String> {
    let mut f = open_noatime(path)?;
    let (mut buf, mut len) = (vec![0u8; 4096], 0);
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
