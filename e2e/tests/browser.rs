//! A real browser plays the platform's streams: Debian's chromium, driven
//! by playwright-core (`e2e/browser/`, `make browser-deps`), runs hls.js
//! (`player/hls.min.js`, `make player`)
//!
//! - on a page served from another origin than the edge (CORS), and
//! - on the edge's own player page (`/`), which lists or accepts the stream.
//!
//! Nothing is skipped: a missing chromium, Node.js, playwright-core or
//! hls.js fails the test with the command that provides it. Screenshots go
//! to `target/browser/`. The cross-origin page watches 20 s, the edge's
//! player page `BROWSER_SECONDS` (default 10; longer to measure latency and
//! stalls, see BENCHMARKS.md); latency figures are printed.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use rtmp_live_testkit::{free_port, workspace_root, Proc};
use serde_json::{json, Value};

/// The browser, the Node.js driver and the player's hls.js, or a failure
/// naming what provides each.
struct Tools {
    chromium: PathBuf,
    driver_dir: PathBuf,
    hls_js: PathBuf,
    artifacts: PathBuf,
}

fn tools() -> Tools {
    let chromium = PathBuf::from(
        std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string()),
    );
    assert!(
        chromium.exists(),
        "{} not found: the browser test needs Debian's chromium \
         (`apt-get install chromium`, or `scripts/deps.sh` as root; CHROMIUM=<path> for another)",
        chromium.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.map(|o| o.status.success()).unwrap_or(false),
        "node not found: the browser test drives chromium from Node.js (install Node.js and npm)"
    );
    let driver_dir = workspace_root().join("e2e/browser");
    assert!(
        driver_dir.join("node_modules/playwright-core").exists(),
        "playwright-core not installed: run `make browser-deps` (npm ci --prefix e2e/browser)"
    );
    let hls_js = workspace_root().join("player/hls.min.js");
    assert!(
        hls_js.exists(),
        "{} not found: run `make player`",
        hls_js.display()
    );
    let artifacts = workspace_root().join("target/browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    Tools {
        chromium,
        driver_dir,
        hls_js,
        artifacts,
    }
}

/// A static HTTP server on its own port (so another origin than the edge)
/// serving the test page at `/` and hls.js at `/hls.min.js`. It lives until
/// the test process ends.
fn serve_test_page(t: &Tools) -> u16 {
    let page = std::fs::read(t.driver_dir.join("hls-page.html")).unwrap();
    let hls = std::fs::read(&t.hls_js).unwrap();
    let port = free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or("/");
            let (status, ctype, body): (&str, &str, &[u8]) = match path {
                "/" => ("200 OK", "text/html; charset=utf-8", &page),
                "/hls.min.js" => ("200 OK", "application/javascript", &hls),
                _ => ("404 Not Found", "text/plain", b"not found\n"),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                 Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
        }
    });
    port
}

