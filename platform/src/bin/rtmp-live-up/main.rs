//! `rtmp-live-up` (`make up`): the platform's [`Topology`] in the
//! foreground. Every output line is prefixed with its component; Ctrl-C /
//! SIGTERM stops everything it started.

mod args;
mod banner;
mod credentials;
mod say;
mod supervise;
mod workers;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use rtmp_live_platform::topology::Credentials;
use rtmp_live_platform::{Settings, Topology};

use args::{non_empty, Args};
use rtmp_live_platform::signals::signals;
use say::say;
use supervise::Supervisor;

fn main() -> ExitCode {
    let args = Args::parse();
    // Every file of the run is readable by the nginx workers (which may be
    // another user, see `workers`): secrets are created 0600 explicitly.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    // Before any thread or child: signals are taken by one thread.
    let signals = signals();
    let (topology, obs_key, workers) = match prepare(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("[up] error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = &topology.settings;
    let common_env = vec![("STATE_DIR".to_string(), s.state_dir.display().to_string())];
    let mut sup = Supervisor::new(&s.state_dir, common_env, workers);
    for p in topology.processes() {
        if let Err(e) = sup.start(&p) {
            eprintln!("[up] error: {e}");
            sup.stop();
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = sup.wait_ready(&signals, Duration::from_secs(60)) {
        eprintln!("[up] error: {e}");
        sup.stop();
        return ExitCode::FAILURE;
    }
    banner::print(&topology, args.public_host.as_deref(), obs_key.as_deref());
    sup.watch(&signals);
    sup.stop();
    ExitCode::SUCCESS
}

/// Checks what a run needs and resolves the settings; also returns the
/// generated OBS key, if one is used, and the nginx workers' user when they
/// run as another user than this one (root).
fn prepare(a: &Args) -> Result<(Topology, Option<String>, Option<workers::Ids>), String> {
    let root = a.root();
    let bin_dir = a.bin_dir();
    let st = Command::new(root.join("scripts/deps.sh"))
        .arg("run")
        .status()
        .map_err(|e| format!("scripts/deps.sh: {e}"))?;
    if !st.success() {
        return Err("missing packages (see above)".into());
    }
    let edge_module = a
        .edge_module
        .clone()
        .unwrap_or_else(|| bin_dir.join("libngx_edge_router.so"));
    for f in [
        bin_dir.join("rtmp-live-api"),
        bin_dir.join("rtmp-live-discovery"),
        bin_dir.join("rtmp-live-llhls"),
        edge_module.clone(),
    ] {
        if !f.exists() {
            return Err(format!(
                "{} not built: run 'make build' (or 'make up')",
                f.display()
            ));
        }
    }
    let player_dir = a.player_dir.clone().unwrap_or_else(|| root.join("player"));
    if !player_dir.join("hls.min.js").exists() {
        say(&format!(
            "warning: {}/hls.min.js missing: run 'make player' for the player page",
            player_dir.display()
        ));
    }
    let origins = usize::from(a.origins);
    let mut ports = a.ports.all(origins);
    ports.extend((2..=usize::from(a.apis)).map(|k| ("API_PORT", a.ports.api_instance(k))));
    if a.redis_replicas > 0 {
        ports.extend(
            (1..=usize::from(a.redis_replicas)).map(|i| ("REDIS_PORT", a.ports.redis_replica(i))),
        );
        ports.extend((0..3).map(|i| ("REDIS_PORT", a.ports.sentinel(i))));
    }
    for (var, port) in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            return Err(format!(
                "port {port} is already in use (set {var} to move it)"
            ));
        }
    }
    let state_dir = a.state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let state_dir = state_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let secret = |name: &str| {
        credentials::kept_secret(&state_dir.join(name)).map_err(|e| format!("{name}: {e}"))
    };
    let redis_password = match non_empty(&a.redis_password) {
        Some(p) => p,
        None => secret("redis-password")?,
    };
    // One word of Redis's config file (`requirepass <password>`).
    if redis_password
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'')
    {
        return Err("REDIS_PASSWORD: no spaces, quotes or control characters".into());
    }
    let report_token = match non_empty(&a.api_report_token) {
        Some(t) => t,
        None => secret("api-report-token")?,
    };
    let edge_token = match non_empty(&a.api_edge_token) {
        Some(t) => t,
        None => secret("api-edge-token")?,
    };
    let operator_token = match non_empty(&a.api_operator_token) {
        Some(t) => t,
        None => secret("api-operator-token")?,
    };
    let playback_secret_file = match a
        .playback_secret_file
        .clone()
        .filter(|f| !f.as_os_str().is_empty())
    {
        Some(f) => f,
        None => {
            secret("playback-secret")?;
            state_dir.join("playback-secret")
        }
    };
    let (stream_keys, obs_key) = match non_empty(&a.stream_keys) {
        Some(k) => (k, None),
        None => {
            let key = secret("stream-key")?;
            (format!("{key}=golive"), Some(key))
        }
    };
    let nginx_user = match non_empty(&a.nginx_user) {
        Some(u) => u,
        None if nix::unistd::Uid::effective().is_root() => workers::DEFAULT_USER.to_string(),
        None => current_user(),
    };
    let (nginx_user, worker_ids) = workers::resolve(&nginx_user)?;
    let ladder = bin_dir.join("rtmp-live-abr");
    if let Some(ids) = worker_ids {
        workers::check_access(
            ids,
            &nginx_user,
            &state_dir,
            &player_dir,
            a.abr.then_some(&ladder),
        )?;
    }
    let settings = Settings {
        ports: a.ports.clone(),
        internal_bind: a.internal_bind,
        origins,
        replicas: usize::from(a.replicas),
        redis_replicas: usize::from(a.redis_replicas),
        apis: usize::from(a.apis),
        abr: a.abr,
        llhls: a.llhls_on,
        dvr_window: a.dvr_window,
        recording_retention: a.recording_retention,
        recording_max_bytes: a.recording_max_bytes,
        nginx: a.nginx.clone(),
        nginx_user,
        rtmp_module: a.rtmp_module.clone(),
        edge_module,
        player_dir,
        edge: a.edge(),
        credentials: Credentials {
            report_token,
            stream_keys,
            redis_password,
            edge_token,
            operator_token,
            playback_secret_file,
        },
        root,
        bin_dir,
        state_dir,
    };
    Ok((Topology::new(settings), obs_key, worker_ids))
}

/// The user this runs as (`id -un`).
fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "nobody".into())
}
