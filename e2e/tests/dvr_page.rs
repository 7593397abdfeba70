//! Rewinding on the edge's player page, in headless Chromium (hls.js): a
//! viewer of a live stream with a DVR window drags the seek bar back, the
//! stream plays from there at normal speed and stays there (hls.js does not
//! pull it back to live), the Live button returns to the live edge; once
//! the streamer stops, the session is listed under the player and plays as
//! a recording (e2e/browser/dvr.mjs drives the page).

mod common;

use std::time::Duration;

use common::web::{f, tools};
use common::*;
use rtmp_live_testkit::Proc;
use serde_json::{json, Value};

/// dvr.mjs with `opts` (the page, the browser and its profile added);
/// returns its report.
fn drive(p: &Platform, opts: Value) -> Value {
    let t = tools();
    let profile = tempfile::tempdir().unwrap();
    let mut o = opts;
    o["url"] = json!(p.edge_url("/#golive"));
    o["chromium"] = json!(t.chromium.display().to_string());
    o["userDataDir"] = json!(profile.path().display().to_string());
    o["screenshot"] = json!(t.artifacts.join("dvr-page.png").display().to_string());
    let mut cmd = std::process::Command::new("node");
    cmd.current_dir(&t.driver_dir)
        .args(["dvr.mjs", &o.to_string()]);
    let mut node = Proc::spawn("dvr-page", cmd);
    let code = node.wait_exit(Duration::from_secs(240));
    let log = node.log();
    let report = log
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("DVR_STATE "))
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    match (code, report) {
        (Some(Some(0)), Some(mut r)) => {
            let n = r["requests"].as_array().map_or(0, Vec::len);
            r["requests"] = json!(n);
            println!("dvr page: {r}");
            r
        }
        (code, _) => panic!("dvr.mjs failed (exit {code:?}):\n{log}"),
    }
}

#[test]
fn the_player_page_rewinds_returns_to_live_and_plays_the_recording() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "1"), ("DVR_WINDOW", "60s")]);
    // 50 s of stream: a window of 30 s is on the page after about 35 s, the
    // rewound part plays until ~45 s, then the session ends and is listed.
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 25, Some(50));
    wait_until(Duration::from_secs(30), "the stream at the edge", || {
        (p.edge_get("/golive/index.m3u8").status == 200).then_some(())
    });
    let r = drive(
        &p,
        json!({
            "window": 30, "windowTimeout": 60, "back": 20, "hold": 6,
            "recording": true, "recordingTimeout": 40,
        }),
    );
    assert!(f(&r["window"]) >= 30.0, "{r}");
    assert!(
        f(&r["behind_at_live"]) < 4.0,
        "starts at the live edge: {r}"
    );
    assert_eq!(r["live_button_hidden_at_live"], json!(true));
    // rewound 20 s: it plays from there, at 1x, and stays behind
    assert!(f(&r["seek_start_ms"]) < 10_000.0, "{r}");
    let rate = f(&r["rewound_rate"]);
    assert!(
        (0.8..=1.05).contains(&rate),
        "rewound playback at {rate}x: {r}"
    );
    assert!(
        f(&r["rewound_min_behind"]) > 12.0,
        "pulled back to live: {r}"
    );
    assert_eq!(r["live_button_shown_rewound"], json!(true));
    // the Live button
    assert!(f(&r["behind_after_live"]) < 4.0, "{r}");
    // the recording: the whole session, from its start
    let url = r["recording_url"].as_str().unwrap_or("");
    assert!(
        url.starts_with("/golive~") && url.ends_with("/index.m3u8"),
        "{r}"
    );
    assert!(f(&r["recording_duration"]) > 40.0, "{r}");
    assert!(f(&r["recording_start_time"]) < 10.0, "{r}");
    assert!(f(&r["recording_rate"]) > 0.8, "{r}");
    // no fatal error while the stream is live or the recording plays (the
    // ended live stream's own, before the recording is chosen, are in
    // fatal_after_end: hls.js may give up on a playlist that is gone)
    assert_eq!(r["fatal"], json!([]), "{r}");
    assert_eq!(r["failure"], Value::Null, "{r}");
    assert_eq!(r["page_errors"], json!([]), "{r}");
}
