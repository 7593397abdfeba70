//! Real-world faults at the edge, each reproduced with real processes (the
//! API with its redis-server, nginx origins, the edge nginx with the module);
//! a fault-injecting server only where the real API cannot misbehave on
//! demand. Each test asserts what a viewer sees.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtmp_live_testkit::{wait, Api, Redis};

fn api_with_redis() -> (Redis, Api) {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    (redis, api)
}

fn signal_tree(master: u32, workers: &[u32], sig: Signal) {
    for pid in std::iter::once(&master).chain(workers) {
        let _ = kill(Pid::from_raw(*pid as i32), sig);
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// A frozen API (SIGSTOP) must not stall requests for a stream whose route
/// expired: they are served from it while one background refresh waits for
/// the API. Requests for unknown streams end with a 502, never hang.
#[test]
fn hung_api_never_stalls_a_stream_with_a_stale_route() {
    let (_redis, api) = api_with_redis();
    let origin = Origin::start("A", &["live"]);
    let c = client();
    register(&c, &api.url(), "live", &origin.host());
    // The platform's settings: a proxy cache (answers sent with sendfile)
    // and tcp_nopush.
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "300ms",
        api_read_timeout: "2s",
        http_extra: "sendfile on; tcp_nopush on; proxy_cache_path {dir}/cache keys_zone=hls:1m;"
            .into(),
        extra: "proxy_cache hls; proxy_cache_valid 200 1s;".into(),
        ..EdgeOpts::new(&api.addr())
    });
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "v").status, 200);

    let pid = api.proc.pid().expect("api pid");
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the route is expired

    // 16 clients ask for streams the edge never saw: their lookups hang.
    let unknown: Vec<_> = (0..16)
        .map(|i| {
            let url = edge.url(&format!("/unknown{i}/index.m3u8"));
            std::thread::spawn(move || {
                let t = Instant::now();
                let s = get(&client(), &url, "u").status;
                (s, t.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut times = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        let t = Instant::now();
        let r = get(&c, &edge.url("/live/index.m3u8"), "v");
        times.push(t.elapsed());
        statuses.push((r.status, r.route));
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    let slow: Vec<_> = times
        .iter()
        .zip(&statuses)
        .enumerate()
        .filter(|(_, (t, _))| **t > Duration::from_millis(200))
        .collect();
    println!("slow requests: {slow:?}");
    let p = p99(times.clone());
    println!(
        "{} requests of the cached stream with the API frozen: p99 {:?}, max {:?}",
        times.len(),
        p,
        times.iter().max().unwrap()
    );
    assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|(_, r)| r == "UPDATING" || r == "STALE"),
        "{statuses:?}"
    );
    assert!(p <= Duration::from_millis(200), "p99 {p:?}");
    // Not even the request that starts the refresh waits (for the API, or
    // for a corked socket whose connection stays open meanwhile).
    let max = *times.iter().max().unwrap();
    assert!(max < Duration::from_millis(150), "slowest {max:?}");
    for t in unknown {
        let (s, took) = t.join().unwrap();
        assert!(s == 502 || s == 404, "unknown stream answered {s}");
        assert!(
            took < Duration::from_secs(5),
            "unknown stream took {took:?}"
        );
    }
}

/// The registry loses its data (FLUSHALL) and Redis restarts empty: the API
/// says "not found" for a live stream until the origin's next heartbeat. A
/// route the edge confirmed recently keeps serving through that.
#[test]
fn registry_loss_does_not_turn_a_live_stream_into_404s() {
    let (mut redis, api) = api_with_redis();
    let origin = Origin::start("A", &["live"]);
    let c = client();
    register(&c, &api.url(), "live", &origin.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "200ms",
        ..EdgeOpts::new(&api.addr())
    });
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "v").status, 200);

    let flush = redis.cli().arg("FLUSHALL").output().expect("redis-cli");
    assert!(flush.status.success());
    let api_says = c.get(format!("{}/streams/live", api.url())).send().unwrap();
    assert_eq!(
        api_says.status(),
        404,
        "the API must have lost the stream for this test to mean anything"
    );
    let mut bad = Vec::new();
    let mut n = 0;
    let mut restarted = false;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if t0.elapsed() > Duration::from_millis(1500) && !restarted {
            // Then Redis itself restarts empty.
            redis.restart();
            restarted = true;
        }
        let r = get(&c, &edge.url("/live/index.m3u8"), &format!("v{}", n % 7));
        if r.status != 200 {
            bad.push((n, r.status, r.route));
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "{n} requests through FLUSHALL and a Redis restart: {} not 200",
        bad.len()
    );
    assert!(bad.is_empty(), "{bad:?}");
    // The heartbeat re-registers it: plain fresh routes again.
    register(&c, &api.url(), "live", &origin.host());
    wait::until_true(
        Duration::from_secs(5),
        "a fresh route (HIT) once the stream is registered again",
        || {
            let r = get(&c, &edge.url("/live/index.m3u8"), "v");
            assert_eq!(r.status, 200, "{}", r.route);
            r.route == "HIT"
        },
    );
}

