//! Attacks on the platform as `make up` runs it (`rtmp-live-up` on free
//! ports): one test per threat of SECURITY.md that a hostile client, a local
//! user or a malformed input could use, each showing the attack fails.
//! Everything is checked from outside: HTTP, raw sockets, RTMP, /proc.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rtmp_live_testkit::{artifact, free_port, workspace_root, Proc};

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `POST /authorize` at the API as anyone who reaches it would send it:
/// nginx-rtmp's form, no credential.
fn forged_authorize(p: &Platform, key: &str, addr: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .post(p.api_url("/authorize"))
        .form(&[
            ("call", "publish"),
            ("app", "stream"),
            ("name", key),
            ("addr", addr),
        ])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}

fn assert_short_json_error(status: u16, body: &str, want: u16) {
    assert_eq!(status, want, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    assert!(body.len() < 200, "{body}");
}

/// Someone who reaches the API sends 10 wrong keys "from" the publisher's
/// address (`addr`, which the API used to trust from anyone): the API
/// locked that address out for a minute, so the rightful publisher got 429
/// even with the right key. Now `/authorize` wants the calling origin's
/// credential: the forged calls get 401 and count for nothing.
#[test]
fn a_forged_authorize_cannot_lock_a_publisher_out() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    for i in 0..12 {
        let (status, body) =
            forged_authorize(&p, &format!("guess-{i}-0123456789abcdef"), "127.0.0.1");
        assert_short_json_error(status, &body, 401);
    }
    // The publisher, from 127.0.0.1, with its key: live.
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "golive registered", || {
        p.api_stream("golive")
    });
    let log = p.up.log();
    assert!(!log.contains("too many failed attempts"), "{log}");
    assert!(log.contains("missing or invalid token"), "{log}");
}

/// The guess limit counts failures per publisher address; whoever could
/// call `/authorize` could name any `addr` and test keys without limit (a
/// 403 or a 302 per guess). Without the origin's credential there is no
/// verdict at all, whatever `addr` says, the right key included.
#[test]
fn a_guesser_cannot_dodge_the_limit_by_changing_addr() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    for i in 0..25u8 {
        let (status, body) = forged_authorize(
            &p,
            &format!("guess-{i}-0123456789abcdef"),
            &format!("203.0.113.{i}"),
        );
        assert_short_json_error(status, &body, 401);
    }
    let (status, body) = forged_authorize(&p, &key("golive"), "203.0.113.200");
    assert_short_json_error(status, &body, 401);
    // The origins' own calls still work: a real publish goes live.
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "golive registered", || {
        p.api_stream("golive")
    });
}

/// Whether something accepts TCP connections at `ip:port`.
fn accepts(ip: &str, port: u16) -> bool {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// This host's first non-loopback IPv4 address (what another host would
/// connect to).
fn external_ipv4() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
}

/// `make up` bound the API on every interface: anyone who reached the
/// host could call `/authorize`, read `/metrics` and every origin address.
/// It listens on loopback now (`INTERNAL_BIND` opens it for multi-host
/// setups); the public ports still answer on the host's address.
#[test]
fn the_api_is_not_reachable_from_other_hosts() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    let Some(ip) = external_ipv4() else {
        panic!("no non-loopback IPv4 address here: cannot check what other hosts reach");
    };
    assert!(accepts(&ip, p.ports.edge), "the edge must be public");
    assert!(accepts(&ip, p.rtmp_port(1)), "RTMP ingest must be public");
    assert!(accepts("127.0.0.1", p.ports.api));
    assert!(
        !accepts(&ip, p.ports.api),
        "the API answers on {ip}:{}",
        p.ports.api
    );
    for port in [p.ports.redis, p.ports.origin(1).discovery] {
        assert!(!accepts(&ip, port), "{ip}:{port} answers");
    }
}

