//! One function per component: its command line, environment, configs and
//! folders; [`Topology::processes`] (below) lists them in start order.

use std::net::{Ipv4Addr, SocketAddr};

use crate::topology::{origin_dir, Config, Process, Topology};
use rtmp_live_types::window;

impl Topology {
    /// Every process, in start order (stopped in reverse).
    pub fn processes(&self) -> Vec<Process> {
        let mut out = vec![redis(self)];
        if self.settings.redis_replicas > 0 {
            for i in 1..=self.settings.redis_replicas {
                out.push(redis_replica(self, i));
            }
            for i in 0..3 {
                out.push(sentinel(self, i));
            }
        }
        for k in 1..=self.settings.apis.max(1) {
            out.push(api(self, k));
        }
        for k in 1..=self.settings.origins {
            out.push(origin(self, k));
            out.push(discovery(self, k));
            if self.settings.llhls {
                out.push(llhls(self, k));
            }
        }
        out.push(edge(self));
        out
    }
}

/// `127.0.0.1:port`: what loopback-only and public listeners are checked at.
fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn process(name: &str, program: impl Into<std::path::PathBuf>) -> Process {
    Process {
        name: name.into(),
        program: program.into(),
        args: Vec::new(),
        env: Vec::new(),
        configs: Vec::new(),
        check: None,
        fresh_dirs: Vec::new(),
        dirs: Vec::new(),
        worker_dirs: Vec::new(),
        private_files: Vec::new(),
        listens: Vec::new(),
    }
}

/// `nginx -t` of the config at `conf` with prefix `prefix`.
fn nginx_check(prefix: &std::path::Path, conf: &std::path::Path) -> Vec<String> {
    let mut a = vec!["-t".to_string(), "-q".into()];
    a.extend(nginx_args(prefix, conf));
    a
}

fn nginx_args(prefix: &std::path::Path, conf: &std::path::Path) -> Vec<String> {
    vec![
        "-p".into(),
        prefix.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        "stderr".into(),
    ]
}

/// Redis: private, loopback, no persistence, a password (`requirepass`,
/// from a config file of mode 0600: never on the command line).
pub fn redis(t: &Topology) -> Process {
    let s = &t.settings;
    let dir = s.state_dir.join("redis");
    let conf = dir.join("redis.conf");
    let mut p = process("redis", "redis-server");
    p.args = [
        &conf.display().to_string(),
        "--port",
        &s.ports.redis.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.display().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    .map(String::from)
    .to_vec();
    p.dirs = vec![dir];
    let mut conf_text = format!("requirepass {}\n", s.credentials.redis_password);
    if s.redis_replicas > 0 {
        // any node may become the master: each authenticates to it, and
        // a replica's first sync starts at once (Redis waits 5 s by
        // default for more replicas to share a diskless transfer; claims
        // wait for a replica)
        conf_text.push_str(&format!(
            "masterauth {}\nrepl-diskless-sync-delay 0\n",
            s.credentials.redis_password
        ));
    }
    p.private_files = vec![(conf, conf_text)];
    p.listens = vec![local(s.ports.redis)];
    p
}

/// Redis replica `i`: as [`redis`], replicating the first master. After a
/// failover the sentinels point it at the new one (they rewrite its
/// configuration at run time, not its file).
pub fn redis_replica(t: &Topology, i: usize) -> Process {
    let s = &t.settings;
    let mut p = redis(t);
    let port = s.ports.redis_replica(i);
    let dir = s.state_dir.join(format!("redis-replica-{i}"));
    let conf = dir.join("redis.conf");
    p.name = format!("redis-replica-{i}");
    p.args[0] = conf.display().to_string();
    p.args[2] = port.to_string();
    p.args[6] = dir.display().to_string();
    p.dirs = vec![dir];
    p.private_files = vec![(
        conf,
        format!(
            "requirepass {pw}\nmasterauth {pw}\nrepl-diskless-sync-delay 0\n\
             replicaof 127.0.0.1 {master}\n",
            pw = s.credentials.redis_password,
            master = s.ports.redis
        ),
    )];
    p.listens = vec![local(port)];
    p
}

/// Sentinel `i` of three (`redis-server --sentinel`, what Debian's
/// `redis-sentinel` runs): a quorum of two declares the master down after
/// 2 s without answers and promotes the replica with the most data.
/// Sentinels rewrite their file as they learn the topology, so it is
/// written fresh at each start.
pub fn sentinel(t: &Topology, i: usize) -> Process {
    let s = &t.settings;
    let port = s.ports.sentinel(i);
    let dir = s.state_dir.join(format!("sentinel-{i}"));
    let conf = dir.join("sentinel.conf");
    let mut p = process(&format!("sentinel-{i}"), "redis-server");
    p.args = vec![conf.display().to_string(), "--sentinel".into()];
    p.dirs = vec![dir.clone()];
    let pw = &s.credentials.redis_password;
    p.private_files = vec![(
        conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\ndaemonize no\nloglevel warning\n\
             requirepass {pw}\nsentinel sentinel-pass {pw}\n\
             sentinel monitor {m} 127.0.0.1 {master} 2\n\
             sentinel auth-pass {m} {pw}\n\
             sentinel down-after-milliseconds {m} 2000\n\
             sentinel failover-timeout {m} 10000\n\
             sentinel parallel-syncs {m} 1\n{known}",
            dir = dir.display(),
            m = SENTINEL_MASTER,
            master = s.ports.redis,
            // the replicas from the start, not from the master's INFO ten
            // seconds later: a master lost before that has no successor
            known = (1..=s.redis_replicas)
                .map(|r| format!(
                    "sentinel known-replica {SENTINEL_MASTER} 127.0.0.1 {}\n",
                    s.ports.redis_replica(r)
                ))
                .collect::<String>(),
        ),
    )];
    p.listens = vec![local(port)];
    p
}

