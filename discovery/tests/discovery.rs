//! The real discovery binary against the real API and a private
//! redis-server, with HLS folders written the way nginx-rtmp (temporary
//! `.bak` file renamed over the playlist) and ffmpeg (`.tmp` rename) write them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::blocking::Client;
use rtmp_live_testkit::{artifact, free_port, wait, Api, Proc, Redis};
use serde_json::Value;

const HOST: &str = "127.0.0.1:18080";

struct Setup {
    _redis: Redis,
    api: Api,
    hls: tempfile::TempDir,
    c: Client,
}

fn setup(env: &[(&str, &str)]) -> Setup {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), env);
    let c = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Setup {
        _redis: redis,
        api,
        hls: tempfile::tempdir().unwrap(),
        c,
    }
}

fn discovery(s: &Setup, root: &Path, extra: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(artifact("rtmp-live-discovery"));
    cmd.env_clear()
        .env("RUST_LOG", "info")
        .env("HLS_PATH", root)
        // no recordings to report (never created)
        .env("RECORDINGS_PATH", root.join(".recordings"))
        .env("DISCOVERY_API_URL", s.api.url())
        .env("ADVERTISE_HOST", HOST)
        .env("DISCOVERY_HEARTBEAT_SECS", "0.5")
        .env("DISCOVERY_STALE_SECS", "1.5");
    if !extra.iter().any(|(k, _)| *k == "DISCOVERY_LISTEN") {
        cmd.env("DISCOVERY_LISTEN", format!("127.0.0.1:{}", free_port()));
    }
    cmd.envs(extra.iter().copied());
    let p = Proc::spawn("discovery", cmd);
    wait_for(
        Duration::from_secs(5),
        || p.log().contains("discovery starting"),
        "discovery start",
        &p,
    );
    p
}

/// Polls `f` to `limit`; on timeout the message carries discovery's log.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool, what: &str, p: &Proc) {
    wait::until_explained(
        limit,
        || f().then_some(()),
        || format!("{what}\n{}", p.log()),
    );
}

fn lookup(s: &Setup, name: &str) -> Option<Value> {
    let r =
        s.c.get(format!("{}/streams/{name}", s.api.url()))
            .send()
            .ok()?;
    (r.status() == 200).then(|| r.json().unwrap())
}

fn live_names(s: &Setup) -> Vec<String> {
    let v: Value =
        s.c.get(format!("{}/streams", s.api.url()))
            .send()
            .unwrap()
            .json()
            .unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

/// nginx-rtmp's way: write `<playlist>.bak`, then rename it over the playlist.
fn write_playlist(dir: &Path, seq: u64, end: bool) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{seq}.ts")), b"\x47segment").unwrap();
    let mut body = format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n{seq}.ts\n");
    if end {
        body.push_str("#EXT-X-ENDLIST\n");
    }
    let tmp = dir.join("index.m3u8.bak");
    fs::write(&tmp, body).unwrap();
    fs::rename(tmp, dir.join("index.m3u8")).unwrap();
}

/// Keeps rewriting a playlist every 300 ms until dropped (a live encoder).
struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn start(dir: PathBuf) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seq = 0;
            while !s.load(Ordering::Relaxed) {
                write_playlist(&dir, seq, false);
                seq += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Publisher {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn new_stream_is_registered_fast_and_kept_alive_past_the_ttl() {
    let s = setup(&[("STREAM_TTL_SECS", "2"), ("API_REPORT_TOKEN", "tok")]);
    let d = discovery(&s, s.hls.path(), &[("API_REPORT_TOKEN", "tok")]);
    wait_for(
        Duration::from_secs(5),
        || d.log().contains("watching HLS folder"),
        "watch",
        &d,
    );

    let t = Instant::now();
    write_playlist(&s.hls.path().join("golive"), 0, false);
    wait_for(
        Duration::from_secs(2),
        || lookup(&s, "golive").is_some(),
        "registration",
        &d,
    );
    let delay = t.elapsed();
    println!("playlist write -> registered at the API: {delay:?}");
    // Typically a few ms; the bound leaves room for a loaded CI machine.
    assert!(delay < Duration::from_millis(200), "{delay:?}");
    let v = lookup(&s, "golive").unwrap();
    assert_eq!(v["manifest"], "index.m3u8");
    assert_eq!(v["host"], HOST);

    // Heartbeats keep it alive well past the 2 s TTL.
    let _p = Publisher::start(s.hls.path().join("golive"));
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            lookup(&s, "golive").is_some(),
            "lost while live\n{}",
            d.log()
        );
    }
    let registered_lines = d.log().matches("registered").count();
    assert_eq!(
        registered_lines,
        1,
        "one log line per registration change, not per heartbeat:\n{}",
        d.log()
    );
}

