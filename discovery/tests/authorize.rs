//! Discovery's local `POST /authorize` (nginx-rtmp's `on_publish`) through
//! API outages: against the real API and a private redis-server, against a
//! tiny fake API for the faults the real one cannot produce (slow, hung,
//! garbage, 5xx), and behind a real nginx-rtmp origin with ffmpeg publishing.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use rtmp_live_testkit::{
    artifact, free_port, metrics, publish, render_template, wait, wait_port, Api, Nginx, Proc,
    Redis,
};

fn start_discovery(api_url: &str, hls: &Path, port: u16, extra: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(artifact("rtmp-live-discovery"));
    cmd.env_clear()
        .env("RUST_LOG", "info")
        .env("HLS_PATH", hls)
        // no recordings to report (never created)
        .env("RECORDINGS_PATH", hls.join(".recordings"))
        .env("DISCOVERY_API_URL", api_url)
        .env("ADVERTISE_HOST", "127.0.0.1:18080")
        .env("DISCOVERY_LISTEN", format!("127.0.0.1:{port}"))
        .env("DISCOVERY_AUTH_TIMEOUT_MS", "500");
    cmd.envs(extra.iter().copied());
    let p = Proc::spawn("discovery", cmd);
    assert!(
        wait_port(port, Duration::from_secs(5)),
        "discovery did not listen:\n{}",
        p.log()
    );
    p
}

/// Like the testkit's client (10 s timeout), but not following redirects:
/// `on_publish`'s 302 and its `Location` are the answer under test.
fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What nginx-rtmp's `on_publish` sends; returns (status, Location).
fn authorize(c: &Client, port: u16, key: &str) -> (u16, Option<String>) {
    let r = c
        .post(format!("http://127.0.0.1:{port}/authorize"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "call=publish&name={key}&type=live&addr=127.0.0.7&clientid=1&app=stream&flashver=FMLE"
        ))
        .send()
        .unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), loc)
}

/// One series of discovery's `/metrics` (listening on `port`).
fn metric(port: u16, series: &str) -> f64 {
    let text = metrics::scrape(&format!("http://127.0.0.1:{port}/metrics"));
    metrics::value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// The stream key the real API knows (publishes as `show`).
const KEY: &str = "s3cret-key-0123456789";
const KEYS: &str = "s3cret-key-0123456789=show";

const FROM_API: &str = r#"discovery_authorize_decisions_total{source="api",decision="allow"}"#;
const DENIED_BY_API: &str = r#"discovery_authorize_decisions_total{source="api",decision="deny"}"#;
const FROM_CACHE: &str = r#"discovery_authorize_decisions_total{source="cache",decision="allow"}"#;
const REFUSED: &str = r#"discovery_authorize_decisions_total{source="refused",decision="deny"}"#;

/// The API answers `/authorize` only to origins (it trusts the publisher
/// address they pass on): discovery sends this origin's token. A token the
/// API refuses (401) is a misconfigured origin, not an outage: the publish
/// is refused, logged at error, and the memory is left alone.
#[test]
fn authorize_carries_the_origins_token() {
    const TOKEN: &str = "origin-token-0123456789abcdef";
    let redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[
            ("STREAM_KEYS", KEYS),
            ("PUBLISH_REDIRECT", "{name}"),
            ("API_INSECURE_NO_AUTH", "0"),
            ("API_REPORT_TOKEN", TOKEN),
        ],
    );
    let c = client();
    let hls = tempfile::tempdir().unwrap();
    let port = free_port();
    let good = start_discovery(&api.url(), hls.path(), port, &[("API_REPORT_TOKEN", TOKEN)]);
    assert_eq!(authorize(&c, port, KEY), (302, Some("show".into())));
    assert_eq!(metric(port, FROM_API), 1.0);
    drop(good);
    for token in [Some("not-the-token-0123456789"), None] {
        let port = free_port();
        let env: Vec<(&str, &str)> = token.map(|t| ("API_REPORT_TOKEN", t)).into_iter().collect();
        let d = start_discovery(&api.url(), hls.path(), port, &env);
        assert_eq!(authorize(&c, port, KEY), (403, None), "{token:?}");
        assert_eq!(metric(port, FROM_CACHE), 0.0);
        let log = d.log();
        assert!(
            log.contains("ERROR") && log.contains("does not accept this origin's token"),
            "{log}"
        );
        assert!(!log.contains("not-the-token"), "{log}");
    }
}