/// The master's name in the sentinels' configuration (the API's default
/// `REDIS_SENTINEL_MASTER`).
pub const SENTINEL_MASTER: &str = "rtmp-live";

/// The API, on the internal address. Allowed publishes are renamed to
/// their public name (`{name}`); each origin relays them into its own
/// packaging application.
pub fn api(t: &Topology, k: usize) -> Process {
    let s = &t.settings;
    let name = if k == 1 {
        "api".to_string()
    } else {
        format!("api-{k}")
    };
    let port = s.ports.api_instance(k);
    let mut p = process(&name, s.bin_dir.join("rtmp-live-api"));
    p.env = pairs(&[
        ("API_LISTEN", t.internal_listen(port)),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", s.ports.redis)),
        ("REDIS_PASSWORD", s.credentials.redis_password.clone()),
        ("PUBLISH_REDIRECT", "{name}".into()),
        ("API_REPORT_TOKEN", s.credentials.report_token.clone()),
        ("STREAM_KEYS", s.credentials.stream_keys.clone()),
        ("API_EDGE_TOKEN", s.credentials.edge_token.clone()),
        ("API_OPERATOR_TOKEN", s.credentials.operator_token.clone()),
        (
            "API_PLAYBACK_SECRET_FILE",
            s.credentials.playback_secret_file.display().to_string(),
        ),
    ]);
    if s.redis_replicas > 0 {
        let sentinels: Vec<String> = (0..3)
            .map(|i| format!("127.0.0.1:{}", s.ports.sentinel(i)))
            .collect();
        p.env.extend(pairs(&[
            ("REDIS_SENTINELS", sentinels.join(",")),
            ("REDIS_SENTINEL_MASTER", SENTINEL_MASTER.into()),
            (
                "REDIS_SENTINEL_PASSWORD",
                s.credentials.redis_password.clone(),
            ),
            // an allowed publish is on a replica before it is answered
            ("REDIS_WAIT_REPLICAS", "1".into()),
        ]));
    }
    p.listens = vec![SocketAddr::new(t.internal_ip(), port)];
    p
}