/// `make up` bound the origins' HTTP on every interface: viewers could
/// skip the edge (its cache, its limits, its logs) and load the origin
/// directly. It listens on loopback now; the edge still plays.
#[test]
fn viewers_cannot_skip_the_edge() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    let Some(ip) = external_ipv4() else {
        panic!("no non-loopback IPv4 address here: cannot check what other hosts reach");
    };
    let o = p.ports.origin(1);
    assert!(accepts(&ip, p.ports.edge), "the edge must be public");
    assert!(accepts("127.0.0.1", o.http));
    for port in [o.http, o.stat, o.llhls, o.packaging] {
        assert!(!accepts(&ip, port), "the origin answers on {ip}:{port}");
    }
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "golive at the edge", || {
        (p.edge_get("/golive/index.m3u8").status == 200).then_some(())
    });
}

/// `/proc/<pid>` facts: (real, effective, saved uid), parent pid, command line.
struct ProcInfo {
    pid: u32,
    uids: [u32; 3],
    ppid: u32,
    cmdline: String,
}

fn processes() -> Vec<ProcInfo> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |name: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let uids = field("Uid:");
        let ppid = field("PPid:");
        if uids.len() < 3 || ppid.is_empty() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        out.push(ProcInfo {
            pid,
            uids: [uids[0], uids[1], uids[2]],
            ppid: ppid[0],
            cmdline: String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .trim()
                .to_string(),
        });
    }
    out
}

/// Started as root (as the README says), `make up` ran the nginx workers
/// (which parse RTMP from the internet and run the edge module) and the ABR
/// ladder's ffmpeg as root. They run as an unprivileged user now, and the
/// stream still plays (they can write and serve the HLS folders).
#[test]
fn nginx_workers_and_the_abr_ladder_do_not_run_as_root() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("not root: every process runs as this user, nothing to check");
        return;
    }
    let _g = lock();
    let p = Platform::start(1, true, &[]);
    let state = p.state_dir().display().to_string();
    let masters: Vec<u32> = processes()
        .into_iter()
        .filter(|i| i.cmdline.starts_with("nginx: master") && i.cmdline.contains(&state))
        .map(|i| i.pid)
        .collect();
    assert_eq!(masters.len(), 2, "an origin and an edge nginx");
    let workers: Vec<ProcInfo> = processes()
        .into_iter()
        .filter(|i| masters.contains(&i.ppid))
        .collect();
    assert!(workers.len() >= 3, "workers of both nginx masters");
    for w in &workers {
        assert!(
            w.uids.iter().all(|&u| u != 0),
            "{} {:?} runs as root",
            w.pid,
            w.cmdline
        );
    }
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, None);
    wait_until(
        Duration::from_secs(60),
        "golive's master at the edge",
        || (p.edge_get("/golive/master.m3u8").status == 200).then_some(()),
    );
    let ladder = format!("rtmp://127.0.0.1:{}/", p.ports.origin(1).packaging);
    let ffmpeg: Vec<ProcInfo> = processes()
        .into_iter()
        .filter(|i| i.cmdline.starts_with("ffmpeg") && i.cmdline.contains(&ladder))
        .collect();
    assert!(!ffmpeg.is_empty(), "the ABR ladder's ffmpeg runs");
    for f in &ffmpeg {
        assert!(
            f.uids.iter().all(|&u| u != 0),
            "the ladder runs as root: {}",
            f.cmdline
        );
    }
}

/// Redis had no password: any local user (or anything the host let reach
/// it) could rewrite the registry and point viewers anywhere. It requires
/// one now, generated on first start and kept private in the state folder.
#[test]
fn redis_requires_a_password() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", p.ports.redis)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\nSET rl:streams x\r\n").unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..2 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("-NOAUTH"),
            "redis answered {line:?} without a password"
        );
    }
    let file = p.state_dir().join("redis-password");
    let mode = std::fs::metadata(&file)
        .expect("the generated Redis password")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file).unwrap();
    assert!(password.trim().len() >= 32);
    for i in processes() {
        assert!(
            !i.cmdline.contains(password.trim()),
            "the password is on a command line: {}",
            i.cmdline
        );
    }
}

