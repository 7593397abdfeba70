//! A player-like client for the fault tests: it reloads a stream's
//! playlist through the edge every second and fetches each new segment of
//! the live end, counting every answer that is not 200.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::media_playlist;

/// What a player-like client saw: it reloads the playlist every second and
/// fetches every new segment of the live end (the last four), through the
/// edge.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    pub requests: usize,
    pub errors: Vec<String>,
    /// The newest segment's media sequence number, first and last seen.
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    pub segments: usize,
    pub times: Vec<Duration>,
    /// Requests slower than 100 ms, for the report.
    pub slow: Vec<(String, Duration)>,
}

impl Seen {
    pub fn p99(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get((t.len() * 99 / 100).min(t.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} errors, {} segments, media sequence {} -> {}, p99 {:?}, slower than 100 ms: {:?}",
            self.requests,
            self.errors.len(),
            self.segments,
            self.first_seq.unwrap_or(0),
            self.last_seq,
            self.p99(),
            self.slow
        )
    }
}

pub struct Player {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Player {
    pub fn start(edge: u16, stream: &str, viewer: &str) -> Player {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s2, seen2) = (stop.clone(), seen.clone());
        let base = format!("http://127.0.0.1:{edge}/{stream}");
        let viewer = viewer.to_string();
        let thread = std::thread::spawn(move || {
            let c = rtmp_live_testkit::http::client();
            let mut fetched: Vec<String> = Vec::new();
            while !s2.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                let one = |url: &str| -> Option<Vec<u8>> {
                    let t = Instant::now();
                    let r = c.get(url).header("X-Forwarded-For", &viewer).send();
                    let mut s = seen2.lock().unwrap();
                    s.requests += 1;
                    s.times.push(t.elapsed());
                    if t.elapsed() > Duration::from_millis(100) {
                        s.slow.push((
                            url.rsplit('/').next().unwrap_or("").to_string(),
                            t.elapsed(),
                        ));
                    }
                    match r {
                        Ok(r) if r.status() == 200 => r.bytes().ok().map(|b| b.to_vec()),
                        Ok(r) => {
                            s.errors.push(format!("{url}: {}", r.status()));
                            None
                        }
                        Err(e) => {
                            s.errors.push(format!("{url}: {e}"));
                            None
                        }
                    }
                };
                if let Some(body) = one(&format!("{base}/index.m3u8")) {
                    let (seq, segs) = media_playlist(&String::from_utf8_lossy(&body));
                    // the newest segment's number (the oldest stays for
                    // the DVR window)
                    let newest = seq + segs.len().saturating_sub(1) as u64;
                    {
                        let mut s = seen2.lock().unwrap();
                        s.first_seq.get_or_insert(newest);
                        s.last_seq = s.last_seq.max(newest);
                    }
                    // the live end, as a player at the live edge (the
                    // DVR window's older segments are not its business)
                    let live_end = segs.len().saturating_sub(4);
                    for (_, uri) in segs.into_iter().skip(live_end) {
                        if !fetched.contains(&uri) {
                            if one(&format!("{base}/{uri}")).is_some() {
                                seen2.lock().unwrap().segments += 1;
                            }
                            fetched.push(uri);
                        }
                    }
                }
                let spent = t0.elapsed();
                if spent < Duration::from_secs(1) {
                    std::thread::sleep(Duration::from_secs(1) - spent);
                }
            }
        });
        Player {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub fn snapshot(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        let mut s = self.seen.lock().unwrap();
        let last = s.last_seq;
        *s = Seen {
            first_seq: Some(last),
            last_seq: last,
            ..Seen::default()
        };
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}
