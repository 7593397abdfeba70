//! The whole platform, started the way `make up` starts it, fed by real
//! ffmpeg publishers, checked through the edge only.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

/// One platform start (two origins) for every plain-HLS scenario.
#[test]
fn live_streaming_through_the_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Platform::start(
        2,
        false,
        &[
            ("STREAM_KEYS", &stream_keys(&["golive", "alpha", "beta"])),
            // each stream on the origin it was published to (routing by
            // origin; replication has its own test, replication.rs)
            ("REPLICAS", "1"),
            ("STREAM_TTL_SECS", "6"),
            ("DISCOVERY_HEARTBEAT_SECS", "1"),
            ("DISCOVERY_STALE_SECS", "4"),
            ("EDGE_ROUTE_VALID", "1s"),
            ("EDGE_ROUTE_NEGATIVE", "1s"),
            ("EDGE_ROUTE_GRACE", "2s"),
        ],
    );
    let (o1, o2) = (p.origin_host(1), p.origin_host(2));

    // A wrong stream key is refused by the origin: ffmpeg's publish fails.
    let mut wrong = publish(p.rtmp_port(1), "not-a-key", "320x240", 25, Some(5));
    let code = wrong
        .wait_exit(Duration::from_secs(15))
        .expect("ffmpeg ended");
    assert_ne!(
        code,
        Some(0),
        "publishing with a wrong key must fail:\n{}",
        wrong.log()
    );

    // golive on both origins (redundant ingest), alpha on 1, beta on 2.
    let t0 = Instant::now();
    let mut golive1 = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    let _golive2 = publish(p.rtmp_port(2), &key("golive"), "426x240", 25, None);
    let mut alpha = publish(p.rtmp_port(1), &key("alpha"), "320x240", 25, None);
    let _beta = publish(p.rtmp_port(2), &key("beta"), "320x240", 25, None);

    // The playlist appears within a few seconds of publishing.
    wait_until(
        Duration::from_secs(20),
        "golive playlist at the edge",
        || (p.edge_get("/golive/index.m3u8").status == 200).then_some(()),
    );
    println!("publish -> playlist at the edge: {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(12));
    let all: serde_json::Value = p
        .http
        .get(p.api_url("/streams"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        !all.to_string().contains("not-a-key"),
        "a refused key registers nothing: {all}"
    );

    // Three consecutive segments download and decode: H.264 + AAC, ~2 s each.
    let (seq, segs) = wait_until(Duration::from_secs(20), "3 segments", || {
        let r = p.edge_get("/golive/index.m3u8");
        let (seq, segs) = media_playlist(&r.text());
        (segs.len() >= 3).then_some((seq, segs))
    });
    let text = p.edge_get("/golive/index.m3u8").text();
    for (dur, uri) in segs.iter().take(3) {
        let probe = ffprobe(&segment_media(&p, "/golive", &text, uri));
        let kinds: HashSet<(String, String)> = probe
            .streams
            .iter()
            .map(|s| (s.0.clone(), s.1.clone()))
            .collect();
        assert!(
            kinds.contains(&("video".into(), "h264".into())),
            "{uri}: {kinds:?}"
        );
        assert!(
            kinds.contains(&("audio".into(), "aac".into())),
            "{uri}: {kinds:?}"
        );
        assert_eq!(probe.streams.len(), 2, "{uri}");
        println!(
            "{uri}: EXTINF {dur}, ffprobe: {:.3} s of video",
            probe.video_seconds
        );
        assert!(
            (1.5..=2.6).contains(&probe.video_seconds),
            "{uri}: {}",
            probe.video_seconds
        );
    }
    // The playlist advances: its last segment is newer (old ones stay
    // listed for the DVR window).
    let last = seq + segs.len() as u64 - 1;
    let last2 = wait_until(Duration::from_secs(15), "a newer last segment", || {
        let (now, listed) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
        let end = now + listed.len() as u64 - 1;
        (end > last).then_some(end)
    });
    println!("last media sequence number {last} -> {last2}");

    // Two streams at once, routed independently to the origin that has them.
    let a = p.edge_get("/alpha/index.m3u8");
    let b = p.edge_get("/beta/index.m3u8");
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.header("x-edge-origin"), o1);
    assert_eq!(b.header("x-edge-origin"), o2);

    // One viewer stays on one origin across many playlist reloads.
    let seen: HashSet<String> = (0..30)
        .map(|_| {
            let r = p.edge_get("/golive/index.m3u8");
            assert_eq!(r.status, 200);
            std::thread::sleep(Duration::from_millis(50));
            r.header("x-edge-origin")
        })
        .collect();
    assert_eq!(seen.len(), 1, "viewer switched origins: {seen:?}");
    let sticky = seen.into_iter().next().unwrap();
    let (sticky_idx, other) = if sticky == o1 {
        (1, o2.clone())
    } else {
        (2, o1.clone())
    };
    println!("viewer 127.0.0.1 sticks to origin {sticky_idx} ({sticky})");

    // 50 concurrent requests for one fresh segment reach the origin once.
    let (_, before) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
    let fresh = wait_until(Duration::from_secs(10), "a new segment", || {
        let (_, now) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
        now.last()
            .filter(|s| !before.iter().any(|b| b.1 == s.1))
            .map(|s| s.1.clone())
    });
    let url = p.edge_url(&format!("/golive/{fresh}"));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                c.get(&url).send().map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let log = std::fs::read_to_string(p.origin_dir(sticky_idx).join("access.log")).unwrap();
    let hits = log
        .lines()
        .filter(|l| l.contains(&format!("/golive/{fresh} ")))
        .count();
    println!("50 concurrent edge requests for {fresh} -> {hits} origin request(s)");
    assert_eq!(hits, 1);

    // The viewer's origin stops: it is served by the other one.
    let pid: i32 = std::fs::read_to_string(p.origin_dir(sticky_idx).join("nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // Cached playlists expire (nginx cache validity ticks in whole seconds:
    // "1s" lasts 1-2 s).
    std::thread::sleep(Duration::from_millis(2100));
    let mut by_other = 0;
    for _ in 0..20 {
        let r = p.edge_get("/golive/index.m3u8");
        assert_eq!(r.status, 200, "after origin {sticky_idx} stopped");
        let (up, origin, cache) = (
            r.header("x-edge-upstream"),
            r.header("x-edge-origin"),
            r.header("x-cache-status"),
        );
        if origin == sticky {
            // Still routed to the stopped origin: answered by the other one,
            // and that answer is not cached under the stopped one's key.
            assert!(up.ends_with(&other), "upstream {up:?} cache {cache:?}");
            assert_ne!(cache, "HIT", "a fallback answer was cached under {sticky}");
        } else {
            assert_eq!(origin, other, "route moved to the live origin");
        }
        // Who answered: the last upstream tried, or (a cache hit) the
        // origin the cached copy is keyed by.
        let answered_by = up
            .rsplit(", ")
            .next()
            .filter(|u| !u.is_empty())
            .unwrap_or(&origin);
        if answered_by.ends_with(&other) {
            by_other += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        by_other, 20,
        "every answer after the stop comes from the other origin"
    );
    let (_, segs) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
    let last = &segs.last().unwrap().1;
    assert_eq!(p.edge_get(&format!("/golive/{last}")).status, 200);
    golive1.kill();

    // A publisher stops: the stream leaves the API and the edge answers 404
    // within staleness (4 s) + TTL (6 s), then the route's grace window
    // (2 s) + validity (1 s).
    alpha.stop();
    let t = Instant::now();
    wait_until(Duration::from_secs(15), "alpha deregistered", || {
        p.api_stream("alpha").is_none().then_some(())
    });
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let r = p.edge_get("/alpha/index.m3u8");
        if r.status == 404 {
            break;
        }
        answers.push(r.status);
        assert!(
            Instant::now() < deadline,
            "no 404 for alpha at the edge within 6 s; answers: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "publisher stopped -> 404 at the edge after {:?}",
        t.elapsed()
    );
    assert_eq!(p.edge_get("/nosuch/index.m3u8").status, 404);
    assert_eq!(p.edge_get("/bad.name/index.m3u8").status, 400);
    // `/` is the player page; other paths outside streams are JSON 404s.
    assert_eq!(p.edge_get("/").status, 200);
    let other = p.edge_get("/favicon.ico");
    assert_eq!(other.status, 404);
    assert!(other.text().starts_with("{\"error\""), "{}", other.text());

    // `make up` + SIGTERM leaves no process behind.
    p.stop_and_check_clean();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", p.ports.edge)).is_err(),
        "edge still listening"
    );
}
