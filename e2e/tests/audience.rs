//! Audience, on the platform as `make up` runs it: signed playback links
//! (issued by the API, checked by the edge before routing, kept out of the
//! cache keys) and viewer counts (counted by the edge, summed by the API).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use rtmp_live_types::playback;
use serde_json::Value;

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn state_file(p: &Platform, name: &str) -> String {
    std::fs::read_to_string(p.state_dir().join(name))
        .unwrap()
        .trim()
        .to_string()
}

/// `POST /streams/{name}/playback-tokens` with the operator's token.
fn issue(p: &Platform, name: &str, body: Value) -> Value {
    let r = p
        .http
        .post(p.api_url(&format!("/streams/{name}/playback-tokens")))
        .bearer_auth(state_file(p, "api-operator-token"))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "issuing a token for {name}");
    r.json().unwrap()
}

/// The playlist at `path` once it lists a segment, and that segment's name.
fn live_playlist(p: &Platform, path: &str) -> String {
    wait_until(Duration::from_secs(60), "the stream at the edge", || {
        let r = p.edge_get(path);
        let text = r.text();
        let seg = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())?;
        (r.status == 200).then(|| seg.to_string())
    })
}

fn assert_forbidden(p: &Platform, path: &str, why: &str) {
    let r = p.edge_get(path);
    assert_eq!(r.status, 403, "{why}: {path}: {}", r.text());
    assert_eq!(r.header("content-type"), "application/json", "{why}");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["error"].is_string(), "{why}: {v}");
}

