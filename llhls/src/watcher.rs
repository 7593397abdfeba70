//! Watching the HLS folder. inotify reports what nginx-rtmp creates, renames
//! and deletes: stream and rendition folders, fragment files, the playlist
//! it rewrites (temp file + rename) when a fragment closes. The bytes of the
//! fragment in progress are read on a tick instead, every `--tick-ms`.
//!
//! Not inotify's `IN_MODIFY`: nginx-rtmp writes each 188-byte TS packet with
//! a `write` of its own, so that was one event per packet, ~1,200 a second
//! per stream, and the kernel merges repeated events only when nothing else
//! was queued in between (never with many streams). Reading them was most of
//! the component's cost (`bench/load.sh`, 200 streams: 66 % of one core); a
//! `read` per open fragment per tick is a fraction of that and lists a part
//! at most a tick later.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// Starts watching `reg`'s folder: an inotify thread, a thread reading the
/// fragments in progress every `tick`, and one rescanning everything every
/// `rescan` as a safety net (lost events, a full inotify queue).
pub fn watch(reg: Arc<Registry>, tick: Duration, rescan: Duration) -> io::Result<()> {
    let inotify = Inotify::init()?;
    let mut dirs = HashMap::new();
    add_tree(&mut inotify.watches(), &mut dirs, reg.root(), 0);
    reg.scan();

    let r = reg.clone();
    std::thread::Builder::new()
        .name("llhls-inotify".into())
        .spawn(move || events(inotify, dirs, &r))?;
    let r = reg.clone();
    std::thread::Builder::new()
        .name("llhls-tick".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            r.pump_all();
        })?;
    std::thread::Builder::new()
        .name("llhls-rescan".into())
        .spawn(move || loop {
            std::thread::sleep(rescan);
            reg.scan();
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

/// The inotify thread: events in batches, as the kernel hands them over.
fn events(
    mut inotify: Inotify,
    mut dirs: HashMap<WatchDescriptor, (PathBuf, usize)>,
    reg: &Registry,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read: Vec<(WatchDescriptor, EventMask, Option<OsString>)> =
            match inotify.read_events_blocking(&mut buf) {
                Ok(evs) => evs
                    .map(|e| (e.wd, e.mask, e.name.map(|n| n.to_os_string())))
                    .collect(),
                Err(e) => {
                    tracing::warn!("inotify: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
        let mut batch = Batch::default();
        let mut rescan = false;
        for (wd, mask, name) in read {
            if mask.contains(EventMask::Q_OVERFLOW) {
                tracing::warn!("inotify queue overflow: rescanning");
                rescan = true;
                continue;
            }
            if mask.contains(EventMask::IGNORED) {
                // the folder is gone (its watch with it)
                dirs.remove(&wd);
                continue;
            }
            let (Some((dir, depth)), Some(name)) = (dirs.get(&wd), name) else {
                continue;
            };
            let (path, depth) = (dir.join(name), *depth);
            if mask.contains(EventMask::ISDIR) {
                if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) && depth < MAX_DEPTH {
                    // files may have been written before the watch: rescan
                    add_tree(&mut inotify.watches(), &mut dirs, &path, depth + 1);
                    rescan = true;
                }
                continue;
            }
            batch.add(reg, &path);
        }
        reg.apply(batch);
        if rescan {
            reg.scan();
        }
    }
}
