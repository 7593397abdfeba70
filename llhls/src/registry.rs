//! All streams under the HLS folder (`<name>/` and ABR renditions
//! `<name>/<rendition>/`), kept current from inotify events.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rtmp_live_types::layout;
use tokio::sync::watch;

use crate::stream::{Settings, StreamState, PLAYLIST};

/// Streams touched by a run of filesystem events.
#[derive(Debug, Default)]
pub struct Batch {
    playlists: std::collections::BTreeSet<String>,
    fragments: HashMap<String, Vec<u64>>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.playlists.is_empty() && self.fragments.is_empty()
    }

    /// Something happened to `path` (created, renamed, deleted, closed
    /// after writing).
    pub fn add(&mut self, reg: &Registry, path: &Path) {
        let Ok(rel) = path.strip_prefix(&reg.root) else {
            return;
        };
        let Some((name, file)) = stream_file(rel) else {
            return;
        };
        if file == PLAYLIST {
            self.playlists.insert(name);
        } else if let Some(n) = file.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok()) {
            let v = self.fragments.entry(name).or_default();
            if !v.contains(&n) {
                v.push(n);
            }
        }
    }
}

/// A file of a stream folder, relative to the HLS root, as the stream's key
/// and the file name. Streams are `<name>/` (nginx-rtmp, nested) or
/// `<name>/<rendition>/` (the ABR ladder's renditions, published back into
/// nginx-rtmp under `<name>/<rendition>`); the key is that folder.
fn stream_file(rel: &Path) -> Option<(String, &str)> {
    let comps: Vec<&str> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match comps[..] {
        [name, file] => Some((name.to_string(), file)),
        [name, rendition, file] => Some((format!("{name}/{rendition}"), file)),
        _ => None,
    }
}

/// One stream: its state and a change signal for blocked requests.
pub struct Stream {
    pub state: Mutex<StreamState>,
    pub changed: watch::Sender<u64>,
    /// Requests held waiting for it (bounded by the server).
    pub held: std::sync::atomic::AtomicUsize,
}

