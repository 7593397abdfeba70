//! Flags of `rtmp-live-up`, each with the environment variable `make up`
//! documents as fallback, and their defaults.

use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::Parser;
use rtmp_live_platform::topology::EdgeSettings;
use rtmp_live_platform::Ports;

/// Runs the whole platform in the foreground: Redis, the API, one or more
/// origins (nginx-rtmp) each with its discovery, and the edge (nginx + the
/// edge-router module). Every output line is prefixed with its component;
/// Ctrl-C / SIGTERM stops everything it started.
#[derive(Parser, Debug)]
#[command(name = "rtmp-live-up")]
pub struct Args {
    #[command(flatten)]
    pub ports: Ports,
    /// Address the API and the origins' HTTP servers listen on. Only this
    /// run's parts use them, hence loopback; for edges or origins on other
    /// hosts give this host's private address (or 0.0.0.0) and firewall
    /// them. RTMP ingest and the edge always listen on every interface.
    #[arg(long, env = "INTERNAL_BIND", default_value = "127.0.0.1")]
    pub internal_bind: std::net::IpAddr,
    /// Origins to run (1..9), each with its discovery.
    #[arg(long, env = "ORIGINS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub origins: u8,
    /// Origins that carry each live stream (1..9, at most ORIGINS): the
    /// origin that takes a publish relays it to the next ones, and their
    /// LL-HLS components name every segment and part the same way, so a
    /// viewer's edge can move between them mid-stream (docs/replication.md).
    #[arg(long, env = "REPLICAS", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub replicas: u8,
    /// API instances (1..3) on API_PORT, API_PORT+1, ...: discovery and
    /// the edge fail over between them.
    #[arg(long, env = "APIS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=3))]
    pub apis: u8,
    /// Redis replicas (0..3). With any, three Redis Sentinels watch the
    /// master and promote a replica when it fails; the API finds the
    /// master through them (docs/redis-ha.md).
    #[arg(long, env = "REDIS_REPLICAS", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=3))]
    pub redis_replicas: u8,
    /// Transcode every stream into the ABR ladder (`ABR=1`).
    #[arg(long, env = "ABR", value_parser = BoolishValueParser::new(),
          default_value = "0", num_args = 0..=1, default_missing_value = "1")]
    pub abr: bool,
    /// LL-HLS playlists from rtmp-live-llhls beside each origin (on by
    /// default; `LLHLS=0` or `--llhls=0`: nginx-rtmp's playlist files only).
    #[arg(id = "llhls_on", long = "llhls", env = "LLHLS", value_parser = BoolishValueParser::new(),
          default_value = "1", num_args = 0..=1, default_missing_value = "1")]
    pub llhls_on: bool,
    /// How far back viewers can seek in a live stream (the DVR window):
    /// `30m`, `1800`, `1h`; `0`: 8 s, no window.
    #[arg(long, env = "DVR_WINDOW", default_value = rtmp_live_types::window::DEFAULT,
          value_parser = rtmp_live_types::window::parse)]
    pub dvr_window: std::time::Duration,
    /// How long a stream's finished sessions stay playable as recordings
    /// (`24h`, `90m`; `0`: nothing is recorded).
    #[arg(long, env = "RECORDING_RETENTION", default_value = "24h",
          value_parser = rtmp_live_types::window::parse_duration)]
    pub recording_retention: std::time::Duration,
    /// Bytes each origin's recordings may take (`10G`; `0`: no limit); the
    /// oldest finished ones are deleted past it.
    #[arg(long, env = "RECORDING_MAX_BYTES", default_value = "10G",
          value_parser = rtmp_live_types::recording::parse_bytes)]
    pub recording_max_bytes: u64,
    /// Runtime files [default: ${XDG_STATE_HOME:-~/.local/state}/rtmp-live;
    /// as root /var/lib/rtmp-live].
    #[arg(long, env = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Host name printed in the OBS/player URLs [default: first IPv4].
    #[arg(long, env = "PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// The repository (nginx/ templates, scripts/) [default: the one this
    /// binary was built in, else the current folder].
    #[arg(long, env = "RTMP_LIVE_ROOT")]
    pub root: Option<PathBuf>,
    /// The built binaries [default: this binary's folder].
    #[arg(long, env = "BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    #[arg(long, env = "NGINX", default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    /// User (and group: `user [group]`) of the nginx workers and the ABR
    /// ladder they start [default: the current user; as root www-data].
    #[arg(long, env = "NGINX_USER")]
    pub nginx_user: Option<String>,
    #[arg(
        long,
        env = "RTMP_MODULE",
        default_value = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
    )]
    pub rtmp_module: PathBuf,
    /// [default: BIN_DIR/libngx_edge_router.so]
    #[arg(long, env = "EDGE_MODULE")]
    pub edge_module: Option<PathBuf>,
    /// The player page the edge serves at / [default: ROOT/player].
    #[arg(long, env = "PLAYER_DIR")]
    pub player_dir: Option<PathBuf>,
    #[arg(long, env = "EDGE_WORKERS", default_value = "2")]
    pub edge_workers: String,
    #[arg(long, env = "EDGE_VIEWER_KEY", default_value = "$remote_addr")]
    pub edge_viewer_key: String,
    #[arg(long, env = "EDGE_ROUTE_VALID", default_value = "5s")]
    pub edge_route_valid: String,
    #[arg(long, env = "EDGE_ROUTE_NEGATIVE", default_value = "1s")]
    pub edge_route_negative: String,
    #[arg(long, env = "EDGE_ROUTE_STALE", default_value = "15m")]
    pub edge_route_stale: String,
    #[arg(long, env = "EDGE_ROUTE_GRACE", default_value = "8s")]
    pub edge_route_grace: String,
    /// Origins the edge may contact [default: exactly this run's].
    #[arg(long, env = "EDGE_ORIGINS")]
    pub edge_origins: Option<String>,
    /// 1: X-Edge-Origin/X-Edge-Upstream in viewer answers.
    #[arg(long, env = "EDGE_DEBUG_HEADERS", default_value = "0")]
    pub edge_debug_headers: String,
    #[arg(long, env = "EDGE_CORS_ORIGIN", default_value = "*")]
    pub edge_cors_origin: String,
    /// DNS server for origins named by host name [default: the first
    /// nameserver of /etc/resolv.conf].
    #[arg(long, env = "EDGE_RESOLVER")]
    pub edge_resolver: Option<String>,
    /// The longest the edge keeps a DNS answer.
    #[arg(long, env = "EDGE_RESOLVER_VALID", default_value = "10s")]
    pub edge_resolver_valid: String,
    /// `on`: every stream needs a signed playback link (/t/<token>/...);
    /// `off`: only streams whose key says `:signed`.
    #[arg(long, env = "EDGE_PLAYBACK_SIGNED", default_value = "off", value_parser = ["on", "off"])]
    pub edge_playback_signed: String,
    /// File holding the secret playback links are signed with [default:
    /// generated once into STATE_DIR/playback-secret].
    #[arg(long, env = "PLAYBACK_SECRET_FILE")]
    pub playback_secret_file: Option<PathBuf>,
    /// Token edges send viewer counts with [default: generated once into
    /// STATE_DIR/api-edge-token].
    #[arg(long, env = "API_EDGE_TOKEN", hide_env_values = true)]
    pub api_edge_token: Option<String>,
    /// Operator token (issuing playback links) [default: generated once
    /// into STATE_DIR/api-operator-token].
    #[arg(long, env = "API_OPERATOR_TOKEN", hide_env_values = true)]
    pub api_operator_token: Option<String>,
    /// Registry token [default: generated once into STATE_DIR/api-report-token].
    #[arg(long, env = "API_REPORT_TOKEN", hide_env_values = true)]
    pub api_report_token: Option<String>,
    /// `key[=name],...` [default: a key generated once into
    /// STATE_DIR/stream-key, publishing as `golive`].
    #[arg(long, env = "STREAM_KEYS", hide_env_values = true)]
    pub stream_keys: Option<String>,
    /// Redis's password [default: generated once into
    /// STATE_DIR/redis-password].
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
}