#[test]
fn allowed_keys_are_allowed_from_memory_while_the_api_is_down_until_they_expire() {
    let redis = Redis::start();
    let mut api = Api::start(
        &redis.url(),
        &[("STREAM_KEYS", KEYS), ("PUBLISH_REDIRECT", "{name}")],
    );
    let hls = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = start_discovery(
        &api.url(),
        hls.path(),
        port,
        &[("DISCOVERY_AUTH_CACHE_SECS", "4")],
    );
    let c = client();

    let allowed_at = Instant::now();
    assert_eq!(authorize(&c, port, KEY), (302, Some("show".into())));
    assert_eq!(authorize(&c, port, "nope"), (403, None));
    assert_eq!(metric(port, FROM_API), 1.0);
    assert_eq!(metric(port, DENIED_BY_API), 1.0);

    api.proc.kill();
    let t = Instant::now();
    assert_eq!(
        authorize(&c, port, KEY),
        (302, Some("show".into())),
        "allowed from memory\n{}",
        d.log()
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(
        allowed_at.elapsed() < Duration::from_secs(4),
        "test too slow"
    );
    assert_eq!(authorize(&c, port, "nope"), (403, None), "denied before");
    assert_eq!(authorize(&c, port, "never-seen"), (403, None));
    assert_eq!(metric(port, FROM_CACHE), 1.0);
    assert_eq!(metric(port, REFUSED), 2.0);
    let log = d.log();
    assert!(
        log.contains("publish allowed from the remembered decision"),
        "{log}"
    );
    assert_eq!(log.matches("no remembered decision").count(), 2, "{log}");
    assert!(!log.contains("s3cret"), "the key is never logged:\n{log}");

    // Past DISCOVERY_AUTH_CACHE_SECS the memory no longer counts (the
    // decision was taken a little after `allowed_at`: when the API answered).
    std::thread::sleep(Duration::from_millis(4300).saturating_sub(allowed_at.elapsed()));
    assert_eq!(authorize(&c, port, KEY), (403, None), "expired");
    assert!(d.log().contains("remembered decision is too old"));

    // The API is back: its answers are relayed again (and remembered anew).
    api.restart();
    assert_eq!(authorize(&c, port, KEY), (302, Some("show".into())));
    assert_eq!(authorize(&c, port, "nope"), (403, None));
    assert_eq!(metric(port, FROM_API), 2.0);
    assert_eq!(metric(port, DENIED_BY_API), 2.0);
    api.proc.kill();
    assert_eq!(authorize(&c, port, KEY), (302, Some("show".into())));
    assert_eq!(metric(port, FROM_CACHE), 2.0);
}

/// How the fake API answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Allow,
    Deny,
    /// Answers, but after 3 s.
    Slow,
    /// Accepts and never answers.
    Hung,
    /// Bytes that are not HTTP.
    Garbage,
    /// 503.
    Unavailable,
    /// Accepts and closes at once.
    Close,
    /// 429: the API throttles this publisher.
    Throttled,
}

/// A fake API on a free port; records the bodies it received.
struct Fake {
    port: u16,
    mode: Arc<AtomicU8>,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Allow as u8));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (m, b) = (mode.clone(), bodies.clone());
        // Ends with the test process; every connection thread is bounded.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (m, b) = (m.clone(), b.clone());
                std::thread::spawn(move || serve(conn, m.load(Ordering::SeqCst), &b));
            }
        });
        Fake { port, mode, bodies }
    }

    fn set(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(mut conn: TcpStream, mode: u8, bodies: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break text[end + 4..end + 4 + len].to_string();
            }
        }
    };
    bodies.lock().unwrap().push(body);
    let answer: &[u8] = match mode {
        m if m == Mode::Allow as u8 => {
            b"HTTP/1.1 302 Found\r\nLocation: fake-name\r\nContent-Length: 0\r\n\r\n"
        }
        m if m == Mode::Deny as u8 => b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        m if m == Mode::Slow as u8 => {
            std::thread::sleep(Duration::from_secs(3));
            b"HTTP/1.1 302 Found\r\nLocation: slow-name\r\nContent-Length: 0\r\n\r\n"
        }
        m if m == Mode::Hung as u8 => {
            std::thread::sleep(Duration::from_secs(5));
            return;
        }
        m if m == Mode::Garbage as u8 => b"\x00\x01 this is not HTTP at all\r\n\r\n",
        m if m == Mode::Unavailable as u8 => {
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
        }
        m if m == Mode::Throttled as u8 => {
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n"
        }
        _ => return,
    };
    let _ = conn.write_all(answer);
}