/// A raw HTTP exchange with the edge: (status, headers, body).
fn raw_http(port: u16, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A request line nginx cannot parse (`GET /..%2fx`: a path above the
/// root) got a 500 HTML page and an error-log line per request (nginx
/// cannot send such a request to a named location). The edge's own errors
/// are short JSON 4xx: it gets 400, and logs nothing at error level.
#[test]
fn a_malformed_request_line_gets_a_short_json_400() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    for path in ["/..%2fx", "/../x", "/golive/..%2f..%2fx", "/%2e%2e/x"] {
        let (status, head, body) = raw_http(
            p.ports.edge,
            &format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 400, "{path}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{path}: {head}"
        );
        assert_short_json_error(status, &body, 400);
    }
    // Too long a request line, too large headers: short JSON too.
    let long = format!("/{}", "a".repeat(20_000));
    let (status, head, body) = raw_http(
        p.ports.edge,
        &format!("GET {long} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"),
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_short_json_error(status, &body, 414);
    let (status, head, body) = raw_http(
        p.ports.edge,
        &format!(
            "GET / HTTP/1.1\r\nHost: edge\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(20_000)
        ),
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_short_json_error(status, &body, 400);
    // Stream names the module refuses: the same JSON 400.
    let r = p.edge_get("/bad.name/index.m3u8");
    assert_short_json_error(r.status, &r.text(), 400);
    // One request more, then nothing of the above in the edge's error log.
    assert_eq!(p.edge_get("/").status, 200);
    let log = p.up.log();
    assert!(
        !log.contains("empty URI") && !log.contains("[error]"),
        "{log}"
    );
}

/// The player page and its scripts had no Content-Security-Policy and no
/// `X-Content-Type-Options: nosniff`. They have both now, with a policy
/// that still lets hls.js play (blob: workers, MediaSource).
#[test]
fn the_player_page_has_a_csp_and_nosniff() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    for path in ["/", "/player.js", "/player.css", "/hls.min.js"] {
        let r = p.edge_get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        let csp = r.header("content-security-policy");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "worker-src blob:",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {part} missing from {csp:?}");
        }
    }
    // The page as a browser runs it: its script, style and the list of
    // streams load, nothing is refused. (Playback under this policy, with
    // hls.js's blob: worker and MediaSource: e2e/tests/browser.rs plays on
    // this page.)
    let (dom, console) = headless_page(&p.edge_url("/"), 3000);
    assert!(!console.contains("Content Security Policy"), "{console}");
    assert!(!console.contains("Uncaught"), "{console}");
    assert!(dom.contains("nothing is live"), "{dom}");
}

/// Chromium (headless) loads `url`, runs it for `budget_ms` of virtual
/// time: (the DOM then, the page's console).
fn headless_page(url: &str, budget_ms: u32) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--enable-logging=stderr", "--v=0", "--mute-audio"])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("chromium (Debian's chromium; scripts/deps.sh installs it)");
    let console: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect::<Vec<_>>()
        .join("\n");
    (String::from_utf8_lossy(&out.stdout).to_string(), console)
}

/// A hash that is not valid percent-encoding (`#%E0%A4%A`, from a bad link)
/// made `decodeURIComponent` throw at the top of player.js: the page did
/// nothing at all (no list, no player). It ignores such a hash now.
#[test]
fn a_malformed_hash_does_not_break_the_player_page() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    let (dom, console) = headless_page(&p.edge_url("/#%E0%A4%A"), 3000);
    assert!(!console.contains("Uncaught"), "{console}");
    // The page went on: it asked the edge for the live streams.
    assert!(dom.contains("nothing is live"), "{dom}");
}