/// Runs e2e/browser/play.mjs with `opts` (plus the browser and a fresh
/// profile) and returns its JSON report.
fn run_browser(t: &Tools, mut opts: Value) -> Value {
    let profile = tempfile::tempdir().unwrap();
    opts["chromium"] = json!(t.chromium.display().to_string());
    opts["userDataDir"] = json!(profile.path().display().to_string());
    let limit =
        opts["seconds"].as_u64().unwrap_or(20) + opts["startTimeout"].as_u64().unwrap_or(30);
    let mut cmd = Command::new("node");
    cmd.current_dir(&t.driver_dir)
        .arg("play.mjs")
        .arg(opts.to_string());
    let mut node = Proc::spawn("browser", cmd);
    let code = node.wait_exit(Duration::from_secs(limit + 90));
    let log = node.log();
    let report = log
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"how\""))
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    match (code, report) {
        (Some(Some(0)), Some(r)) => r,
        (code, _) => panic!("browser run failed (exit {code:?}):\n{log}"),
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The page played: no fatal hls.js error, and currentTime advanced through
/// the whole watch (by at least 80 % of it, never frozen for 5 samples, one
/// sample a second).
/// Returns the latency samples.
fn assert_played(what: &str, r: &Value, seconds: f64) -> Vec<f64> {
    let samples = r["samples"].as_array().expect("samples");
    let summary = format!(
        "{what}: fatal {}, errors {}, page errors {}, failed requests {}, samples {}",
        r["fatal"],
        r["errors"],
        r["page_errors"],
        r["failed_requests"],
        samples.len()
    );
    println!("{summary}");
    assert_eq!(r["fatal"], json!([]), "{summary}");
    assert_eq!(r["page_errors"], json!([]), "{summary}");
    // Every byte-range request (LL-HLS parts) got its range. A browser that
    // stored a part of a fragment still growing asks for the next one with
    // If-Range and gets the whole file (200), which hls.js appended as the
    // part, then stalled: the edge and origin forbid storing ranges.
    assert_eq!(r["ranges_not_partial"], json!([]), "{summary}");
    let times: Vec<f64> = samples.iter().map(|s| f(&s["current_time"])).collect();
    let advanced = times.last().unwrap() - times[0];
    let watched = (f(&samples.last().unwrap()["wall"]) - f(&samples[0]["wall"])) / 1000.0;
    println!(
        "{what}: started after {} ms, currentTime {:.1} -> {:.1} s over {:.1} s watched, stalls {}",
        r["started_after_ms"],
        times[0],
        times.last().unwrap(),
        watched,
        samples.last().unwrap()["stalls"]
    );
    let stall_at: Vec<usize> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1]["stalls"] != w[0]["stalls"])
        .map(|(i, _)| i + 1)
        .collect();
    println!("{what}: stalls in the seconds {stall_at:?} of the watch");
    assert!(
        watched >= seconds - 0.5,
        "{summary}: watched only {watched:.1} s"
    );
    assert!(
        advanced >= 0.8 * seconds,
        "{summary}: currentTime advanced {advanced:.1} s in {seconds} s: {times:?}"
    );
    for w in times.windows(5) {
        assert!(w[4] > w[0], "{summary}: playback froze: {times:?}");
    }
    assert!(
        samples.iter().all(|s| s["paused"] == json!(false)),
        "{summary}: paused"
    );
    samples
        .iter()
        .filter_map(|s| s["latency"].as_f64())
        .filter(|l| *l > 0.0)
        .collect()
}

fn print_latency(what: &str, lat: &[f64]) {
    let mut l = lat.to_vec();
    l.sort_by(f64::total_cmp);
    if l.is_empty() {
        println!("{what}: no latency samples");
        return;
    }
    let pick = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: hls.latency over {} samples: min {:.2} s, median {:.2} s, p90 {:.2} s, max {:.2} s",
        l.len(),
        l[0],
        pick(0.5),
        pick(0.9),
        l[l.len() - 1]
    );
}