/// A stream that really ended is dropped once the grace window is over.
#[test]
fn an_ended_stream_is_gone_after_the_grace_window() {
    ended_stream_is_dropped_after_grace(false);
}

/// The same when the stream's origin went away with it: every answer is a
/// 502 that `error_page` turns into an internal redirect (as the edge
/// template does) while the background refresh is still out; its "not
/// found" must still be judged by the routed location's timing.
#[test]
fn an_ended_stream_on_a_dead_origin_is_gone_after_the_grace_window() {
    ended_stream_is_dropped_after_grace(true);
}

fn ended_stream_is_dropped_after_grace(origin_dies: bool) {
    let (_redis, api) = api_with_redis();
    let mut origin = Origin::start("A", &["live"]);
    let c = client();
    register(&c, &api.url(), "live", &origin.host());
    let edge = Edge::start(&EdgeOpts {
        valid: "200ms",
        extra: "edge_router_grace 1s; error_page 502 =502 /metrics;".into(),
        ..EdgeOpts::new(&api.addr())
    });
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "v").status, 200);
    deregister(&c, &api.url(), "live", &origin.host());
    if origin_dies {
        origin.nginx.stop();
    }
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < Duration::from_secs(4) && seen.last() != Some(&404) {
        seen.push(get(&c, &edge.url("/live/index.m3u8"), "v").status);
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = t0.elapsed();
    println!("ended stream answered 404 after {took:?} (answers before: {seen:?})");
    assert_eq!(seen.last(), Some(&404), "answers: {seen:?}");
    assert!(
        took >= Duration::from_millis(800),
        "dropped before the grace window: {took:?}"
    );
    let expected = if origin_dies { 502 } else { 200 };
    assert!(
        seen[..seen.len() - 1].iter().all(|s| *s == expected),
        "inside the grace window: {seen:?}"
    );
}

