//! LL-HLS for the stock nginx-rtmp origin: tails the `.ts` fragment that
//! nginx-rtmp is writing and publishes it as byte-range parts (see
//! `docs/llhls-spike.md`). nginx keeps serving the `.ts` files; this serves
//! the playlists.

pub mod blocking;
pub mod parts;
pub mod playlist;
pub mod registry;
pub mod server;
pub mod stream;
pub mod ts;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::registry::Registry;

/// Watches `root` (inotify, recursive) and feeds the registry from a
/// dedicated thread; every `poll` it also rescans as a safety net. The
/// returned watcher must be kept alive.
pub fn watch(reg: Arc<Registry>, poll: Duration) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut w = notify::recommended_watcher(move |res| {
        let _ = tx.send(res);
    })?;
    w.watch(reg.root(), RecursiveMode::Recursive)?;
    reg.scan();
    std::thread::Builder::new()
        .name("llhls-tail".into())
        .spawn(move || {
            let mut next_scan = std::time::Instant::now() + poll;
            loop {
                let timeout = next_scan.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(timeout) {
                    Ok(Ok(ev)) => {
                        for p in &ev.paths {
                            reg.on_event(&ev.kind, p);
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!("inotify: {e}; rescanning");
                        reg.scan();
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
                if std::time::Instant::now() >= next_scan {
                    reg.scan();
                    next_scan = std::time::Instant::now() + poll;
                }
            }
        })
        .expect("spawn tail thread");
    Ok(w)
}

/// Settings of the binary (also used by the tests).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "rtmp-live-llhls", about = "LL-HLS playlists for nginx-rtmp's HLS output")]
pub struct Config {
    /// nginx-rtmp's hls_path (with hls_nested on: <path>/<name>/index.m3u8).
    #[arg(long, env = "HLS_PATH", default_value = "/var/lib/rtmp-live/hls")]
    pub hls_path: PathBuf,
    /// Address for the playlist HTTP server.
    #[arg(long, env = "LLHLS_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// PART-TARGET in seconds.
    #[arg(long, env = "LLHLS_PART_TARGET", default_value_t = 0.5)]
    pub part_target: f64,
    /// Floor of EXT-X-TARGETDURATION (seconds; hls_fragment).
    #[arg(long, env = "LLHLS_MIN_TARGET_DURATION", default_value_t = 2)]
    pub min_target_duration: u64,
    /// Complete segments that keep their EXT-X-PART lines.
    #[arg(long, env = "LLHLS_PART_SEGMENTS", default_value_t = 2)]
    pub part_segments: usize,
    /// Safety-net rescan of the HLS folder, milliseconds.
    #[arg(long, env = "LLHLS_RESCAN_MS", default_value_t = 1000)]
    pub rescan_ms: u64,
}

impl Config {
    pub fn settings(&self) -> stream::Settings {
        stream::Settings {
            part_target: self.part_target,
            min_target_duration: self.min_target_duration,
            part_segments: self.part_segments,
        }
    }
}
