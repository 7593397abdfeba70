//! One simulated viewer: from its own source address (and with its
//! playback session id, if it has one), it reloads the stream's media
//! playlist every `interval` (±10 %) and, optionally, fetches the newest
//! segment each time a new one is listed, like a player at the live edge,
//! until the run's phase reaches the one it leaves at.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use url::Url;

use super::crowd::{mix, Who};

/// The header Apple's players send, one id per playback session.
pub const SESSION_HEADER: &str = "X-Playback-Session-Id";

/// How a viewer behaves.
#[derive(Clone, Copy, Debug)]
pub struct Habits {
    /// Seconds between playlist reloads (±10 %).
    pub interval: f64,
    /// Fetch each new newest segment.
    pub segments: bool,
    /// A request's longest time.
    pub timeout: Duration,
}

/// What every viewer shares with the run: when it started, and each
/// viewer's last answered playlist request and last attempt (ms since the
/// start, plus 1; 0: never).
pub struct Board {
    pub start: Instant,
    pub last_ok: Vec<AtomicU64>,
    pub last_try: Vec<AtomicU64>,
}

impl Board {
    pub fn new(viewers: usize) -> Board {
        Board {
            start: Instant::now(),
            last_ok: (0..viewers).map(|_| AtomicU64::new(0)).collect(),
            last_try: (0..viewers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn stamp(&self, slot: &AtomicU64) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        slot.store(ms + 1, Ordering::Relaxed);
    }

    /// Whether viewer `i`'s last playlist request within `within` was
    /// answered (it is watching).
    pub fn watching(&self, i: usize, within: Duration) -> bool {
        let ms = self.last_ok[i].load(Ordering::Relaxed);
        ms != 0 && self.start.elapsed().as_millis() <= u128::from(ms - 1) + within.as_millis()
    }

    /// Viewer `i`'s last attempt, seconds since the start.
    pub fn last_try_s(&self, i: usize) -> Option<f64> {
        let ms = self.last_try[i].load(Ordering::Relaxed);
        (ms != 0).then(|| (ms - 1) as f64 / 1000.0)
    }
}

/// One viewer's requests.
#[derive(Debug, Default)]
pub struct Tally {
    pub playlists: usize,
    pub segments: usize,
    pub segment_bytes: u64,
    /// Failed requests by kind (a status, "timeout", "connect", "error").
    pub errors: HashMap<String, usize>,
}

impl Tally {
    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "error".into()
    }
}

/// The newest segment's URI: the playlist's last URI line.
pub fn newest_segment(playlist: &str) -> Option<&str> {
    playlist
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The viewer's HTTP client: its own source address and session id.
fn client(who: &Who, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(s) = &who.session {
        headers.insert(
            SESSION_HEADER,
            reqwest::header::HeaderValue::from_str(s).map_err(|e| e.to_string())?,
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(who.addr))
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(2)
        .tcp_nodelay(true)
        .user_agent(concat!("rtmp-live-audience/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// GET `url`: the status and the body, read whole.
async fn get(c: &reqwest::Client, url: &Url) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let r = c.get(url.clone()).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.bytes().await?.to_vec()))
}

/// Where and when a viewer watches.
#[derive(Clone, Debug)]
pub struct Seat {
    /// The viewer's index (in the crowd and on the board).
    pub i: usize,
    pub who: Who,
    /// The media playlist, through the viewer's edge.
    pub playlist: Url,
    /// When it starts (its share of the ramp).
    pub first: Duration,
    /// The phase at which it leaves.
    pub leave_at: u8,
}

/// A viewer watching from its seat until the run's `phase` reaches the
/// one it leaves at.
pub async fn watch(
    seat: Seat,
    habits: Habits,
    mut phase: watch::Receiver<u8>,
    board: std::sync::Arc<Board>,
) -> Tally {
    let Seat {
        i,
        who,
        playlist,
        first,
        leave_at,
    } = seat;
    let mut t = Tally::default();
    let c = match client(&who, habits.timeout) {
        Ok(c) => c,
        Err(e) => {
            t.error(format!("client: {e}"));
            return t;
        }
    };
    let gone = |p: &watch::Receiver<u8>| *p.borrow() >= leave_at;
    let mut next = tokio::time::Instant::now() + first;
    let mut last_segment: Option<String> = None;
    for n in 0u64.. {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = phase.wait_for(|p| *p >= leave_at) => {}
        }
        if gone(&phase) {
            break;
        }
        // the next reload, ±10 % (players drift apart)
        let jitter = (mix((i as u64) << 32 | n) % 2001) as f64 / 10_000.0 - 0.1;
        next += Duration::from_secs_f64(habits.interval * (1.0 + jitter));
        board.stamp(&board.last_try[i]);
        t.playlists += 1;
        let body = match get(&c, &playlist).await {
            Ok((200, body)) => {
                board.stamp(&board.last_ok[i]);
                body
            }
            Ok((status, _)) => {
                t.error(status.to_string());
                continue;
            }
            Err(e) => {
                t.error(kind(&e));
                continue;
            }
        };
        if !habits.segments || gone(&phase) {
            continue;
        }
        let text = String::from_utf8_lossy(&body);
        let Some(uri) = newest_segment(&text) else {
            continue;
        };
        if last_segment.as_deref() == Some(uri) {
            continue;
        }
        last_segment = Some(uri.to_string());
        let Ok(url) = playlist.join(uri) else {
            t.error("bad segment URI".into());
            continue;
        };
        t.segments += 1;
        match get(&c, &url).await {
            Ok((200 | 206, body)) => t.segment_bytes += body.len() as u64,
            Ok((status, _)) => t.error(format!("segment {status}")),
            Err(e) => t.error(format!("segment {}", kind(&e))),
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_segment_is_the_last_uri_line() {
        let pl = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n10.m4s\n\
                  #EXT-X-PART:DURATION=0.5,URI=\"11-0.m4s\"\n#EXTINF:2.0,\n11.m4s\n\
                  #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"12-1.m4s\"\n\n";
        assert_eq!(newest_segment(pl), Some("11.m4s"));
        assert_eq!(newest_segment("#EXTM3U\n"), None);
    }

    #[test]
    fn watching_means_answered_recently() {
        let b = Board::new(2);
        assert!(!b.watching(0, Duration::from_secs(5)));
        b.stamp(&b.last_ok[0]);
        assert!(b.watching(0, Duration::from_secs(5)));
        assert!(!b.watching(1, Duration::from_secs(5)));
        assert!(b.last_try_s(0).is_none());
    }
}
