//! All streams under the HLS folder, kept current from inotify events.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use notify::event::{AccessKind, AccessMode, EventKind};
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

    pub fn add(&mut self, reg: &Registry, kind: &EventKind, path: &Path) {
        // our own reads (and nginx serving files) show up as opens and
        // non-write closes: ignore them
        if matches!(
            kind,
            EventKind::Access(AccessKind::Open(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Read))
                | EventKind::Access(AccessKind::Read)
        ) {
            return;
        }
        let Ok(rel) = path.strip_prefix(&reg.root) else {
            return;
        };
        let mut comps = rel.components();
        let (Some(dir), Some(file), None) = (comps.next(), comps.next(), comps.next()) else {
            return;
        };
        let (Some(name), Some(file)) = (dir.as_os_str().to_str(), file.as_os_str().to_str()) else {
            return;
        };
        if file == PLAYLIST {
            self.playlists.insert(name.to_string());
        } else if let Some(n) = file.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok()) {
            let v = self.fragments.entry(name.to_string()).or_default();
            if !v.contains(&n) {
                v.push(n);
            }
        }
    }
}

/// One stream: its state and a change signal for blocked requests.
pub struct Stream {
    pub state: Mutex<StreamState>,
    pub changed: watch::Sender<u64>,
}

impl Stream {
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

pub struct Registry {
    root: PathBuf,
    settings: Settings,
    streams: RwLock<HashMap<String, Arc<Stream>>>,
}

impl Registry {
    pub fn new(root: PathBuf, settings: Settings) -> Arc<Registry> {
        Arc::new(Registry {
            root,
            settings,
            streams: RwLock::new(HashMap::new()),
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

    /// Looks at every stream folder (at start, and as a safety net).
    pub fn scan(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            if e.path().join(PLAYLIST).is_file() {
                if let Some(name) = e.file_name().to_str() {
                    self.refresh(name, true);
                }
            }
        }
        for name in self.names() {
            if !self.root.join(&name).join(PLAYLIST).is_file() {
                self.refresh(&name, true);
            }
        }
    }

    /// Handles one filesystem event.
    pub fn on_event(&self, kind: &EventKind, path: &Path) {
        let mut b = Batch::default();
        b.add(self, kind, path);
        self.apply(b);
    }

    /// Handles a batch of events: each stream's fragment is read once and
    /// its playlist re-read once, however many writes the batch holds.
    pub fn apply(&self, b: Batch) {
        for (name, msns) in &b.fragments {
            if b.playlists.contains(name) {
                continue;
            }
            if let Some(s) = self.get(name) {
                let mut st = s.state.lock().expect("stream lock");
                if st.tail_wants(msns) && st.pump() {
                    drop(st);
                    s.bump();
                }
            }
        }
        for name in &b.playlists {
            self.refresh(name, true);
        }
    }

    /// Re-reads a stream's playlist (creating or dropping the stream).
    fn refresh(&self, name: &str, playlist_changed: bool) {
        let existing = self.get(name);
        let stream = match existing {
            Some(s) => s,
            None => {
                let dir = self.root.join(name);
                if !dir.join(PLAYLIST).is_file() {
                    return;
                }
                let (tx, _) = watch::channel(0);
                let s = Arc::new(Stream {
                    state: Mutex::new(StreamState::new(dir, self.settings.clone())),
                    changed: tx,
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
        let res = if playlist_changed {
            st.reload_playlist()
        } else {
            Ok(st.pump())
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
            }
            Err(e) => tracing::warn!(stream = name, "playlist: {e}"),
        }
    }
}
