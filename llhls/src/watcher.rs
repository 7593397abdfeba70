//! Watching the HLS folder. inotify reports what nginx-rtmp creates, renames
//! and deletes: stream and rendition folders, fragment files, the playlist
//! it rewrites (temp file + rename) when a fragment closes. The bytes of the
//! fragment in progress are read when [`crate::pace`] says a part may have
//! closed.
//!
//! Not inotify's `IN_MODIFY`: nginx-rtmp writes each 188-byte TS packet with
//! a `write` of its own, so that was one event per packet, ~1,200 a second
//! per stream, and the kernel merges repeated events only when nothing else
//! was queued in between (never with many streams). Reading them was most of
//! the component's cost (`bench/load.sh`, 200 streams: 66 % of one core).
//!
//! One thread does it all, once a tick: the events queued since the last
//! tick (read without blocking: a thread woken by every event cost more
//! than the events), the fragments due to be read, and now and then a
//! rescan of everything as a safety net. An event is handled at most a
//! tick after it happened.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};

use crate::registry::{Batch, Registry};

/// Stream folders are `<name>/` and `<name>/<rendition>/`.
const MAX_DEPTH: usize = 2;

fn mask(depth: usize) -> WatchMask {
    let m = WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::ONLYDIR;
    // the root renamed away: its watch would follow the old folder
    if depth == 0 {
        m | WatchMask::MOVE_SELF
    } else {
        m
    }
}

/// Starts watching `reg`'s folder: a thread handling the file events and
/// reading the fragments in progress every `tick`, and rescanning
/// everything every `rescan` (lost events, a full inotify queue).
pub fn watch(reg: Arc<Registry>, tick: Duration, rescan: Duration) -> io::Result<()> {
    let inotify = Inotify::init()?;
    let mut dirs = HashMap::new();
    let root = add_tree(&mut inotify.watches(), &mut dirs, reg.root(), 0);
    reg.scan();
    let mut w = Watcher {
        inotify,
        dirs,
        root,
        reg,
        buf: vec![0u8; 64 * 1024],
    };
    std::thread::Builder::new()
        .name("llhls-watch".into())
        .spawn(move || {
            let mut scanned = Instant::now();
            let run = std::panic::AssertUnwindSafe(|| loop {
                std::thread::sleep(tick);
                let t0 = Instant::now();
                let mut lost = w.events();
                if w.root.is_none() {
                    lost |= w.watch_root();
                }
                let t1 = Instant::now();
                w.reg.pump_all();
                let t2 = Instant::now();
                if t2 - t0 > 2 * tick {
                    // everything waits for the slowest file operation (a
                    // filesystem busy writing back, a journal commit)
                    tracing::debug!(events = ?(t1 - t0), reads = ?(t2 - t1), "slow tick");
                }
                if lost || scanned.elapsed() >= rescan {
                    w.reg.scan();
                    scanned = Instant::now();
                }
            });
            if std::panic::catch_unwind(run).is_err() {
                // serving playlists that no longer follow the folder would
                // be worse than none: the origin falls back to the files,
                // and whatever supervises the component sees it exit
                tracing::error!("watcher failed: exiting");
                std::process::exit(70);
            }
        })?;
    Ok(())
}

/// Watches `dir` (at `depth` below the root) and the folders below it.
/// Returns `dir`'s watch, if it could be added.
fn add_tree(
    watches: &mut Watches,
    dirs: &mut HashMap<WatchDescriptor, (PathBuf, usize)>,
    dir: &Path,
    depth: usize,
) -> Option<WatchDescriptor> {
    let wd = match watches.add(dir, mask(depth)) {
        Ok(wd) => {
            dirs.insert(wd.clone(), (dir.to_path_buf(), depth));
            wd
        }
        Err(e) => {
            // gone already (a stream that ended), or out of watches
            tracing::debug!(dir = %dir.display(), "inotify watch: {e}");
            return None;
        }
    };
    if depth < MAX_DEPTH {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                add_tree(watches, dirs, &e.path(), depth + 1);
            }
        }
    }
    Some(wd)
}

struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, (PathBuf, usize)>,
    /// The HLS folder's own watch: none when the folder did not exist at
    /// start, or was deleted or renamed away since (a remounted tmpfs, an
    /// operator's `rm -rf`).
    root: Option<WatchDescriptor>,
    reg: Arc<Registry>,
    buf: Vec<u8>,
}

impl Watcher {
    /// Watches the HLS folder again, and everything below it, once it is
    /// back (tried every tick until then: one failing system call). Returns
    /// true once it is: what was written meanwhile is then rescanned.
    fn watch_root(&mut self) -> bool {
        let root = self.reg.root().to_path_buf();
        if !root.is_dir() {
            return false;
        }
        self.root = add_tree(&mut self.inotify.watches(), &mut self.dirs, &root, 0);
        if self.root.is_some() {
            tracing::info!(dir = %root.display(), "watching the HLS folder again");
        }
        self.root.is_some()
    }

