//! A stream outlives its origin: with two origins (`ORIGINS=2`, `REPLICAS`
//! 2 by default), the origin that takes a publish relays it to the other,
//! and both give the same playlists, parts and segments, byte for byte
//! (llhls/src/labels.rs). A viewer's edge that loses the viewer's origin
//! moves to the other one mid-stream, and the player (hls.js, defaults,
//! through the edge) goes on playing.
//!
//! The measured figures (stalls, freezes, glass-to-glass latency before
//! and after) are printed and left in `target/browser/replication.json`;
//! RELIABILITY.md ("Replicated origins") records them.

mod common;

use std::time::{Duration, Instant};

use common::web::*;
use common::*;
use serde_json::{json, Value};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u32 = 30;

/// `(MSN, part)` of the last part `text` lists (the part index within its
/// segment), and that of the next one (what a blocking reload asks for).
fn next_part(text: &str) -> Option<(u64, u64)> {
    let (seq, segs) = media_playlist(text);
    // parts after the last complete segment belong to the segment after it
    let tail = text.rsplit_once("#EXTINF").map_or(text, |(_, t)| t);
    let after_last: Vec<&str> = tail
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .collect();
    Some((seq + segs.len() as u64, after_last.len() as u64))
}

/// `path` from `origin`'s HTTP server directly (as an edge asks).
fn origin_get(p: &Platform, origin: usize, path: &str) -> Resp {
    get(&p.http, &format!("http://{}{path}", p.origin_host(origin)))
}

/// The URIs of the last part and the last segment `text` lists, and its
/// init segment.
fn last_media(text: &str) -> Vec<String> {
    let uri = |l: &str| {
        l.split("URI=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(String::from)
    };
    let lines: Vec<&str> = text.lines().collect();
    let last_tagged = |tag: &str| {
        lines
            .iter()
            .rev()
            .filter(|l| l.starts_with(tag))
            .find_map(|l| uri(l))
    };
    let seg = lines
        .iter()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.to_string());
    [last_tagged("#EXT-X-PART:"), seg, last_tagged("#EXT-X-MAP:")]
        .into_iter()
        .flatten()
        .collect()
}

/// The same blocking reload from both origins at once: each answers when
/// the part exists on it.
fn both(p: &Platform, path: &str) -> (Resp, Resp) {
    std::thread::scope(|s| {
        let a = s.spawn(|| origin_get(p, 1, path));
        let b = origin_get(p, 2, path);
        (a.join().expect("origin 1's request"), b)
    })
}

/// Origin `k`'s nginx: its master and workers.
fn origin_pids(p: &Platform, k: usize) -> Vec<i32> {
    let pid_file = p.origin_dir(k).join("nginx.pid");
    let master: i32 = std::fs::read_to_string(&pid_file)
        .expect("origin pid file")
        .trim()
        .parse()
        .expect("a pid");
    let mut pids = vec![master];
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(master) {
            if let Ok(pid) = e.file_name().to_string_lossy().parse() {
                pids.push(pid);
            }
        }
    }
    pids
}

fn signal_all(pids: &[i32], sig: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), sig);
    }
}

/// What happens to the viewer's origin.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGSTOP of its nginx (master and workers) for [`FROZEN`], then
    /// SIGCONT: a hung host.
    Freeze,
    /// SIGKILL of its nginx, master and workers at once (the OOM killer, a
    /// crashed host).
    Crash,
}

/// How long a frozen origin stays frozen.
const FROZEN: Duration = Duration::from_secs(15);
/// When the fault comes: this long after the player's first requests
/// reach its origin.
const FAULT_AFTER: Duration = Duration::from_secs(15);

/// One segment of a media playlist as a player knows it.
#[derive(Debug, PartialEq)]
struct Listed {
    msn: u64,
    /// Its discontinuity number.
    disc: u64,
    extinf: String,
    uri: String,
}

