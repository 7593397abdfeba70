//! `rtmp-live-render edge`: the edge container's nginx, its configuration
//! kept exact. The origins of `EDGE_ORIGINS` are expanded to the addresses
//! their names resolve to ([`edge_origins::expand`]); the config is
//! rendered and nginx started. Every `EDGE_ORIGINS_REFRESH_SECS` (5) the
//! names, and the API's (nginx resolves `API_URL`'s host only when it loads
//! its config), are resolved again; when an address changed (`--scale`, a
//! container restarted elsewhere) the config is rendered again, checked
//! (`nginx -t`) and nginx reloads gracefully. Nothing an API answer says
//! widens the list. SIGTERM/SIGINT stop nginx; when nginx ends, this ends
//! with its status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtmp_live_platform::edge_origins::{api_host, expand, parse_getent};
use rtmp_live_platform::signals::{signals, unblocked};
use rtmp_live_platform::Config;

/// How long the first resolution may wait for the origins' names (they
/// start beside the edge) before the edge starts with the names alone.
const FIRST_WAIT: Duration = Duration::from_secs(30);

pub fn run(template: PathBuf, conf: PathBuf, env: Vec<(String, String)>) -> ExitCode {
    let get = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let Some(origins) = get("EDGE_ORIGINS").filter(|o| !o.trim().is_empty()) else {
        eprintln!("edge: set EDGE_ORIGINS (the origins: name:port or ip:port, space-separated)");
        return ExitCode::FAILURE;
    };
    let prefix = PathBuf::from(get("STATE_DIR").unwrap_or_else(|| ".".into()));
    let refresh = get("EDGE_ORIGINS_REFRESH_SECS")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), |s| Duration::from_secs(s.max(1)));
    // (the first instance of API_URL: compose names one service)
    let api = get("API_URL")
        .map(|u| api_host(u.split(',').next().unwrap_or_default().trim()).to_string())
        .unwrap_or_default();
    // Names are resolved as the workers' user: root runs only this and
    // nginx's master, never a DNS answer's parser.
    let user = get("NGINX_USER").and_then(|u| u.split_whitespace().next().map(String::from));
    let resolve = |host: &str| lookup(host, user.as_deref());
    let api_now = || {
        resolve(&api)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Signals are taken by one thread from here on; children get them back.
    let signals = signals();

    let started = Instant::now();
    let mut current = loop {
        if let Some(list) = expand(&origins, resolve) {
            break list;
        }
        if started.elapsed() >= FIRST_WAIT {
            break origins.clone();
        }
        eprintln!("edge: waiting for the origins ({origins}) to resolve");
        if signals.recv_timeout(Duration::from_secs(2)).is_ok() {
            return ExitCode::SUCCESS;
        }
    };
    let mut current_api = api_now();
    if let Err(e) = render(&template, &conf, &env, &current) {
        eprintln!("edge: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("edge: origins {current}");
    let mut nginx = Command::new("nginx");
    nginx.args(nginx_args(&prefix, &conf));
    unblocked(&mut nginx);
    let mut nginx = match nginx.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edge: nginx: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut last = Instant::now();
    loop {
        match signals.recv_timeout(Duration::from_millis(500)) {
            Ok(_) => return stop(&mut nginx),
            Err(RecvTimeoutError::Disconnected) => return stop(&mut nginx),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = nginx.try_wait() {
            eprintln!("edge: nginx exited ({status})");
            return ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8);
        }
        if last.elapsed() < refresh {
            continue;
        }
        last = Instant::now();
        let Some(new) = expand(&origins, resolve) else {
            continue;
        };
        // The API stopped (its name resolves to nothing): nothing to reload for.
        let new_api = api_now();
        if new_api.is_empty() || (new == current && new_api == current_api) {
            continue;
        }
        let next = conf.with_extension("conf.new");
        let checked = render(&template, &next, &env, &new)
            .and_then(|()| nginx_run(&prefix, &["-t", "-q", "-c"], &next));
        match checked.and_then(|()| {
            std::fs::rename(&next, &conf).map_err(|e| format!("{}: {e}", conf.display()))
        }) {
            Ok(()) => {
                if let Err(e) = nginx_run(&prefix, &["-s", "reload", "-c"], &conf) {
                    eprintln!("edge: {e}");
                    continue;
                }
                eprintln!("edge: origins {new}, API at {new_api} (reloaded)");
                current = new;
                current_api = new_api;
            }
            Err(e) => eprintln!("edge: not reloaded: {e}"),
        }
    }
}

/// The IPv4 addresses of `host` now (`getent ahostsv4`, as `user` when
/// this runs as root).
fn lookup(host: &str, user: Option<&str>) -> Vec<std::net::Ipv4Addr> {
    let mut cmd = match user.filter(|_| nix::unistd::Uid::effective().is_root()) {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={u}"),
                format!("--regid={u}"),
                "--init-groups".into(),
            ])
            .arg("getent");
            c
        }
        None => Command::new("getent"),
    };
    cmd.args(["ahostsv4", host])
        .stderr(std::process::Stdio::null());
    cmd.output()
        .map(|o| parse_getent(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

fn nginx_args(prefix: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        prefix.display().to_string(),
        "-e".into(),
        "stderr".into(),
        "-c".into(),
        conf.display().to_string(),
    ]
}

/// `nginx -p <prefix> -e stderr <args> <conf>`, to completion.
fn nginx_run(prefix: &Path, args: &[&str], conf: &Path) -> Result<(), String> {
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(prefix)
        .args(["-e", "stderr"])
        .args(args)
        .arg(conf);
    unblocked(&mut cmd);
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("nginx {}: {s}", args.join(" "))),
        Err(e) => Err(format!("nginx: {e}")),
    }
}

/// The edge's config for `origins`, from `template` into `out`.
fn render(
    template: &Path,
    out: &Path,
    env: &[(String, String)],
    origins: &str,
) -> Result<(), String> {
    let mut vars = env.to_vec();
    vars.push(("EDGE_ORIGINS".into(), origins.into()));
    crate::write(&Config {
        template: template.to_path_buf(),
        out: out.to_path_buf(),
        vars,
    })
}

/// SIGTERM to nginx (a graceful stop of its workers), then its end.
fn stop(nginx: &mut Child) -> ExitCode {
    if let Ok(pid) = i32::try_from(nginx.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let _ = nginx.wait();
    ExitCode::SUCCESS
}