#[test]
fn signed_playback_everywhere_keeps_one_cache() {
    let _g = lock();
    let p = Platform::start(1, false, &[("EDGE_PLAYBACK_SIGNED", "on")]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "the stream registered", || {
        p.api_stream("golive")
    });

    // No token: refused before anything is looked up.
    assert_forbidden(&p, "/golive/index.m3u8", "no token");

    let a = issue(&p, "golive", serde_json::json!({}));
    let b = issue(&p, "golive", serde_json::json!({"ttl_secs": 60}));
    let (ta, tb) = (a["token"].as_str().unwrap(), b["token"].as_str().unwrap());
    assert_ne!(ta, tb);
    assert_eq!(
        a["path"].as_str().unwrap(),
        format!("/t/{ta}/golive/index.m3u8")
    );
    let seg = live_playlist(&p, &format!("/t/{ta}/golive/index.m3u8"));

    // Two viewers with different tokens share the cached segment: the token
    // is in no cache key (nor sent to the origin).
    let first = p.edge_get(&format!("/t/{ta}/golive/{seg}"));
    assert_eq!(first.status, 200);
    let second = p.edge_get(&format!("/t/{tb}/golive/{seg}"));
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-cache-status"), "HIT", "{seg}");
    assert_eq!(first.body, second.body);
    let origin_log = std::fs::read_to_string(p.origin_dir(1).join("access.log")).unwrap();
    assert!(!origin_log.contains(ta) && !origin_log.contains(tb));

    // Refused: expired, tampered, another stream's, another address's,
    // malformed, and a token on a path outside the stream.
    let secret = std::fs::read(p.state_dir().join("playback-secret")).unwrap();
    let secret = secret.trim_ascii_end();
    let expired = playback::sign(secret, "golive", unix_now() - 5, None);
    assert_forbidden(&p, &format!("/t/{expired}/golive/index.m3u8"), "expired");
    let mut tampered = ta.to_string().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_forbidden(&p, &format!("/t/{tampered}/golive/{seg}"), "tampered");
    let later = ta.replacen('.', "0.", 1);
    assert_forbidden(&p, &format!("/t/{later}/golive/index.m3u8"), "expiry moved");
    let other = issue(&p, "other", serde_json::json!({}));
    let to = other["token"].as_str().unwrap();
    assert_forbidden(
        &p,
        &format!("/t/{to}/golive/index.m3u8"),
        "another stream's",
    );
    let far = playback::sign(secret, "golive", unix_now() + 60, Some("192.0.2.7"));
    assert_forbidden(
        &p,
        &format!("/t/{far}/golive/index.m3u8"),
        "another address",
    );
    assert_forbidden(&p, "/t/123.abc/golive/index.m3u8", "malformed");
    // A flood of forged tokens for made-up streams is refused before any
    // routing: no lookup, no route, nothing counted.
    let requests = |m: &str| -> u64 {
        m.lines()
            .filter(|l| l.starts_with("edge_router_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let before = requests(&p.edge_get("/metrics").text());
    let sig = &ta[ta.len() - playback::SIG_LEN..];
    for i in 0..200 {
        let path = format!("/t/{}.{sig}/flood{i}/index.m3u8", unix_now() + 60);
        assert_eq!(p.edge_get(&path).status, 403, "{path}");
    }
    let metrics = p.edge_get("/metrics").text();
    assert_eq!(requests(&metrics), before, "refused requests were routed");
    assert!(!metrics.contains("flood"), "made-up streams counted");
    // Bound to the viewer's own address: allowed.
    let here = issue(&p, "golive", serde_json::json!({"address": "127.0.0.1"}));
    let th = here["token"].as_str().unwrap();
    assert!(th.contains(".a."), "{th}");
    assert_eq!(p.edge_get(&format!("/t/{th}/golive/{seg}")).status, 200);

    // A real player plays the signed link end to end (playlist, segments
    // by their relative URLs).
    let url = p.edge_url(&format!("/t/{ta}/golive/index.m3u8"));
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-rw_timeout",
            "10000000",
        ])
        .args(["-i", &url, "-t", "3", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each refusal is one access-log line, without the token (the error
    // log says why at the `info` level, below the platform's `notice`).
    let access = std::fs::read_to_string(p.state_dir().join("edge-access.log")).unwrap();
    let refused = access
        .lines()
        .filter(|l| l.contains("\"status\":403"))
        .count();
    assert!(refused >= 7, "{refused} refusals logged");
    assert!(!access.contains(ta) && !access.contains(&tampered));
}

/// A viewer fetching `path` from `edge` every 0.5 s from its own loopback
/// address, until `stop`.
fn viewer(edge: String, addr: Ipv4Addr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let c = reqwest::blocking::Client::builder()
            .local_address(IpAddr::V4(addr))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut errors = 0;
        while !stop.load(Ordering::Relaxed) {
            match c.get(&edge).send() {
                Ok(r) if r.status() == 200 => {}
                _ => errors += 1,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        errors
    })
}

fn api_viewers(p: &Platform, name: &str) -> Option<u64> {
    p.api_stream(name)?["viewers"].as_u64()
}

#[test]
fn per_stream_signing_and_viewer_counts() {
    let _g = lock();
    let keys = format!("{}=golive:signed,{}=second", key("golive"), key("second"));
    let p = Platform::start(1, false, &[("STREAM_KEYS", &keys)]);
    let _a = publish(p.rtmp_port(1), &key("golive"), "320x240", 25, None);
    let _b = publish(p.rtmp_port(1), &key("second"), "320x240", 25, None);
    wait_until(Duration::from_secs(30), "both streams registered", || {
        p.api_stream("golive").and(p.api_stream("second"))
    });
    assert_eq!(p.api_stream("golive").unwrap()["signed"], true);

    // Only golive's configuration asks for signed links.
    live_playlist(&p, "/second/index.m3u8");
    assert_forbidden(&p, "/golive/index.m3u8", "golive is signed");
    let t = issue(&p, "golive", serde_json::json!({}));
    live_playlist(&p, t["path"].as_str().unwrap());

    // 30 viewers of `second`, each from its own address.
    let edge = p.edge_url("/second/index.m3u8");
    let stops: Vec<Arc<AtomicBool>> = (0..30).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let viewers: Vec<_> = stops
        .iter()
        .enumerate()
        .map(|(i, s)| {
            viewer(
                edge.clone(),
                Ipv4Addr::new(127, 0, 3, 1 + i as u8),
                s.clone(),
            )
        })
        .collect();
    // The count the API serves (summed over the edges' reports).
    wait_until(
        Duration::from_secs(30),
        "the API to count 30 viewers",
        || {
            let n = api_viewers(&p, "second")?;
            (29..=31).contains(&n).then_some(())
        },
    );
    let edge_metrics = p.edge_get("/metrics").text();
    let line = edge_metrics
        .lines()
        .find(|l| l.starts_with("edge_router_viewers{stream=\"second\"}"))
        .expect("the edge's gauge");
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((29..=31).contains(&n), "{line}");
    let api_metrics = get(&p.http, &p.api_url("/metrics")).text();
    assert!(
        api_metrics
            .lines()
            .any(|l| l.starts_with("rtmp_live_stream_viewers{stream=\"second\"}")),
        "the API's gauge:\n{api_metrics}"
    );
    let live: Value = serde_json::from_slice(&p.edge_get("/streams.json").body).unwrap();
    let listed = live["viewers"]["second"].as_u64().unwrap_or(0);
    assert!((29..=31).contains(&listed), "/streams.json: {live}");

    // Made-up stream names from many addresses are counted nowhere (only
    // requests that found a route are).
    for i in 0..100u8 {
        let c = reqwest::blocking::Client::builder()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1 + i)))
            .build()
            .unwrap();
        let r = c
            .get(p.edge_url(&format!("/madeup{i}/index.m3u8")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let edge_metrics = p.edge_get("/metrics").text();
    assert!(!edge_metrics.contains("madeup"), "{edge_metrics}");

    // Half of them leave: they drop out of the count within 30 s.
    let left = Instant::now();
    for s in &stops[..15] {
        s.store(true, Ordering::Relaxed);
    }
    wait_until(Duration::from_secs(30), "the leavers to drop out", || {
        let n = api_viewers(&p, "second")?;
        (14..=16).contains(&n).then_some(())
    });
    eprintln!("viewers who left dropped out after {:?}", left.elapsed());
    for s in &stops {
        s.store(true, Ordering::Relaxed);
    }
    let errors: u32 = viewers.into_iter().map(|v| v.join().unwrap()).sum();
    assert_eq!(errors, 0, "viewers' failed requests");
}