/// Origin `k`: nginx-rtmp, packaging into `origin<k>/hls`; its `on_publish`
/// goes to its own discovery.
pub fn origin(t: &Topology, k: usize) -> Process {
    let s = &t.settings;
    let dir = origin_dir(&s.state_dir, k);
    let o = s.ports.origin(k);
    let d = |p: &std::path::Path| p.display().to_string();
    let mut vars = t.vars();
    vars.extend(pairs(&[
        ("ORIGIN_DIR", d(&dir)),
        ("HLS_PATH", d(&dir.join("hls"))),
        ("RECORDINGS_PATH", d(&dir.join("recordings"))),
        ("ORIGIN_PACKAGING", d(&dir.join("packaging.conf"))),
        ("ORIGIN_HLS_HTTP", d(&dir.join("hls-http.conf"))),
        ("ORIGIN_RENDITIONS", d(&dir.join("renditions.conf"))),
        ("RTMP_PORT", o.rtmp.to_string()),
        ("ORIGIN_HTTP_PORT", o.http.to_string()),
        ("ORIGIN_HTTP_LISTEN", t.internal_listen(o.http)),
        ("RTMP_STAT_PORT", o.stat.to_string()),
        ("RTMP_PACKAGING_PORT", o.packaging.to_string()),
        ("LLHLS_PORT", o.llhls.to_string()),
        (
            "ORIGIN_REPLICATION",
            t.replica_peers(k)
                .iter()
                .map(|j| {
                    format!(
                        "push rtmp://127.0.0.1:{}/hls;",
                        s.ports.origin(*j).packaging
                    )
                })
                .collect::<Vec<_>>()
                .join("\n            "),
        ),
        (
            "AUTHORIZE_URL",
            format!("http://127.0.0.1:{}/authorize", o.discovery),
        ),
    ]));
    let conf = dir.join("nginx.conf");
    let mut p = process(&format!("origin{k}"), &s.nginx);
    let packaging = Packaging {
        abr: s.abr,
        llhls: s.llhls,
        dvr_window: s.dvr_window,
    };
    p.configs = origin_configs(|n| t.template(n), &dir, packaging, &vars);
    p.check = Some(nginx_check(&dir, &conf));
    p.args = nginx_args(&dir, &conf);
    p.fresh_dirs = vec![dir.join("hls"), dir.join("rtmp.d")];
    // recordings outlive a restart (the LL-HLS component finishes what a
    // stop interrupted)
    p.dirs = vec![dir.join("tmp"), dir.join("recordings")];
    // nginx-rtmp's workers write the HLS folder (and the ABR ladder they
    // start writes the master playlist there).
    p.worker_dirs = vec![dir.join("hls")];
    p.listens = vec![
        local(o.rtmp),
        SocketAddr::new(t.internal_ip(), o.http),
        local(o.stat),
    ];
    p
}

/// How an origin packages its streams.
#[derive(Clone, Copy, Debug)]
pub struct Packaging {
    /// The ABR ladder.
    pub abr: bool,
    /// Playlists through the LL-HLS component.
    pub llhls: bool,
    pub dvr_window: std::time::Duration,
}

/// An origin's configs in `dir` (its `nginx.conf` last, which includes the
/// others): the packaging (one stream, or the ABR ladder and its
/// renditions), and playlists from nginx-rtmp's files or through the LL-HLS
/// component. `make up` and the origin container (`rtmp-live-render
/// origin`) both take them from here.
pub fn origin_configs(
    template: impl Fn(&str) -> std::path::PathBuf,
    dir: &std::path::Path,
    packaging: Packaging,
    vars: &[(String, String)],
) -> Vec<Config> {
    let Packaging {
        abr,
        llhls,
        dvr_window,
    } = packaging;
    // nginx-rtmp's playlist is what viewers get without the LL-HLS
    // component: then it holds the DVR window; with it, the component's
    // playlist does and nginx-rtmp's stays short (the component reads it
    // at every fragment).
    let span = if llhls {
        window::LIVE
    } else {
        window::playlist_span(dvr_window)
    };
    let mut vars = vars.to_vec();
    vars.push(("HLS_PLAYLIST_LENGTH".into(), window::nginx_length(span)));
    let config = |name: &str, out: &str| Config {
        template: template(name),
        out: dir.join(out),
        vars: vars.clone(),
    };
    let mut configs = vec![
        config(
            if abr {
                "origin-abr.conf.template"
            } else {
                "origin-hls.conf.template"
            },
            "packaging.conf",
        ),
        config(
            if llhls {
                "origin-llhls.conf.template"
            } else {
                "origin-files.conf.template"
            },
            "hls-http.conf",
        ),
    ];
    if abr {
        // the renditions' application, packaging like a single stream
        configs.push(config("origin-hls.conf.template", "renditions.conf"));
        configs.push(config("origin-abr-app.conf.template", "rtmp.d/abr.conf"));
    }
    configs.push(config("origin.conf.template", "nginx.conf"));
    configs
}