/// The segments `text` lists, and its lines after the last one (the parts
/// of the segment in progress and the preload hint).
fn listing(text: &str) -> (Vec<Listed>, String) {
    let tag = |l: &str, t: &str| l.strip_prefix(t).and_then(|v| v.trim().parse::<u64>().ok());
    let (mut msn, mut disc) = (0, 0);
    let mut extinf = String::new();
    let mut segs = Vec::new();
    let mut tail = Vec::new();
    for l in text.lines() {
        if let Some(v) = tag(l, "#EXT-X-MEDIA-SEQUENCE:") {
            msn = v;
        } else if let Some(v) = tag(l, "#EXT-X-DISCONTINUITY-SEQUENCE:") {
            disc = v;
        } else if l == "#EXT-X-DISCONTINUITY" {
            disc += 1;
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            extinf = v.to_string();
        } else if !l.is_empty() && !l.starts_with('#') {
            segs.push(Listed {
                msn,
                disc,
                extinf: std::mem::take(&mut extinf),
                uri: l.to_string(),
            });
            msn += 1;
            tail.clear();
            continue;
        }
        tail.push(l);
    }
    (segs, tail.join("\n"))
}

/// Whether two origins' playlists say the same: every segment both list
/// has the same number, discontinuity number, duration and name, at least
/// `common` of them, and the parts after them are the same. (An origin that
/// missed media lists less of the past; what both list is named alike.)
fn same_end(a: &str, b: &str, common: usize) -> Result<(), String> {
    let ((sa, ta), (sb, tb)) = (listing(a), listing(b));
    let first = sa
        .first()
        .map_or(0, |s| s.msn)
        .max(sb.first().map_or(0, |s| s.msn));
    let ca: Vec<&Listed> = sa.iter().filter(|s| s.msn >= first).collect();
    let cb: Vec<&Listed> = sb.iter().filter(|s| s.msn >= first).collect();
    if ca.len() < common || ca != cb {
        return Err(format!("segments both list differ:\n{ca:?}\n{cb:?}"));
    }
    if ta != tb {
        return Err(format!("parts differ:\n{ta}\n---\n{tb}"));
    }
    Ok(())
}

/// Both origins answer alike: `rounds` blocking reloads in a row answered
/// by both, and the last part, segment and init segment each lists, byte
/// for byte; the playlists identical (`whole`) or saying the same (see
/// [`same_end`]). Origins agree on a new session's date-times within about
/// a second of its start (llhls/src/sync.rs), so rounds that differ are
/// allowed for up to 20 s; the last difference is the failure's message.
fn compare_origins(p: &Platform, rounds: usize, whole: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut alike, mut last) = (0, String::new());
    while alike < rounds {
        assert!(
            Instant::now() < deadline,
            "{alike} of {rounds} revisions alike in a row after 20 s; the last difference: {last}"
        );
        match compare_once(p, whole) {
            Ok(()) => alike += 1,
            Err(e) => {
                alike = 0;
                last = e;
            }
        }
    }
}

