//! Command-line flags, each with an environment-variable fallback.

use std::time::Duration;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "rtmp-live-api", version, about = "RTMP Live registry API")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "API_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: String,
    /// Redis holding the registry.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// A registration expires this long after the origin's last report.
    #[arg(long, env = "STREAM_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub stream_ttl_secs: u64,
    /// Bearer token required by POST/DELETE /streams (unset: no check).
    #[arg(long, env = "API_REPORT_TOKEN", hide_env_values = true)]
    pub report_token: Option<String>,
    /// Stream keys: comma-separated `key` or `key=name` entries.
    #[arg(
        long,
        env = "STREAM_KEYS",
        default_value = "golive",
        hide_env_values = true
    )]
    pub stream_keys: String,
    /// Location of an allowed publish; `{name}` becomes the public name.
    #[arg(
        long,
        env = "PUBLISH_REDIRECT",
        default_value = "rtmp://127.0.0.1:1935/hls/{name}"
    )]
    pub publish_redirect: String,
    /// Every Redis call fails with 503 after this long.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 500)]
    pub redis_timeout_ms: u64,
}

impl Config {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }
}
