//! A player-like client for fault tests and the lab: it reloads a stream's
//! playlist every second and fetches each new segment of the live end,
//! counting every answer that is not 200, and how long the live end stood
//! still. Given several edges (one name with several addresses, as behind
//! DNS round robin or a load balancer), a request that fails on one is
//! made once on the next, and the client stays there.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A media playlist's media sequence number and its segments (duration,
/// URI).
pub fn media_playlist(text: &str) -> (u64, Vec<(f64, String)>) {
    let mut seq = 0;
    let mut segs = Vec::new();
    let mut dur = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            dur = v.split(',').next().and_then(|d| d.parse().ok());
        } else if !line.is_empty() && !line.starts_with('#') {
            segs.push((dur.take().unwrap_or(0.0), line.to_string()));
        }
    }
    (seq, segs)
}

/// What a player-like client saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    pub requests: usize,
    /// Requests that no edge answered with 200.
    pub errors: Vec<String>,
    /// Requests that failed on one edge and were answered by the next.
    pub retried: usize,
    /// The newest segment's media sequence number, first and last seen.
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    pub segments: usize,
    pub times: Vec<Duration>,
    /// Requests slower than 100 ms, for the report.
    pub slow: Vec<(String, Duration)>,
    /// When a new segment last arrived, and the longest time none did (a
    /// player's buffer drains for that long).
    pub last_advance: Option<Instant>,
    pub longest_stall: Duration,
}

impl Seen {
    pub fn p99(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get((t.len() * 99 / 100).min(t.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    /// The longest stall, counting one still running.
    pub fn stall_now(&self) -> Duration {
        let running = self.last_advance.map(|t| t.elapsed()).unwrap_or_default();
        self.longest_stall.max(running)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} errors, {} retried on another edge, {} segments, media sequence {} -> {}, \
             longest stall {:?}, p99 {:?}, slower than 100 ms: {:?}",
            self.requests,
            self.errors.len(),
            self.retried,
            self.segments,
            self.first_seq.unwrap_or(0),
            self.last_seq,
            self.stall_now(),
            self.p99(),
            self.slow
        )
    }

    fn advanced_to(&mut self, newest: u64) {
        self.first_seq.get_or_insert(newest);
        self.last_seq = self.last_seq.max(newest);
    }

    /// A segment not fetched before arrived: the live end moved (counted
    /// by segments, not sequence numbers, which two origins of one stream
    /// number differently).
    fn got_segment(&mut self) {
        self.segments += 1;
        if let Some(t) = self.last_advance {
            self.longest_stall = self.longest_stall.max(t.elapsed());
        }
        self.last_advance = Some(Instant::now());
    }
}

pub struct Player {
    stop: Arc<AtomicBool>,
    /// The edge in use (an index into the edges).
    at: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Player {
    /// One edge on loopback, the tests' usual case.
    pub fn start(edge: u16, stream: &str, viewer: &str) -> Player {
        Player::start_on(
            vec![format!("http://127.0.0.1:{edge}")],
            stream,
            viewer,
            Duration::from_secs(10),
        )
    }

    /// `edges`: base URLs of the edges (the first is used until it fails);
    /// `timeout`: how long a request may take before the next edge is
    /// tried (a player's own timeout).
    pub fn start_on(edges: Vec<String>, stream: &str, viewer: &str, timeout: Duration) -> Player {
        assert!(!edges.is_empty(), "a player needs an edge");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let at = Arc::new(AtomicUsize::new(0));
        let (s2, seen2, at2) = (stop.clone(), seen.clone(), at.clone());
        let (stream, viewer) = (stream.to_string(), viewer.to_string());
        let thread = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
                .expect("an HTTP client");
            let mut fetched: Vec<String> = Vec::new();
            while !s2.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                let one = |path: &str| -> Option<Vec<u8>> {
                    let mut last_error = String::new();
                    for attempt in 0..edges.len().min(2) {
                        let at = at2.load(Ordering::SeqCst) % edges.len();
                        let url = format!("{}/{stream}/{path}", edges[at]);
                        let t = Instant::now();
                        let r = c.get(&url).header("X-Forwarded-For", &viewer).send();
                        let took = t.elapsed();
                        let mut s = seen2.lock().unwrap();
                        s.requests += 1;
                        s.times.push(took);
                        if took > Duration::from_millis(100) {
                            s.slow.push((path.to_string(), took));
                        }
                        match r.map(|r| (r.status(), r.bytes())) {
                            Ok((st, Ok(b))) if st == 200 => {
                                s.retried += usize::from(attempt > 0);
                                return Some(b.to_vec());
                            }
                            Ok((st, _)) => last_error = format!("{url}: {st}"),
                            Err(e) => last_error = format!("{url}: {e}"),
                        }
                        at2.store((at + 1) % edges.len(), Ordering::SeqCst);
                    }
                    seen2.lock().unwrap().errors.push(last_error);
                    None
                };
                if let Some(body) = one("index.m3u8") {
                    let (seq, segs) = media_playlist(&String::from_utf8_lossy(&body));
                    // the newest segment's number (the oldest stays for
                    // the DVR window)
                    let newest = seq + segs.len().saturating_sub(1) as u64;
                    // the live end, as a player at the live edge (the
                    // DVR window's older segments are not its business)
                    let live_end = segs.len().saturating_sub(4);
                    for (_, uri) in segs.into_iter().skip(live_end) {
                        if !fetched.contains(&uri) {
                            if one(&uri).is_some() {
                                seen2.lock().unwrap().got_segment();
                            }
                            fetched.push(uri);
                        }
                    }
                    seen2.lock().unwrap().advanced_to(newest);
                    if fetched.len() > 64 {
                        fetched.drain(..32);
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
            at,
            seen,
            thread: Some(thread),
        }
    }

    pub fn snapshot(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// Starts counting afresh from the newest segment seen, back on the
    /// first edge (as a player started again resolves the name again).
    pub fn reset(&self) {
        self.at.store(0, Ordering::SeqCst);
        let mut s = self.seen.lock().unwrap();
        let (last, advance) = (s.last_seq, s.last_advance);
        *s = Seen {
            first_seq: Some(last),
            last_seq: last,
            last_advance: advance,
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

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
