//! Starting the topology's processes with prefixed output, watching them,
//! and stopping all of them (SIGTERM, then SIGKILL) in reverse order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtmp_live_platform::signals::unblocked;
use rtmp_live_platform::{render, Process};

use crate::say::say;
use crate::workers::Ids;

/// A started component.
struct Running {
    name: String,
    child: Child,
    exited: bool,
    listens: Vec<SocketAddr>,
}

/// The processes started so far.
pub struct Supervisor {
    running: Vec<Running>,
    /// Anything whose command line mentions this folder is ours (ffmpeg
    /// transcoders nginx-rtmp started, should any outlive their nginx).
    state_dir: PathBuf,
    common_env: Vec<(String, String)>,
    /// The nginx workers' user, when it is not this one (root).
    workers: Option<Ids>,
}

impl Supervisor {
    pub fn new(
        state_dir: &Path,
        common_env: Vec<(String, String)>,
        workers: Option<Ids>,
    ) -> Supervisor {
        Supervisor {
            running: Vec::new(),
            state_dir: state_dir.to_path_buf(),
            common_env,
            workers,
        }
    }

    /// Prepares `p` (folders, configs, config check) and starts it.
    pub fn start(&mut self, p: &Process) -> Result<(), String> {
        for d in &p.fresh_dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        for d in p.fresh_dirs.iter().chain(&p.dirs) {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        if let Some(ids) = self.workers {
            for d in &p.worker_dirs {
                nix::unistd::chown(d, Some(ids.uid), Some(ids.gid))
                    .map_err(|e| format!("{}: chown: {e}", d.display()))?;
            }
        }
        for (path, content) in &p.private_files {
            write_private(path, content).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        for c in &p.configs {
            let text = std::fs::read_to_string(&c.template)
                .map_err(|e| format!("{}: {e}", c.template.display()))?;
            let out = render(&text, &c.vars)
                .map_err(|e| format!("{} ({}): {e}", p.name, c.template.display()))?;
            std::fs::write(&c.out, out).map_err(|e| format!("{}: {e}", c.out.display()))?;
        }
        if let Some(check) = &p.check {
            let st = Command::new(&p.program)
                .args(check)
                .envs(self.common_env.iter().cloned())
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("{}: {e}", p.program.display()))?;
            if !st.success() {
                return Err(format!("{} config invalid", p.name));
            }
        }
        let mut cmd = Command::new(&p.program);
        unblocked(&mut cmd);
        let mut child = cmd
            .args(&p.args)
            .envs(self.common_env.iter().cloned())
            .envs(p.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {} ({}): {e}", p.name, p.program.display()))?;
        if let Some(out) = child.stdout.take() {
            prefix_lines(&p.name, out);
        }
        if let Some(err) = child.stderr.take() {
            prefix_lines(&p.name, err);
        }
        self.running.push(Running {
            name: p.name.clone(),
            child,
            exited: false,
            listens: p.listens.clone(),
        });
        Ok(())
    }

    /// Waits until every started component accepts connections on each of
    /// its ports, so that "is up" means what it says (a port answering
    /// earlier may be `nginx -t`'s, gone a moment later). Fails when one
    /// exits first, when a signal arrives, or at `limit`, naming what is
    /// missing.
    pub fn wait_ready(
        &mut self,
        signals: &mpsc::Receiver<Signal>,
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut pending: Vec<(String, SocketAddr)> = self
            .running
            .iter()
            .flat_map(|r| r.listens.iter().map(|&p| (r.name.clone(), p)))
            .collect();
        loop {
            pending.retain(|&(_, addr)| !accepts(addr));
            if pending.is_empty() {
                return Ok(());
            }
            for r in &mut self.running {
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.exited = true;
                    return Err(format!("{} exited ({status}) while starting", r.name));
                }
            }
            if Instant::now() >= deadline {
                let list: Vec<String> = pending
                    .iter()
                    .map(|(name, addr)| format!("{name} on {addr}"))
                    .collect();
                return Err(format!(
                    "not accepting connections after {limit:?}: {}",
                    list.join(", ")
                ));
            }
            if let Ok(sig) = signals.recv_timeout(Duration::from_millis(50)) {
                return Err(format!("{sig} while starting"));
            }
        }
    }

    /// Runs until a signal arrives or every component has exited, reporting
    /// each one that exits.
    pub fn watch(&mut self, signals: &mpsc::Receiver<Signal>) {
        loop {
            for r in self.running.iter_mut().filter(|r| !r.exited) {
                if let Ok(Some(status)) = r.child.try_wait() {
                    r.exited = true;
                    let code = status
                        .code()
                        .map_or_else(|| format!("{status}"), |c| c.to_string());
                    say(&format!("{} exited (status {code})", r.name));
                }
            }
            if self.running.iter().all(|r| r.exited) {
                return;
            }
            if signals.recv_timeout(Duration::from_millis(500)).is_ok() {
                return;
            }
        }
    }

    /// SIGTERM to every component (last started first), up to 5 s for them
    /// to exit, SIGKILL for the rest; then the same for leftovers that
    /// mention the state folder.
    pub fn stop(&mut self) {
        say("stopping...");
        for r in self.running.iter_mut().rev() {
            if matches!(r.child.try_wait(), Ok(None)) {
                let _ = kill(Pid::from_raw(r.child.id() as i32), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && self
                .running
                .iter_mut()
                .any(|r| matches!(r.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for r in &mut self.running {
            if matches!(r.child.try_wait(), Ok(None)) {
                let _ = r.child.kill();
            }
            let _ = r.child.wait();
        }
        let needle = format!("{}/", self.state_dir.display());
        for sig in [Signal::SIGTERM, Signal::SIGKILL] {
            for pid in processes_mentioning(&needle) {
                let _ = kill(pid, sig);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        say("stopped");
    }
}

/// Whether something accepts TCP connections at `addr`.
fn accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Writes `content` to `path`, readable by this user only (0600), replacing
/// what was there.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())
}

/// Copies `stream` line by line to stdout as `[name] line`.
fn prefix_lines(name: &str, stream: impl Read + Send + 'static) {
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "[{name}] {}", text.trim_end_matches(['\n', '\r']));
            let _ = out.flush();
            line.clear();
        }
    });
}

/// Other processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<Pid> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .map(|pid| Pid::from_raw(pid as i32))
        .collect()
}
