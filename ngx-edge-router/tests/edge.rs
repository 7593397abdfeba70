//! The edge module on Debian's nginx, against the real API (with its own
//! redis-server) and real origins; a fault-injecting server only where the
//! real API cannot misbehave on demand.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rtmp_live_testkit::{nginx_test_config, wait, Api, Redis};

fn api_with_redis() -> (Redis, Api) {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    (redis, api)
}

#[test]
fn routes_through_one_shared_lookup_and_caches_not_found() {
    let (_redis, api) = api_with_redis();
    let origin = Origin::start("A", &["s1"]);
    let c = client();
    register(&c, &api.url(), "s1", &origin.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        ..EdgeOpts::new(&api.addr())
    });

    // 8 viewers × 25 requests at once, spread over both workers.
    let url = edge.url("/s1/index.m3u8");
    let threads: Vec<_> = (0..8)
        .map(|v| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = client();
                (0..25)
                    .map(|_| get(&c, &url, &format!("viewer{v}")))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Resp> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(all.len(), 200);
    for r in &all {
        assert_eq!(r.status, 200);
        assert!(r.body.contains("origin A"), "{}", r.body);
        assert_eq!(r.origin, origin.host());
    }
    let lookups = edge.lookups();
    println!("200 requests over 2 workers -> {lookups} API lookups");
    assert!(
        (1..=2).contains(&lookups),
        "{lookups} lookups for one stream"
    );
    assert!(all.iter().any(|r| r.route == "MISS"));
    assert!(all.iter().filter(|r| r.route == "HIT").count() >= 190);

    // Segments too; same route.
    let seg = get(&c, &edge.url("/s1/1.ts"), "viewer0");
    assert_eq!(seg.status, 200);
    assert!(seg.body.starts_with("segment from origin A"));

    // Unknown stream: 404, remembered for edge_router_negative (1 s).
    let before = edge.lookups();
    for _ in 0..20 {
        assert_eq!(get(&c, &edge.url("/nosuch/index.m3u8"), "v").status, 404);
    }
    let neg = edge.lookups() - before;
    assert!(
        (1..=2).contains(&neg),
        "{neg} lookups for 20 requests of an unknown stream"
    );
    // Once the entry expired, the next request looks the stream up again.
    wait::until_true(
        Duration::from_secs(5),
        "the negative entry to expire",
        || {
            assert_eq!(get(&c, &edge.url("/nosuch/index.m3u8"), "v").status, 404);
            edge.lookups() > before + neg
        },
    );
    assert_eq!(
        edge.lookups(),
        before + neg + 1,
        "negative entry expired -> one new lookup"
    );

    // Invalid names never reach the API.
    let before = edge.lookups();
    for bad in [
        "/bad.name/index.m3u8",
        "/a%20b/index.m3u8",
        &format!("/{}/x.ts", "a".repeat(65)),
    ] {
        assert_eq!(get(&c, &edge.url(bad), "v").status, 400, "{bad}");
    }
    assert_eq!(edge.lookups(), before);
}

#[test]
fn api_down_serves_cached_routes_and_502s_the_rest() {
    let (_redis, mut api) = api_with_redis();
    let origin = Origin::start("A", &["live", "other"]);
    let c = client();
    register(&c, &api.url(), "live", &origin.host());
    register(&c, &api.url(), "other", &origin.host());
    let edge = Edge::start(&EdgeOpts {
        valid: "500ms",
        ..EdgeOpts::new(&api.addr())
    });
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "v").status, 200);

    api.stop();
    // Until the route expires (500 ms) it is a plain hit; from then on it is
    // served stale.
    let expired = wait::until(Duration::from_secs(5), "the route to expire", || {
        let r = get(&c, &edge.url("/live/index.m3u8"), "v");
        assert_eq!(r.status, 200);
        (r.route != "HIT").then_some(r.route)
    });
    assert!(expired == "STALE" || expired == "UPDATING", "{expired}");
    for _ in 0..20 {
        let r = get(&c, &edge.url("/live/index.m3u8"), "v");
        assert_eq!(
            r.status, 200,
            "cached stream must keep playing while the API is down"
        );
        assert!(r.body.contains("origin A"));
        assert!(r.route == "STALE" || r.route == "UPDATING", "{}", r.route);
    }
    let r = get(&c, &edge.url("/other/index.m3u8"), "v");
    assert_eq!(r.status, 502, "uncached stream with the API down");
    let log = edge.nginx.error_log();
    assert!(
        log.contains("route lookup for stream \"other\" failed"),
        "{log}"
    );
    assert!(log.contains("serving the cached route"), "{log}");
}

