//! `rtmp-live-up` itself: it refuses a port in use, generates the
//! credentials once (mode 0600) and reuses them, and SIGTERM stops every
//! process it started. (The end-to-end tests run it with streams.)

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use rtmp_live_platform::Ports;
use rtmp_live_testkit::{free_port_with, Proc};

fn up(state: &Path, ports: &Ports) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtmp-live-up"));
    cmd.envs(ports.env())
        .env("STATE_DIR", state)
        .env("PUBLIC_HOST", "127.0.0.1")
        .env_remove("API_REPORT_TOKEN")
        .env_remove("STREAM_KEYS")
        .env_remove("REDIS_PASSWORD")
        .env_remove("INTERNAL_BIND")
        .env_remove("NGINX_USER")
        .env_remove("ORIGINS")
        .env_remove("ABR")
        .env_remove("LLHLS");
    cmd
}

/// The tests here start whole platforms: one at a time, so that one test's
/// processes never hold a port the other expects free.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_port_in_use_is_named_and_nothing_starts() {
    let _one = one_at_a_time();
    let state = tempfile::tempdir().unwrap();
    // Ports that were free when picked; the one this test then holds may be
    // taken by another process in between: pick again.
    let (ports, _taken) = (0..20)
        .find_map(|_| {
            let ports = Ports::pick(1, free_port_with);
            let held = TcpListener::bind(("127.0.0.1", ports.origin(1).http)).ok()?;
            Some((ports, held))
        })
        .expect("a free port to hold");
    let out = up(state.path(), &ports).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "port {} is already in use (set ORIGIN_HTTP_PORT",
            ports.origin(1).http
        )),
        "{err}"
    );
    for (_, p) in ports.all(1) {
        if p != ports.origin(1).http {
            assert!(TcpListener::bind(("127.0.0.1", p)).is_ok(), "{p} taken");
        }
    }
}

/// Starts, waits for the banner, checks that every port then answers,
/// returns the OBS key it printed,
/// then stops it with SIGTERM and checks it exits cleanly.
fn run_once(state: &Path) -> String {
    let ports = Ports::pick(1, free_port_with);
    let mut p = Proc::spawn("rtmp-live-up", up(state, &ports));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let key = loop {
        let log = p.log();
        if let Some(k) = log
            .lines()
            .find_map(|l| l.strip_prefix("[up]   OBS stream key: "))
        {
            break k.split_whitespace().next().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Announced only once every component accepts connections.
    for (var, port) in ports.all(1) {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "{var} port {port} not accepting after the banner:\n{}",
            p.log()
        );
    }
    p.signal(Signal::SIGTERM);
    assert_eq!(
        p.wait_exit(Duration::from_secs(20)),
        Some(Some(0)),
        "{}",
        p.log()
    );
    for (_, port) in ports.all(1) {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "{port} still taken after the stop:\n{}",
            p.log()
        );
    }
    key
}

#[test]
fn credentials_are_generated_once_private_and_reused() {
    let _one = one_at_a_time();
    let state = tempfile::tempdir().unwrap();
    let first = run_once(state.path());
    for file in ["stream-key", "api-report-token", "redis-password"] {
        let f = state.path().join(file);
        let secret = std::fs::read_to_string(&f).unwrap();
        assert_eq!(secret.len(), 32, "{file}");
        assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{file}");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert_eq!(
        std::fs::read_to_string(state.path().join("stream-key")).unwrap(),
        first
    );
    // Redis's password reaches it through a private config file.
    let conf = state.path().join("redis/redis.conf");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let password = std::fs::read_to_string(state.path().join("redis-password")).unwrap();
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains(&format!("requirepass {password}")));
    let token = std::fs::read_to_string(state.path().join("api-report-token")).unwrap();
    assert_eq!(run_once(state.path()), first, "the key is reused");
    assert_eq!(
        std::fs::read_to_string(state.path().join("api-report-token")).unwrap(),
        token
    );
}