fn compare_once(p: &Platform, whole: bool) -> Result<(), String> {
    let now = origin_get(p, 1, "/golive/index.m3u8").text();
    let (msn, part) = next_part(&now).ok_or("a playlist with parts")?;
    let path = format!("/golive/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    let (a, b) = both(p, &path);
    if (a.status, b.status) != (200, 200) {
        return Err(format!("{path}: {} and {}", a.status, b.status));
    }
    if whole && a.text() != b.text() {
        return Err(format!("{path}:\n{}\n---\n{}", a.text(), b.text()));
    }
    same_end(&a.text(), &b.text(), 3).map_err(|e| format!("{path}: {e}"))?;
    for uri in last_media(&a.text()) {
        let path = format!("/golive/{uri}");
        let (x, y) = both(p, &path);
        if (x.status, y.status) != (200, 200) || x.body != y.body {
            return Err(format!(
                "{path}: {} ({} bytes) and {} ({} bytes), not the same bytes",
                x.status,
                x.body.len(),
                y.status,
                y.body.len()
            ));
        }
    }
    Ok(())
}

/// hls.js (defaults) through the edge for `seconds`; `fault` comes to its
/// origin `k` once it has played a while. Returns its report.
fn watch_through(t: &Tools, p: &Platform, k: usize, fault: Fault, seconds: u64) -> Value {
    let name = format!("replication-{fault:?}").to_lowercase();
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            play(
                t,
                &p.edge_url("/golive/index.m3u8"),
                "hlsjs",
                "default",
                &name,
                HEIGHT,
                json!({ "seconds": seconds, "warmup": 5 }),
            )
        });
        // the player's first requests reach its origin, then it plays
        let log = p.origin_dir(k).join("access.log");
        let count = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(".m4s"))
                .count()
        };
        let before = count();
        wait_until(
            Duration::from_secs(60),
            "the player's part requests at its origin",
            || (count() > before + 10).then_some(()),
        );
        // the fault's schedule, not a wait for a result
        std::thread::sleep(FAULT_AFTER);
        let pids = origin_pids(p, k);
        match fault {
            Fault::Freeze => {
                signal_all(&pids, nix::sys::signal::Signal::SIGSTOP);
                println!("origin {k} frozen (SIGSTOP {pids:?}) for {FROZEN:?}");
                std::thread::sleep(FROZEN);
                signal_all(&pids, nix::sys::signal::Signal::SIGCONT);
            }
            Fault::Crash => {
                signal_all(&pids, nix::sys::signal::Signal::SIGKILL);
                println!("origin {k} SIGKILLed: {pids:?}");
            }
        }
        run.join().expect("the player's run")
    })
}

/// Why a run across `fault` does not count as playing on (empty when it
/// does). Always: a first frame, no fatal error, frames at the stream's
/// rate, the publisher's clock read. A crash: media time keeping up (90 %),
/// no stall, and no picture frozen longer than [`CRASH_FREEZE_MS`]. A
/// freeze: the edge waits a read timeout for a hung origin (4 s for a
/// blocking reload, 2 s for a part) each time it tries it (its failure
/// memory lasts 10 s), so the picture may freeze up to
/// [`FREEZE_FREEZE_MS`] and media time keep 80 % of the wall time.
fn across(fault: Fault, r: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if r["first_frame_ms"].is_null() {
        out.push(format!("no frame: {}", r["failures"]));
    }
    if r["fatal"].as_array().is_none_or(|a| !a.is_empty()) {
        out.push(format!("fatal: {}", r["fatal"]));
    }
    let kept = f(&r["media_time"]["ratio_after_warmup"]);
    let least = match fault {
        Fault::Crash => 0.9,
        Fault::Freeze => 0.8,
    };
    if kept.is_nan() || kept < least {
        out.push(format!(
            "media time {kept} of the wall time after the warm-up"
        ));
    }
    let rate = f(&r["fps_after_warmup"]);
    if rate.is_nan() || rate < 0.8 * f64::from(FPS) {
        out.push(format!("{rate} frames a second after the warm-up"));
    }
    if r["latency_ms"].is_null() {
        out.push("the publisher's clock was not read from the frames".into());
    }
    let freeze = f(&r["longest_freeze_after_warmup_ms"]);
    let stalls = r["stalls_after_warmup"].as_u64().unwrap_or(u64::MAX);
    match fault {
        Fault::Crash => {
            if stalls != 0 {
                out.push(format!("{stalls} stall(s): {}", r["stall_list"]));
            }
            if freeze.is_nan() || freeze > CRASH_FREEZE_MS {
                out.push(format!("picture frozen {freeze} ms"));
            }
        }
        Fault::Freeze => {
            if freeze.is_nan() || freeze > FREEZE_FREEZE_MS {
                out.push(format!("picture frozen {freeze} ms"));
            }
        }
    }
    out
}