/// The viewer whose request leads a shared lookup hangs up: the others that
/// waited for the same lookup still get their answer.
#[test]
fn waiters_get_200_when_the_lookup_leader_disconnects() {
    let origin = Origin::start("A", &["s1"]);
    let host = origin.host();
    let api = FaultApi::start(Arc::new(move |_path: &str| {
        std::thread::sleep(Duration::from_millis(800));
        http_response(200, &stream_json("s1", &[&host]))
    }));
    let edge = Edge::start(&EdgeOpts::new(&api.addr));

    // The leader: a raw connection that hangs up while its lookup runs.
    let mut leader = TcpStream::connect(("127.0.0.1", edge.port)).unwrap();
    leader
        .write_all(b"GET /s1/index.m3u8 HTTP/1.1\r\nHost: x\r\nX-Viewer: leader\r\n\r\n")
        .unwrap();
    wait::until_true(
        Duration::from_secs(5),
        "the leader's lookup at the API",
        || api.hits() >= 1,
    );
    let waiters: Vec<_> = (0..4)
        .map(|i| {
            let url = edge.url("/s1/index.m3u8");
            std::thread::spawn(move || get(&client(), &url, &format!("w{i}")))
        })
        .collect();
    wait::until_true(
        Duration::from_secs(5),
        "the 4 viewers to wait for the leader's lookup",
        || edge.metric(r#"edge_router_requests_total{outcome="coalesced_wait"}"#) >= 4.0,
    );
    drop(leader);
    for w in waiters {
        let r = w.join().unwrap();
        assert_eq!(r.status, 200, "a waiter got {} ({})", r.status, r.route);
        assert!(r.body.contains("origin A"));
    }
    println!("API lookups: {}", api.hits());
}

/// A hung origin (SIGSTOP: connections are accepted, nothing is answered)
/// costs its viewers one read timeout, once: the failure is remembered in
/// the zone and later requests go straight to the other origin.
#[test]
fn a_hung_origin_costs_one_timeout_then_is_skipped() {
    let (_redis, api) = api_with_redis();
    let a = Origin::start("A", &["s1"]);
    let b = Origin::start("B", &["s1"]);
    let c = client();
    register(&c, &api.url(), "s1", &a.host());
    register(&c, &api.url(), "s1", &b.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        extra: "proxy_read_timeout 1s; edge_router_fail_timeout 30s;".into(),
        ..EdgeOpts::new(&api.addr())
    });
    // Viewers whose sticky origin is A.
    let on_a: Vec<String> = (0..200)
        .map(|i| format!("viewer{i}"))
        .filter(|v| get(&c, &edge.url("/s1/index.m3u8"), v).origin == a.host())
        .take(10)
        .collect();
    assert_eq!(on_a.len(), 10);

    let master = a.nginx.pid().unwrap();
    let workers = a.nginx.workers();
    signal_tree(master, &workers, Signal::SIGSTOP);
    let mut took = Vec::new();
    for v in &on_a {
        let t = Instant::now();
        let r = get(&c, &edge.url("/s1/1.ts"), v);
        took.push(t.elapsed());
        assert_eq!(r.status, 200, "{v}");
        assert!(r.body.starts_with("segment from origin B"), "{v}");
    }
    signal_tree(master, &workers, Signal::SIGCONT);
    println!("hung origin: request times {took:?}");
    assert!(
        took[0] >= Duration::from_millis(900),
        "the first one pays the timeout"
    );
    assert!(took[0] < Duration::from_millis(2500), "{:?}", took[0]);
    // Later requests (both workers) do not pay it again.
    let slow = took[2..]
        .iter()
        .filter(|t| **t > Duration::from_millis(300))
        .count();
    assert_eq!(slow, 0, "{took:?}");
    assert!(edge.nginx.error_log().contains("skipped for 30000 ms"));
}

/// A killed origin (connection refused) is skipped too, and its viewers
/// come back to it once it is up again and the failure memory lapsed.
#[test]
fn a_dead_origin_is_skipped_and_rejoined_later() {
    let (_redis, api) = api_with_redis();
    let mut a = Origin::start("A", &["s1"]);
    let b = Origin::start("B", &["s1"]);
    let c = client();
    register(&c, &api.url(), "s1", &a.host());
    register(&c, &api.url(), "s1", &b.host());
    let edge = Edge::start(&EdgeOpts {
        extra: "edge_router_fail_timeout 1s;".into(),
        ..EdgeOpts::new(&api.addr())
    });
    let v = (0..200)
        .map(|i| format!("viewer{i}"))
        .find(|v| get(&c, &edge.url("/s1/index.m3u8"), v).origin == a.host())
        .unwrap();
    let a_host = a.host();
    a.nginx.stop();
    let failed = Instant::now();
    let r = get(&c, &edge.url("/s1/index.m3u8"), &v);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("origin B"));
    // Skipped: B is now first in this viewer's order...
    let r = get(&c, &edge.url("/s1/index.m3u8"), &v);
    assert_eq!(r.origin, b.host());
    // ...until the failure memory lapsed (1 s): A is tried first again (and
    // fails again).
    wait::until_true(
        Duration::from_secs(5),
        "the sticky origin to be tried again after fail_timeout",
        || {
            let r = get(&c, &edge.url("/s1/index.m3u8"), &v);
            assert_eq!(r.status, 200);
            r.origin == a_host
        },
    );
    assert!(
        failed.elapsed() >= Duration::from_millis(800),
        "tried again before fail_timeout: {:?}",
        failed.elapsed()
    );
}

