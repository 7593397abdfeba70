//! `rtmp-live-discovery`: runs beside an origin, watches its HLS folder and
//! keeps the API's registry of this origin's live streams true.

mod apis;
mod auth;
mod config;
mod ingest;
mod metrics;
mod owners;
mod recordings;
mod registry;
mod report;
mod scan;
mod server;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Notify};
use tracing_subscriber::EnvFilter;

use crate::auth::Authorizer;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::report::Reporter;
use crate::scan::{classify, Touched};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let config = Config::parse();
    let host = match config.host() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    if config.token.as_deref().unwrap_or("").is_empty() {
        tracing::info!("API_REPORT_TOKEN not set: reporting without a token");
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot listen (DISCOVERY_LISTEN)");
            return std::process::ExitCode::from(2);
        }
    };
    let apis = match apis::Apis::parse(&config.api_url) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            tracing::error!("DISCOVERY_API_URL: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing::info!(hls = %config.hls_path.display(), api = %apis.describe(), %host,
        heartbeat = ?config.heartbeat(), stale = ?config.stale(), listen = %config.listen,
        "discovery starting");
    let metrics = Arc::new(Metrics::new());
    let api_back = Arc::new(Notify::new());
    let owners = Arc::new(owners::Owners::default());
    let authorizer = Arc::new(
        Authorizer::new(
            apis.clone(),
            config.token.clone().filter(|t| !t.is_empty()),
            config.auth_timeout(),
            config.auth_cache(),
            config.state_dir.as_deref(),
            metrics.clone(),
            api_back.clone(),
        )
        .with_owners(owners.clone()),
    );
    let stat = config.rtmp_stat_url.clone().map(|url| server::RtmpStat {
        client: reqwest::Client::new(),
        url,
    });
    let app = server::router(authorizer, metrics.clone(), stat);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "local HTTP listener failed");
        }
    });
    tokio::spawn(
        recordings::RecordingReporter {
            http: reqwest::Client::new(),
            apis: apis.clone(),
            token: config.token.clone().filter(|t| !t.is_empty()),
            host: host.clone(),
            root: config.recordings_path.clone(),
            every: config.heartbeat(),
        }
        .run(),
    );
    let reporter = Reporter::new(
        apis,
        config.token.clone().filter(|t| !t.is_empty()),
        host,
        config.heartbeat(),
        metrics.clone(),
        api_back,
        owners,
    );
    let registry = Registry::new(config.hls_path.clone(), config.stale(), reporter, metrics);
    run(config, registry).await;
    std::process::ExitCode::SUCCESS
}

/// The inotify watch on the HLS folder, re-created when the folder is
/// (re)created.
/// What the main loop reacts to.
enum Msg {
    Fs(notify::Result<Event>),
    /// Look at stream `.0` again (a new folder's first files may be written
    /// before its inotify watch exists). `.1` counts the remaining looks.
    Recheck(String, u8),
}

struct FolderWatch {
    root: PathBuf,
    tx: mpsc::UnboundedSender<Msg>,
    current: Option<(RecommendedWatcher, u64)>,
    missing_logged: bool,
}

