//! LL-HLS for the stock nginx-rtmp origin: tails the `.ts` fragment that
//! nginx-rtmp is writing and packages it, part by part, as CMAF (fMP4)
//! segments beside it (see `README.md`). This serves the LL playlists and
//! the parts; the origin's nginx serves the segment files.

pub mod blocking;
pub mod cmaf;
pub mod demux;
pub mod fragments;
pub mod labels;
pub mod pace;
pub mod parts;
pub mod playlist;
pub mod record;
pub mod registry;
pub mod server;
pub mod stream;
pub mod sync;
pub mod timeline;
pub mod ts;
pub mod watcher;

use std::path::PathBuf;

pub use watcher::watch;

/// See `Config::part_target`.
pub const DEFAULT_PART_TARGET: f64 = 0.36;

/// Settings of the binary (also used by the tests).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "rtmp-live-llhls",
    about = "LL-HLS playlists for nginx-rtmp's HLS output"
)]
pub struct Config {
    /// nginx-rtmp's hls_path (with hls_nested on: <path>/<name>/index.m3u8).
    #[arg(long, env = "HLS_PATH", default_value = "/var/lib/rtmp-live/hls")]
    pub hls_path: PathBuf,
    /// Address for the playlist HTTP server.
    #[arg(long, env = "LLHLS_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// PART-TARGET in seconds (PART-HOLD-BACK is three times it). 0.36 s
    /// holds a whole number of frames at 24, 25, 30, 50 and 60 fps, so a
    /// 2 s fragment is six parts of about 1/3 s with no sliver at its end.
    #[arg(long, env = "LLHLS_PART_TARGET", default_value_t = DEFAULT_PART_TARGET)]
    pub part_target: f64,
    /// Floor of EXT-X-TARGETDURATION (seconds; hls_fragment).
    #[arg(long, env = "LLHLS_MIN_TARGET_DURATION", default_value_t = 2)]
    pub min_target_duration: u64,
    /// How far back viewers can play (the DVR window): the playlist holds
    /// this much of the stream, at least 8 s (`0`: 8 s, no window). `30m`,
    /// `1800`, `1h`. The segments are this component's own files, so it
    /// exceeds nginx-rtmp's `hls_playlist_length`; a low-latency client
    /// asks for delta updates (`_HLS_skip`) and is sent the last 12 s.
    #[arg(long, env = "DVR_WINDOW", default_value = rtmp_live_types::window::DEFAULT,
          value_parser = rtmp_live_types::window::parse)]
    pub dvr_window: std::time::Duration,
    /// Where publish sessions are recorded, kept playable after they end
    /// (`<path>/<name>/<start>/`; on the HLS folder's file system, so
    /// segments are linked, not copied).
    #[arg(
        long,
        env = "RECORDINGS_PATH",
        default_value = "/var/lib/rtmp-live/recordings"
    )]
    pub recordings_path: PathBuf,
    /// How long a finished recording stays (`24h`, `90m`, `3600`; `0`:
    /// nothing is recorded).
    #[arg(long, env = "RECORDING_RETENTION", default_value = "24h",
          value_parser = rtmp_live_types::window::parse_duration)]
    pub recording_retention: std::time::Duration,
    /// Bytes all recordings may take (`10G`, `500M`, `0`: no limit); past
    /// it the oldest finished recordings are deleted.
    #[arg(long, env = "RECORDING_MAX_BYTES", default_value = "10G",
          value_parser = rtmp_live_types::recording::parse_bytes)]
    pub recording_max_bytes: u64,
    /// Safety-net rescan of the HLS folder, milliseconds (file events
    /// find everything; this catches what a full event queue lost).
    #[arg(long, env = "LLHLS_RESCAN_MS", default_value_t = 5000)]
    pub rescan_ms: u64,
    /// How often file events are handled, and a fragment in progress is
    /// read while the frame closing its part is due, milliseconds: a part
    /// is listed at most this long after its last byte was written (see
    /// `pace.rs`).
    #[arg(long, env = "LLHLS_TICK_MS", default_value_t = 10)]
    pub tick_ms: u64,
    /// Requests held at once for one stream (blocking reloads and parts not
    /// written yet); past it a reload gets the current playlist at once, a
    /// part a 503 (see BENCHMARKS.md, "Held requests").
    #[arg(long, env = "LLHLS_HELD_PER_STREAM", default_value_t = 512)]
    pub held_per_stream: usize,
    /// Requests held at once in all.
    #[arg(long, env = "LLHLS_HELD_TOTAL", default_value_t = 4096)]
    pub held_total: usize,
    /// The other origins of this origin's streams (their HTTP, comma
    /// separated, `http://host:port`): this component agrees with theirs on
    /// the names and numbers of the segments and parts of the streams they
    /// share (see `labels`). None: no replication.
    #[arg(long, env = "LLHLS_PEERS", value_delimiter = ',', num_args = 0..)]
    pub peers: Vec<String>,
}

impl Config {
    pub fn limits(&self) -> server::Limits {
        server::Limits {
            held_total: self.held_total,
            held_per_stream: self.held_per_stream,
        }
    }

    /// The recordings' settings, `None` when nothing is recorded.
    pub fn recordings(&self) -> Option<std::sync::Arc<record::Recordings>> {
        (!self.recording_retention.is_zero()).then(|| {
            record::Recordings::new(
                self.recordings_path.clone(),
                self.recording_retention,
                self.recording_max_bytes,
            )
        })
    }

    pub fn settings(&self) -> stream::Settings {
        stream::Settings {
            part_target: self.part_target,
            min_target_duration: self.min_target_duration,
            pace: pace::Pace::new(std::time::Duration::from_millis(
                self.tick_ms.clamp(1, 1000),
            )),
            window: rtmp_live_types::window::playlist_span(self.dvr_window),
            recordings: self.recordings(),
            replicated: self.peers.iter().any(|p| !p.is_empty()),
        }
    }
}
