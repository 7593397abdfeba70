//! Recordings: every publish session's segments, kept after it ends as a
//! finished (VOD) playlist (the layout: `rtmp_live_types::recording`).
//!
//! Recorded as it goes: each segment, once complete, is hard-linked into
//! the session's folder (no copy; the live window deletes its own name,
//! the recording keeps its) and appended to the folder's in-progress
//! playlist. When the session ends (the publisher left, reconnected, or
//! the stream is gone) the folder gets its `index.m3u8` and
//! `recording.json` ([`finish`]). A crash loses nothing recorded: at
//! start every unfinished folder is finished the same way
//! ([`Recordings::recover`]), and a folder with nothing in it is removed.
//!
//! The renditions of an ABR stream (`<name>/<rendition>`) share one session
//! folder (`<start>/<rendition>/…` and the ladder's master): the first
//! rendition to record opens it, the others join it while it is open.

mod finish;
mod retention;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rtmp_live_types::{layout, recording};

pub use finish::{finish_session, media_duration};
pub use retention::Sweep;

use crate::playlist::{format_pdt, seconds};
use crate::timeline::Segment;

/// What every stream's recorder shares: where recordings go, how long
/// they stay, and the sessions open now.
#[derive(Debug)]
pub struct Recordings {
    root: PathBuf,
    /// How long a finished recording stays (from its end).
    pub retention: Duration,
    /// Bytes all recordings may take; the oldest finished ones go first.
    pub max_bytes: u64,
    open: Mutex<OpenSessions>,
}

/// The sessions being recorded.
#[derive(Debug, Default)]
struct OpenSessions {
    /// (stream name, start) → how many of its renditions record into it.
    sessions: HashMap<(String, u64), usize>,
    /// Stream name → the session its renditions join: until the first of
    /// them leaves it (its publish session ended), then the next one
    /// opened.
    joinable: HashMap<String, u64>,
}

