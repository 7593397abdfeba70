//! A private nginx (Debian's binary) with its own prefix, logs and temp
//! folders, optionally loading the edge module.
//!
//! `EDGE_NGINX` and `EDGE_MODULE` select another nginx binary and a module
//! built for it (`make test-nginx-current` runs the edge module's tests
//! against a current nginx this way).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{artifact, wait_port, Proc};

/// The nginx binary: `EDGE_NGINX` when set, else Debian's.
pub fn nginx_bin() -> PathBuf {
    std::env::var_os("EDGE_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/sbin/nginx".into())
}

/// The edge module: `EDGE_MODULE` when set (built for `EDGE_NGINX`), else
/// the one `make module` builds.
pub fn edge_module() -> PathBuf {
    match std::env::var_os("EDGE_MODULE") {
        Some(p) => PathBuf::from(p),
        None => artifact("libngx_edge_router.so"),
    }
}

/// A running nginx; stopped (and its folder removed) on drop.
pub struct Nginx {
    proc: Option<Proc>,
    dir: tempfile::TempDir,
}

/// The main-context header every test config shares: foreground master,
/// `workers` workers, everything inside `dir`.
pub fn main_block(dir: &Path, workers: usize, load_edge_module: bool) -> String {
    let d = dir.display();
    let module = if load_edge_module {
        format!("load_module {};\n", edge_module().display())
    } else {
        String::new()
    };
    format!(
        "{module}daemon off;\nmaster_process on;\nworker_processes {workers};\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 4096; }}\n"
    )
}

/// Common `http {}` settings: logs and temp paths in `dir`.
pub fn http_common(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "access_log {d}/access.log;\n\
         client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n"
    )
}

impl Nginx {
    /// Writes `conf` (built by `make_conf` from the prefix folder) and starts
    /// nginx, waiting until every port in `ports` accepts connections.
    pub fn start(name: &str, ports: &[u16], make_conf: impl FnOnce(&Path) -> String) -> Nginx {
        let dir = tempfile::tempdir().expect("nginx dir");
        let conf = make_conf(dir.path());
        fs::write(dir.path().join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new(nginx_bin());
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"));
        cmd.arg("-e").arg(dir.path().join("error.log"));
        let proc = Proc::spawn(name, cmd);
        let mut n = Nginx {
            proc: Some(proc),
            dir,
        };
        for &p in ports {
            if !wait_port(p, Duration::from_secs(10)) {
                panic!("{name} did not listen on {p}:\n{}", n.error_log());
            }
        }
        if !n.proc.as_mut().is_some_and(Proc::is_running) {
            panic!("{name} exited:\n{}", n.error_log());
        }
        n
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// PID of the master process.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Proc::pid)
    }

    /// PIDs of the worker processes (children of the master).
    pub fn workers(&self) -> Vec<u32> {
        let Some(pid) = self.proc.as_ref().and_then(Proc::pid) else {
            return Vec::new();
        };
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Waits until the master has forked exactly `n` workers and returns
    /// their PIDs (the master listens before it forks them, so a test that
    /// compares worker sets must take its baseline here).
    pub fn wait_workers(&self, n: usize) -> Vec<u32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let w = self.workers();
            if w.len() == n {
                return w;
            }
            if std::time::Instant::now() > deadline {
                panic!("expected {n} workers, found {w:?}:\n{}", self.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nginx -s reload` with the configuration rewritten by `make_conf`.
    pub fn reload(&self, make_conf: impl FnOnce(&Path) -> String) {
        fs::write(
            self.dir.path().join("nginx.conf"),
            make_conf(self.dir.path()),
        )
        .expect("write conf");
        let out = Command::new(nginx_bin())
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .args(["-s", "reload"])
            .output()
            .expect("nginx -s reload");
        assert!(
            out.status.success(),
            "reload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops nginx (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- nginx error log ({}) ---\n{}",
                self.dir.path().display(),
                self.error_log()
            );
        }
        self.stop();
    }
}

/// Runs `nginx -t` on `conf` (built from a scratch prefix folder) and
/// returns whether it passed and nginx's output.
pub fn nginx_test_config(make_conf: impl FnOnce(&Path) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    fs::write(dir.path().join("nginx.conf"), make_conf(dir.path())).expect("write conf");
    let out = Command::new(nginx_bin())
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .output()
        .expect("nginx -t");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// Renders one of the platform's `nginx/` templates the way the containers
/// do (`rtmp-live-render file`, variables from `env`) into `out`; `make up`
/// renders the same bytes (platform/tests/configs.rs).
pub fn render_template(template: &str, out: &Path, env: &[(&str, String)]) {
    let st = std::process::Command::new(crate::artifact("rtmp-live-render"))
        .arg("file")
        .arg(crate::workspace_root().join("nginx").join(template))
        .arg(out)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("rtmp-live-render");
    assert!(st.success(), "render {template}");
}
