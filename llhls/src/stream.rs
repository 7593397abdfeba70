//! One stream folder (`<HLS>/<name>/`): nginx-rtmp's playlist, the fragment
//! in progress being tailed, parts of the recent segments, and the rendered
//! LL playlist.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::blocking::View;
use crate::fragments::FragmentState;
use crate::pace::{FrameClock, Pace};
use crate::parts::{Expected, FragmentScanner, Part};
use crate::playlist::{self, Current, LlParams, SegmentLl, Upstream};
use crate::ts::{self, TS_CLOCK};

pub const PLAYLIST: &str = "index.m3u8";

#[derive(Debug, Clone)]
pub struct Settings {
    pub part_target: f64,
    /// Floor of EXT-X-TARGETDURATION (the rendered value never decreases).
    pub min_target_duration: u64,
    /// Complete segments that keep their EXT-X-PART lines.
    pub part_segments: usize,
    /// When the fragment in progress is read.
    pub pace: Pace,
}

impl Settings {
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.part_target
    }
}

#[derive(Debug)]
struct Done {
    parts: Vec<Part>,
    last_ts: Option<u64>,
    frame_ticks: i64,
    /// Its length, the expected length of the next fragment.
    length: Option<Expected>,
}

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
    discontinuity: Option<bool>,
}

#[derive(Debug)]
pub struct StreamState {
    dir: PathBuf,
    settings: Settings,
    upstream: Option<Upstream>,
    target_duration: u64,
    done: BTreeMap<u64, Done>,
    pdt: BTreeMap<u64, SystemTime>,
    tail: Option<Tail>,
    /// The playlist file last read (inode, size, modification time).
    playlist_id: Option<(u64, u64, i64, i64)>,
    /// When the publisher's frames are written (to time the next read).
    clock: FrameClock,
    /// When the watcher's tick reads the fragment in progress again.
    due: Instant,
    buf: Vec<u8>,
}