#[test]
fn api_faults_fall_back_to_memory_and_a_definite_refusal_forgets() {
    let fake = Fake::start();
    let hls = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = start_discovery(&fake.url(), hls.path(), port, &[]);
    let c = client();

    assert_eq!(authorize(&c, port, "k1"), (302, Some("fake-name".into())));
    let forwarded = fake.bodies.lock().unwrap()[0].clone();
    assert!(
        forwarded.contains("name=k1") && forwarded.contains("addr=127.0.0.7"),
        "nginx-rtmp's form is forwarded as is: {forwarded}"
    );

    for mode in [
        Mode::Slow,
        Mode::Hung,
        Mode::Garbage,
        Mode::Unavailable,
        Mode::Close,
    ] {
        fake.set(mode);
        let t = Instant::now();
        assert_eq!(
            authorize(&c, port, "k1"),
            (302, Some("fake-name".into())),
            "{mode:?}: from memory\n{}",
            d.log()
        );
        assert_eq!(
            authorize(&c, port, "k2"),
            (403, None),
            "{mode:?}: unknown key"
        );
        // Two requests, each bounded by the 500 ms timeout.
        assert!(
            t.elapsed() < Duration::from_millis(2500),
            "{mode:?}: {:?}",
            t.elapsed()
        );
    }
    assert_eq!(metric(port, FROM_CACHE), 5.0);
    assert_eq!(metric(port, REFUSED), 5.0);

    // A throttled publisher is refused even with a remembered key (no
    // guessing against the memory), and the key stays remembered.
    fake.set(Mode::Throttled);
    assert_eq!(authorize(&c, port, "k1"), (429, None));
    assert_eq!(metric(port, "discovery_authorize_remembered"), 1.0);

    // A definite 403 forgets the key: the next outage refuses it.
    fake.set(Mode::Deny);
    assert_eq!(authorize(&c, port, "k1"), (403, None));
    fake.set(Mode::Unavailable);
    assert_eq!(authorize(&c, port, "k1"), (403, None), "forgotten");
    assert_eq!(metric(port, "discovery_authorize_remembered"), 0.0);
    assert!(d.log().contains("no remembered decision"));
}

#[test]
fn remembered_decisions_survive_a_restart_hashed_in_a_private_file() {
    let redis = Redis::start();
    let mut api = Api::start(
        &redis.url(),
        &[("STREAM_KEYS", KEYS), ("PUBLISH_REDIRECT", "{name}")],
    );
    let hls = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().join("discovery");
    let env = [("DISCOVERY_STATE_DIR", state_dir.to_str().unwrap())];
    let port = free_port();
    let mut d = start_discovery(&api.url(), hls.path(), port, &env);
    let c = client();
    assert_eq!(authorize(&c, port, KEY), (302, Some("show".into())));
    d.stop();
    api.proc.kill();

    let file = state_dir.join("authorize-memory.json");
    let text = fs::read_to_string(&file).unwrap();
    assert!(!text.contains("s3cret"), "only hashes are stored: {text}");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    let port = free_port();
    let d = start_discovery(&api.url(), hls.path(), port, &env);
    assert_eq!(
        authorize(&c, port, KEY),
        (302, Some("show".into())),
        "remembered across the restart\n{}",
        d.log()
    );
    assert_eq!(authorize(&c, port, "other"), (403, None));
}

/// The value of `series` for stream `stream` at discovery's `/metrics`.
fn stream_metric(port: u16, series: &str, stream: &str) -> Option<f64> {
    let text = metrics::scrape(&format!("http://127.0.0.1:{port}/metrics"));
    let (prefix, label) = (format!("{series}{{"), format!("stream=\"{stream}\""));
    metrics::parse(&text)
        .into_iter()
        .find_map(|(s, v)| (s.starts_with(&prefix) && s.contains(&label)).then_some(v))
}

/// ffmpeg publishing a test pattern (320x240 at 25 fps) to `url` for `secs`
/// seconds.
fn ffmpeg(url: &str, secs: u32) -> Proc {
    publish::test_source(url, "320x240", 25, Some(secs))
}

