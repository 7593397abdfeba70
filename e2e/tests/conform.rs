//! The platform's LL-HLS, followed through the edge by the conformance
//! checker (`rtmp-live-conform`, `conform/`) exactly as a strict RFC 8216bis
//! client would, for `CONFORM_SECONDS` (default 25; `make chaos` runs it
//! for 10 minutes): every playlist revision by blocking reloads, every part and
//! segment fetched and decoded, the preload hint requested before its part
//! exists, delta updates, and (ABR) rendition reports and the master
//! playlist's CODECS, RESOLUTION and BANDWIDTH against the media. Zero
//! findings, plain and ABR; hls-parser's strict checks too.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use rtmp_live_testkit::{artifact, workspace_root};

fn seconds() -> u64 {
    std::env::var("CONFORM_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25)
}

/// Runs the checker on `url`; its report goes to `target/conform-<name>.json`.
fn check(url: &str, name: &str) {
    let bin = artifact("rtmp-live-conform");
    let hls_parser = workspace_root().join("conform/node_modules/hls-parser");
    assert!(
        hls_parser.exists(),
        "hls-parser not installed: run `make conform-deps` (npm ci --prefix conform)"
    );
    let dir = workspace_root().join("target/conform");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join(format!("{name}.json"));
    let saved = tempfile::tempdir().unwrap();
    let out = Command::new(&bin)
        .arg("--url")
        .arg(url)
        .arg("--seconds")
        .arg(seconds().to_string())
        .arg("--report")
        .arg(&report)
        .arg("--save-dir")
        .arg(saved.path())
        .arg("--hls-parser")
        .output()
        .expect("rtmp-live-conform");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "findings on {url} (report: {}):\n{stdout}{stderr}",
        report.display()
    );
}

#[test]
fn ll_hls_conforms_through_the_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "1")]);
    let _publisher = publish_clock(p.rtmp_port(1), &key("golive"), 640, 360, 30);
    let path = "/golive/index.m3u8";
    wait_until(Duration::from_secs(40), "two segments at the edge", || {
        let r = p.edge_get(path);
        (r.status == 200 && media_playlist(&r.text()).1.len() >= 2).then_some(())
    });
    check(&p.edge_url(path), "plain");
}

#[test]
fn ll_hls_abr_conforms_through_the_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, true, &[("LLHLS", "1")]);
    let _publisher = publish_clock(p.rtmp_port(1), &key("golive"), 854, 480, 30);
    let master = "/golive/master.m3u8";
    // every rendition with two segments
    wait_until(Duration::from_secs(60), "the ladder's renditions", || {
        let r = p.edge_get(master);
        if r.status != 200 {
            return None;
        }
        let uris: Vec<String> = r
            .text()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        (uris.len() >= 2
            && uris.iter().all(|u| {
                let r = p.edge_get(&format!("/golive/{u}"));
                r.status == 200 && media_playlist(&r.text()).1.len() >= 2
            }))
        .then_some(())
    });
    check(&p.edge_url(master), "abr");
}