#[test]
fn stale_and_ended_streams_are_deregistered() {
    let s = setup(&[("STREAM_TTL_SECS", "60")]);
    let d = discovery(&s, s.hls.path(), &[]);
    {
        let _p = Publisher::start(s.hls.path().join("stale"));
        wait_for(
            Duration::from_secs(3),
            || lookup(&s, "stale").is_some(),
            "registration",
            &d,
        );
    }
    // The encoder died: no more playlist changes. Deregistered after the
    // 1.5 s staleness window (long before the 60 s TTL).
    let t = Instant::now();
    wait_for(
        Duration::from_secs(4),
        || lookup(&s, "stale").is_none(),
        "stale deregistration",
        &d,
    );
    println!("stale -> deregistered after {:?}", t.elapsed());

    let dir = s.hls.path().join("ended");
    write_playlist(&dir, 0, false);
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "ended").is_some(),
        "registration",
        &d,
    );
    let t = Instant::now();
    write_playlist(&dir, 1, true);
    wait_for(
        Duration::from_secs(1),
        || lookup(&s, "ended").is_none(),
        "ENDLIST deregistration",
        &d,
    );
    println!("ENDLIST -> deregistered after {:?}", t.elapsed());
    assert!(d.log().contains("deregistered"));
}

#[test]
fn startup_scan_registers_live_streams_only() {
    let s = setup(&[]);
    write_playlist(&s.hls.path().join("already"), 3, false);
    let old = s.hls.path().join("old");
    write_playlist(&old, 1, false);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(old.join("index.m3u8"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let d = discovery(&s, s.hls.path(), &[]);
    wait_for(
        Duration::from_secs(2),
        || lookup(&s, "already").is_some(),
        "start-up scan",
        &d,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        lookup(&s, "old").is_none(),
        "a stream whose playlist is an hour old is not live"
    );
}

#[test]
fn sigterm_deregisters_live_streams() {
    let s = setup(&[]);
    let mut d = discovery(&s, s.hls.path(), &[]);
    let _a = Publisher::start(s.hls.path().join("a"));
    let _b = Publisher::start(s.hls.path().join("b"));
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "a").is_some() && lookup(&s, "b").is_some(),
        "registration",
        &d,
    );
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(5)), Some(Some(0)));
    assert!(lookup(&s, "a").is_none() && lookup(&s, "b").is_none());
}

#[test]
fn api_outage_loses_nothing() {
    let mut s = setup(&[]);
    let mut d = discovery(&s, s.hls.path(), &[]);
    let _old = Publisher::start(s.hls.path().join("before"));
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "before").is_some(),
        "registration",
        &d,
    );
    s.api.stop();
    let _new = Publisher::start(s.hls.path().join("during"));
    std::thread::sleep(Duration::from_secs(2));
    s.api.restart();
    let t = Instant::now();
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "during").is_some() && lookup(&s, "before").is_some(),
        "re-registration",
        &d,
    );
    println!("API back -> all streams registered after {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "within one heartbeat (0.5 s) plus slack"
    );
    assert!(d.is_running());
}

#[test]
fn rejected_reports_are_logged_once() {
    let s = setup(&[]);
    let mut cmd = Command::new(artifact("rtmp-live-discovery"));
    cmd.env_clear()
        .env("HLS_PATH", s.hls.path())
        .env("ADVERTISE_HOST", "http://bad/");
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "an invalid ADVERTISE_HOST stops discovery at start"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ADVERTISE_HOST"));
    // A token the API rejects: 401, logged once, no hot loop.
    let s = setup(&[("API_REPORT_TOKEN", "right")]);
    let port = free_port();
    let d = discovery(
        &s,
        s.hls.path(),
        &[
            ("API_REPORT_TOKEN", "wrong"),
            ("DISCOVERY_LISTEN", &format!("127.0.0.1:{port}")),
        ],
    );
    let _p = Publisher::start(s.hls.path().join("x"));
    // Rejected again at every heartbeat (0.5 s): three times, logged once.
    let rejected = r#"discovery_reports_total{op="register",result="rejected"}"#;
    wait_for(
        Duration::from_secs(5),
        || metrics(port)[rejected] >= 3.0,
        "three rejected reports",
        &d,
    );
    assert_eq!(d.log().matches("report rejected").count(), 1, "{}", d.log());
    let attempts = metrics(port)[rejected];
    assert!(attempts < 10.0, "{attempts} rejected reports: a hot loop");
    assert!(lookup(&s, "x").is_none());
}

