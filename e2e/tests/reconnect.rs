//! A publisher that reconnects (OBS does after every network drop) must
//! never be shown an earlier session's video: every segment the edge serves
//! is byte-identical to the origin's file of the current session, after a
//! stop-and-return and after a reconnect within a second.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

/// Fetches every segment the edge's playlist lists during `secs` seconds
/// and compares each with the origin's bytes; returns the segment names.
fn segments_match_origin(p: &Platform, secs: u64) -> Vec<String> {
    let origin = format!("http://{}", p.origin_host(1));
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let (_, segs) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
        for (_, uri) in segs {
            if seen.contains(&uri) {
                continue;
            }
            let at_edge = p.edge_get(&format!("/golive/{uri}"));
            let at_origin = get(&p.http, &format!("{origin}/golive/{uri}"));
            if at_origin.status != 200 {
                continue; // already cleaned up at the origin
            }
            assert_eq!(at_edge.status, 200, "{uri}");
            assert!(
                at_edge.body == at_origin.body,
                "{uri}: the edge served {} bytes (cache {}), the origin has {} bytes",
                at_edge.body.len(),
                at_edge.header("x-cache-status"),
                at_origin.body.len()
            );
            seen.push(uri);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    seen
}

/// What any viewer (or attacker) sees from the edge: one CORS header (the
/// origin's is replaced), preflights answered, only GET/HEAD/OPTIONS, short
/// JSON errors, and no internal origin address.
fn viewer_facing_answers(p: &Platform) {
    let r = p.edge_get("/golive/index.m3u8");
    let (_, segs) = media_playlist(&r.text());
    let seg = p.edge_get(&format!("/golive/{}", segs[0].1));
    let missing = p.edge_get("/nosuch/index.m3u8");
    for (what, r, status) in [
        ("playlist", &r, 200),
        ("segment", &seg, 200),
        ("404", &missing, 404),
    ] {
        assert_eq!(r.status, status, "{what}");
        let acao: Vec<_> = r
            .headers
            .get_all("access-control-allow-origin")
            .iter()
            .collect();
        assert_eq!(acao.len(), 1, "{what}: {acao:?}");
        assert_eq!(acao[0], "*");
        for h in ["x-edge-origin", "x-edge-upstream"] {
            assert!(r.headers.get(h).is_none(), "{what} reveals {h}");
        }
        let text = format!("{:?}", r.headers);
        assert!(
            !text.contains("127.0.0.1"),
            "{what} reveals an address: {text}"
        );
    }
    assert!(
        missing.text().starts_with("{\"error\""),
        "{}",
        missing.text()
    );
    let pre = p
        .http
        .request(reqwest::Method::OPTIONS, p.edge_url("/golive/index.m3u8"))
        .header("Origin", "https://player.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "range")
        .send()
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.to_lowercase().contains("range"), "{allowed}");
    for m in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = p
            .http
            .request(m.clone(), p.edge_url("/golive/index.m3u8"))
            .body("x")
            .send()
            .unwrap();
        assert_eq!(r.status(), 405, "{m}");
        assert!(r.text().unwrap().contains("\"error\""));
    }
}

#[test]
fn reconnecting_publishers_never_get_old_segments() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Platform::start(
        1,
        false,
        &[
            ("STREAM_KEYS", &stream_keys(&["golive"])),
            ("STREAM_TTL_SECS", "4"),
            ("DISCOVERY_HEARTBEAT_SECS", "1"),
            ("DISCOVERY_STALE_SECS", "3"),
            ("EDGE_ROUTE_VALID", "1s"),
            // Viewer-facing answers as in production (checked below).
            ("EDGE_DEBUG_HEADERS", "0"),
        ],
    );
    let mut first = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    wait_until(Duration::from_secs(20), "golive playlist", || {
        (p.edge_get("/golive/index.m3u8").status == 200).then_some(())
    });
    viewer_facing_answers(&p);
    let s1 = segments_match_origin(&p, 8);
    assert!(s1.len() >= 3, "{s1:?}");
    let first_since = p.api_stream("golive").unwrap()["origins"][0]["since"].as_u64();

    // Stop, wait until the stream is gone, publish again under the name.
    first.stop();
    wait_until(Duration::from_secs(20), "golive deregistered", || {
        p.api_stream("golive").is_none().then_some(())
    });
    let mut second = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    wait_until(Duration::from_secs(20), "golive registered again", || {
        p.api_stream("golive").map(|_| ())
    });
    let s2 = segments_match_origin(&p, 8);
    assert!(s2.len() >= 2, "{s2:?}");
    let since2 = p.api_stream("golive").unwrap()["origins"][0]["since"].as_u64();
    println!("session 1: {s1:?} (since {first_since:?})\nsession 2: {s2:?} (since {since2:?})");
    assert!(
        since2 > first_since,
        "a new registration, a new session in cache keys"
    );
    // nginx-rtmp continues the old playlist (hls_continuous): its last
    // segments may still be listed, as the same files; the new session's own
    // segments have new names.
    let old: HashSet<&String> = s1.iter().collect();
    assert!(
        s2.iter().filter(|s| !old.contains(s)).count() >= 2,
        "no new segment in the second session: {s2:?}"
    );

    // Reconnect within a second: the registration stays, names still differ.
    // Segments are numbered in order (`<epoch + MSN>.m4s`): the
    // reconnected session's come after every one listed before.
    let number = |u: &str| u.rsplit_once('.').and_then(|(n, _)| n.parse::<u64>().ok());
    let listed = |p: &Platform| -> Vec<u64> {
        let (_, segs) = media_playlist(&p.edge_get("/golive/index.m3u8").text());
        segs.iter().filter_map(|(_, u)| number(u)).collect()
    };
    second.stop();
    std::thread::sleep(Duration::from_millis(500));
    let reconnected = listed(&p).into_iter().max().expect("segments listed");
    let _third = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    wait_until(
        Duration::from_secs(20),
        "a segment of the reconnected session at the edge",
        || listed(&p).iter().any(|n| *n > reconnected).then_some(()),
    );
    let s3 = segments_match_origin(&p, 8);
    println!("after a quick reconnect: {s3:?}");
    assert!(!s3.is_empty());
    p.stop_and_check_clean();
}
