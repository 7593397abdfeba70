//! Which recordings stay: finished ones for `RECORDING_RETENTION` after
//! their end, and while all recordings together fit `RECORDING_MAX_BYTES`
//! (the oldest finished ones go first). A session being recorded is never
//! deleted, nor is anything of the live window (the recordings are their
//! own names of the segments).

use std::path::PathBuf;
use std::time::SystemTime;

use rtmp_live_types::recording::{self, Recording};

use super::finish::{finish_session, folder_bytes};
use super::Recordings;

/// What one sweep found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Finished recordings kept.
    pub kept: usize,
    /// Deleted for their age.
    pub expired: usize,
    /// Deleted for the disk budget.
    pub over_budget: usize,
    /// Bytes of every recording afterwards (those in progress included).
    pub bytes: u64,
}

/// A session folder: `<root>/<name>/<start>`.
struct Folder {
    name: String,
    start: u64,
    path: PathBuf,
}

impl Recordings {
    fn folders(&self) -> Vec<Folder> {
        let mut out = Vec::new();
        let Ok(names) = std::fs::read_dir(self.root()) else {
            return out;
        };
        for n in names.flatten() {
            let Some(name) = n.file_name().to_str().map(String::from) else {
                continue;
            };
            if !rtmp_live_types::is_valid_name(&name) {
                continue;
            }
            let Ok(sessions) = std::fs::read_dir(n.path()) else {
                continue;
            };
            for s in sessions.flatten() {
                let start = s.file_name().to_str().and_then(|t| t.parse::<u64>().ok());
                if let Some(start) = start {
                    out.push(Folder {
                        name: name.clone(),
                        start,
                        path: s.path(),
                    });
                }
            }
        }
        out
    }

    /// Finishes the sessions a stopped process left unfinished (and removes
    /// those that recorded nothing). Run at start, before any recording.
    pub fn recover(&self) -> usize {
        let mut n = 0;
        for f in self.folders() {
            if f.path.join(recording::META).is_file() && !has_progress(&f.path) {
                continue;
            }
            match finish_session(&f.path, &f.name, f.start) {
                Ok(Some(_)) => n += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(path = %f.path.display(), "recovering a recording: {e}"),
            }
        }
        for name in std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .flatten()
        {
            // a stream folder left empty
            let _ = std::fs::remove_dir(name.path());
        }
        n
    }

    /// Deletes what retention and the budget say, as of `now`.
    pub fn sweep(&self, now: SystemTime) -> Sweep {
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let keep_ms = self.retention.as_millis() as u64;
        let mut done = Sweep::default();
        let mut finished: Vec<(Recording, PathBuf)> = Vec::new();
        for f in self.folders() {
            let meta = std::fs::read(f.path.join(recording::META))
                .ok()
                .and_then(|b| serde_json::from_slice::<Recording>(&b).ok());
            match meta {
                Some(r) if !self.is_open(&f.name, f.start) && !has_progress(&f.path) => {
                    if r.end.saturating_add(keep_ms) <= now_ms {
                        remove(&f.path);
                        done.expired += 1;
                    } else {
                        finished.push((r, f.path));
                    }
                }
                // being recorded (or being finished right now)
                _ => done.bytes += folder_bytes(&f.path),
            }
        }
        finished.sort_by_key(|(r, _)| (r.end, r.start));
        done.bytes += finished.iter().map(|(r, _)| r.bytes).sum::<u64>();
        let mut finished = finished.into_iter();
        while self.max_bytes > 0 && done.bytes > self.max_bytes {
            let Some((r, path)) = finished.next() else {
                break;
            };
            remove(&path);
            done.bytes -= r.bytes;
            done.over_budget += 1;
        }
        done.kept = finished.count();
        done
    }
}

fn has_progress(session: &std::path::Path) -> bool {
    session.join(recording::IN_PROGRESS).exists()
        || std::fs::read_dir(session)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_type().is_ok_and(|t| t.is_dir())
                    && e.path().join(recording::IN_PROGRESS).exists()
            })
}

fn remove(path: &std::path::Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => tracing::info!(path = %path.display(), "recording deleted"),
        Err(e) => tracing::warn!(path = %path.display(), "deleting a recording: {e}"),
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::remove_dir(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(root: &std::path::Path, start: u64, secs: u64, bytes: usize) {
        let s = recording::session_dir(root, "golive", start);
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join("1.m4s"), vec![0u8; bytes]).unwrap();
        std::fs::write(
            s.join(recording::IN_PROGRESS),
            format!("#EXTINF:{secs}.000,\n1.m4s\n"),
        )
        .unwrap();
    }

    #[test]
    fn old_and_over_budget_recordings_go_oldest_first_and_open_ones_stay() {
        let root = tempfile::tempdir().unwrap();
        let rec = Recordings::new(root.path().to_path_buf(), Duration::from_secs(3600), 0);
        let t0 = 1_765_000_000_000;
        finished(root.path(), t0, 10, 1000);
        finished(root.path(), t0 + 60_000, 10, 1000);
        finished(root.path(), t0 + 120_000, 10, 1000);
        // an orphan folder (nothing recorded) and the three unfinished ones
        std::fs::create_dir_all(root.path().join("golive/5")).unwrap();
        assert_eq!(rec.recover(), 3);
        assert!(!root.path().join("golive/5").exists());
        // one being recorded now, older than all
        rec.join("golive", t0 - 1);
        finished(root.path(), t0 - 1, 10, 5000);
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let s = rec.sweep(at(t0 + 3_600_000 + 10_000));
        // the first ended at t0+10 s: an hour later it goes
        assert_eq!((s.expired, s.over_budget, s.kept), (1, 0, 2));
        assert!(root.path().join(format!("golive/{}", t0 - 1)).exists());
        // a budget below what is left: the oldest finished goes, the open
        // one stays whatever its size
        let tight = Recordings::new(root.path().to_path_buf(), Duration::from_secs(3600), 6500);
        tight.join("golive", t0 - 1);
        let s = tight.sweep(at(t0 + 200_000));
        assert_eq!((s.expired, s.over_budget, s.kept), (0, 1, 1));
        assert!(!root.path().join(format!("golive/{}", t0 + 60_000)).exists());
        assert!(root
            .path()
            .join(format!("golive/{}", t0 + 120_000))
            .exists());
        assert!(s.bytes <= 6500, "{}", s.bytes);
    }
}