impl Stream {
    pub fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// A master playlist's renditions, when they were read.
type Masters = HashMap<String, (std::time::Instant, Option<Vec<String>>)>;

pub struct Registry {
    root: PathBuf,
    settings: Settings,
    streams: RwLock<HashMap<String, Arc<Stream>>>,
    masters: Mutex<Masters>,
}

impl Registry {
    pub fn new(root: PathBuf, settings: Settings) -> Arc<Registry> {
        Arc::new(Registry {
            root,
            settings,
            streams: RwLock::new(HashMap::new()),
            masters: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.streams
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect()
    }

    /// The other renditions of `key`'s stream (`<name>/<other>` for
    /// `<name>/<rendition>`) that its master playlist lists, sorted; none
    /// for a single-rendition stream. (The ladder encodes renditions the
    /// master leaves out: a report of one would name a playlist no client
    /// of the master knows.)
    pub fn siblings(&self, key: &str) -> Vec<(String, Arc<Stream>)> {
        let Some((name, _)) = key.split_once('/') else {
            return Vec::new();
        };
        let listed = self.master_renditions(name);
        let mut v: Vec<(String, Arc<Stream>)> = self
            .streams
            .read()
            .expect("registry lock")
            .iter()
            .filter(|(k, _)| {
                k.as_str() != key
                    && k.split_once('/').is_some_and(|(n, r)| {
                        n == name && listed.as_ref().map_or(true, |l| l.iter().any(|x| x == r))
                    })
            })
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The renditions `<name>/master.m3u8` lists (`None` without one),
    /// read at most once a second per stream.
    fn master_renditions(&self, name: &str) -> Option<Vec<String>> {
        let now = std::time::Instant::now();
        if let Some((at, v)) = self.masters.lock().expect("masters lock").get(name) {
            if now.duration_since(*at) < std::time::Duration::from_secs(1) {
                return v.clone();
            }
        }
        let v = std::fs::read_to_string(self.root.join(name).join(layout::MASTER))
            .ok()
            .map(|text| layout::master_renditions(&text));
        let mut m = self.masters.lock().expect("masters lock");
        // a bound on names kept (one per stream, dropped with it)
        if m.len() > 4 * self.streams.read().expect("registry lock").len() + 16 {
            m.clear();
        }
        m.insert(name.to_string(), (now, v.clone()));
        v
    }

    /// Looks at every stream folder (at start, and as a safety net): a
    /// playlist is read again only if its file changed.
    pub fn scan(&self) {
        // no folder (deleted): every stream whose playlist is gone goes
        let rd = std::fs::read_dir(&self.root).into_iter().flatten();
        let is_dir = |e: &std::fs::DirEntry| e.file_type().is_ok_and(|t| t.is_dir());
        let mut seen = std::collections::HashSet::new();
        for e in rd.flatten().filter(is_dir) {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if self.refresh(&name, Reason::Rescan) {
                seen.insert(name.clone());
            } else {
                crate::stream::clear_packaged(&e.path());
            }
            // ABR renditions, one level down
            let Ok(sub) = std::fs::read_dir(e.path()) else {
                continue;
            };
            for r in sub.flatten().filter(is_dir) {
                if let Some(rendition) = r.file_name().to_str() {
                    let key = format!("{name}/{rendition}");
                    if self.refresh(&key, Reason::Rescan) {
                        seen.insert(key);
                    } else {
                        crate::stream::clear_packaged(&r.path());
                    }
                }
            }
        }
        for name in self.names() {
            if !seen.contains(&name) {
                self.refresh(&name, Reason::Rescan);
            }
        }
    }

    /// Reads what was appended to every stream's open fragment in
    /// progress (the watcher's tick) and wakes the streams that got a part.
    /// A fragment whose file is not known yet is found on its creation
    /// event instead ([`Registry::apply`]).
    pub fn pump_all(&self) {
        let now = std::time::Instant::now();
        // under the registry's read lock: a new stream waits for this tick
        for s in self.streams.read().expect("registry lock").values() {
            let mut st = s.state.lock().expect("stream lock");
            let mut changed = st.tick(now);
            if st.tail_open() && st.due() <= now {
                changed |= st.pump();
            }
            if changed {
                drop(st);
                s.bump();
            }
        }
    }

    /// Handles a batch of events: each stream's fragment is read once and
    /// its playlist re-read once, however many writes the batch holds.
    pub fn apply(&self, b: Batch) {
        for name in &b.playlists {
            self.refresh(name, Reason::Changed);
        }
        for (name, nums) in &b.fragments {
            if let Some(s) = self.get(name) {
                let mut st = s.state.lock().expect("stream lock");
                st.offer(nums);
                if st.tail_wants(nums) && st.pump() {
                    drop(st);
                    s.bump();
                }
            }
        }
    }

    /// Re-reads a stream's playlist (creating or dropping the stream).
    /// Returns whether the stream exists.
    fn refresh(&self, name: &str, why: Reason) -> bool {
        let existing = self.get(name);
        let stream = match existing {
            Some(s) => s,
            None => {
                let dir = self.root.join(name);
                if !dir.join(PLAYLIST).is_file() {
                    return false;
                }
                let (tx, _) = watch::channel(0);
                let s = Arc::new(Stream {
                    state: Mutex::new(StreamState::new(name, dir, self.settings.clone())),
                    changed: tx,
                    held: Default::default(),
                });
                self.streams
                    .write()
                    .expect("registry lock")
                    .entry(name.to_string())
                    .or_insert(s)
                    .clone()
            }
        };
        let mut st = stream.state.lock().expect("stream lock");
        let res = match why {
            Reason::Changed => st.reload_playlist(),
            Reason::Rescan => st.rescan(),
        };
        match res {
            Ok(true) => {
                drop(st);
                stream.bump();
            }
            Ok(false) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                drop(st);
                tracing::info!(stream = name, "playlist gone: stream dropped");
                self.streams.write().expect("registry lock").remove(name);
                // wakes blocked requests: their stream is gone
                stream.bump();
                return false;
            }
            Err(e) => tracing::warn!(stream = name, "playlist: {e}"),
        }
        true
    }
}

/// Why a playlist is looked at.
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// An event: it was rewritten.
    Changed,
    /// The safety net: read it if its file changed.
    Rescan,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rescan_clears_what_a_stopped_component_left_in_an_ended_stream() {
        let d = tempfile::tempdir().unwrap();
        let ended = d.path().join("gone");
        std::fs::create_dir_all(ended.join("720p")).unwrap();
        for f in [
            "gone/1.m4s",
            "gone/init-1.mp4",
            "gone/720p/2.m4s",
            "gone/720p/keep.txt",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let settings = Settings {
            part_target: 0.36,
            min_target_duration: 2,
            pace: crate::pace::Pace::new(std::time::Duration::from_millis(10)),
            window: std::time::Duration::from_secs(8),
            recordings: None,
            replicated: false,
        };
        let reg = Registry::new(d.path().to_path_buf(), settings);
        reg.scan();
        assert!(reg.names().is_empty());
        assert!(!ended.join("1.m4s").exists() && !ended.join("init-1.mp4").exists());
        assert!(!ended.join("720p/2.m4s").exists());
        assert!(
            ended.join("720p/keep.txt").exists(),
            "only packaged files go"
        );
    }
}
