//! Which streams are live on this origin, from file-system events and
//! periodic rescans; starts, updates and retires each stream's report worker.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::report::{Desired, Reporter};
use crate::scan::{choose_manifest, has_endlist, is_playlist, INDEX, MASTER};

struct Stream {
    last_change: Instant,
    manifest: String,
    tx: watch::Sender<Desired>,
    worker: JoinHandle<()>,
}

pub struct Registry {
    root: PathBuf,
    stale: Duration,
    reporter: Reporter,
    streams: HashMap<String, Stream>,
    /// Workers of ended streams still deregistering.
    retiring: HashMap<String, JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Registry {
    pub fn new(
        root: PathBuf,
        stale: Duration,
        reporter: Reporter,
        metrics: Arc<Metrics>,
    ) -> Registry {
        Registry {
            root,
            stale,
            reporter,
            streams: HashMap::new(),
            retiring: HashMap::new(),
            metrics,
        }
    }

    fn count(&self) {
        self.metrics.streams.set(self.streams.len() as i64);
    }

    pub fn live(&self) -> usize {
        self.streams.len()
    }

    pub fn is_live(&self, name: &str) -> bool {
        self.streams.contains_key(name)
    }

    /// A playlist of `name` changed at `at`.
    pub fn touched(&mut self, name: &str, at: Instant) {
        let dir = self.root.join(name);
        let Some(manifest) =
            list_files(&dir).and_then(|f| choose_manifest(f.iter().map(String::as_str)))
        else {
            return;
        };
        if ended(&dir, &manifest) {
            self.gone(name, "playlist ended");
            return;
        }
        if let Some(s) = self.streams.get_mut(name) {
            s.last_change = s.last_change.max(at);
            if s.manifest != manifest {
                s.manifest = manifest.clone();
                let _ = s.tx.send(Desired::Live { manifest });
            }
            return;
        }
        if at.elapsed() >= self.stale {
            return;
        }
        let (tx, rx) = watch::channel(Desired::Live {
            manifest: manifest.clone(),
        });
        let previous = self.retiring.remove(name);
        let worker = self.reporter.spawn(name.to_string(), rx, previous);
        tracing::debug!(stream = %name, %manifest, "stream appeared");
        self.streams.insert(
            name.to_string(),
            Stream {
                last_change: at,
                manifest,
                tx,
                worker,
            },
        );
        self.count();
    }

    /// `name` ended: its worker deregisters it.
    pub fn gone(&mut self, name: &str, why: &str) {
        if let Some(s) = self.streams.remove(name) {
            tracing::info!(stream = %name, reason = why, "stream ended");
            let _ = s.tx.send(Desired::Gone);
            self.retiring.insert(name.to_string(), s.worker);
            self.count();
        }
        self.retiring.retain(|_, h| !h.is_finished());
    }

    /// Retires streams whose playlists stopped changing.
    pub fn expire(&mut self) {
        let stale: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.last_change.elapsed() >= self.stale)
            .map(|(n, _)| n.clone())
            .collect();
        for n in stale {
            self.gone(&n, "playlist stale");
        }
    }

    /// Re-reads the whole folder: catches anything events missed (start-up,
    /// overflow, a recreated folder) from the playlists' modification times.
    pub fn rescan(&mut self) {
        self.metrics.rescans.inc();
        let now_sys = SystemTime::now();
        let now = Instant::now();
        let mut present = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !rtmp_live_types::is_valid_name(&name) || !e.path().is_dir() {
                    continue;
                }
                present.push(name.clone());
                if let Some(mtime) = newest_playlist_mtime(&e.path()) {
                    let age = now_sys.duration_since(mtime).unwrap_or_default();
                    if let Some(at) = now.checked_sub(age).filter(|_| age < self.stale) {
                        self.touched(&name, at);
                    }
                }
            }
        }
        let vanished: Vec<String> = self
            .streams
            .keys()
            .filter(|n| !present.contains(n))
            .cloned()
            .collect();
        for n in vanished {
            self.gone(&n, "folder removed");
        }
    }

    /// Deregisters every live stream, waiting at most `limit`.
    pub async fn shutdown(mut self, limit: Duration) {
        let names: Vec<String> = self.streams.keys().cloned().collect();
        for n in names {
            self.gone(&n, "shutting down");
        }
        let all = futures_join(self.retiring.into_values().collect());
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("gave up waiting for deregistrations");
        }
    }
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

fn list_files(dir: &Path) -> Option<Vec<String>> {
    let entries = fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect(),
    )
}

/// The newest modification time of any playlist in `dir` or one level below.
fn newest_playlist_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for e in fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_str().unwrap_or("");
        if path.is_dir() && rtmp_live_types::is_valid_name(name) {
            if let Some(t) = fs::read_dir(&path)
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|f| {
                    let n = f.file_name();
                    is_playlist(n.to_str().unwrap_or(""))
                        .then(|| f.metadata().ok()?.modified().ok())
                        .flatten()
                })
                .max()
            {
                newest = newest.max(Some(t));
            }
        } else if is_playlist(name) {
            newest = newest.max(e.metadata().ok().and_then(|m| m.modified().ok()));
        }
    }
    newest
}

/// A stream has ended when every media playlist it has says `#EXT-X-ENDLIST`
/// (for ABR: every rendition's).
fn ended(dir: &Path, manifest: &str) -> bool {
    let media: Vec<PathBuf> = if manifest == MASTER {
        fs::read_dir(dir)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(INDEX))
            .filter(|p| p.is_file())
            .collect()
    } else {
        vec![dir.join(manifest)]
    };
    !media.is_empty()
        && media
            .iter()
            .all(|p| fs::read_to_string(p).is_ok_and(|s| has_endlist(&s)))
}
