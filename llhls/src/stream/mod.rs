//! One stream folder (`<HLS>/<name>/`): nginx-rtmp's playlist and the
//! fragment in progress, read as they grow; the CMAF segments, parts and
//! init segments packaged from them, written beside them. The bookkeeping
//! is [`Timeline`]'s, the packaging [`Packager`]'s; this is the I/O.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod adopt;
mod files;
mod hold;
mod tail;

pub use files::fragment_number;

/// Deletes what this component packaged in a stream folder whose playlist
/// is gone while it was not running (nginx-rtmp's cleanup takes only its
/// own files): a stopped component leaves no segments behind.
pub fn clear_packaged(dir: &Path) {
    remove_packaged(dir);
}
use files::{read_playlist, remove_packaged};
use tail::{Session, Tail};

use crate::blocking::View;
use crate::fragments::FragmentState;
use crate::pace::{FrameClock, Pace};
use crate::playlist::{self, LlParams, Upstream};
use crate::record::{Recorder, Recordings};
use crate::timeline::{Timeline, CLOCK};

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
    /// Where sessions are recorded (`None`: not recorded).
    pub recordings: Option<Arc<Recordings>>,
    /// Other origins carry the streams too (`LLHLS_PEERS`): a new session
    /// is held back until the labels are compared (see `hold.rs`).
    pub replicated: bool,
}

impl Settings {
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.part_target
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
    /// What this timeline adds to nginx-rtmp's media sequence numbers (the
    /// labels it agreed on with other origins: see [`crate::labels`]).
    msn_offset: i64,
    /// A new session held back from viewers (see `hold.rs`).
    held: Option<hold::Held>,
    /// Behind another origin of the stream (see `hold.rs`).
    lagging: bool,
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
    /// Records its publish sessions (when recordings are on).
    recorder: Option<Recorder>,
    /// The last playlists rendered (whole, and delta update), with what
    /// they were rendered from: a 30-minute playlist takes ~150 µs to
    /// render, and every edge worker asks for each revision.
    rendered: [Option<(Rendered, String)>; 2],
}

/// What a rendered playlist depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rendered {
    revision: u64,
    ended: bool,
    target_duration: u64,
}

/// How much of the end of the playlist keeps its parts' bookkeeping
/// (parts are listed for the last 6 s; see [`Timeline::compact`]).
const PARTS_KEPT: Duration = Duration::from_secs(60);

/// How long files stay after they left the playlist.
const GRACE: Duration = Duration::from_secs(20);

impl StreamState {
    /// The stream `key` (`<name>` or `<name>/<rendition>`) in folder `dir`.
    pub fn new(key: &str, dir: PathBuf, settings: Settings) -> Self {
        let target_duration = settings.min_target_duration.max(1);
        remove_packaged(&dir);
        let recorder = settings
            .recordings
            .clone()
            .map(|r| Recorder::new(r, key, dir.clone()));
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
            msn_offset: 0,
            held: None,
            lagging: false,
            trash: VecDeque::new(),
            inits: Vec::new(),
            playlist_id: None,
            clock: FrameClock::default(),
            due: Instant::now(),
            announce_at: None,
            closing: None,
            buf: vec![0; 64 * 1024],
            recorder,
            rendered: [None, None],
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
        self.timeline.compact(PARTS_KEPT.as_secs() * CLOCK);
        self.collect_trash();
        let next_msn = up.next_msn();
        let after = up.segments.last().and_then(|s| fragment_number(&s.uri));
        let ended = up.endlist;
        self.upstream = Some(up);
        if self.tail.is_none() && !ended {
            self.tail = Some(self.new_tail(next_msn, None, after));
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

    /// Lists a complete segment as one once the next one's first part is
    /// overdue. Returns whether the playlist changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if self.release_due(now) {
            return true;
        }
        if self.closing.is_some() && self.close_pending(None) {
            return true;
        }
        // the publisher left and the last segment is complete: the
        // session's recording is finished
        if self.closing.is_none() && self.upstream.as_ref().is_some_and(|u| u.endlist) {
            if let Some(r) = self.recorder.as_mut() {
                r.finish();
            }
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
        if let Some(v) = self.held_view() {
            return v;
        }
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
        if let Some(l) = self.held_last_part() {
            return l;
        }
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
    pub fn render(&mut self, skip: bool) -> Option<String> {
        if let Some(r) = self.held_render(skip) {
            return r;
        }
        self.timeline.segments().front()?;
        let ended = self.upstream.as_ref().is_some_and(|u| u.endlist);
        let now = Rendered {
            revision: self.timeline.revision(),
            ended,
            target_duration: self.target_duration,
        };
        if let Some((at, text)) = &self.rendered[usize::from(skip)] {
            if *at == now {
                return Some(text.clone());
            }
        }
        let text = playlist::render(&self.timeline, &self.params(), skip, ended);
        self.rendered[usize::from(skip)] = Some((now, text.clone()));
        Some(text)
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
