//! Test support shared by every crate's integration tests: start real
//! processes on free loopback ports, wait until they listen, and always stop
//! them (SIGTERM, then SIGKILL) when the handle drops, even on panic; wait
//! for conditions to a deadline ([`wait`]), publish with ffmpeg
//! ([`publish`]), read metrics ([`metrics`]) over one HTTP client
//! ([`http`]).

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod http;
mod llhls;
pub mod metrics;
mod nginx;
pub mod publish;
pub mod sentinel;
pub mod wait;
pub use llhls::Llhls;
pub mod nginx_conf;
pub mod player;
pub use nginx::{
    edge_module, http_common, main_block, nginx_bin, nginx_test_config, render_template, Nginx,
};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A port that was free a moment ago on 127.0.0.1.
///
/// Ports come from 20000-32767, below Linux's ephemeral range (32768+), so
/// that outgoing connections made later by the processes under test cannot
/// take a port a server is about to listen on. No port is handed out twice
/// by one test process.
pub fn free_port() -> u16 {
    free_port_with(&[0])
}

/// A port `p` such that `p + o` is free for every offset `o` (for services
/// that derive further ports from a base, like the platform's origins).
pub fn free_port_with(offsets: &[u16]) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static SEED: AtomicU64 = AtomicU64::new(0);
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let _ = SEED.compare_exchange(
        0,
        u64::from(std::process::id()) << 32
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
            | 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let max_off = offsets.iter().copied().max().unwrap_or(0);
    for _ in 0..10_000 {
        // xorshift64: cheap, good enough to spread picks.
        let mut x = SEED.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        SEED.store(x, Ordering::SeqCst);
        let base = 20_000 + (x % u64::from(12_767 - max_off)) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let ports: Vec<u16> = offsets.iter().map(|o| base + o).collect();
        if ports.iter().any(|p| given.contains(p)) {
            continue;
        }
        let free = ports.iter().all(|&p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("0.0.0.0", p)).is_ok()
        });
        if free {
            given.extend(&ports);
            return base;
        }
    }
    panic!("no free port block found");
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/x`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path of a workspace binary or artifact built into the same profile.
/// Panics with a hint when it is missing (`make build` builds all of them).
pub fn artifact(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build the workspace first (`make build`)",
        p.display()
    );
    p
}

/// The workspace root (parent of `target/`).
pub fn workspace_root() -> PathBuf {
    let t = target_dir();
    t.parent()
        .and_then(Path::parent)
        .expect("workspace root")
        .to_path_buf()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A child process that is stopped when dropped. Its stdout and stderr go to
/// a log file, readable with [`Proc::log`] (printed when a test fails).
pub struct Proc {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proc {
    /// Spawns `cmd` with output captured to a temporary log file.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_path = dir.path().join(format!("{name}.log"));
        let log = fs::File::create(&log_path).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log_path,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Sends a signal without waiting.
    pub fn signal(&self, sig: Signal) {
        if let Some(c) = &self.child {
            let _ = kill(Pid::from_raw(c.id() as i32), sig);
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code
    /// (`None` when it was killed by a signal or is still running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status.code());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, up to 5 s grace, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(c.id() as i32);
        if matches!(c.try_wait(), Ok(None)) {
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
        }
        let _ = c.wait();
    }

    /// SIGKILL at once (a crash, for fault tests).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("----- {} log -----\n{}", self.name, self.log());
        }
    }
}

/// A private `redis-server` on a free port (never the system one), no
/// persistence, requiring a password (as the platform's does). Can be
/// stopped and started again on the same port.
pub struct Redis {
    pub port: u16,
    /// Its `requirepass`; [`Redis::url`] carries it.
    pub password: String,
    proc: Option<Proc>,
    conf: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let port = free_port();
        let mut r = Redis {
            port,
            password: format!("testkit-redis-{port}-{:x}", std::process::id()),
            proc: None,
            conf: tempfile::tempdir().expect("tempdir"),
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// `redis-cli` for this server (authenticated through the environment,
    /// not the command line).
    pub fn cli(&self) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &self.port.to_string()])
            .env("REDISCLI_AUTH", &self.password);
        c
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        // The password in a config file, not on the command line.
        let conf = self.conf.path().join("redis.conf");
        fs::write(&conf, format!("requirepass {}\n", self.password)).expect("redis.conf");
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        let p = Proc::spawn("redis-server", cmd);
        assert!(
            wait_port(self.port, Duration::from_secs(10)),
            "redis-server did not start:\n{}",
            p.log()
        );
        self.proc = Some(p);
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

/// The real API binary (`rtmp-live-api`) on a free port.
pub struct Api {
    pub port: u16,
    pub proc: Proc,
    env: Vec<(String, String)>,
}

impl Api {
    /// Starts the API against `redis_url` with extra environment variables
    /// (e.g. `STREAM_TTL_SECS`, `API_REPORT_TOKEN`, `STREAM_KEYS`).
    ///
    /// The API refuses to start without a registry token and stream keys
    /// unless told it runs insecurely; tests get `API_INSECURE_NO_AUTH=1` by
    /// default (a configured token or key is still enforced). Pass
    /// `("API_INSECURE_NO_AUTH", "0")` to test the secure default.
    pub fn start(redis_url: &str, env: &[(&str, &str)]) -> Api {
        let port = free_port();
        let mut all: Vec<(String, String)> = vec![
            ("API_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("REDIS_URL".into(), redis_url.into()),
            ("API_INSECURE_NO_AUTH".into(), "1".into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let proc = Self::spawn(&all);
        assert!(
            wait_port(port, Duration::from_secs(10)),
            "API did not start:\n{}",
            proc.log()
        );
        Api {
            port,
            proc,
            env: all,
        }
    }

    fn spawn(env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(artifact("rtmp-live-api"));
        cmd.env_clear().env("RUST_LOG", "info");
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Proc::spawn("rtmp-live-api", cmd)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the API (SIGTERM); [`Api::restart`] brings it back on the same port.
    pub fn stop(&mut self) {
        self.proc.stop();
    }

    pub fn restart(&mut self) {
        self.proc.stop();
        self.proc = Self::spawn(&self.env);
        assert!(
            wait_port(self.port, Duration::from_secs(10)),
            "API did not restart:\n{}",
            self.proc.log()
        );
    }
}
