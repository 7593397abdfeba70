//! The whole platform as data: settings in, processes (with their
//! environment and rendered configs) out. Nothing here starts anything.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::ports::Ports;

/// Everything a run is made of, resolved (no defaults left to apply).
#[derive(Clone, Debug)]
pub struct Settings {
    pub ports: Ports,
    /// Where the API and the origins' HTTP servers listen (`INTERNAL_BIND`):
    /// loopback by default, since only this run's own parts use them;
    /// another address for edges or origins on other hosts. RTMP ingest and
    /// the edge listen on every interface; Redis, discovery, LL-HLS, the
    /// RTMP statistics and packaging ports on loopback only.
    pub internal_bind: IpAddr,
    /// Origins, each with its discovery (1..=9).
    pub origins: usize,
    /// Origins that carry each live stream (`REPLICAS`, 1..=9; at most
    /// `origins`): the origin that takes a publish relays it to the next
    /// ones, in a ring (see [`Topology::replica_peers`]).
    pub replicas: usize,
    /// API instances (`APIS`, 1..=3), each on `API_PORT`+k-1, sharing
    /// Redis; discovery and the edge fail over between them.
    pub apis: usize,
    /// Redis replicas (`REDIS_REPLICAS`, 0..=3); with any, three Redis
    /// Sentinels watch the master and the API finds it through them.
    pub redis_replicas: usize,
    /// Transcode every stream into the ABR ladder.
    pub abr: bool,
    /// Run the LL-HLS component beside each origin (without it the origin
    /// serves its playlist files).
    pub llhls: bool,
    /// How far back a live stream can be played (`DVR_WINDOW`; see
    /// `rtmp_live_types::window`).
    pub dvr_window: std::time::Duration,
    /// How long finished recordings stay (`RECORDING_RETENTION`; zero: no
    /// recordings).
    pub recording_retention: std::time::Duration,
    /// Bytes each origin's recordings may take (`RECORDING_MAX_BYTES`).
    pub recording_max_bytes: u64,
    /// The repository: `nginx/` templates, `scripts/`.
    pub root: PathBuf,
    /// The built binaries and the edge module.
    pub bin_dir: PathBuf,
    /// Runtime files: configs, HLS, logs, caches, credentials.
    pub state_dir: PathBuf,
    pub nginx: PathBuf,
    /// nginx's `user` directive (`user [group]`): who the workers (and the
    /// ABR ladder they start) run as when nginx is started as root.
    pub nginx_user: String,
    pub rtmp_module: PathBuf,
    pub edge_module: PathBuf,
    pub player_dir: PathBuf,
    pub edge: EdgeSettings,
    pub credentials: Credentials,
}

/// The edge's template variables (`EDGE_*`), as `make up` documents them.
#[derive(Clone, Debug)]
pub struct EdgeSettings {
    pub workers: String,
    pub viewer_key: String,
    pub route_valid: String,
    pub route_negative: String,
    pub route_stale: String,
    pub route_grace: String,
    /// The origins the edge may contact; `None`: exactly this run's.
    pub origins: Option<String>,
    pub debug_headers: String,
    pub cors_origin: String,
    /// DNS server for origins named by host name; `None`: the first
    /// `nameserver` of /etc/resolv.conf (as the containers' renderer).
    pub resolver: Option<String>,
    /// The longest the edge keeps a DNS answer.
    pub resolver_valid: String,
    /// `on`: every stream needs a signed playback link; `off`: only the
    /// streams whose key configuration says `:signed`.
    pub playback_signed: String,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            workers: "2".into(),
            viewer_key: "$remote_addr".into(),
            route_valid: "5s".into(),
            route_negative: "1s".into(),
            route_stale: "15m".into(),
            route_grace: "8s".into(),
            origins: None,
            debug_headers: "0".into(),
            cors_origin: "*".into(),
            resolver: None,
            resolver_valid: "10s".into(),
            playback_signed: "off".into(),
        }
    }
}