/// Workers SIGKILLed while the zone is busy (the OOM killer's way) never
/// wedge the edge: the master releases the zone's lock, new workers serve.
#[test]
fn killing_workers_under_load_never_wedges_the_edge() {
    let (_redis, api) = api_with_redis();
    let names: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let origin = Origin::start("A", &refs);
    let c = client();
    for i in 0..20 {
        register(&c, &api.url(), &format!("s{i}"), &origin.host());
    }
    register(&c, &api.url(), "live", &origin.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "50ms",
        ..EdgeOpts::new(&api.addr())
    });
    edge.nginx.wait_workers(2);
    let stop = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..6)
        .map(|t| {
            let stop = stop.clone();
            let port = edge.port;
            std::thread::spawn(move || {
                let c = client();
                let mut i = 0;
                while stop.load(Ordering::SeqCst) == 0 {
                    let _ = c
                        .get(format!(
                            "http://127.0.0.1:{port}/s{}/index.m3u8",
                            (i + t) % 25
                        ))
                        .timeout(Duration::from_secs(2))
                        .send();
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(150));
        if let Some(w) = edge.nginx.workers().first() {
            let _ = kill(Pid::from_raw(*w as i32), Signal::SIGKILL);
        }
    }
    stop.store(1, Ordering::SeqCst);
    for l in load {
        l.join().unwrap();
    }
    edge.nginx.wait_workers(2);
    // Every request after the respawn is answered, promptly.
    let t0 = Instant::now();
    for i in 0..50 {
        let r = get(&c, &edge.url(&format!("/s{}/index.m3u8", i % 20)), "v");
        assert_eq!(r.status, 200);
    }
    let took = t0.elapsed();
    println!("50 requests after 8 worker kills: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let log = edge.nginx.error_log();
    println!(
        "master released the zone lock {} times",
        log.matches("was locked by").count()
    );
}

/// A flood of random stream names: the API sees a bounded number of lookups
/// at a time (`edge_router_lookups` per worker), the rest get 503, and the
/// live stream's route survives in a small zone.
#[test]
fn a_flood_of_random_names_is_bounded_and_keeps_live_routes() {
    let origin = Origin::start("A", &["live"]);
    let host = origin.host();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let live_lookups = Arc::new(AtomicUsize::new(0));
    let (n2, m2, l2) = (now.clone(), max.clone(), live_lookups.clone());
    let api = FaultApi::start(Arc::new(move |path: &str| {
        if path.ends_with("/live") {
            l2.fetch_add(1, Ordering::SeqCst);
            return http_response(200, &stream_json("live", &[&host]));
        }
        let c = n2.fetch_add(1, Ordering::SeqCst) + 1;
        m2.fetch_max(c, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        n2.fetch_sub(1, Ordering::SeqCst);
        http_response(404, br#"{"error":"no such stream"}"#)
    }));
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "60s",
        negative: "60s",
        extra: "edge_router_lookups 4;".into(),
        ..EdgeOpts::new(&api.addr)
    });
    let c = client();
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "v").status, 200);

    let counts: Vec<_> = (0..16)
        .map(|t| {
            let url = edge.url("");
            std::thread::spawn(move || {
                let c = client();
                let (mut nf, mut busy) = (0, 0);
                for i in 0..150 {
                    match get(&c, &format!("{url}/flood{t}x{i}/index.m3u8"), "f").status {
                        404 => nf += 1,
                        503 => busy += 1,
                        s => panic!("flood request answered {s}"),
                    }
                }
                (nf, busy)
            })
        })
        .collect();
    let (mut nf, mut busy) = (0, 0);
    for t in counts {
        let (a, b) = t.join().unwrap();
        nf += a;
        busy += b;
    }
    let peak = max.load(Ordering::SeqCst);
    println!("2400 random names: {nf} x 404, {busy} x 503; API peak concurrency {peak}");
    assert!(
        peak <= 8,
        "at most 2 workers x 4 lookups at once, saw {peak}"
    );
    assert!(busy > 0);
    let r = get(&c, &edge.url("/live/index.m3u8"), "v");
    assert_eq!(r.status, 200);
    assert_eq!(r.route, "HIT", "the live route must survive the flood");
    assert_eq!(live_lookups.load(Ordering::SeqCst), 1);
}

/// Whatever the registry says, the edge contacts only origins the operator
/// allowed: a forged registration pointing at another service on the edge's
/// host gets a 502 and the trap sees no connection.
#[test]
fn origins_outside_the_allowlist_are_never_contacted() {
    let (_redis, api) = api_with_redis();
    let origin = Origin::start("A", &["ok"]);
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    let trap_addr = trap.local_addr().unwrap().to_string();
    trap.set_nonblocking(true).unwrap();
    let c = client();
    register(&c, &api.url(), "ok", &origin.host());
    register(&c, &api.url(), "evil", &trap_addr);
    register(&c, &api.url(), "api", &api.addr());

    let explicit = Edge::start(&EdgeOpts {
        origins: origin.host(),
        ..EdgeOpts::new(&api.addr())
    });
    let implicit = Edge::start(&EdgeOpts {
        origins: String::new(),
        ..EdgeOpts::new(&api.addr())
    });
    for edge in [&explicit, &implicit] {
        for name in ["evil", "api"] {
            let r = get(&c, &edge.url(&format!("/{name}/streams")), "v");
            assert_eq!(r.status, 502, "{name}");
            assert!(!r.body.contains("origin"), "{}", r.body);
        }
        assert!(edge
            .nginx
            .error_log()
            .contains("not allowed by \"edge_router_origins\""));
    }
    assert_eq!(get(&c, &explicit.url("/ok/index.m3u8"), "v").status, 200);
    let mut buf = [0u8; 1];
    let connected = trap.accept().map(|(mut s, _)| s.read(&mut buf)).is_ok();
    assert!(!connected, "the trap was contacted");
}

/// `$edge_router_session` (the origin's registration time) in the cache key:
/// when a publisher starts a new session whose segment names repeat the last
/// one's, the edge serves the new bytes, not its cached copy of the old ones.
#[test]
fn a_new_publish_session_never_gets_the_last_sessions_cached_objects() {
    let origin = Origin::start("A", &["s1"]);
    let host = origin.host();
    let since = Arc::new(std::sync::atomic::AtomicU64::new(1_700_000_000_000));
    let s2 = since.clone();
    let api = FaultApi::start(Arc::new(move |_path: &str| {
        let body = serde_json::json!({"name": "s1", "manifest": "index.m3u8", "host": host,
            "origins": [{"host": host, "manifest": "index.m3u8", "since": s2.load(Ordering::SeqCst)}]});
        http_response(200, body.to_string().as_bytes())
    }));
    let edge = Edge::start(&EdgeOpts {
        valid: "200ms",
        http_extra: "proxy_cache_path {dir}/cache keys_zone=hls:1m;".into(),
        extra: "proxy_cache hls; proxy_cache_valid 200 10m; \
                proxy_cache_key $edge_router_origin/$edge_router_session$uri; \
                add_header X-Cache-Status $upstream_cache_status always;"
            .into(),
        ..EdgeOpts::new(&api.addr)
    });
    let c = client();
    let cache_status = |c: &reqwest::blocking::Client| {
        let r = c.get(edge.url("/s1/1.ts")).send().unwrap();
        let st = r.headers()["x-cache-status"].to_str().unwrap().to_string();
        (st, r.text().unwrap())
    };
    assert_eq!(cache_status(&c).0, "MISS");
    let (st, body) = cache_status(&c);
    assert_eq!(st, "HIT");
    assert!(body.starts_with("segment from origin A"));

    // New session: same segment name, new bytes, new registration time.
    std::fs::write(
        origin.nginx.dir().join("html/s1/1.ts"),
        "new session".repeat(10),
    )
    .unwrap();
    since.store(1_700_000_099_000, Ordering::SeqCst);
    // The route expires (200 ms) and is refreshed in the background (the
    // request that finds it expired starts that); meanwhile the old
    // session's copy is served. The first answer with the new bytes comes
    // from the origin, not from a cached copy.
    let (st, body) = wait::until(Duration::from_secs(5), "the new session's bytes", || {
        let (st, body) = cache_status(&c);
        body.starts_with("new session").then_some((st, body))
    });
    assert_eq!(
        st, "MISS",
        "the new session's object is fetched anew: {body}"
    );
}

/// The API is down and the edge never saw the stream (it started during the
/// outage, or the edge restarted): the operator's origins are probed, the
/// one that has the stream serves it, concurrent viewers share one probe
/// round, unknown streams get 404. When the API is back, its answer wins.
#[test]
fn with_the_api_down_streams_are_found_by_probing_the_allowed_origins() {
    let a = Origin::start("A", &["s1"]);
    let b = Origin::start("B", &["other"]);
    let api_up = Arc::new(AtomicUsize::new(0));
    let (up2, b_host) = (api_up.clone(), b.host());
    let api = FaultApi::start(Arc::new(move |path: &str| {
        if up2.load(Ordering::SeqCst) == 0 {
            return http_response(503, br#"{"error":"redis unavailable"}"#);
        }
        let name = path.rsplit('/').next().unwrap_or("");
        http_response(200, &stream_json(name, &[&b_host]))
    }));
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "500ms",
        probe: true,
        origins: format!("{} {}", a.host(), b.host()),
        ..EdgeOpts::new(&api.addr)
    });
    let c = client();
    let viewers: Vec<_> = (0..8)
        .map(|i| {
            let url = edge.url("/s1/index.m3u8");
            std::thread::spawn(move || get(&client(), &url, &format!("v{i}")))
        })
        .collect();
    for v in viewers {
        let r = v.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.route);
        assert!(r.body.contains("origin A"), "{}", r.body);
    }
    let probes = edge.probes();
    println!("8 concurrent viewers, API down -> {probes} origin probes");
    assert!(
        (2..=4).contains(&probes),
        "one round of 2 probes per worker at most: {probes}"
    );
    let r = get(&c, &edge.url("/s1/1.ts"), "v");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("segment from origin A"));
    assert!(edge.nginx.error_log().contains("origin probes: "));

    // A stream no origin has: 404, not 502.
    assert_eq!(get(&c, &edge.url("/nowhere/index.m3u8"), "v").status, 404);

    // The API is back: after the provisional route's validity, its answer
    // (origin B) wins.
    api_up.store(1, Ordering::SeqCst);
    // The request that finds it expired refreshes it in the background.
    wait::until_true(
        Duration::from_secs(5),
        "the API's answer (origin B) to win",
        || get(&c, &edge.url("/s1/index.m3u8"), "v").origin == b.host(),
    );
}