impl Args {
    pub fn edge(&self) -> EdgeSettings {
        EdgeSettings {
            workers: self.edge_workers.clone(),
            viewer_key: self.edge_viewer_key.clone(),
            route_valid: self.edge_route_valid.clone(),
            route_negative: self.edge_route_negative.clone(),
            route_stale: self.edge_route_stale.clone(),
            route_grace: self.edge_route_grace.clone(),
            origins: non_empty(&self.edge_origins),
            debug_headers: self.edge_debug_headers.clone(),
            cors_origin: self.edge_cors_origin.clone(),
            resolver: non_empty(&self.edge_resolver),
            resolver_valid: self.edge_resolver_valid.clone(),
            playback_signed: self.edge_playback_signed.clone(),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        match self.state_dir.clone().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d,
            None => rtmp_live_platform::default_state_dir(),
        }
    }

    /// The repository: given, else the one holding this binary's
    /// `target/<profile>/`, else the current folder.
    pub fn root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        let exe = std::env::current_exe().ok();
        let from_exe = exe
            .as_deref()
            .and_then(|e| e.ancestors().nth(3))
            .filter(|r| is_root(r));
        from_exe
            .map(Path::to_path_buf)
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default())
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.bin_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .unwrap_or_default()
        })
    }
}

fn is_root(dir: &Path) -> bool {
    dir.join("nginx/edge.conf.template").is_file()
}

/// `Some` of a set, non-empty value.
pub fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}