impl FolderWatch {
    /// Makes sure the current folder is watched; true if a new watch began
    /// (the caller rescans).
    fn ensure(&mut self) -> bool {
        let ino = std::fs::metadata(&self.root)
            .ok()
            .filter(|m| m.is_dir())
            .map(|m| m.ino());
        match (ino, &self.current) {
            (Some(i), Some((_, w))) if i == *w => false,
            (Some(i), _) => {
                self.current = None;
                let tx = self.tx.clone();
                let made = notify::recommended_watcher(move |res| {
                    let _ = tx.send(Msg::Fs(res));
                })
                .and_then(|mut w| w.watch(&self.root, RecursiveMode::Recursive).map(|()| w));
                match made {
                    Ok(w) => {
                        tracing::info!(path = %self.root.display(), "watching HLS folder");
                        self.current = Some((w, i));
                        self.missing_logged = false;
                        true
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.root.display(), error = %e, "cannot watch HLS folder; retrying");
                        false
                    }
                }
            }
            (None, _) => {
                if !self.missing_logged {
                    tracing::warn!(path = %self.root.display(), "HLS folder missing; waiting for it");
                    self.missing_logged = true;
                }
                self.current = None;
                false
            }
        }
    }

    /// Watches a folder that appeared inside the HLS folder (a stream, an
    /// ABR rendition). notify's recursive watch adds it by itself, but drops
    /// a failure silently (all but running out of watches): asking again
    /// returns the error, which is logged at warn. The folder's changes are
    /// then seen by the periodic rescan only.
    fn watch_new(&mut self, dir: &Path, rescan: Duration) {
        let Some((w, _)) = self.current.as_mut() else {
            return;
        };
        match w.watch(dir, RecursiveMode::Recursive) {
            Ok(()) => {}
            // Gone already (a publish that ended at once): nothing to watch.
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {
                tracing::debug!(path = %dir.display(), "folder gone before its watch");
            }
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, every = ?rescan,
                    "cannot watch a stream folder (inotify): its changes are seen by the periodic rescan only");
            }
        }
    }
}

async fn run(config: Config, mut registry: Registry) {
    let root = config.hls_path.clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut folder = FolderWatch {
        root: root.clone(),
        tx,
        current: None,
        missing_logged: false,
    };
    folder.ensure();
    registry.rescan();

    let mut expiry = tokio::time::interval(
        (config.stale() / 4).clamp(Duration::from_millis(25), Duration::from_millis(500)),
    );
    let rescan = config.heartbeat().min(Duration::from_secs(5));
    let mut safety = tokio::time::interval(rescan);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    safety.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");

    loop {
        tokio::select! {
            Some(msg) = rx.recv() => match msg {
                Msg::Fs(res) => handle(&root, &mut folder, &mut registry, res, rescan),
                Msg::Recheck(name, left) => {
                    registry.touched(&name, Instant::now());
                    if !registry.is_live(&name) && left > 0 {
                        recheck_later(&folder.tx, name, left - 1);
                    }
                }
            },
            _ = expiry.tick() => registry.expire(),
            _ = safety.tick() => {
                folder.ensure();
                registry.rescan();
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!(
        live = registry.live(),
        "shutting down: deregistering live streams"
    );
    registry.shutdown(Duration::from_secs(3)).await;
}

fn recheck_later(tx: &mpsc::UnboundedSender<Msg>, name: String, left: u8) {
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = tx.send(Msg::Recheck(name, left));
    });
}

fn handle(
    root: &Path,
    folder: &mut FolderWatch,
    registry: &mut Registry,
    res: notify::Result<Event>,
    rescan: Duration,
) {
    let ev = match res {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(error = %e, "watch error; rescanning");
            folder.current = None;
            folder.ensure();
            registry.rescan();
            return;
        }
    };
    // Reads (ours included) and attribute changes say nothing about liveness.
    if matches!(
        ev.kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
    ) {
        return;
    }
    if ev.need_rescan() {
        tracing::warn!("event queue overflowed; rescanning");
        registry.rescan();
        return;
    }
    for path in &ev.paths {
        match classify(root, path) {
            Touched::Playlist(name) if path.exists() => registry.touched(&name, Instant::now()),
            Touched::StreamDir(name) if !path.exists() => registry.gone(&name, "folder removed"),
            Touched::StreamDir(name) | Touched::StreamSubdir(name) if path.is_dir() => {
                if matches!(ev.kind, EventKind::Create(_)) {
                    folder.watch_new(path, rescan);
                }
                registry.touched(&name, Instant::now());
                if !registry.is_live(&name) {
                    recheck_later(&folder.tx, name, 10);
                }
            }
            _ if path == root && !root.exists() => {
                folder.ensure();
                registry.rescan();
            }
            _ => {}
        }
    }
}