#[test]
fn slow_api_does_not_block_the_worker() {
    let origin = Arc::new(Origin::start("A", &["fast", "slow"]));
    let host = origin.host();
    let api = FaultApi::start(Arc::new(move |path: &str| {
        let name = path.rsplit('/').next().unwrap_or("");
        if name == "slow" {
            std::thread::sleep(Duration::from_secs(2));
        }
        http_response(200, &stream_json(name, &[&host]))
    }));
    // One worker: if it blocked, every request would wait.
    let edge = Edge::start(&EdgeOpts::new(&api.addr));
    let c = client();
    assert_eq!(get(&c, &edge.url("/fast/index.m3u8"), "v").status, 200);

    let slow_url = edge.url("/slow/index.m3u8");
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let r = get(&client(), &slow_url, "v");
        (r.status, t.elapsed())
    });
    // The slow lookup is at the API (the second lookup after /fast's).
    wait::until_true(
        Duration::from_secs(5),
        "the slow lookup to reach the API",
        || api.hits() >= 2,
    );
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        assert_eq!(get(&c, &edge.url("/fast/index.m3u8"), "v").status, 200);
        worst = worst.max(t.elapsed());
    }
    let (status, took) = slow.join().unwrap();
    println!("cached stream while the API takes 2 s: worst {worst:?}; slow lookup took {took:?}");
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(1900));
    assert!(
        worst < Duration::from_millis(300),
        "cached requests waited {worst:?}"
    );
}

#[test]
fn concurrent_misses_share_one_lookup() {
    let origin = Origin::start("A", &["burst"]);
    let host = origin.host();
    let api = FaultApi::start(Arc::new(move |path: &str| {
        std::thread::sleep(Duration::from_millis(300));
        http_response(
            200,
            &stream_json(path.rsplit('/').next().unwrap_or(""), &[&host]),
        )
    }));
    let edge = Edge::start(&EdgeOpts::new(&api.addr));
    let url = edge.url("/burst/index.m3u8");
    let threads: Vec<_> = (0..30)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || get(&client(), &url, &format!("v{i}")).status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(
        api.hits(),
        1,
        "30 concurrent misses in one worker -> one lookup"
    );
}