/// A stream folder whose inotify watch cannot be added (here: unreadable;
/// in production: out of watches) was followed by periodic rescans only,
/// and nothing said so. Discovery logs it at warn, naming the folder.
#[test]
fn a_watch_that_cannot_be_added_is_logged_at_warn() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let hls = dir.path().join("hls");
    std::fs::create_dir(&hls).unwrap();
    std::fs::set_permissions(&hls, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = Command::new(artifact("rtmp-live-discovery"));
    cmd.env_clear()
        .env("RUST_LOG", "info")
        .env("HLS_PATH", &hls)
        .env("RECORDINGS_PATH", hls.join(".recordings"))
        .env(
            "DISCOVERY_API_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .env("ADVERTISE_HOST", "127.0.0.1:8080")
        .env("DISCOVERY_LISTEN", format!("127.0.0.1:{}", free_port()));
    if nix::unistd::Uid::effective().is_root() {
        // root reads every folder: discovery runs as nobody here.
        use std::os::unix::process::CommandExt;
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        cmd.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    }
    let d = Proc::spawn("discovery", cmd);
    wait_until(Duration::from_secs(10), "discovery watching", || {
        d.log().contains("watching HLS folder").then_some(())
    });
    // Unreadable from its creation on (mkdir with mode 0): the watch
    // notify adds by itself fails too.
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o000)
        .create(hls.join("locked"))
        .unwrap();
    rtmp_live_testkit::wait::until_explained(
        Duration::from_secs(10),
        || {
            d.log()
                .lines()
                .any(|l| l.contains("WARN") && l.contains("watch") && l.contains("locked"))
                .then_some(())
        },
        || format!("a warning about the folder:\n{}", d.log()),
    );
}

/// `make stream` (and the README's ffmpeg example) put the stream key in
/// ffmpeg's arguments, which every local user reads in `ps`. The key is on
/// no command line now, while the test pattern publishes.
#[test]
fn make_stream_keeps_the_key_off_every_command_line() {
    let _g = lock();
    // No STREAM_KEYS: `make up` generates the key into the state folder.
    let p = Platform::start(1, false, &[("STREAM_KEYS", "")]);
    let key = std::fs::read_to_string(p.state_dir().join("stream-key")).unwrap();
    let key = key.trim().to_string();
    assert!(key.len() >= 16);
    let mut cmd = Command::new(workspace_root().join("scripts/stream.sh"));
    cmd.env("STATE_DIR", p.state_dir())
        .env("RTMP_PORT", p.rtmp_port(1).to_string())
        .env("STREAM_SIZE", "320x240")
        .env("STREAM_FPS", "25")
        .env_remove("STREAM_KEY");
    let mut stream = Proc::spawn("stream.sh", cmd);
    let until = Instant::now() + Duration::from_secs(40);
    let mut live_since: Option<Instant> = None;
    loop {
        for i in processes() {
            assert!(
                !i.cmdline.contains(&key),
                "the stream key is on a command line: {}",
                i.cmdline
            );
        }
        if live_since.is_none() && p.api_stream("golive").is_some() {
            live_since = Some(Instant::now());
        }
        // Live, and watched a while longer.
        if live_since.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        assert!(
            Instant::now() < until,
            "golive never went live:\n{}\n{}",
            stream.log(),
            p.up.log()
        );
        assert!(stream.is_running(), "make stream ended:\n{}", stream.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stopping it leaves nothing behind (the encoder goes with it).
    let mut tree = vec![stream.pid().unwrap()];
    let all = processes();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|c| c.ppid == parent).map(|c| c.pid));
        i += 1;
    }
    assert!(tree.len() > 1, "make stream runs an encoder");
    stream.stop();
    wait_until(
        Duration::from_secs(10),
        "make stream's processes to end",
        || {
            let alive: Vec<u32> = processes()
                .iter()
                .filter(|i| tree.contains(&i.pid))
                .map(|i| i.pid)
                .collect();
            alive.is_empty().then_some(())
        },
    );
}

/// The pid of this run's process whose command line starts with `program`.
fn pid_of(p: &Platform, program: &str) -> Option<u32> {
    let env = format!("STATE_DIR={}", p.state_dir().display());
    processes()
        .into_iter()
        .filter(|i| i.cmdline.contains(program))
        .find(|i| {
            std::fs::read(format!("/proc/{}/environ", i.pid))
                .map(|e| String::from_utf8_lossy(&e).split('\0').any(|v| v == env))
                .unwrap_or(false)
        })
        .map(|i| i.pid)
}

