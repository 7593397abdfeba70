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

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::ONLYDIR
}

/// Starts watching `reg`'s folder: a thread handling the file events and
/// reading the fragments in progress every `tick`, and rescanning
/// everything every `rescan` (lost events, a full inotify queue).
pub fn watch(reg: Arc<Registry>, tick: Duration, rescan: Duration) -> io::Result<()> {
    let inotify = Inotify::init()?;
    let mut dirs = HashMap::new();
    add_tree(&mut inotify.watches(), &mut dirs, reg.root(), 0);
    reg.scan();
    let mut w = Watcher {
        inotify,
        dirs,
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
                let lost = w.events();
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
fn add_tree(
    watches: &mut Watches,
    dirs: &mut HashMap<WatchDescriptor, (PathBuf, usize)>,
    dir: &Path,
    depth: usize,
) {
    match watches.add(dir, mask()) {
        Ok(wd) => {
            dirs.insert(wd, (dir.to_path_buf(), depth));
        }
        Err(e) => {
            // gone already (a stream that ended), or out of watches
            tracing::debug!(dir = %dir.display(), "inotify watch: {e}");
            return;
        }
    }
    if depth == MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            add_tree(watches, dirs, &e.path(), depth + 1);
        }
    }
}

struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, (PathBuf, usize)>,
    reg: Arc<Registry>,
    buf: Vec<u8>,
}

impl Watcher {
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