#[test]
fn sticky_viewers_spread_and_move_only_when_their_origin_leaves() {
    let (_redis, api) = api_with_redis();
    let a = Origin::start("A", &["s"]);
    let b = Origin::start("B", &["s"]);
    let c = client();
    register(&c, &api.url(), "s", &a.host());
    register(&c, &api.url(), "s", &b.host());
    let edge = Edge::start(&EdgeOpts {
        valid: "300ms",
        ..EdgeOpts::new(&api.addr())
    });

    let mut first: HashMap<String, String> = HashMap::new();
    for v in 0..40 {
        let viewer = format!("viewer-{v}");
        let seen: HashSet<String> = (0..10)
            .map(|_| {
                let r = get(&c, &edge.url("/s/index.m3u8"), &viewer);
                assert_eq!(r.status, 200);
                assert!(r.body.contains(&format!(
                    "origin {}",
                    if r.origin == a.host() { "A" } else { "B" }
                )));
                r.origin
            })
            .collect();
        assert_eq!(seen.len(), 1, "{viewer} switched origins: {seen:?}");
        first.insert(viewer, seen.into_iter().next().unwrap());
    }
    let on_a = first.values().filter(|o| **o == a.host()).count();
    println!("40 viewers: {on_a} on A, {} on B", 40 - on_a);
    assert!(on_a > 0 && on_a < 40, "both origins must be used");

    // A leaves the route: its viewers move to B, B's viewers stay.
    deregister(&c, &api.url(), "s", &a.host());
    // The expired route (300 ms) still serves the request that finds it
    // expired, while it is refreshed in the background.
    let expired = wait::until(Duration::from_secs(5), "the route to expire", || {
        let r = get(&c, &edge.url("/s/index.m3u8"), "any");
        assert_eq!(r.status, 200);
        (r.route != "HIT").then_some(r.route)
    });
    assert_eq!(expired, "UPDATING");
    // Once the refresh is in, a viewer of A is sent to B...
    let (on_a, _) = first.iter().find(|(_, o)| **o == a.host()).unwrap();
    wait::until_true(
        Duration::from_secs(5),
        "the refreshed route (without A)",
        || get(&c, &edge.url("/s/index.m3u8"), on_a).origin == b.host(),
    );
    // ...and so is everyone.
    for (viewer, before) in &first {
        let r = get(&c, &edge.url("/s/index.m3u8"), viewer);
        assert_eq!(r.status, 200);
        assert_eq!(r.origin, b.host(), "{viewer} (was on {before})");
    }
}

#[test]
fn origin_down_fails_over_to_the_other_origin() {
    let (_redis, api) = api_with_redis();
    let mut a = Origin::start("A", &["s"]);
    let b = Origin::start("B", &["s"]);
    let c = client();
    register(&c, &api.url(), "s", &a.host());
    register(&c, &api.url(), "s", &b.host());
    let edge = Edge::start(&EdgeOpts::new(&api.addr()));
    // Find viewers whose sticky origin is A, then stop A.
    let on_a: Vec<String> = (0..30)
        .map(|v| format!("viewer-{v}"))
        .filter(|v| get(&c, &edge.url("/s/index.m3u8"), v).origin == a.host())
        .collect();
    assert!(!on_a.is_empty());
    a.nginx.stop();
    for v in &on_a {
        let r = get(&c, &edge.url("/s/1.ts"), v);
        assert_eq!(r.status, 200, "{v}");
        assert!(r.body.starts_with("segment from origin B"), "{v}");
    }
}

#[test]
fn garbage_api_answers_are_502_never_a_crash() {
    let origin = Origin::start("A", &["ok"]);
    let host = origin.host();
    let api = FaultApi::start(Arc::new(move |path: &str| {
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        match name.as_str() {
            "ok" => http_response(200, &stream_json("ok", &[&host])),
            "notjson" => http_response(200, b"<html>hello</html>"),
            "truncated" => {
                let full = stream_json("truncated", &[&host]);
                let mut r = http_response(200, &full);
                r.truncate(r.len() - full.len() / 2);
                r
            }
            "huge" => http_response(200, &vec![b' '; 1 << 20]),
            "status500" => http_response(500, b"{\"error\":\"boom\"}"),
            "forged" => http_response(
                200,
                &stream_json("forged", &["evil.example.com:80", "http://x/"]),
            ),
            "wrongname" => http_response(200, &stream_json("ok", &[&host])),
            "binary" => (0..=255u8).cycle().take(5000).collect(),
            "html404" => {
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".to_vec()
            }
            _ => Vec::new(), // connection closed without an answer
        }
    }));
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        ..EdgeOpts::new(&api.addr)
    });
    let workers_before = edge.nginx.wait_workers(2);
    let c = client();
    for name in [
        "notjson",
        "truncated",
        "huge",
        "status500",
        "forged",
        "wrongname",
        "binary",
        "html404",
        "closed",
    ] {
        let r = get(&c, &edge.url(&format!("/{name}/index.m3u8")), "v");
        assert_eq!(r.status, 502, "{name}");
    }
    assert_eq!(get(&c, &edge.url("/ok/index.m3u8"), "v").status, 200);
    let log = edge.nginx.error_log();
    assert!(log.contains("malformed API response"), "{log}");
    assert!(log.contains("no usable origin"), "{log}");
    assert!(log.contains("404 without a JSON body"), "{log}");
    assert!(!log.contains("exited on signal"), "{log}");
    assert_eq!(
        edge.nginx.workers(),
        workers_before,
        "workers must not restart"
    );
}

