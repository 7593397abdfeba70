//! `edge_router_query` and `edge_router_collapse_max` on a real nginx: the
//! origin (a small server that logs the request line it got and holds
//! blocking reloads, as the LL-HLS component does) is asked exactly the
//! canonical request the cache and collapse keys name; other spellings are
//! a 400 that reaches nobody; and a worker holds at most
//! `edge_router_collapse_max` requests at one origin.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rtmp_live_testkit::{Api, Redis};

/// An origin that logs each request target, holds those with `_HLS_msn`
/// for `hold`, and answers a playlist naming the target it was asked.
fn logging_origin(hold: Duration) -> (FaultApi, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    let origin = FaultApi::start(Arc::new(move |path: &str| {
        l.lock().unwrap().push(path.to_string());
        if path.contains("_HLS_msn") {
            std::thread::sleep(hold);
        }
        let body = format!("#EXTM3U\n# {path}\n");
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\n\
             Cache-Control: public, max-age=6\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }));
    (origin, log)
}

/// The platform's shape: playlists take the delivery directives and are
/// cached and collapsed by `$uri?$args`; everything else drops the query.
fn edge(api: &str, collapse_max: usize) -> Edge {
    let key = "$edge_router_origin$uri?$args";
    Edge::start(&EdgeOpts {
        http_extra: "proxy_cache_path {dir}/cache keys_zone=playlists:1m;".into(),
        extra: format!(
            "edge_router_collapse_max {collapse_max}; \
             location ~ \"^/([^/]+)/[^/]+\\.m3u8$\" {{ edge_router_query delivery; \
                proxy_pass http://edge_origins; proxy_read_timeout 5s; \
                proxy_cache playlists; proxy_cache_key {key}; proxy_cache_valid 200 10s; \
                proxy_cache_lock off; edge_router_collapse {key}; \
                add_header X-Cache $upstream_cache_status always; }}"
        ),
        ..EdgeOpts::new(api)
    })
}

/// One request sent byte for byte (no client normalizes it): its status
/// and body.
fn raw_get(port: u16, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: edge\r\nX-Viewer: v\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn setup(
    hold: Duration,
    collapse_max: usize,
) -> (Redis, Api, FaultApi, Arc<Mutex<Vec<String>>>, Edge) {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let (origin, log) = logging_origin(hold);
    register(&client(), &api.url(), "live", &origin.addr);
    let edge = edge(&api.addr(), collapse_max);
    (redis, api, origin, log, edge)
}

#[test]
fn the_origin_is_asked_exactly_the_canonical_request() {
    let (_r, _a, _o, log, edge) = setup(Duration::ZERO, 0);
    for (target, upstream) in [
        ("/live/index.m3u8", "/live/index.m3u8"),
        (
            "/live/index.m3u8?_HLS_part=2&_HLS_skip=v2&_HLS_msn=7",
            "/live/index.m3u8?_HLS_msn=7&_HLS_part=2&_HLS_skip=YES",
        ),
        // matched decoded: one object, whatever the spelling of its path
        (
            "/live/%69ndex.m3u8?_HLS_msn=8",
            "/live/index.m3u8?_HLS_msn=8",
        ),
        (
            "/live/./index.m3u8?_HLS_msn=9",
            "/live/index.m3u8?_HLS_msn=9",
        ),
        // segments and parts: the query names nothing and goes nowhere
        ("/live/12.m4s?x=1&_HLS_msn=3", "/live/12.m4s"),
        ("/live/12-3.m4s?", "/live/12-3.m4s"),
    ] {
        log.lock().unwrap().clear();
        let (status, body) = raw_get(edge.port, target);
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(*log.lock().unwrap(), vec![upstream.to_string()], "{target}");
    }
    // the canonical key is shared by every spelling: a hit
    log.lock().unwrap().clear();
    let (status, body) = raw_get(
        edge.port,
        "/live/index.m3u8?_HLS_skip=YES&_HLS_part=2&_HLS_msn=7",
    );
    assert_eq!(
        (
            status,
            body.contains("_HLS_msn=7&_HLS_part=2&_HLS_skip=YES")
        ),
        (200, true)
    );
    assert!(log.lock().unwrap().is_empty(), "served from the cache");
}

#[test]
fn other_spellings_are_a_400_that_reaches_nobody() {
    let (_r, api, origin, log, edge) = setup(Duration::ZERO, 0);
    let _ = api;
    for target in [
        // the poisoning of issue 24: the cache keyed the first, the origin
        // read the last
        "/live/index.m3u8?_HLS_msn=99&_HLS_part=1&_HLS_msn=0",
        "/live/index.m3u8?_HLS_msn=0042",
        "/live/index.m3u8?_HLS_msn=+42",
        "/live/index.m3u8?_HLS_msn=%34%32",
        "/live/index.m3u8?_hls_msn=42",
        "/live/index.m3u8?_HLS_msn=1&_HLS_part=18446744073709551615",
        "/live/index.m3u8?_HLS_part=1",
        "/live/index.m3u8?_HLS_skip=NO",
        "/live/index.m3u8?cb=123",
        "/live/index.m3u8?_HLS_msn=1&",
    ] {
        let (status, body) = raw_get(edge.port, target);
        assert_eq!(status, 400, "{target}: {body}");
    }
    assert_eq!(origin.hits(), 0, "{:?}", log.lock().unwrap());
}

#[test]
fn a_worker_holds_at_most_collapse_max_requests_at_an_origin() {
    let hold = Duration::from_millis(1500);
    let (_r, _a, _o, log, edge) = setup(hold, 2);
    // the route first (not part of the count)
    assert_eq!(raw_get(edge.port, "/live/index.m3u8").0, 200);
    let t0 = Instant::now();
    let answers: Vec<(u16, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let edge = &edge;
                s.spawn(move || {
                    // distinct keys: each would be a request upstream
                    let (st, _) = raw_get(edge.port, &format!("/live/index.m3u8?_HLS_msn={i}"));
                    (st, t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("{answers:?}");
    let held: Vec<_> = answers.iter().filter(|a| a.0 == 200).collect();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert_eq!((held.len(), refused.len()), (2, 2), "{answers:?}");
    // refused at once, not after the hold
    assert!(
        refused.iter().all(|a| a.1 < hold.as_secs_f64()),
        "{answers:?}"
    );
    let upstream = log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.contains("_HLS_msn"))
        .count();
    assert_eq!(upstream, 2);
    // once they are answered, the worker takes new ones again
    assert_eq!(raw_get(edge.port, "/live/index.m3u8?_HLS_msn=7").0, 200);
}