/// Without `edge_router_probe`, or for origins given only as networks,
/// nothing is probed: an unknown stream with the API down is a 502.
#[test]
fn nothing_is_probed_without_the_directive() {
    let a = Origin::start("A", &["s1"]);
    let api = FaultApi::start(Arc::new(|_p: &str| http_response(503, b"{}")));
    let edge = Edge::start(&EdgeOpts {
        origins: a.host(),
        ..EdgeOpts::new(&api.addr)
    });
    assert_eq!(get(&client(), &edge.url("/s1/index.m3u8"), "v").status, 502);
    let nets = Edge::start(&EdgeOpts {
        origins: "127.0.0.0/8".into(),
        probe: true,
        ..EdgeOpts::new(&api.addr)
    });
    assert_eq!(get(&client(), &nets.url("/s1/index.m3u8"), "v").status, 502);
    assert_eq!(edge.probes() + nets.probes(), 0);
}

/// A black-holed origin (its SYNs are dropped: here a listener whose accept
/// queue is full and never drained, so the kernel drops new SYNs) costs one
/// connect timeout, once; later requests go straight to the other origin.
#[test]
fn a_black_holed_origin_costs_one_connect_timeout_then_is_skipped() {
    use socket2::{Domain, Socket, Type};
    let hole = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    hole.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    hole.listen(0).unwrap();
    let hole_addr = hole.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue: from now on the kernel drops SYNs to it.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = TcpStream::connect_timeout(&hole_addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    assert!(
        TcpStream::connect_timeout(&hole_addr, Duration::from_millis(300)).is_err(),
        "the listener must not accept any more connections"
    );

    let (_redis, api) = api_with_redis();
    let b = Origin::start("B", &["s1"]);
    let c = client();
    register(&c, &api.url(), "s1", &hole_addr.to_string());
    register(&c, &api.url(), "s1", &b.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        extra: "edge_router_fail_timeout 30s;".into(),
        ..EdgeOpts::new(&api.addr())
    });
    // Viewers whose sticky origin is the black hole.
    let mut took = Vec::new();
    let mut n = 0;
    for i in 0..400 {
        let v = format!("viewer{i}");
        let t = Instant::now();
        let r = get(&c, &edge.url("/s1/1.ts"), &v);
        let e = t.elapsed();
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with("segment from origin B"));
        took.push(e);
        n += 1;
        if n >= 40 {
            break;
        }
    }
    let slow: Vec<&Duration> = took
        .iter()
        .filter(|t| **t > Duration::from_millis(500))
        .collect();
    println!(
        "black-holed origin: {} of {} requests paid a connect timeout: {slow:?}",
        slow.len(),
        took.len()
    );
    assert!(
        !slow.is_empty(),
        "some viewer must have been sticky to the black hole"
    );
    assert!(
        slow.iter().all(|t| **t < Duration::from_millis(2500)),
        "{slow:?}"
    );
    assert!(slow.len() <= 2, "one timeout per worker at most: {slow:?}");
    drop(fillers);
}