#[test]
fn bad_directive_arguments_are_rejected_by_nginx_t() {
    let cases = [
        (
            "edge_router_api /api; edge_router_valid soon;",
            "invalid value",
        ),
        (
            "edge_router_api /api; edge_router_stale 1s; edge_router_valid 5s;",
            "must not be shorter",
        ),
        ("edge_router_api no-slash;", "invalid URI prefix"),
        ("edge_router_api /a; edge_router_api /b;", "is duplicate"),
        (
            "edge_router_api /api; edge_router_upstream;",
            "is not allowed here",
        ),
        (
            "edge_router_api /api; edge_router_viewer_key;",
            "invalid number of arguments",
        ),
    ];
    for (directive, expect) in cases {
        let (ok, out) = nginx_test_config(|dir| {
            format!(
                "{}http {{ edge_router_zone z 1m; server {{ listen 127.0.0.1:1; location ~ ^/(.+)/ {{ edge_router $1; {directive} }} }} }}",
                rtmp_live_testkit::main_block(dir, 1, true)
            )
        });
        assert!(!ok, "{directive} accepted");
        assert!(out.contains(expect), "{directive}: {out}");
    }
    let (ok, out) = nginx_test_config(|dir| {
        format!(
            "{}http {{ edge_router_zone z 1k; }}",
            rtmp_live_testkit::main_block(dir, 1, true)
        )
    });
    assert!(!ok && out.contains("at least 64k"), "{out}");
    let (ok, out) = nginx_test_config(|dir| {
        format!(
            "{}http {{ server {{ listen 127.0.0.1:1; location / {{ edge_router x; edge_router_api /a; }} }} }}",
            rtmp_live_testkit::main_block(dir, 1, true)
        )
    });
    assert!(
        !ok && out.contains("requires \"edge_router_zone\""),
        "{out}"
    );
    let (ok, out) = nginx_test_config(|dir| {
        format!(
            "{}http {{ edge_router_zone z 1m; server {{ listen 127.0.0.1:1; location / {{ edge_router x; }} }} }}",
            rtmp_live_testkit::main_block(dir, 1, true)
        )
    });
    assert!(!ok && out.contains("requires \"edge_router_api\""), "{out}");
}

#[test]
fn reload_under_load_keeps_serving() {
    let (_redis, api) = api_with_redis();
    let origin = Origin::start("A", &["s"]);
    let c = client();
    register(&c, &api.url(), "s", &origin.host());
    let opts = EdgeOpts {
        workers: 2,
        ..EdgeOpts::new(&api.addr())
    };
    let edge = Edge::start(&opts);
    let url = edge.url("/s/index.m3u8");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                // A new connection per request: a keepalive connection that
                // the old workers close on reload is a client-side race every
                // HTTP client handles by retrying, not a failed request.
                let c = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(get(&c, &url, &format!("v{i}")).status);
                }
                statuses
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let port = edge.port;
        edge.nginx.reload(|dir| edge_conf(dir, port, &opts));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<u16> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    println!("{} requests across 3 reloads", statuses.len());
    assert!(statuses.len() > 100);
    assert!(
        statuses.iter().all(|&s| s == 200),
        "non-200 during reload: {:?}",
        statuses.iter().filter(|&&s| s != 200).count()
    );
}