/// The longest picture freeze allowed when the viewer's origin crashes
/// (measured: 58 to 1,383 ms; hls.js, at the moment of the crash, at times
/// loads the whole segment it has the parts of).
const CRASH_FREEZE_MS: f64 = 2_000.0;
/// When it hangs (measured: 4,119 ms; a blocking reload's read timeout,
/// 4 s, and the edge tries it again before it thaws).
const FREEZE_FREEZE_MS: f64 = 6_000.0;

#[test]
fn both_origins_name_everything_alike_and_a_viewer_survives_its_origin() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = tools();
    let p = Platform::start(2, false, &[]);
    let on_both = |p: &Platform| {
        wait_until(Duration::from_secs(60), "golive on both origins", || {
            let origins = p.api_stream("golive")?["origins"].as_array()?.len();
            let parts = (1..=2).all(|k| {
                let r = origin_get(p, k, "/golive/index.m3u8");
                r.status == 200 && r.text().contains("#EXT-X-PART:")
            });
            (origins == 2 && parts).then_some(())
        })
    };

    // The edge keeps each viewer on one origin (rendezvous over the
    // origins that have the stream). The faults are the viewer's origin's
    // alone, not the encoder's: the encoder publishes to the other one,
    // which relays the stream to the viewer's.
    let mut ingest = 1;
    let mut publisher = publish_clock(p.rtmp_port(ingest), &key("golive"), WIDTH, HEIGHT, FPS);
    on_both(&p);
    let viewers_origin = p.edge_get("/golive/index.m3u8").header("x-edge-origin");
    let k = (1..=2)
        .find(|k| p.origin_host(*k) == viewers_origin)
        .unwrap_or_else(|| panic!("the edge's origin {viewers_origin:?} is neither origin"));
    if k == ingest {
        // the encoder moves to the other origin: a new publish session on
        // both (after a discontinuity)
        drop(publisher);
        ingest = 3 - k;
        publisher = publish_clock(p.rtmp_port(ingest), &key("golive"), WIDTH, HEIGHT, FPS);
        wait_until(
            Duration::from_secs(60),
            "the new session on both origins",
            || {
                (1..=2)
                    .all(|o| {
                        let text = origin_get(&p, o, "/golive/index.m3u8").text();
                        text.rsplit_once("#EXT-X-DISCONTINUITY")
                            .is_some_and(|(_, after)| after.contains("#EXT-X-PART:"))
                    })
                    .then_some(())
            },
        );
    }
    println!("encoder on origin {ingest}, the viewer on origin {k} ({viewers_origin})");

    // Byte for byte: the same blocking reload answered by both origins,
    // then the last part, segment and init segment it lists.
    compare_origins(&p, 5, true);
    println!("5 playlist revisions, and their last part, segment and init: identical");

    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for (fault, seconds) in [(Fault::Freeze, 60), (Fault::Crash, 35)] {
        let r = watch_through(&t, &p, k, fault, seconds);
        assert!(publisher.is_running(), "publisher:\n{}", publisher.log());
        println!("{}", summary(&format!("hls.js, its origin: {fault:?}"), &r));
        let why = across(fault, &r);
        if !why.is_empty() {
            failed.push((format!("{fault:?}"), why));
        }
        reports.push(json!({ "fault": format!("{fault:?}"), "report": r }));
        if let Fault::Freeze = fault {
            // back, it gives what the other one gives again
            compare_origins(&p, 3, false);
            println!("origin {k} thawed: the origins agree again");
        }
    }
    let after = p.edge_get("/golive/index.m3u8");
    assert_eq!(after.status, 200);
    assert_ne!(after.header("x-edge-origin"), viewers_origin);
    let out = t.artifacts.join("replication.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_vec_pretty(&json!({ "viewers_origin": k, "runs": reports })).unwrap(),
    );
    fail_with(&failed);
}