impl StreamState {
    pub fn new(dir: PathBuf, settings: Settings) -> Self {
        let target_duration = settings.min_target_duration.max(1);
        StreamState {
            dir,
            settings,
            upstream: None,
            target_duration,
            done: BTreeMap::new(),
            pdt: BTreeMap::new(),
            tail: None,
            playlist_id: None,
            clock: FrameClock::default(),
            due: Instant::now(),
            buf: vec![0; 64 * 1024],
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
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
        let now = SystemTime::now();
        self.target_duration = self.target_duration.max(up.target_duration);
        for s in &up.segments {
            self.target_duration = self.target_duration.max(s.duration.round() as u64);
        }
        // the fragment being tailed is listed now: it is complete
        if let Some(mut t) = self.tail.take() {
            if let Some(s) = up.segment(t.msn) {
                let extinf = s.duration;
                self.read_tail(&mut t, true);
                t.scanner.finish(Some(extinf));
                self.finish_done(t.msn, t.scanner);
            } else if t.msn >= up.next_msn() {
                self.tail = Some(t);
            }
        }
        // recent segments this process did not tail (it started late): scan
        // their files once
        let first_with_parts = up
            .next_msn()
            .saturating_sub(self.settings.part_segments as u64);
        for s in up.segments.iter().filter(|s| s.msn >= first_with_parts) {
            if !self.done.contains_key(&s.msn) {
                if let Ok(data) = std::fs::read(self.dir.join(&s.uri)) {
                    let mut sc = FragmentScanner::new(self.settings.part_target);
                    sc.push(&data);
                    sc.finish(Some(s.duration));
                    self.finish_done(s.msn, sc);
                }
            }
        }
        self.done.retain(|msn, _| *msn >= up.media_sequence);
        // program date-times of listed segments: from the next known one back
        let mut next: Option<(u64, SystemTime)> = None;
        for s in up.segments.iter().rev() {
            if let Some(t) = self.pdt.get(&s.msn) {
                next = Some((s.msn, *t));
                continue;
            }
            let end = match next {
                Some((m, t)) if m == s.msn + 1 => t,
                _ => now,
            };
            let t = end
                .checked_sub(Duration::from_secs_f64(s.duration))
                .unwrap_or(end);
            self.pdt.insert(s.msn, t);
            next = Some((s.msn, t));
        }
        self.pdt.retain(|msn, _| *msn >= up.media_sequence);
        let next_msn = up.next_msn();
        let after = up.segments.last().and_then(|s| fragment_number(&s.uri));
        self.upstream = Some(up);
        if self.tail.is_none() && !self.upstream.as_ref().is_some_and(|u| u.endlist) {
            // fragments follow the publisher's keyframe interval: the next
            // one is planned to be as long as the last one
            let expected = self
                .done
                .get(&next_msn.wrapping_sub(1))
                .and_then(|d| d.length);
            self.tail = Some(Tail {
                msn: next_msn,
                name: None,
                after,
                file: None,
                scanner: FragmentScanner::with_expected(self.settings.part_target, expected),
                discontinuity: None,
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
            return Ok(!self.tail_open() && self.pump());
        }
        let changed = self.reload_playlist()?;
        self.playlist_id = id;
        Ok(changed)
    }

    fn finish_done(&mut self, msn: u64, sc: FragmentScanner) {
        let last_ts = sc.last_ts();
        let frame_ticks = sc.frame_ticks();
        let length = sc.expected_next();
        self.done.insert(
            msn,
            Done {
                parts: sc.into_parts(),
                last_ts,
                frame_ticks,
                length,
            },
        );
        let keep = self.settings.part_segments.max(1);
        while self.done.len() > keep {
            let first = *self.done.keys().next().expect("non-empty");
            self.done.remove(&first);
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

    /// Reads what nginx-rtmp appended to the fragment in progress. Returns
    /// true if a part was completed (or the fragment appeared).
    pub fn pump(&mut self) -> bool {
        let Some(mut t) = self.tail.take() else {
            return false;
        };
        let opened = t.file.is_none();
        let parts_before = t.scanner.parts().len();
        self.read_tail(&mut t, false);
        let now = Instant::now();
        if t.file.is_some() {
            let closed = t.scanner.parts().len() != parts_before;
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
        if opened && t.file.is_some() {
            // first sight of the file: it was created about now (less what
            // was already written if this process started late)
            let now = SystemTime::now();
            let back = Duration::from_secs_f64(t.scanner.elapsed());
            self.pdt
                .entry(t.msn)
                .or_insert(now.checked_sub(back).unwrap_or(now));
        }
        if t.discontinuity.is_none() {
            if let Some(first) = t.scanner.first_ts() {
                // timestamps that do not follow the previous segment: a new
                // publish (nginx-rtmp marks it too once the segment is listed)
                t.discontinuity = Some(match self.done.get(&(t.msn.wrapping_sub(1))) {
                    Some(Done {
                        last_ts: Some(prev),
                        frame_ticks,
                        ..
                    }) => {
                        let gap = ts::ts_diff(*prev, first) - frame_ticks;
                        gap.abs() > TS_CLOCK as i64
                    }
                    _ => false,
                });
            }
        }
        // a new part, or the fragment's file found (its preload hint)
        let changed = t.scanner.parts().len() != parts_before || (opened && t.file.is_some());
        self.tail = Some(t);
        changed
    }

    /// Whether a write to one of the fragments numbered `nums` may concern
    /// the fragment in progress (its own file, or any while it is unknown).
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

    pub fn tail_wants(&self, nums: &[u64]) -> bool {
        match &self.tail {
            Some(Tail {
                name: Some((n, _)), ..
            }) => nums.contains(n),
            Some(_) => true,
            None => false,
        }
    }

    /// False while the fragment after the last listed one is expected but
    /// its file name is not known yet (nginx-rtmp creates it right after it
    /// lists the previous one; with system naming the name cannot be
    /// predicted), i.e. while the playlist would have no preload hint.
    pub fn next_known(&self) -> bool {
        match &self.tail {
            Some(t) => {
                t.name.is_some() || t.after.is_some_and(|a| a + 1 == t.msn) || t.after.is_none()
            }
            None => true,
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
        let up = self.upstream.as_ref()?;
        let (current_msn, current_parts) = match &self.tail {
            Some(t) => (t.msn, t.scanner.parts().len() as u64),
            None => (up.next_msn(), 0),
        };
        let previous_parts = current_msn
            .checked_sub(1)
            .and_then(|m| self.done.get(&m))
            .map(|d| d.parts.len() as u64)
            .filter(|n| *n > 0);
        Some(View {
            current_msn,
            current_parts,
            previous_parts,
            part_target: self.settings.part_target,
        })
    }

    /// This playlist's last segment and part, as a sibling rendition's
    /// `EXT-X-RENDITION-REPORT` gives them: `(LAST-MSN, LAST-PART)`, the
    /// part only when that segment has parts listed.
    pub fn last_part(&self) -> Option<(u64, Option<u64>)> {
        let up = self.upstream.as_ref()?;
        if let Some(t) = &self.tail {
            let n = t.scanner.parts().len() as u64;
            if n > 0 {
                return Some((t.msn, Some(n - 1)));
            }
        }
        let last = up.last_msn()?;
        let part = self
            .done
            .get(&last)
            .and_then(|d| (d.parts.len() as u64).checked_sub(1));
        Some((last, part))
    }

    pub fn render(&self) -> Option<String> {
        let up = self.upstream.as_ref()?;
        let params = LlParams {
            target_duration: self.target_duration,
            part_target: self.settings.part_target,
            part_hold_back: self.settings.part_hold_back(),
        };
        let current = self.tail.as_ref().map(|t| Current {
            msn: t.msn,
            uri: match (&t.name, t.after) {
                (Some((_, n)), _) => Some(n.clone()),
                // sequential naming: the next file is `<msn>.ts`
                (None, Some(a)) if a + 1 == t.msn => Some(format!("{}.ts", t.msn)),
                (None, _) => None,
            },
            parts: t.scanner.parts(),
            next_part_start: t.scanner.next_part_start(),
            pdt: self.pdt.get(&t.msn).copied(),
            discontinuity: t.discontinuity.unwrap_or(false),
        });
        Some(playlist::render(
            up,
            &params,
            |msn| SegmentLl {
                parts: self.done.get(&msn).map(|d| &d.parts[..]),
                pdt: self.pdt.get(&msn).copied(),
            },
            current.as_ref(),
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::tests::fragment;
    use std::io::Write;

    fn settings() -> Settings {
        Settings {
            part_target: 0.5,
            min_target_duration: 2,
            part_segments: 2,
            pace: Pace::new(Duration::from_millis(10)),
        }
    }

    fn write_playlist(dir: &Path, seq: u64, segs: &[(u64, f64)]) {
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXT-X-TARGETDURATION:2\n"
        );
        for (n, d) in segs {
            s += &format!("#EXTINF:{d:.3},\n{n}.ts\n");
        }
        std::fs::write(dir.join("index.m3u8.bak"), s).unwrap();
        std::fs::rename(dir.join("index.m3u8.bak"), dir.join("index.m3u8")).unwrap();
    }

    #[test]
    fn follows_a_fragment_from_creation_to_listing() {
        let d = tempfile::tempdir().unwrap();
        let (f0, _) = fragment(60, 90_000, |i| i == 0);
        std::fs::write(d.path().join("0.ts"), &f0).unwrap();
        write_playlist(d.path(), 0, &[(0, 1.967)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        assert!(st.reload_playlist().unwrap());
        // a late start scans the listed segment for its parts
        let out = st.render().unwrap();
        assert_eq!(out.matches("URI=\"0.ts\"").count(), 4, "{out}");
        assert!(
            out.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1.ts\",BYTERANGE-START=0\n"),
            "{out}"
        );
        assert_eq!(
            st.view().unwrap(),
            View {
                current_msn: 1,
                current_parts: 0,
                previous_parts: Some(4),
                part_target: 0.5
            }
        );

        // 1.ts grows in two steps
        let (f1, vo) = fragment(60, 90_000 + 60 * 3000, |i| i == 0);
        let mut w = File::create(d.path().join("1.ts")).unwrap();
        w.write_all(&f1[..vo[20] as usize + 100]).unwrap();
        assert!(st.pump());
        assert_eq!(st.view().unwrap().current_parts, 1);
        let out = st.render().unwrap();
        assert!(
            out.contains(&format!(
                "#EXT-X-PART:DURATION=0.500,URI=\"1.ts\",BYTERANGE=\"{}@0\",INDEPENDENT=YES\n",
                vo[15]
            )),
            "{out}"
        );
        assert!(out.contains(&format!("BYTERANGE-START={}\n", vo[15])));
        assert!(!out.contains("DISCONTINUITY"), "{out}");
        assert!(!st.pump());
        w.write_all(&f1[vo[20] as usize + 100..]).unwrap();
        assert!(st.pump());
        assert_eq!(st.view().unwrap().current_parts, 3);
        drop(w);
        write_playlist(d.path(), 0, &[(0, 1.967), (1, 1.967)]);
        assert!(st.reload_playlist().unwrap());
        assert!(!st.reload_playlist().unwrap());
        let v = st.view().unwrap();
        assert_eq!((v.current_msn, v.current_parts), (2, 0));
        let out = st.render().unwrap();
        let up = playlist::parse(&out).unwrap();
        assert_eq!(up.segments.len(), 2);
        // parts of 1.ts tile the file
        let mut at = 0u64;
        for l in out
            .lines()
            .filter(|l| l.contains("URI=\"1.ts\"") && l.starts_with("#EXT-X-PART:"))
        {
            let br = l
                .split("BYTERANGE=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let (len, off) = br.split_once('@').unwrap();
            assert_eq!(off.parse::<u64>().unwrap(), at);
            at += len.parse::<u64>().unwrap();
        }
        assert_eq!(at, f1.len() as u64);
        assert_eq!(out.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 2);
    }

    #[test]
    fn the_fragment_in_progress_is_planned_from_the_last_one() {
        // 25 fps, keyframe every 2 s
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("0.ts"), crate::parts::tests::video(50, 25)).unwrap();
        write_playlist(d.path(), 0, &[(0, 2.0)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        st.reload_playlist().unwrap();
        std::fs::write(d.path().join("1.ts"), crate::parts::tests::video(50, 25)).unwrap();
        st.pump();
        write_playlist(d.path(), 0, &[(0, 2.0), (1, 2.0)]);
        st.reload_playlist().unwrap();
        let out = st.render().unwrap();
        let of = |uri: &str| -> Vec<&str> {
            out.lines()
                .filter(|l| l.starts_with("#EXT-X-PART:") && l.contains(uri))
                .map(|l| &l[21..26])
                .collect()
        };
        // scanned whole after a late start: cut as long as allowed
        assert_eq!(
            of("\"0.ts\""),
            ["0.480", "0.480", "0.480", "0.480", "0.080"],
            "{out}"
        );
        // tailed with 0.ts's length known: no 0.08 s sliver at the end
        assert_eq!(
            of("\"1.ts\""),
            ["0.440", "0.440", "0.440", "0.440", "0.240"],
            "{out}"
        );
    }

    #[test]
    fn new_publish_after_a_gap_is_marked_discontinuous() {
        let d = tempfile::tempdir().unwrap();
        let (f0, _) = fragment(30, 900_000, |i| i == 0);
        std::fs::write(d.path().join("4.ts"), &f0).unwrap();
        write_playlist(d.path(), 4, &[(4, 0.967)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        st.reload_playlist().unwrap();
        // timestamps restart near zero
        let (f1, _) = fragment(20, 90_000, |i| i == 0);
        std::fs::write(d.path().join("5.ts"), &f1).unwrap();
        st.pump();
        let out = st.render().unwrap();
        assert!(
            out.contains("4.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"),
            "{out}"
        );
    }

    #[test]
    fn playlist_gone_is_not_found() {
        let d = tempfile::tempdir().unwrap();
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        assert_eq!(
            st.reload_playlist().unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(st.render().is_none() && st.view().is_none());
    }

    #[test]
    fn system_naming_finds_the_fragment_in_progress() {
        let d = tempfile::tempdir().unwrap();
        let (f0, _) = fragment(60, 90_000, |i| i == 0);
        std::fs::write(d.path().join("1700000000000.ts"), &f0).unwrap();
        write_playlist_named(d.path(), 0, &[("1700000000000.ts", 1.967)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        assert!(st.reload_playlist().unwrap());
        // the next name is not known before nginx-rtmp creates the file
        let out = st.render().unwrap();
        assert!(!out.contains("PRELOAD-HINT"), "{out}");
        // an older leftover is not taken for the fragment in progress
        std::fs::write(d.path().join("1699999990000.ts"), &f0).unwrap();
        let (f1, vo) = fragment(60, 90_000 + 60 * 3000, |i| i == 0);
        std::fs::write(
            d.path().join("1700000002000.ts"),
            &f1[..vo[20] as usize + 100],
        )
        .unwrap();
        assert!(st.tail_wants(&[1700000002000]));
        assert!(st.pump());
        assert!(!st.tail_wants(&[1699999990000]));
        let out = st.render().unwrap();
        assert!(
            out.contains(&format!(
                "#EXT-X-PART:DURATION=0.500,URI=\"1700000002000.ts\",BYTERANGE=\"{}@0\",INDEPENDENT=YES\n",
                vo[15]
            )),
            "{out}"
        );
        assert!(
            out.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1700000002000.ts\""),
            "{out}"
        );
        assert_eq!(st.view().unwrap().current_msn, 1);
    }

    #[test]
    fn created_fragments_name_the_fragment_in_progress() {
        let d = tempfile::tempdir().unwrap();
        let (f0, _) = fragment(60, 90_000, |i| i == 0);
        std::fs::write(d.path().join("1700000000000.ts"), &f0).unwrap();
        write_playlist_named(d.path(), 0, &[("1700000000000.ts", 1.967)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        st.reload_playlist().unwrap();
        // an older one (deleted by nginx-rtmp's cleanup) is not it; of two
        // newer ones, the first is
        let (f1, vo) = fragment(60, 90_000 + 60 * 3000, |i| i == 0);
        std::fs::write(
            d.path().join("1700000002000.ts"),
            &f1[..vo[20] as usize + 100],
        )
        .unwrap();
        st.offer(&[1699999990000, 1700000004000, 1700000002000]);
        assert!(st.pump());
        assert_eq!(st.fragment_state(1700000002000), FragmentState::Growing);
        assert_eq!(st.view().unwrap().current_parts, 1);
    }

    #[test]
    fn a_rescan_reads_the_playlist_only_if_its_file_changed() {
        let d = tempfile::tempdir().unwrap();
        let (f0, _) = fragment(60, 90_000, |i| i == 0);
        std::fs::write(d.path().join("0.ts"), &f0).unwrap();
        write_playlist(d.path(), 0, &[(0, 1.967)]);
        let mut st = StreamState::new(d.path().to_path_buf(), settings());
        assert!(st.rescan().unwrap());
        assert!(!st.rescan().unwrap());
        // same inode, size and time, other text: not read
        let path = d.path().join(PLAYLIST);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("1.967", "1.968");
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        (&f).write_all(text.as_bytes()).unwrap();
        f.set_modified(mtime).unwrap();
        assert!(!st.rescan().unwrap());
        assert!(st.render().unwrap().contains("#EXTINF:1.967"));
        // touched: read
        f.set_modified(mtime + Duration::from_secs(1)).unwrap();
        assert!(st.rescan().unwrap());
        assert!(st.render().unwrap().contains("#EXTINF:1.968"));
        // gone: the stream is
        std::fs::remove_file(&path).unwrap();
        assert_eq!(st.rescan().unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    fn write_playlist_named(dir: &Path, seq: u64, segs: &[(&str, f64)]) {
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXT-X-TARGETDURATION:2\n"
        );
        for (n, d) in segs {
            s += &format!("#EXTINF:{d:.3},\n{n}\n");
        }
        std::fs::write(dir.join("index.m3u8"), s).unwrap();
    }
}