    /// Handles the events queued since the last call. Returns true if some
    /// may have been lost (the queue overflowed, a folder was created):
    /// everything is then rescanned.
    fn events(&mut self) -> bool {
        let mut batch = Batch::default();
        let mut rescan = false;
        loop {
            let read: Vec<(WatchDescriptor, EventMask, Option<OsString>)> =
                match self.inotify.read_events(&mut self.buf) {
                    Ok(evs) => evs
                        .map(|e| (e.wd, e.mask, e.name.map(|n| n.to_os_string())))
                        .collect(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::warn!("inotify: {e}");
                        rescan = true;
                        break;
                    }
                };
            if read.is_empty() {
                break;
            }
            for (wd, mask, name) in read {
                if mask.contains(EventMask::Q_OVERFLOW) {
                    tracing::warn!("inotify queue overflow: rescanning");
                    rescan = true;
                    continue;
                }
                if mask.contains(EventMask::IGNORED) {
                    // the folder is gone (its watch with it)
                    self.dirs.remove(&wd);
                    if self.root.as_ref() == Some(&wd) {
                        self.root = None;
                        let dir = self.reg.root().display();
                        tracing::warn!(dir = %dir, "HLS folder gone: watching for it again");
                        // the folders below, if renamed away with it, are
                        // no longer where their watches say
                        let mut watches = self.inotify.watches();
                        for (wd, _) in self.dirs.drain() {
                            let _ = watches.remove(wd);
                        }
                        rescan = true;
                    }
                    continue;
                }
                if mask.contains(EventMask::MOVE_SELF) {
                    // the root renamed away (only it asks for MOVE_SELF):
                    // its IGNORED event follows
                    let _ = self.inotify.watches().remove(wd);
                    continue;
                }
                let (Some((dir, depth)), Some(name)) = (self.dirs.get(&wd), name) else {
                    continue;
                };
                let (path, depth) = (dir.join(name), *depth);
                if mask.contains(EventMask::ISDIR) {
                    if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) && depth < MAX_DEPTH
                    {
                        // files may have been written before the watch
                        add_tree(
                            &mut self.inotify.watches(),
                            &mut self.dirs,
                            &path,
                            depth + 1,
                        );
                        rescan = true;
                    }
                    continue;
                }
                batch.add(&self.reg, &path);
            }
        }
        self.reg.apply(batch);
        rescan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pace::Pace;
    use crate::stream::Settings;

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        rtmp_live_testkit::wait::until_true(Duration::from_secs(5), what, f);
    }

    /// A stream folder and its playlist, the nginx-rtmp way (temporary file
    /// renamed over the playlist).
    fn publish(root: &Path, name: &str) {
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("index.m3u8.tmp"),
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n",
        )
        .unwrap();
        std::fs::rename(dir.join("index.m3u8.tmp"), dir.join("index.m3u8")).unwrap();
    }

    #[test]
    fn follows_the_hls_folder_created_late_deleted_or_renamed_away() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("hls");
        let tick = Duration::from_millis(10);
        let settings = Settings {
            part_target: 0.5,
            min_target_duration: 2,
            pace: Pace::new(tick),
            window: Duration::from_secs(8),
            recordings: None,
            replicated: false,
        };
        let reg = Registry::new(root.clone(), settings);
        // no safety-net rescan during the test: only the watches and the
        // rescans they ask for
        watch(reg.clone(), tick, Duration::from_secs(3600)).unwrap();

        // not there at start
        std::fs::create_dir(&root).unwrap();
        publish(&root, "a");
        wait_for("a stream in a folder created late", || {
            reg.get("a").is_some()
        });

        // deleted and created again
        std::fs::remove_dir_all(&root).unwrap();
        wait_for("a dropped with the folder", || reg.get("a").is_none());
        std::fs::create_dir(&root).unwrap();
        publish(&root, "b");
        wait_for("a stream in the folder created again", || {
            reg.get("b").is_some()
        });

        // renamed away, a new one in its place
        std::fs::rename(&root, d.path().join("old")).unwrap();
        std::fs::create_dir(&root).unwrap();
        publish(&root, "c");
        wait_for("a stream in the new folder", || reg.get("c").is_some());
        wait_for("the old folder's stream dropped", || reg.get("b").is_none());
        // nothing written in the old folder is taken for the new one's
        publish(&d.path().join("old"), "x");
        std::thread::sleep(20 * tick);
        assert_eq!(reg.names(), vec!["c".to_string()]);
    }
}