impl Recordings {
    pub fn new(root: PathBuf, retention: Duration, max_bytes: u64) -> Arc<Recordings> {
        Arc::new(Recordings {
            root,
            retention,
            max_bytes,
            open: Mutex::new(OpenSessions::default()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `session` (`<name>/<start>`) is being recorded now.
    pub fn is_open(&self, name: &str, start: u64) -> bool {
        self.open
            .lock()
            .expect("recordings lock")
            .sessions
            .contains_key(&(name.to_string(), start))
    }

    /// Joins the joinable session of `name`, or opens one starting at
    /// `start`. Returns the session's start.
    fn join(&self, name: &str, start: u64) -> u64 {
        let mut open = self.open.lock().expect("recordings lock");
        let s = *open.joinable.entry(name.to_string()).or_insert(start);
        *open.sessions.entry((name.to_string(), s)).or_insert(0) += 1;
        s
    }

    /// A rendition left session `start` of `name` (which no rendition
    /// joins from now on): whether it was the last.
    fn leave(&self, name: &str, start: u64) -> bool {
        let mut open = self.open.lock().expect("recordings lock");
        if open.joinable.get(name) == Some(&start) {
            open.joinable.remove(name);
        }
        let key = (name.to_string(), start);
        match open.sessions.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                open.sessions.remove(&key);
                true
            }
        }
    }
}

/// One stream's (or rendition's) recorder.
#[derive(Debug)]
pub struct Recorder {
    shared: Arc<Recordings>,
    /// The stream's name and its rendition (ABR), from its folder.
    name: String,
    rendition: Option<String>,
    /// The stream's folder (where the segments are).
    src: PathBuf,
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    start: u64,
    /// Where this rendition's media and playlist go.
    dir: PathBuf,
    playlist: File,
    init: Option<u64>,
    /// An ABR session's master is in its folder.
    master: bool,
}

impl Recorder {
    /// The recorder of the stream whose folder is `src`, keyed `key`
    /// (`<name>` or `<name>/<rendition>`).
    pub fn new(shared: Arc<Recordings>, key: &str, src: PathBuf) -> Recorder {
        let (name, rendition) = match key.split_once('/') {
            Some((n, r)) => (n.to_string(), Some(r.to_string())),
            None => (key.to_string(), None),
        };
        Recorder {
            shared,
            name,
            rendition,
            src,
            open: None,
        }
    }

    /// Records complete segment `seg` (its file `<file>.m4s` in the
    /// stream's folder). A segment that opens a new publish session ends
    /// the recording of the last one. Failures are logged: recording never
    /// stops the live stream.
    pub fn segment(&mut self, seg: &Segment) {
        if seg.discontinuity {
            self.finish();
        }
        if let Err(e) = self.append(seg) {
            tracing::warn!(stream = %self.name, "recording segment {}: {e}", seg.file);
        }
    }

    fn append(&mut self, seg: &Segment) -> io::Result<()> {
        if self.open.is_none() {
            self.open = Some(self.begin(seg)?);
        }
        let o = self.open.as_mut().expect("opened above");
        let mut lines = String::new();
        if o.init != Some(seg.init) {
            let init = crate::playlist::init_uri(seg.init);
            link(&self.src.join(&init), &o.dir.join(&init))?;
            if o.init.is_none() {
                lines.push_str(&format!(
                    "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                    format_pdt(seg.pdt)
                ));
            }
            lines.push_str(&format!("#EXT-X-MAP:URI=\"{init}\"\n"));
            o.init = Some(seg.init);
        }
        if !o.master {
            // the ladder's master (written once its renditions are live)
            // lists them as <r>/index.m3u8, as the session folder holds them
            let live = self.src.parent().map(|p| p.join(layout::MASTER));
            let session = o.dir.parent().map(|p| p.join(layout::MASTER));
            if let (Some(from), Some(to)) = (live, session) {
                o.master = to.is_file() || std::fs::copy(from, to).is_ok();
            }
        }
        let file = format!("{}.m4s", seg.file);
        link(&self.src.join(&file), &o.dir.join(&file))?;
        lines.push_str(&format!("#EXTINF:{},\n{file}\n", seconds(seg.duration())));
        o.playlist.write_all(lines.as_bytes())
    }

    fn begin(&mut self, seg: &Segment) -> io::Result<Open> {
        let first = seg
            .pdt
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let start = self.shared.join(&self.name, first);
        let session = recording::session_dir(&self.shared.root, &self.name, start);
        let dir = match &self.rendition {
            Some(r) => session.join(r),
            None => session.clone(),
        };
        let opened = std::fs::create_dir_all(&dir).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(recording::IN_PROGRESS))
        });
        let playlist = match opened {
            Ok(f) => f,
            Err(e) => {
                self.shared.leave(&self.name, start);
                return Err(e);
            }
        };
        tracing::info!(stream = %self.name, rendition = ?self.rendition, start, "recording");
        Ok(Open {
            start,
            dir,
            playlist,
            init: None,
            master: self.rendition.is_none(),
        })
    }

    /// Ends the session being recorded (if any): its playlist is finished,
    /// and with its last rendition the session's facts are written.
    pub fn finish(&mut self) {
        let Some(o) = self.open.take() else { return };
        drop(o.playlist);
        if let Err(e) = finish::finish_media(&o.dir) {
            tracing::warn!(stream = %self.name, "finishing recording {}: {e}", o.start);
        }
        if self.shared.leave(&self.name, o.start) {
            let session = recording::session_dir(&self.shared.root, &self.name, o.start);
            match finish_session(&session, &self.name, o.start) {
                Ok(Some(r)) => tracing::info!(
                    stream = %self.name,
                    start = o.start,
                    duration = r.duration,
                    bytes = r.bytes,
                    "recording finished"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(stream = %self.name, "recording {}: {e}", o.start),
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How often retention and the budget are applied at most: every 30 s, or
/// a quarter of a short retention (1 s at least).
fn sweep_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Applies retention and the disk budget every [`sweep_every`], on a
/// thread of its own (directory walks and deletions block).
pub fn keep_swept(rec: Arc<Recordings>) {
    let every = sweep_every(rec.retention);
    std::thread::Builder::new()
        .name("recordings".into())
        .spawn(move || loop {
            let s = rec.sweep(SystemTime::now());
            if s.expired + s.over_budget > 0 {
                tracing::info!(
                    expired = s.expired,
                    over_budget = s.over_budget,
                    kept = s.kept,
                    bytes = s.bytes,
                    "recordings swept"
                );
            }
            std::thread::sleep(every);
        })
        .expect("spawning the recordings thread");
}

/// A second name for `from` at `to` (or a copy on another file system).
fn link(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => std::fs::copy(from, to).map(|_| ()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_share_a_session_until_it_ends_and_never_rejoin_it() {
        let r = Recordings::new(PathBuf::from("/nowhere"), Duration::from_secs(60), 0);
        // three renditions join the session the first opened
        assert_eq!(r.join("golive", 100), 100);
        assert_eq!(r.join("golive", 101), 100);
        assert_eq!(r.join("golive", 102), 100);
        assert!(r.is_open("golive", 100));
        // the publisher reconnects: the first rendition's new session is a
        // new one, which the others join when their turn comes
        assert!(!r.leave("golive", 100));
        assert_eq!(r.join("golive", 500), 500);
        assert!(!r.leave("golive", 100));
        assert_eq!(r.join("golive", 501), 500);
        assert!(r.leave("golive", 100), "the last rendition ends it");
        assert!(!r.is_open("golive", 100));
        assert!(r.is_open("golive", 500));
        // other streams are apart
        assert_eq!(r.join("other", 7), 7);
        assert!(r.leave("other", 7));
    }
}
