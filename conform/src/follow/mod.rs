//! Following a live stream: the (thin) fetch loop that feeds the rules.
//! One task per media playlist (`variant`), the multivariant playlist and
//! its cross-variant checks in `run`.

pub mod http;
pub mod revision;
pub mod run;
pub mod variant;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use url::Url;

use self::http::Http;

/// What the run may do, from the command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub seconds: f64,
    pub save_dir: Option<PathBuf>,
    /// ffmpeg for the decode check; `None` disables it.
    pub ffmpeg: Option<String>,
    /// Send the deliberate bad blocking requests (rule 9).
    pub probes: bool,
    pub max_playlist_bytes: usize,
    pub max_media_bytes: usize,
    /// Time limit of every non-blocking request.
    pub request_timeout: Duration,
}

/// State shared by the tasks of one run.
#[derive(Debug)]
pub struct Shared {
    pub opts: Options,
    pub http: Http,
    pub start: Instant,
    pub deadline: Instant,
    /// Every media playlist of the multivariant playlist (empty without one).
    pub siblings: Vec<Url>,
    /// One decode at a time (the machine is small).
    pub decoder: Semaphore,
}

impl Shared {
    pub fn new(opts: Options, http: Http, siblings: Vec<Url>) -> Arc<Self> {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(opts.seconds.max(0.0));
        Arc::new(Shared {
            opts,
            http,
            start,
            deadline,
            siblings,
            decoder: Semaphore::new(1),
        })
    }

    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Saves a playlist revision for the external checkers.
    pub fn save(&self, playlist: &Url, revision: u64, kind: &str, body: &[u8]) {
        let Some(dir) = &self.opts.save_dir else {
            return;
        };
        let dir = dir.join(slug(playlist));
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join(format!("{revision:06}-{kind}.m3u8")), body);
        }
    }
}

/// A file-system-safe name for a playlist URL.
pub fn slug(url: &Url) -> String {
    let s: String = format!("{}{}", url.host_str().unwrap_or(""), url.path())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// A short display name: the URL's path.
pub fn display(url: &Url) -> String {
    url.path().trim_start_matches('/').to_string()
}

/// The output of a task known to be finished, without awaiting it.
pub fn ready<T>(job: tokio::task::JoinHandle<T>) -> Option<Result<T, tokio::task::JoinError>> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut job = std::pin::pin!(job);
    match job.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}
