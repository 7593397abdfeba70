//! Command-line flags, each with an environment-variable fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::redis_target::RedisTarget;

#[derive(Debug, Clone, Parser)]
#[command(name = "rtmp-live-api", version, about = "RTMP Live registry API")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "API_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: String,
    /// Redis holding the registry.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Redis's password (`requirepass`), unless REDIS_URL carries one.
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Redis Sentinel instead of one server: `host:port` of each sentinel,
    /// comma-separated. The API asks them for the master (REDIS_URL is then
    /// unused) and asks again when the master stops answering as one.
    #[arg(long, env = "REDIS_SENTINELS")]
    pub redis_sentinels: Option<String>,
    /// The master's name in the sentinels' configuration.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", default_value = "rtmp-live")]
    pub redis_sentinel_master: String,
    /// The sentinels' password (their `requirepass`), if any.
    #[arg(long, env = "REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_password: Option<String>,
    /// An allowed publish answers only once this many replicas hold its
    /// name's owner record (`WAIT`), so a failover right after it cannot
    /// give the name to another key; otherwise 503 and the encoder retries.
    /// 0: do not wait (one server, no replicas).
    #[arg(long, env = "REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,
    /// After the registry was lost (a failover to an empty replica, a
    /// restart without persistence, FLUSHALL), names without an owner
    /// record cannot be claimed for this long: the origins' heartbeats
    /// bring back the live streams and their owners first.
    #[arg(long, env = "REGISTRY_RECOVERY_SECS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub registry_recovery_secs: u64,
    /// A registration expires this long after the origin's last report.
    #[arg(long, env = "STREAM_TTL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub stream_ttl_secs: u64,
    /// Bearer token allowed to POST/DELETE registrations of any host (less
    /// safe than per-origin tokens: one leaked token can hijack every stream).
    #[arg(long, env = "API_REPORT_TOKEN", hide_env_values = true)]
    pub report_token: Option<String>,
    /// Per-origin bearer tokens: `token=host[|host...]`, comma-separated; a
    /// token may only write registrations of the hosts it lists.
    #[arg(long, env = "API_ORIGIN_TOKENS", hide_env_values = true)]
    pub origin_tokens: Option<String>,
    /// Start without any registry token and/or stream key (development
    /// only: anyone who reaches the API can then register streams).
    #[arg(
        long,
        env = "API_INSECURE_NO_AUTH",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_no_auth: bool,
    /// Stream keys: comma-separated `key` or `key=name` entries; each key is
    /// a secret of at least 16 characters. Required.
    #[arg(long, env = "STREAM_KEYS", hide_env_values = true)]
    pub stream_keys: Option<String>,
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
    /// Failed /authorize attempts allowed per client address and minute,
    /// then 429 until the minute is over (0: no limit).
    #[arg(long, env = "AUTHORIZE_MAX_FAILURES_PER_MIN", default_value_t = 10)]
    pub authorize_max_failures_per_min: u32,
    /// At most this many client addresses are tracked for the limit above.
    #[arg(long, env = "AUTHORIZE_MAX_TRACKED_CLIENTS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub authorize_max_tracked_clients: u64,
    /// A connection must send a complete request head within this time; the
    /// same timer closes keep-alive connections idle for this long.
    #[arg(long, env = "API_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// A request body must arrive within this time (408 otherwise).
    #[arg(long, env = "API_BODY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Whole-request limit, handler included (408 otherwise).
    #[arg(long, env = "API_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// A file holding the secret that signs playback tokens (trailing
    /// whitespace ignored; at least 16 bytes). Without it, issuing playback
    /// tokens answers 503.
    #[arg(long, env = "API_PLAYBACK_SECRET_FILE")]
    pub playback_secret_file: Option<PathBuf>,
    /// The secret itself, where a file is awkward (a container's
    /// environment); the file wins when both are set. Same rules.
    #[arg(long, env = "API_PLAYBACK_SECRET", hide_env_values = true)]
    pub playback_secret: Option<String>,
    /// Bearer token of the operator: may issue playback tokens, nothing
    /// else. Without it, issuing answers 503 (open with --insecure-no-auth).
    #[arg(long, env = "API_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Bearer token of the edges: may report viewer counts, nothing else.
    /// Without it, reports answer 503 (open with --insecure-no-auth).
    #[arg(long, env = "API_EDGE_TOKEN", hide_env_values = true)]
    pub edge_token: Option<String>,
    /// An edge's viewer report counts this long after it arrived (edges
    /// report more often than this; a stopped edge's viewers fade out).
    #[arg(long, env = "API_VIEWER_REPORT_TTL_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub viewer_report_ttl_secs: u64,
    /// Open client connections at most; more wait in the listen backlog.
    #[arg(long, env = "API_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
}

impl Config {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }

    /// Where Redis is (REDIS_URL, or the master of REDIS_SENTINELS).
    pub fn redis_target(&self) -> Result<RedisTarget, String> {
        Ok(RedisTarget {
            url: self.redis_url.clone(),
            password: self.redis_password.clone(),
            sentinels: RedisTarget::parse_sentinels(self.redis_sentinels.as_deref().unwrap_or(""))
                .map_err(|e| format!("REDIS_SENTINELS: {e}"))?,
            master_name: self.redis_sentinel_master.clone(),
            sentinel_password: self.redis_sentinel_password.clone(),
        })
    }
}