/// Origin `k`'s discovery: watches its HLS folder, answers its
/// `on_publish` on loopback, advertises its HTTP port.
pub fn discovery(t: &Topology, k: usize) -> Process {
    let s = &t.settings;
    let dir = origin_dir(&s.state_dir, k);
    let o = s.ports.origin(k);
    let mut p = process(
        &format!("discovery{k}"),
        s.bin_dir.join("rtmp-live-discovery"),
    );
    p.env = pairs(&[
        ("HLS_PATH", dir.join("hls").display().to_string()),
        ("DISCOVERY_API_URL", t.api_url()),
        ("API_REPORT_TOKEN", s.credentials.report_token.clone()),
        ("ADVERTISE_HOST", t.origin_host(k)),
        ("DISCOVERY_LISTEN", format!("127.0.0.1:{}", o.discovery)),
        (
            "DISCOVERY_RTMP_STAT_URL",
            format!("http://127.0.0.1:{}/", o.stat),
        ),
        (
            "DISCOVERY_STATE_DIR",
            dir.join("discovery").display().to_string(),
        ),
        (
            "RECORDINGS_PATH",
            dir.join("recordings").display().to_string(),
        ),
    ]);
    p.listens = vec![local(o.discovery)];
    p
}

/// Origin `k`'s LL-HLS playlist component (`rtmp-live-llhls`): tails the
/// fragments nginx-rtmp is writing; the origin proxies playlists to it and
/// serves the files itself when it is down.
pub fn llhls(t: &Topology, k: usize) -> Process {
    let s = &t.settings;
    let dir = origin_dir(&s.state_dir, k);
    let o = s.ports.origin(k);
    let mut p = process(&format!("llhls{k}"), s.bin_dir.join("rtmp-live-llhls"));
    p.env = pairs(&[
        ("HLS_PATH", dir.join("hls").display().to_string()),
        ("LLHLS_LISTEN", format!("127.0.0.1:{}", o.llhls)),
        ("DVR_WINDOW", s.dvr_window.as_secs().to_string()),
        (
            "RECORDINGS_PATH",
            dir.join("recordings").display().to_string(),
        ),
        (
            "RECORDING_RETENTION",
            s.recording_retention.as_secs().to_string(),
        ),
        ("RECORDING_MAX_BYTES", s.recording_max_bytes.to_string()),
        ("LLHLS_PEERS", t.label_peers(k).join(",")),
    ]);
    p.listens = vec![local(o.llhls)];
    p
}

/// The edge: nginx with the edge-router module, contacting exactly the
/// origins of [`Topology::edge_origins`].
pub fn edge(t: &Topology) -> Process {
    let s = &t.settings;
    let conf = s.state_dir.join("edge.conf");
    let mut p = process("edge", &s.nginx);
    p.configs = vec![Config {
        template: t.template("edge.conf.template"),
        out: conf.clone(),
        vars: t.vars(),
    }];
    p.check = Some(nginx_check(&s.state_dir, &conf));
    p.args = nginx_args(&s.state_dir, &conf);
    p.fresh_dirs = vec![
        s.state_dir.join("edge-cache"),
        s.state_dir.join("edge-playlist-cache"),
        s.state_dir.join("tmp"),
    ];
    // Caches and temporary files of the workers (nginx hands its own
    // temp and cache paths to them too; these are their parents).
    p.worker_dirs = p.fresh_dirs.clone();
    p.listens = vec![local(s.ports.edge)];
    p
}
