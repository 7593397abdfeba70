//! Command-line flags with environment-variable fallbacks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "rtmp-live-discovery",
    version,
    about = "Reports an origin's live HLS streams to the API"
)]
pub struct Config {
    /// The folder nginx-rtmp writes HLS to (`hls_path`).
    #[arg(long, env = "HLS_PATH", default_value = "/var/lib/rtmp-live/hls")]
    pub hls_path: PathBuf,
    /// Base URL of the API, or of several instances, comma-separated
    /// (requests fail over between them).
    #[arg(
        long,
        env = "DISCOVERY_API_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub api_url: String,
    /// This origin's bearer token: POST/DELETE /streams and /authorize.
    #[arg(long, env = "API_REPORT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// `host[:port]` at which edges reach this origin's HTTP server
    /// (default: first non-loopback IPv4 address, port 8080).
    #[arg(long, env = "ADVERTISE_HOST")]
    pub advertise_host: Option<String>,
    /// The seed's name for ADVERTISE_HOST.
    #[arg(long = "ip", env = "IP", hide = true)]
    pub ip: Option<String>,
    /// Seconds between reports of a live stream.
    #[arg(long, env = "DISCOVERY_HEARTBEAT_SECS", default_value_t = 5.0)]
    pub heartbeat_secs: f64,
    /// A stream is live while one of its playlists changed within this many seconds.
    #[arg(long, env = "DISCOVERY_STALE_SECS", default_value_t = 10.0)]
    pub stale_secs: f64,
    /// Local HTTP listener: `POST /authorize` (nginx-rtmp's `on_publish`)
    /// and `GET /metrics`.
    #[arg(long, env = "DISCOVERY_LISTEN", default_value = "127.0.0.1:9091")]
    pub listen: SocketAddr,
    /// How long `/authorize` waits for the API before answering from memory.
    #[arg(long, env = "DISCOVERY_AUTH_TIMEOUT_MS", default_value_t = 1500)]
    pub auth_timeout_ms: u64,
    /// While the API is unreachable, a key it allowed within this many
    /// seconds is still allowed.
    #[arg(long, env = "DISCOVERY_AUTH_CACHE_SECS", default_value_t = 86_400)]
    pub auth_cache_secs: u64,
    /// nginx-rtmp's statistics page (`rtmp_stat all`), read on each
    /// `/metrics` scrape for per-stream ingest facts; unset: not reported.
    #[arg(long, env = "DISCOVERY_RTMP_STAT_URL")]
    pub rtmp_stat_url: Option<String>,
    /// Folder in which remembered authorizations (salted key hashes) survive
    /// a restart; unset: kept in memory only.
    #[arg(long, env = "DISCOVERY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The recordings the LL-HLS component writes beside this origin
    /// (`RECORDINGS_PATH`): the finished ones are reported to the API every
    /// heartbeat (`PUT /recordings/{host}`).
    #[arg(
        long,
        env = "RECORDINGS_PATH",
        default_value = "/var/lib/rtmp-live/recordings"
    )]
    pub recordings_path: PathBuf,
}

impl Config {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_secs.clamp(0.05, 3600.0))
    }

    pub fn stale(&self) -> Duration {
        Duration::from_secs_f64(self.stale_secs.clamp(0.1, 3600.0))
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms.clamp(50, 60_000))
    }

    pub fn auth_cache(&self) -> Duration {
        Duration::from_secs(self.auth_cache_secs)
    }

    /// The host to advertise, validated.
    pub fn host(&self) -> Result<String, String> {
        let host = match self
            .advertise_host
            .clone()
            .or_else(|| self.ip.clone())
            .filter(|h| !h.is_empty())
        {
            Some(h) => h,
            None => format!(
                "{}:8080",
                first_ipv4().ok_or("no non-loopback IPv4 address: set ADVERTISE_HOST")?
            ),
        };
        if rtmp_live_types::is_valid_host(&host) {
            Ok(host)
        } else {
            Err(format!(
                "ADVERTISE_HOST {host:?} is not hostname-or-IP[:port]"
            ))
        }
    }
}

fn first_ipv4() -> Option<IpAddr> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}