/// Compose's edge accepted `*:8080` and every RFC 1918 network at any port:
/// a forged registration (a stolen token, a write straight into Redis) made
/// it a GET proxy into the private network (the API, Redis, the container
/// host), and with no exact origin address its outage probe had nothing to
/// probe. The edge container's entrypoint (docker/edge-entrypoint.sh, run
/// here natively) lists the origins by name and port, as compose does
/// (`origin:8080`; `localhost:<port>` here), and renders the exact
/// addresses the name resolves to: forged registrations naming anything
/// else get 502 and are never contacted, and a stream the edge never saw
/// plays during an API outage through the probe of those addresses.
/// (`make compose-test` checks the same in the containers, with two
/// origins.)
#[test]
fn the_compose_edge_contacts_exactly_its_origins() {
    let _g = lock();
    let p = Platform::start(1, false, &[]);
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = workspace_root();
    let edge_port = free_port();
    let origin = p.ports.origin(1).http;
    let mut cmd = Command::new(root.join("docker/edge-entrypoint.sh"));
    // the release binaries (rtmp-live-render), as the image installs them
    let bins = artifact("rtmp-live-render");
    let path = format!(
        "{}:{}",
        bins.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("STATE_DIR", state.path())
        .env("EDGE_MODULE", artifact("libngx_edge_router.so"))
        .env("RTMP_LIVE_TEMPLATES", root.join("nginx"))
        .env("PLAYER_DIR", root.join("player"))
        .env("API_URL", p.api_url(""))
        .env("EDGE_PORT", edge_port.to_string())
        .env("EDGE_WORKERS", "1")
        .env("EDGE_VIEWER_KEY", "$remote_addr")
        .env("EDGE_ROUTE_VALID", "5s")
        .env("EDGE_ROUTE_NEGATIVE", "1s")
        .env("EDGE_ROUTE_STALE", "15m")
        .env("EDGE_ORIGINS", format!("localhost:{origin}"))
        .env_remove("NGINX_USER");
    let edge = Proc::spawn("edge-entrypoint", cmd);
    let listed = format!("edge: origins localhost:{origin} 127.0.0.1:{origin}");
    wait_until(Duration::from_secs(20), "the edge with its origins", || {
        (edge.log().contains(&listed) && accepts("127.0.0.1", edge_port)).then_some(())
    });
    let http = rtmp_live_testkit::http::client();
    let edge_get = |path: &str| get(&http, &format!("http://127.0.0.1:{edge_port}{path}"));

    // Registrations forged with the registry token: the API (by address and
    // by name), Redis, discovery, the origin's RTMP statistics.
    let o = p.ports.origin(1);
    let forged = [
        format!("127.0.0.1:{}", p.ports.api),
        format!("localhost:{}", p.ports.api),
        format!("127.0.0.1:{}", p.ports.redis),
        format!("127.0.0.1:{}", o.discovery),
        format!("127.0.0.1:{}", o.stat),
    ];
    for (i, host) in forged.iter().enumerate() {
        let r = http
            .post(p.api_url("/streams"))
            .bearer_auth(REPORT_TOKEN)
            .json(&serde_json::json!({"name": format!("forged{i}"), "manifest": "index.m3u8", "host": host}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "{host}");
        let r = edge_get(&format!("/forged{i}/index.m3u8"));
        assert_eq!(r.status, 502, "a registration naming {host}: {}", r.text());
    }
    assert!(
        edge.log().contains("edge_router_origins"),
        "the refusals are logged:\n{}",
        edge.log()
    );

    // A stream this edge never saw, while the API is down: found by probing
    // the exact origin address.
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "golive registered", || {
        p.api_stream("golive")
    });
    let api = pid_of(&p, "rtmp-live-api").expect("the API's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(api as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the API gone", || {
        (!accepts("127.0.0.1", p.ports.api)).then_some(())
    });
    let r = wait_until(Duration::from_secs(20), "golive through the probe", || {
        let r = edge_get("/golive/index.m3u8");
        (r.status == 200).then_some(r)
    });
    assert_eq!(r.header("x-edge-route"), "PROBED");
}