/// One platform (one origin, no ABR: the ladder's transcoding would take
/// the CPU the browser needs), one ffmpeg publisher, two browser runs.
#[test]
fn hls_js_plays_through_the_edge_in_chromium() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = tools();
    let watch: u64 = 20;
    let watch_page: u64 = std::env::var("BROWSER_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(10);
    // LL-HLS is on by default, as in `make up`; `LLHLS=0 cargo test --test
    // browser` checks the plain playlists only.
    let ll = std::env::var("LLHLS").map_or(true, |v| v != "0");
    let p = Platform::start(1, false, &[("LLHLS", if ll { "1" } else { "0" })]);
    let origin = p.origin_host(1);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, None);
    wait_until(Duration::from_secs(30), "2 segments at the edge", || {
        let r = p.edge_get("/golive/index.m3u8");
        (r.status == 200 && media_playlist(&r.text()).1.len() >= 2).then_some(())
    });

    // The edge serves the page and its scripts; other paths stay JSON 404s.
    let page = p.edge_get("/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text().contains("/player.js"));
    let js = p.edge_get("/player.js");
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .starts_with("application/javascript"));
    let hls = p.edge_get("/hls.min.js");
    assert_eq!(hls.status, 200);
    assert_eq!(hls.body, std::fs::read(&t.hls_js).unwrap());
    let other = p.edge_get("/index.html");
    assert_eq!(other.status, 404);
    assert!(other.text().starts_with("{\"error\""), "{}", other.text());

    // The names the page can list: offered by the edge or not, never with
    // origin addresses.
    let names = p.edge_get("/streams.json");
    let listed = names.status == 200;
    println!(
        "/streams.json: {} {}",
        names.status,
        names.text().trim_end()
    );
    assert!(!names.text().contains(&origin), "{}", names.text());
    if listed {
        let v: Value = serde_json::from_slice(&names.body).unwrap();
        assert!(
            v["streams"].as_array().unwrap().contains(&json!("golive")),
            "{v}"
        );
    }

    // 1. hls.js on a page of another origin, straight from the edge.
    let site = serve_test_page(&t);
    let src = p.edge_url("/golive/index.m3u8");
    let shot = t.artifacts.join("cross-origin.png");
    let r = run_browser(
        &t,
        json!({
            "url": format!("http://127.0.0.1:{site}/?src={src}"),
            "mode": "hls",
            "seconds": watch,
            "screenshot": shot.display().to_string(),
        }),
    );
    assert_eq!(r["mse_h264"], json!(true), "chromium without H.264 MSE");
    let lat = assert_played("cross-origin page", &r, watch as f64);
    print_latency("cross-origin page", &lat);
    let reqs: Vec<&str> = r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let edge_prefix = p.edge_url("/golive/");
    assert!(
        reqs.iter().filter(|u| u.starts_with(&edge_prefix)).count() > watch as usize / 2,
        "segments and playlists came from the edge: {reqs:?}"
    );
    println!("screenshot: {}", shot.display());

    // 2. The edge's player page: the stream is picked from the list (when
    //    the edge offers one) or typed, and plays from /golive/index.m3u8
    //    (no ABR master here). Everything it loads comes from the edge.
    let shot = t.artifacts.join("edge-player.png");
    let r = run_browser(
        &t,
        json!({
            "url": p.edge_url("/"),
            "mode": "edge-page",
            "stream": "golive",
            "seconds": watch_page,
            "screenshot": shot.display().to_string(),
        }),
    );
    println!(
        "edge page: stream chosen by {} (list {})",
        r["how"], r["list"]
    );
    assert_eq!(r["how"], json!(if listed { "list" } else { "typed" }));
    let lat = assert_played("edge player page", &r, watch_page as f64);
    print_latency("edge player page", &lat);
    let last = r["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["url"], json!("/golive/index.m3u8"));
    assert_eq!(last["levels"], json!(1));
    // LL-HLS exactly when the origin's LL component offers parts.
    assert_eq!(last["ll"], json!(ll), "player page's choice of LL-HLS");
    let edge_root = p.edge_url("/");
    for u in r["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
    {
        assert!(
            u.starts_with(&edge_root) || u.starts_with("blob:") || u.starts_with("data:"),
            "the page loaded {u}"
        );
    }
    let text = r["text"].as_str().unwrap_or("");
    assert!(
        !text.contains(&origin),
        "origin address on the page: {text}"
    );
    assert!(text.contains("latency"), "{text}");
    println!("edge page readout: {}", text.replace('\n', " | "));
    println!("screenshot: {}", shot.display());

    // 3. hls.js with its defaults (lowLatencyMode is on by default) on the
    //    same URL: it finds the LL-HLS tags (the origin's LL component) and
    //    plays from byte-range parts through the edge.
    if !ll {
        println!("LL-HLS browser run skipped: LLHLS=0");
        return;
    }
    let shot = t.artifacts.join("ll-hls-defaults.png");
    let r = run_browser(
        &t,
        json!({
            "url": format!("http://127.0.0.1:{site}/?config=defaults&src={src}"),
            "mode": "hls",
            "seconds": watch,
            "screenshot": shot.display().to_string(),
        }),
    );
    let lat = assert_played("hls.js defaults, LL-HLS", &r, watch as f64);
    print_latency("hls.js defaults, LL-HLS", &lat);
    println!("hls.js defaults, LL-HLS: loaded {}", r["loaded"]);
    // 1/3 s parts: about three a second once playing; at least one a second.
    assert!(
        r["loaded"]["parts"].as_u64().unwrap_or(0) >= watch,
        "hls.js loaded too few parts: {}",
        r["loaded"]
    );
    println!("screenshot: {}", shot.display());
}

/// ABR on: the player page finds the master playlist, offers the ladder in
/// its rendition picker (auto by default) and switches when a rendition is
/// picked. The ladder's transcoding takes about a core, so this run
/// watches 20 s and does not measure latency.
#[test]
fn player_page_plays_the_abr_master_and_switches_renditions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = tools();
    let p = Platform::start(1, true, &[]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, None);
    wait_until(
        Duration::from_secs(60),
        "the master and 2 segments of each rendition at the edge",
        || {
            let master = p.edge_get("/golive/master.m3u8");
            let ready = master.status == 200
                && ["720p", "480p", "240p"].iter().all(|r| {
                    let pl = p.edge_get(&format!("/golive/{r}/index.m3u8"));
                    pl.status == 200 && media_playlist(&pl.text()).1.len() >= 2
                });
            ready.then_some(())
        },
    );
    // The 720p rung of a fresh 640x360 stream could only copy the 480p
    // one: it is a stub, not listed (abr/src/master.rs).
    let text = p.edge_get("/golive/720p/index.m3u8").text();
    let (_, segs) = media_playlist(&text);
    let stub = ffprobe(&segment_media(
        &p,
        "/golive/720p",
        &text,
        &segs.last().unwrap().1,
    ));
    assert!(
        stub.streams
            .iter()
            .any(|s| s.0 == "video" && (s.2, s.3) == (28, 16)),
        "{:?}",
        stub.streams
    );
    assert!(!p.edge_get("/golive/master.m3u8").text().contains("720p/"));

    let shot = t.artifacts.join("edge-player-abr.png");
    let r = run_browser(
        &t,
        json!({
            "url": p.edge_url("/"),
            "mode": "edge-page",
            "stream": "golive",
            "seconds": 20,
            "pick": "240p",
            "pickAfter": 6,
            "startTimeout": 40,
            "screenshot": shot.display().to_string(),
        }),
    );
    assert_played("edge player page, ABR", &r, 20.0);
    println!("picker: {}; picked {}", r["options"], r["picked"]);
    let samples = r["samples"].as_array().unwrap();
    let last = samples.last().unwrap();
    assert_eq!(last["url"], json!("/golive/master.m3u8"));
    // of the 640x360 source, the ladder lists 480p (at 640x360) and 240p:
    // its 720p rung would be a copy of the 480p one
    assert_eq!(last["levels"], json!(2));
    let options: Vec<&str> = r["options"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(options.len(), 3, "{options:?}");
    assert_eq!(options[0], "auto");
    // hls.js orders the levels by bitrate; the picker names them by height:
    // the ladder does not upscale the 640x360 source
    for (o, h) in options[1..].iter().zip(["240p", "360p"]) {
        assert!(o.starts_with(h), "{options:?}");
    }
    // Auto until the pick, then the picked rendition (after the buffer
    // ahead of it has played out).
    let at = r["picked"]["at_sample"].as_u64().unwrap() as usize;
    assert!(samples[..at].iter().all(|s| s["auto"] == json!(true)));
    let heights: Vec<u64> = samples
        .iter()
        .map(|s| s["level"]["height"].as_u64().unwrap_or(0))
        .collect();
    println!("rendition heights per second: {heights:?}");
    assert!(
        samples[samples.len() - 4..]
            .iter()
            .all(|s| s["auto"] == json!(false) && s["level"]["height"] == json!(240)),
        "240p picked at sample {at}: {heights:?}"
    );
    println!("screenshot: {}", shot.display());
}

/// The player page's messages (player/player.js).
const NEEDS_LINK: &str = "this stream needs a valid playback link (403)";
const MALFORMED_TOKEN: &str = "this playback link's token is malformed";

/// How long [`play_in_page`] waits for playback (or the page giving up),
/// then for a viewer count.
const PAGE_START_SECS: u64 = 30;
const PAGE_VIEWERS_SECS: u64 = 30;

/// The edge's player page opened at `page_path` (`/#golive`,
/// `/t/<token>/#golive`) in chromium; with `typed`, that is typed into the
/// name field and Play pressed (after the list's first answer, and its own
/// pick). Then until the page plays (currentTime advancing) or gives up
/// (`rtmpLive.failure`); once playing, until it shows a viewer count
/// (at most PAGE_VIEWERS_SECS) and for at least 3 s; given up, 3 s more
/// (to see any retry).
///
/// Returns window.rtmpLive's state then (`name`, `url`, `prefix`,
/// `viewers`, `counts`, `list`, `started`, `playing` (an hls.js instance),
/// `stalls`, `ll`, `fatal`, `errors`, `failure`) and what the page showed
/// and did: `status_line`, `watching`, `list_text`, `name_field`,
/// `location` (path and hash), `ended` ("playing", "failure", or null:
/// neither in time), `time_at_start`, `time_at_end` (video.currentTime),
/// `requests` (every URL it loaded), `page_errors`.
fn play_in_page(p: &Platform, page_path: &str, typed: Option<&str>) -> Value {
    let t = tools();
    let profile = tempfile::tempdir().unwrap();
    let shot = t.artifacts.join("edge-player-state.png");
    let opts = json!({
        "url": p.edge_url(page_path),
        "typed": typed,
        "chromium": t.chromium.display().to_string(),
        "userDataDir": profile.path().display().to_string(),
        "startTimeout": PAGE_START_SECS,
        "viewersTimeout": PAGE_VIEWERS_SECS,
        "screenshot": shot.display().to_string(),
    });
    let mut cmd = Command::new("node");
    cmd.current_dir(&t.driver_dir)
        .args(["page-state.mjs", &opts.to_string()]);
    let mut node = Proc::spawn("page-state", cmd);
    let code = node.wait_exit(Duration::from_secs(
        PAGE_START_SECS + PAGE_VIEWERS_SECS + 90,
    ));
    let log = node.log();
    let state = log
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PAGE_STATE "))
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    match (code, state) {
        (Some(Some(0)), Some(s)) => {
            let mut brief = s.clone();
            brief["requests"] = json!(s["requests"].as_array().map_or(0, Vec::len));
            println!("page {page_path} (typed {typed:?}): {brief}");
            s
        }
        (code, _) => panic!("browser run failed (exit {code:?}):\n{log}"),
    }
}

/// The URLs the page loaded.
fn page_requests(s: &Value) -> Vec<&str> {
    s["requests"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// [`play_in_page`] played `url` (with the token prefix `prefix`): no
/// failure, currentTime advancing, nothing loaded from anywhere but the
/// edge.
fn assert_page_played(what: &str, p: &Platform, s: &Value, url: &str, prefix: &str) {
    assert_eq!(s["ended"], json!("playing"), "{what}: {s}");
    assert_eq!(s["failure"], Value::Null, "{what}: {s}");
    assert_eq!(s["status_line"], json!(""), "{what}: {s}");
    assert_eq!(s["page_errors"], json!([]), "{what}: {s}");
    assert_eq!(s["url"], json!(url), "{what}");
    assert_eq!(s["prefix"], json!(prefix), "{what}");
    assert!(
        f(&s["time_at_end"]) > f(&s["time_at_start"]) + 1.0,
        "{what}: currentTime {} -> {}",
        s["time_at_start"],
        s["time_at_end"]
    );
    let edge_root = p.edge_url("/");
    for u in page_requests(s) {
        assert!(
            u.starts_with(&edge_root) || u.starts_with("blob:") || u.starts_with("data:"),
            "{what}: the page loaded {u}"
        );
    }
}

/// The viewer count the page showed for the stream it plays: a number,
/// the same beside the player ("3 watching") and in the list ("golive 3").
fn assert_viewers_shown(what: &str, s: &Value) -> u64 {
    let n = s["viewers"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: no viewer count on the page: {s}"));
    assert!(n >= 1, "{what}: the page itself watches: {s}");
    assert_eq!(s["watching"], json!(format!("{n} watching")), "{what}");
    let list = s["list_text"].as_str().unwrap_or("");
    assert!(
        list.contains(&format!("golive {n}")),
        "{what}: list {list:?}"
    );
    n
}

/// [`play_in_page`] gave up with `message` in the status line and asked
/// nothing under `/t/` (`requested_t`: false) or stopped asking (no more
/// than the master probe and a few playlist or segment requests for the
/// stream: no retrying).
fn assert_page_refused(what: &str, s: &Value, message: &str, requested_t: bool) {
    assert_eq!(s["ended"], json!("failure"), "{what}: {s}");
    assert_eq!(s["failure"], json!(message), "{what}: {s}");
    assert_eq!(s["status_line"], json!(message), "{what}: {s}");
    assert_eq!(s["page_errors"], json!([]), "{what}: {s}");
    let reqs = page_requests(s);
    let under_t: Vec<&&str> = reqs
        .iter()
        .filter(|u| u.contains("/t/") && u.contains("/golive/"))
        .collect();
    if requested_t {
        assert!(under_t.len() <= 4, "{what}: retried: {under_t:?}");
    } else {
        assert!(under_t.is_empty(), "{what}: requested {under_t:?}");
    }
}

/// The player page shows the viewer counts the API reports
/// (`/streams.json`'s `viewers`): the playing stream's beside the player
/// (`window.rtmpLive.viewers`, "N watching") and each listed stream's in
/// the list; and it takes playback links typed into its name field: a
/// link from another host plays from this edge (that host is never
/// asked), a malformed signed link is refused with a message and no
/// request. Signed links themselves (signing on): [`signed_link_checks`].
#[test]
fn player_page_shows_the_viewer_count_and_plays_a_signed_link() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, None);
    wait_until(Duration::from_secs(30), "2 segments at the edge", || {
        let r = p.edge_get("/golive/index.m3u8");
        (r.status == 200 && media_playlist(&r.text()).1.len() >= 2).then_some(())
    });

    // The list with its counts: { "golive": <count> } beside the names.
    let names = p.edge_get("/streams.json");
    assert_eq!(names.status, 200, "{}", names.text());
    let v: Value = serde_json::from_slice(&names.body).unwrap();
    println!("/streams.json: {v}");
    assert!(
        v["streams"].as_array().unwrap().contains(&json!("golive")),
        "{v}"
    );
    assert!(v["viewers"]["golive"].is_u64(), "no viewer count: {v}");

    // 1. The page at /#golive plays the stream, unsigned, and shows its
    //    viewer count (this page's own playback at least).
    let s = play_in_page(&p, "/#golive", None);
    assert_page_played("page at /#golive", &p, &s, "/golive/index.m3u8", "");
    let n = assert_viewers_shown("page at /#golive", &s);
    println!("page at /#golive: {n} watching");
    assert_eq!(s["location"], json!("/#golive"));

    // 2. A link to the stream on another host, typed: its name plays from
    //    this edge; the other host is never asked.
    let s = play_in_page(&p, "/", Some("https://edge.example/golive/index.m3u8"));
    assert_page_played("typed foreign link", &p, &s, "/golive/index.m3u8", "");

    // 3. Malformed signed links, typed: a message, nothing asked under
    //    /t/ (what played before goes on).
    let sig = "A".repeat(43);
    for (typed, message) in [
        (
            "/t/123.short/golive/index.m3u8".to_string(),
            MALFORMED_TOKEN,
        ),
        (
            format!("https://edge.example/t/1234567890123.{sig}/golive/index.m3u8"),
            MALFORMED_TOKEN,
        ),
        (
            format!("/t/1999999999.{sig}/go%20live/index.m3u8"),
            "this playback link names no valid stream",
        ),
    ] {
        let s = play_in_page(&p, "/", Some(&typed));
        assert_page_refused(&format!("typed {typed}"), &s, message, false);
    }
    // The page opened at a malformed token (if the edge serves it there):
    // the same, and no stream is picked from the list either.
    let at_malformed = p.edge_get("/t/123.short/");
    if at_malformed.status == 200 && at_malformed.header("content-type").starts_with("text/html") {
        let s = play_in_page(&p, "/t/123.short/#golive", None);
        assert_page_refused("page at a malformed token", &s, MALFORMED_TOKEN, false);
        assert_eq!(s["name"], Value::Null);
    }
}

/// The player page with signed playback links, on a platform whose edge
/// requires them (signing on) and plays golive: `token` signs golive,
/// `bad_token` is well-formed but refused (tampered, expired, or for
/// another stream).
///
/// - The page at `/t/<token>/#golive` plays `/t/<token>/golive/...`.
/// - A full signed URL of another host, and a signed path, typed into the
///   page at `/`: the same, from this edge.
/// - Unsigned (`/#golive`) and with `bad_token`: "this stream needs a
///   valid playback link (403)", and no retrying.
fn signed_link_checks(p: &Platform, token: &str, bad_token: &str) {
    let prefix = format!("/t/{token}");
    let url = format!("{prefix}/golive/index.m3u8");
    let page = format!("{prefix}/#golive");
    let s = play_in_page(p, &page, None);
    assert_page_played("page at the signed link", p, &s, &url, &prefix);
    assert_viewers_shown("page at the signed link", &s);
    assert_eq!(s["location"], json!(page));
    // Every playlist and segment through the token's path.
    for u in page_requests(&s) {
        if u.contains("/golive/") {
            assert!(
                u.starts_with(&p.edge_url(&format!("{prefix}/golive/"))),
                "{u}"
            );
        }
    }
    for typed in [format!("https://edge.example{url}"), url.clone()] {
        let s = play_in_page(p, "/", Some(&typed));
        assert_page_played(&format!("typed {typed}"), p, &s, &url, &prefix);
        // The address bar became the signed page link.
        assert_eq!(s["location"], json!(page));
    }
    let s = play_in_page(p, "/#golive", None);
    assert_page_refused("unsigned", &s, NEEDS_LINK, false);
    let stream_reqs = page_requests(&s)
        .iter()
        .filter(|u| u.contains("/golive/"))
        .count();
    assert!(stream_reqs <= 2, "unsigned: retried: {s}");
    let s = play_in_page(p, &format!("/t/{bad_token}/#golive"), None);
    assert_page_refused("bad token", &s, NEEDS_LINK, true);
}

/// The player page on a platform that requires signed links
/// (`EDGE_PLAYBACK_SIGNED=on`), with a link the API issued
/// ([`signed_link_checks`]).
#[test]
fn player_page_plays_signed_links() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("EDGE_PLAYBACK_SIGNED", "on")]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, None);
    let operator = std::fs::read_to_string(p.state_dir().join("api-operator-token")).unwrap();
    let issue = |name: &str| -> String {
        let r = p
            .http
            .post(p.api_url(&format!("/streams/{name}/playback-tokens")))
            .bearer_auth(operator.trim())
            .json(&json!({}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (token, other) = (issue("golive"), issue("other"));
    wait_until(Duration::from_secs(30), "2 segments at the edge", || {
        let r = p.edge_get(&format!("/t/{token}/golive/index.m3u8"));
        (r.status == 200 && media_playlist(&r.text()).1.len() >= 2).then_some(())
    });
    signed_link_checks(&p, &token, &other);
}