#[test]
fn origin_ingest_with_a_known_key_works_while_the_api_is_down() {
    let module = Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
    assert!(
        module.exists(),
        "needs nginx-rtmp (libnginx-mod-rtmp; scripts/deps.sh)"
    );
    let redis = Redis::start();
    let mut api = Api::start(
        &redis.url(),
        &[("STREAM_KEYS", KEYS), ("PUBLISH_REDIRECT", "{name}")],
    );
    let hls = tempfile::tempdir().unwrap();
    let dport = free_port();
    let (rtmp, http, stat) = (free_port(), free_port(), free_port());
    let stat_url = format!("http://127.0.0.1:{stat}/");
    let d = start_discovery(
        &api.url(),
        hls.path(),
        dport,
        &[
            ("DISCOVERY_HEARTBEAT_SECS", "0.5"),
            ("DISCOVERY_STALE_SECS", "6"),
            ("DISCOVERY_RTMP_STAT_URL", &stat_url),
        ],
    );
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let hls_path = hls.path().to_path_buf();
    let origin = Nginx::start("origin", &[rtmp, http], |dir| {
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let env = [
            ("RTMP_MODULE", module.display().to_string()),
            ("NGINX_USER", user.trim().to_string()),
            ("ORIGIN_DIR", dir.display().to_string()),
            (
                "ORIGIN_PACKAGING",
                dir.join("packaging.conf").display().to_string(),
            ),
            (
                "ORIGIN_HLS_HTTP",
                dir.join("hls-http.conf").display().to_string(),
            ),
            ("RTMP_PORT", rtmp.to_string()),
            ("ORIGIN_HTTP_PORT", http.to_string()),
            ("RTMP_STAT_PORT", stat.to_string()),
            ("RTMP_PACKAGING_PORT", free_port().to_string()),
            // no LL-HLS component here: playlists come from disk
            ("LLHLS_PORT", free_port().to_string()),
            (
                "AUTHORIZE_URL",
                format!("http://127.0.0.1:{dport}/authorize"),
            ),
            ("HLS_PATH", hls_path.display().to_string()),
            ("HLS_PLAYLIST_LENGTH", "8s".to_string()),
            (
                "RECORDINGS_PATH",
                dir.join("recordings").display().to_string(),
            ),
        ];
        render_template(
            "origin-hls.conf.template",
            &dir.join("packaging.conf"),
            &env,
        );
        render_template(
            "origin-files.conf.template",
            &dir.join("hls-http.conf"),
            &env,
        );
        render_template("origin.conf.template", &dir.join("rendered.conf"), &env);
        fs::read_to_string(dir.join("rendered.conf")).unwrap()
    });
    let url = |key: &str| format!("rtmp://127.0.0.1:{rtmp}/stream/{key}");
    let playlist = hls.path().join("show/index.m3u8");
    let c = client();
    let wait = |limit: Duration, what: &str, f: &mut dyn FnMut() -> bool| {
        wait::until_explained(
            limit,
            || f().then_some(()),
            || {
                format!(
                    "{what}\n--- discovery\n{}\n--- origin\n{}",
                    d.log(),
                    origin.error_log()
                )
            },
        );
    };
    let registered = |c: &Client, api: &Api| {
        c.get(format!("{}/streams/show", api.url()))
            .send()
            .is_ok_and(|r| r.status() == 200)
    };

    // API up: the key is accepted (and remembered), the stream goes live.
    let mut first = ffmpeg(&url(KEY), 30);
    wait(
        Duration::from_secs(20),
        "HLS while the API is up",
        &mut || playlist.exists(),
    );
    wait(Duration::from_secs(5), "registration", &mut || {
        registered(&c, &api)
    });
    // Its ingest facts, read from nginx-rtmp's statistics at the scrape:
    // what ffmpeg publishes (320x240 at 25 fps).
    let fact = |series: &str| stream_metric(dport, series, "show");
    wait(Duration::from_secs(10), "ingest bitrate", &mut || {
        fact("discovery_stream_ingest_bits_per_second").is_some_and(|b| b > 10_000.0)
    });
    assert_eq!(fact("discovery_stream_video_frames_per_second"), Some(25.0));
    assert_eq!(fact("discovery_stream_video_width_pixels"), Some(320.0));
    assert_eq!(fact("discovery_stream_video_height_pixels"), Some(240.0));
    assert!(fact("discovery_stream_published_seconds").is_some_and(|s| s > 0.0));
    first.stop();
    // Its registration ends (ENDLIST or staleness), so the one checked after
    // the outage is new.
    wait(Duration::from_secs(15), "deregistration", &mut || {
        !registered(&c, &api)
    });

    // API down: OBS reconnects with the same key and is accepted from memory.
    api.proc.kill();
    let down_at = std::time::SystemTime::now();
    let mut second = ffmpeg(&url(KEY), 30);
    wait(
        Duration::from_secs(20),
        "fresh HLS during the outage",
        &mut || {
            fs::metadata(&playlist)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > down_at + Duration::from_secs(2))
        },
    );
    assert!(second.is_running(), "{}", second.log());
    assert!(d
        .log()
        .contains("publish allowed from the remembered decision"));

    // An unknown key is refused during the outage.
    let mut stranger = ffmpeg(&url("guess"), 30);
    assert!(
        stranger.wait_exit(Duration::from_secs(15)).is_some(),
        "a refused publish ends ffmpeg"
    );
    assert_eq!(metric(dport, REFUSED), 1.0);

    // The API returns: the live stream is registered within a heartbeat.
    api.restart();
    let t = Instant::now();
    wait(
        Duration::from_secs(3),
        "registration after the outage",
        &mut || registered(&c, &api),
    );
    println!("API back -> registered after {:?}", t.elapsed());
    second.stop();
}