/// The registry token and the stream keys the API and discoveries share,
/// Redis's password (the API's only), the token edges report viewer counts
/// with, the operator's token (issuing playback links) and the file holding
/// the secret playback links are signed with (the API's and the edge's).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub report_token: String,
    pub stream_keys: String,
    pub redis_password: String,
    pub edge_token: String,
    pub operator_token: String,
    pub playback_secret_file: PathBuf,
}

/// A config file rendered from one of `nginx/*.template` before its
/// process starts.
#[derive(Clone, Debug)]
pub struct Config {
    pub template: PathBuf,
    pub out: PathBuf,
    pub vars: Vec<(String, String)>,
}

/// One process of the platform.
#[derive(Clone, Debug)]
pub struct Process {
    /// Its prefix in the output (`[name]`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Rendered, in order, before the start.
    pub configs: Vec<Config>,
    /// Arguments of a configuration check of `program` run before the start
    /// (`nginx -t`); the start is refused when it fails.
    pub check: Option<Vec<String>>,
    /// Emptied (removed and created again) before the start.
    pub fresh_dirs: Vec<PathBuf>,
    /// Created before the start when missing.
    pub dirs: Vec<PathBuf>,
    /// Folders (among the above) its nginx workers write: given to
    /// [`Settings::nginx_user`] when the platform runs as root.
    pub worker_dirs: Vec<PathBuf>,
    /// Files written (mode 0600) before the start: (path, content).
    pub private_files: Vec<(PathBuf, String)>,
    /// Addresses it accepts connections on once it is ready (the platform
    /// is announced only when every one of them answers).
    pub listens: Vec<SocketAddr>,
}

/// The platform a [`Settings`] describes.
#[derive(Clone, Debug)]
pub struct Topology {
    pub settings: Settings,
}

/// Origin `k`'s folder (nginx prefix, HLS, discovery state) in `state_dir`.
pub fn origin_dir(state_dir: &Path, k: usize) -> PathBuf {
    state_dir.join(format!("origin{k}"))
}

impl Topology {
    pub fn new(settings: Settings) -> Topology {
        Topology { settings }
    }

    /// Where this run's parts reach the API and the origins' HTTP: the
    /// internal address, or loopback when that is "every interface".
    pub fn internal_ip(&self) -> IpAddr {
        match self.settings.internal_bind {
            IpAddr::V4(b) if b.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(b) if b.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            b => b,
        }
    }

    /// `ip:port` of the internal address (IPv6 in brackets).
    pub fn internal(&self, port: u16) -> String {
        SocketAddr::new(self.internal_ip(), port).to_string()
    }

    /// `ip:port` the API and the origins' HTTP servers listen on.
    pub fn internal_listen(&self, port: u16) -> String {
        SocketAddr::new(self.settings.internal_bind, port).to_string()
    }