#[test]
fn garbage_is_ignored() {
    let s = setup(&[]);
    let root = s.hls.path();
    let d = discovery(&s, root, &[]);
    fs::write(root.join("index.m3u8"), "#EXTM3U\n").unwrap();
    fs::write(root.join("notes.txt"), "hello").unwrap();
    fs::create_dir_all(root.join("bad.name")).unwrap();
    fs::write(root.join("bad.name/index.m3u8"), "#EXTM3U\n").unwrap();
    fs::create_dir_all(root.join("s")).unwrap();
    fs::write(root.join("s/index.m3u8.bak"), "#EXTM3U\n").unwrap();
    fs::write(root.join("s/.hidden.m3u8"), "#EXTM3U\n").unwrap();
    fs::write(root.join("s/1.ts"), "x").unwrap();
    fs::create_dir_all(root.join("deep/a/b")).unwrap();
    fs::write(root.join("deep/a/b/index.m3u8"), "#EXTM3U\n").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(live_names(&s), Vec::<String>::new());
    write_playlist(&root.join("real"), 0, false);
    wait_for(
        Duration::from_secs(2),
        || lookup(&s, "real").is_some(),
        "registration",
        &d,
    );
    assert_eq!(live_names(&s), vec!["real"]);
}

#[test]
fn abr_ladder_is_one_stream_with_the_master_manifest() {
    let s = setup(&[("STREAM_TTL_SECS", "2")]);
    let d = discovery(&s, s.hls.path(), &[]);
    let dir = s.hls.path().join("abr");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2800000\n720p/index.m3u8\n",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let d2 = dir.clone();
    let writer = std::thread::spawn(move || {
        let mut seq = 0;
        while !st.load(Ordering::Relaxed) {
            for r in ["720p", "480p", "240p"] {
                let rd = d2.join(r);
                fs::create_dir_all(&rd).unwrap();
                fs::write(
                    rd.join("index.m3u8.tmp"),
                    format!("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{seq}\n"),
                )
                .unwrap();
                fs::rename(rd.join("index.m3u8.tmp"), rd.join("index.m3u8")).unwrap();
            }
            seq += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    wait_for(
        Duration::from_secs(2),
        || lookup(&s, "abr").is_some(),
        "registration",
        &d,
    );
    // The master is written once; rendition updates keep the stream live.
    std::thread::sleep(Duration::from_secs(3));
    let v = lookup(&s, "abr").expect("still live");
    assert_eq!(v["manifest"], "master.m3u8");
    assert_eq!(live_names(&s), vec!["abr"], "renditions are not streams");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    wait_for(
        Duration::from_secs(4),
        || lookup(&s, "abr").is_none(),
        "deregistration",
        &d,
    );
}

#[test]
fn missing_folder_is_waited_for_and_a_recreated_one_rewatched() {
    let s = setup(&[]);
    let root = s.hls.path().join("not-yet");
    let mut d = discovery(&s, &root, &[]);
    wait_for(
        Duration::from_secs(3),
        || d.log().contains("HLS folder missing"),
        "missing log",
        &d,
    );
    write_playlist(&root.join("late"), 0, false);
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "late").is_some(),
        "registration after creation",
        &d,
    );

    fs::remove_dir_all(&root).unwrap();
    wait_for(
        Duration::from_secs(4),
        || lookup(&s, "late").is_none(),
        "deregistration on removal",
        &d,
    );
    // The folder is missed again before it is re-created.
    wait_for(
        Duration::from_secs(4),
        || d.log().matches("HLS folder missing").count() >= 2,
        "the removed folder to be missed",
        &d,
    );
    let _p = Publisher::start(root.join("again"));
    wait_for(
        Duration::from_secs(4),
        || lookup(&s, "again").is_some(),
        "registration after re-creation",
        &d,
    );
    assert!(d.is_running());
}

#[test]
fn streams_that_appear_during_an_outage_are_registered_within_a_heartbeat_of_its_end() {
    let mut s = setup(&[]);
    let heartbeat = Duration::from_secs(1);
    let d = discovery(
        &s,
        s.hls.path(),
        &[
            ("DISCOVERY_HEARTBEAT_SECS", "1"),
            ("DISCOVERY_STALE_SECS", "3"),
        ],
    );
    wait_for(
        Duration::from_secs(5),
        || d.log().contains("watching HLS folder"),
        "watch",
        &d,
    );
    s.api.stop();
    let names = ["one", "two", "three"];
    let _pubs: Vec<Publisher> = names
        .iter()
        .map(|n| Publisher::start(s.hls.path().join(n)))
        .collect();
    wait_for(
        Duration::from_secs(5),
        || d.log().matches("report failed").count() >= 3,
        "failed reports of all three streams",
        &d,
    );
    // Long enough for every worker's backoff to reach its cap.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(d.log().matches("report failed").count(), 3, "{}", d.log());
    s.api.restart();
    let t = Instant::now();
    wait_for(
        heartbeat + Duration::from_secs(2),
        || names.iter().all(|n| lookup(&s, n).is_some()),
        "registration of all three",
        &d,
    );
    let took = t.elapsed();
    println!("API back -> 3 streams born during the outage registered after {took:?}");
    assert!(
        took < heartbeat + Duration::from_millis(500),
        "within one heartbeat ({heartbeat:?}) plus slack: {took:?}"
    );
}

/// `GET /metrics` of a discovery listening on `port`, as series -> value.
fn metrics(port: u16) -> std::collections::HashMap<String, f64> {
    let text = rtmp_live_testkit::metrics::scrape(&format!("http://127.0.0.1:{port}/metrics"));
    assert!(!text.is_empty(), "no metrics from discovery on port {port}");
    rtmp_live_testkit::metrics::parse(&text)
        .into_iter()
        .collect()
}

#[test]
fn metrics_follow_streams_reports_failures_and_rescans() {
    let mut s = setup(&[]);
    let port = free_port();
    let d = discovery(
        &s,
        s.hls.path(),
        &[("DISCOVERY_LISTEN", &format!("127.0.0.1:{port}"))],
    );
    let ok = r#"discovery_reports_total{op="register",result="ok"}"#;
    let failed = r#"discovery_reports_total{op="register",result="failed"}"#;
    // The metrics listener may answer a moment before the start-up scan has
    // finished (CI: 0 rescans at the first scrape): wait for the scan.
    wait_for(
        Duration::from_secs(3),
        || metrics(port)["discovery_rescans_total"] >= 1.0,
        "the start-up scan",
        &d,
    );
    let m = metrics(port);
    assert_eq!(m["discovery_streams_watched"], 0.0, "{m:?}");
    assert_eq!(m[ok], 0.0);
    assert_eq!(m["discovery_report_failures_total"], 0.0);
    let rescans = m["discovery_rescans_total"];

    let p = Publisher::start(s.hls.path().join("m"));
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "m").is_some(),
        "registration",
        &d,
    );
    // Heartbeats (every 0.5 s) and periodic rescans follow.
    wait_for(
        Duration::from_secs(5),
        || {
            let m = metrics(port);
            m[ok] >= 2.0 && m["discovery_rescans_total"] > rescans
        },
        "a heartbeat and a periodic rescan",
        &d,
    );
    let m = metrics(port);
    assert_eq!(m["discovery_streams_watched"], 1.0);
    assert!(m[ok] >= 2.0, "first report and heartbeats: {m:?}");
    assert!(m["discovery_report_duration_seconds_count"] >= m[ok]);
    assert!(m["discovery_rescans_total"] > rescans, "periodic rescans");

    s.api.stop();
    wait_for(
        Duration::from_secs(3),
        || metrics(port)[failed] >= 1.0,
        "a failed report",
        &d,
    );
    let m = metrics(port);
    assert!(m["discovery_report_failures_total"] >= m[failed]);
    // Every metric is in the reference.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .unwrap();
    let text = rtmp_live_testkit::metrics::scrape(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(
        rtmp_live_testkit::metrics::undocumented(&text, &doc),
        Vec::<String>::new(),
        "metrics missing from docs/configuration.md"
    );
    s.api.restart();
    drop(p);
    // Stale after 1.5 s: deregistered, no longer watched.
    wait_for(
        Duration::from_secs(5),
        || {
            let m = metrics(port);
            m["discovery_streams_watched"] == 0.0
                && m[r#"discovery_reports_total{op="deregister",result="ok"}"#] >= 1.0
        },
        "stream retired",
        &d,
    );
}

#[test]
fn a_taken_listen_address_stops_discovery_at_start() {
    let hls = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(artifact("rtmp-live-discovery"))
        .env_clear()
        .env("HLS_PATH", hls.path())
        .env("ADVERTISE_HOST", HOST)
        .env("DISCOVERY_LISTEN", &addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "on_publish would fail: exit");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DISCOVERY_LISTEN"), "{text}");
}

#[test]
fn a_per_origin_token_registers_and_deregisters_its_host() {
    let s = setup(&[("API_ORIGIN_TOKENS", &format!("origin-token-a={HOST}"))]);
    let mut d = discovery(&s, s.hls.path(), &[("API_REPORT_TOKEN", "origin-token-a")]);
    let _p = Publisher::start(s.hls.path().join("mine"));
    wait_for(
        Duration::from_secs(3),
        || lookup(&s, "mine").is_some(),
        "registration with the origin's token",
        &d,
    );
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(5)), Some(Some(0)));
    assert!(lookup(&s, "mine").is_none(), "deregistered (DELETE ?host=)");
    assert!(!d.log().contains("rejected"), "{}", d.log());
}