    /// Every API instance's base URL, comma-separated (what discovery and
    /// the edge are given).
    pub fn api_url(&self) -> String {
        (1..=self.settings.apis.max(1))
            .map(|k| {
                format!(
                    "http://{}",
                    self.internal(self.settings.ports.api_instance(k))
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `ip:port` of origin `k`'s HTTP server: the host its discovery
    /// advertises and the edge proxies to.
    pub fn origin_host(&self, k: usize) -> String {
        self.internal(self.settings.ports.origin(k).http)
    }

    /// The origins origin `k` relays the streams it takes to: the next
    /// `replicas - 1` origins after it, in a ring, so that every origin
    /// carries as many relayed streams as it sends.
    pub fn replica_peers(&self, k: usize) -> Vec<usize> {
        let n = self.settings.origins;
        let copies = self.settings.replicas.clamp(1, n.max(1)) - 1;
        (1..=copies).map(|i| (k - 1 + i) % n + 1).collect()
    }

    /// The origins that may share a stream with origin `k` (relaying to it
    /// or from it): every other origin, whose LL-HLS components agree on
    /// the stream's labels (`LLHLS_PEERS`).
    pub fn label_peers(&self, k: usize) -> Vec<String> {
        if self.settings.replicas < 2 {
            return Vec::new();
        }
        (1..=self.settings.origins)
            .filter(|j| *j != k)
            .map(|j| format!("http://{}", self.origin_host(j)))
            .collect()
    }

    /// The origins the edge may contact.
    pub fn edge_origins(&self) -> String {
        let s = &self.settings;
        s.edge.origins.clone().unwrap_or_else(|| {
            (1..=s.origins)
                .map(|k| self.origin_host(k))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// The playlist viewers open: the ABR master or the single rendition.
    pub fn manifest(&self) -> &'static str {
        if self.settings.abr {
            "master.m3u8"
        } else {
            "index.m3u8"
        }
    }

    /// A template of `nginx/`.
    pub fn template(&self, name: &str) -> PathBuf {
        self.settings.root.join("nginx").join(name)
    }

    /// The variables every template of this run may use (a process's
    /// config adds its own after these; the last one given wins).
    pub fn vars(&self) -> Vec<(String, String)> {
        let s = &self.settings;
        let e = &s.edge;
        let d = |p: &Path| p.display().to_string();
        let mut v: Vec<(String, String)> = s
            .ports
            .env()
            .into_iter()
            .map(|(k, p)| (k.to_string(), p))
            .collect();
        v.extend(
            [
                ("STATE_DIR", d(&s.state_dir)),
                ("NGINX_USER", s.nginx_user.clone()),
                ("RTMP_MODULE", d(&s.rtmp_module)),
                ("EDGE_MODULE", d(&s.edge_module)),
                ("PLAYER_DIR", d(&s.player_dir)),
                ("ABR_LADDER_BIN", d(&s.bin_dir.join("rtmp-live-abr"))),
                ("API_URL", self.api_url()),
                (
                    "API_HOST",
                    crate::render::api_hosts(&self.api_url()).join(" "),
                ),
                (
                    "API_SERVERS",
                    crate::render::api_servers(&crate::render::api_hosts(&self.api_url())),
                ),
                ("EDGE_WORKERS", e.workers.clone()),
                ("EDGE_VIEWER_KEY", e.viewer_key.clone()),
                ("EDGE_ROUTE_VALID", e.route_valid.clone()),
                ("EDGE_ROUTE_NEGATIVE", e.route_negative.clone()),
                ("EDGE_ROUTE_STALE", e.route_stale.clone()),
                ("EDGE_ROUTE_GRACE", e.route_grace.clone()),
                ("EDGE_ORIGINS", self.edge_origins()),
                ("EDGE_DEBUG_HEADERS", e.debug_headers.clone()),
                ("EDGE_CORS_ORIGIN", e.cors_origin.clone()),
                (
                    "EDGE_RESOLVER",
                    e.resolver.clone().unwrap_or_else(system_resolver),
                ),
                ("EDGE_RESOLVER_VALID", e.resolver_valid.clone()),
                ("EDGE_PLAYBACK_SIGNED", e.playback_signed.clone()),
                (
                    "EDGE_PLAYBACK_SECRET_FILE",
                    d(&s.credentials.playback_secret_file),
                ),
                ("EDGE_API_TOKEN", s.credentials.edge_token.clone()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        v
    }
}

/// The first `nameserver` of /etc/resolv.conf (IPv6 in brackets, as
/// nginx's `resolver` wants it), or 127.0.0.1.
pub fn system_resolver() -> String {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    conf.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .next()
        .map_or_else(
            || "127.0.0.1".to_string(),
            |ns| {
                if ns.contains(':') {
                    format!("[{ns}]")
                } else {
                    ns.to_string()
                }
            },
        )
}
