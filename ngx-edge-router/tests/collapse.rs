//! `edge_router_collapse`: viewers waiting for the same LL-HLS part share one
//! origin request and get the answer together, the moment it arrives. The
//! origin is a small fault-injecting server holding blocking reloads the way
//! the LL-HLS component does until a part exists; the API (with its
//! redis-server) and the edge nginx are the real ones.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rtmp_live_testkit::{wait, Api, Redis};

const HOLD: Duration = Duration::from_millis(300);

/// An origin that holds requests carrying `_HLS_msn` for `hold` and
/// answers a cacheable playlist; `fail_first` paths get a 503 the first
/// time. Returns it and the paths it was asked for.
fn holding_origin(fail_first: &'static str, hold: Duration) -> (FaultApi, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    let origin = FaultApi::start(Arc::new(move |path: &str| {
        let seen = {
            let mut l = l.lock().unwrap();
            l.push(path.to_string());
            l.iter().filter(|p| *p == path).count()
        };
        if path.contains("_HLS_msn") {
            std::thread::sleep(hold);
        }
        if seen == 1 && !fail_first.is_empty() && path.contains(fail_first) {
            return http_response(503, b"{\"error\":\"not yet\"}");
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

/// The edge as the platform configures playlists: a proxy cache keyed by
/// origin and URI with its query, and either the module's collapsing or
/// nginx's cache lock.
fn edge(api: &str, collapse: bool) -> Edge {
    edge_with(api, collapse, "")
}

/// [`edge`], with more directives in the http block (`{dir}`: its folder).
fn edge_with(api: &str, collapse: bool, http_extra: &str) -> Edge {
    let key = "$edge_router_origin$uri$is_args$args";
    // collapsing: the cache key is the collapse key as the module
    // evaluated it (as in the platform's template)
    let how = if collapse {
        format!(
            "proxy_cache_lock off; edge_router_collapse {key}; \
             proxy_cache_key $edge_router_collapse_key;"
        )
    } else {
        format!("proxy_cache_lock on; proxy_cache_lock_timeout 5s; proxy_cache_key {key};")
    };
    Edge::start(&EdgeOpts {
        http_extra: format!("proxy_cache_path {{dir}}/cache keys_zone=playlists:1m; {http_extra}"),
        extra: format!(
            "edge_router_query delivery; proxy_cache playlists; \
             proxy_read_timeout 5s; {how}"
        ),
        ..EdgeOpts::new(api)
    })
}

/// One viewer's answer: its status, and when its request started and its
/// answer arrived (s, both from the moment the viewers were started).
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    start: f64,
    end: f64,
}

/// `n` viewers ask for `path` at once. Threads start a few ms apart on a
/// loaded machine, so each answer carries its own start and end on one clock.
fn viewers(edge: &Edge, path: &str, n: usize) -> Vec<Answer> {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    let c = client();
                    let start = t0.elapsed().as_secs_f64();
                    let r = get(&c, &edge.url(path), &format!("viewer{i}"));
                    Answer {
                        status: r.status,
                        start,
                        end: t0.elapsed().as_secs_f64(),
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// How far apart the first and last answers arrived (s).
fn spread(answers: &[Answer]) -> f64 {
    let w = answers.iter().map(|a| a.end);
    w.clone().fold(0.0, f64::max) - w.fold(f64::MAX, f64::min)
}

fn asked(log: &Mutex<Vec<String>>, path: &str) -> usize {
    log.lock().unwrap().iter().filter(|p| *p == path).count()
}

#[test]
fn viewers_waiting_for_one_part_share_one_origin_request_and_its_answer() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let (origin, log) = holding_origin("", HOLD);
    let c = client();
    register(&c, &api.url(), "live", &origin.addr);

    let with = edge(&api.addr(), true);
    assert_eq!(get(&c, &with.url("/live/index.m3u8"), "w").status, 200);
    let path = "/live/index.m3u8?_HLS_msn=7&_HLS_part=2";
    let answers = viewers(&with, path, 8);
    println!("edge_router_collapse: {answers:?}");
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(asked(&log, path), 1, "one origin request for 8 viewers");
    // Nobody was answered before the one origin request was (it started no
    // earlier than the first viewer and was held for HOLD), and all were
    // answered together, when it was: not up to 0.5 s later.
    let first = answers.iter().map(|a| a.start).fold(f64::MAX, f64::min);
    assert!(
        answers.iter().all(|a| a.end >= first + HOLD.as_secs_f64()),
        "{answers:?}"
    );
    assert!(spread(&answers) < 0.1, "{answers:?}");

    // The reference: nginx's cache lock collapses too, but its waiters look
    // at the lock every 500 ms.
    let without = edge(&api.addr(), false);
    assert_eq!(get(&c, &without.url("/live/index.m3u8"), "w").status, 200);
    let path = "/live/index.m3u8?_HLS_msn=8&_HLS_part=0";
    let locked = viewers(&without, path, 8);
    println!("proxy_cache_lock: {locked:?}");
    assert!(locked.iter().all(|a| a.status == 200), "{locked:?}");
    assert_eq!(asked(&log, path), 1);
    assert!(spread(&locked) > 0.1, "{locked:?}");
}

#[test]
fn waiters_of_a_failed_request_decide_again() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let (origin, log) = holding_origin("_HLS_msn=9", HOLD);
    let c = client();
    register(&c, &api.url(), "live", &origin.addr);
    let edge = edge(&api.addr(), true);
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "w").status, 200);

    // The leader gets the origin's 503, which the cache does not keep; its
    // waiters do not take that as their answer: one of them asks again and
    // the rest share that second request.
    let path = "/live/index.m3u8?_HLS_msn=9&_HLS_part=0";
    let answers = viewers(&edge, path, 6);
    println!("after a 503: {answers:?}");
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert!(ok >= 5, "{answers:?}");
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status >= 500),
        "{answers:?}"
    );
    assert_eq!(asked(&log, path), 2, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.end - a.start < 2.0 * HOLD.as_secs_f64() + 0.2),
        "{answers:?}"
    );
}

#[test]
fn a_viewer_that_leaves_while_waiting_is_let_go_at_once() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let hold = Duration::from_secs(2);
    let (origin, log) = holding_origin("", hold);
    let c = client();
    register(&c, &api.url(), "live", &origin.addr);
    let edge = edge_with(
        &api.addr(),
        true,
        "log_format waits '$http_x_viewer $status $request_time'; \
         access_log {dir}/waits.log waits;",
    );
    assert_eq!(get(&c, &edge.url("/live/index.m3u8"), "w").status, 200);
    let fresh_hits = || edge.metric(r#"edge_router_requests_total{outcome="fresh_hit"}"#);
    let hits = fresh_hits();

    // The leader waits for the origin; a second viewer waits for it, then
    // hangs up.
    let path = "/live/index.m3u8?_HLS_msn=20&_HLS_part=0";
    let t0 = Instant::now();
    let leader = std::thread::spawn({
        let url = edge.url(path);
        move || get(&client(), &url, "leader").status
    });
    wait::until_true(
        Duration::from_secs(5),
        "the leader's request at the origin",
        || asked(&log, path) == 1,
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", edge.port)).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET {path} HTTP/1.1\r\nHost: edge\r\nX-Viewer: leaver\r\n\r\n").as_bytes(),
    )
    .unwrap();
    // It is routed (a fresh hit) and, in the same pass of the edge's one
    // worker, held behind the leader's request; then it hangs up.
    wait::until_true(
        Duration::from_secs(5),
        "the second viewer's request to be routed",
        || fresh_hits() >= hits + 2.0,
    );
    drop(s);

    // nginx ends its request (499) then, not when the leader's answer comes.
    let waits = edge.nginx.dir().join("waits.log");
    let line = wait::until(
        (2 * hold).saturating_sub(t0.elapsed()),
        "a log line for the viewer that left",
        || {
            let text = std::fs::read_to_string(&waits).unwrap_or_default();
            text.lines()
                .find(|l| l.starts_with("leaver "))
                .map(str::to_string)
        },
    );
    let ended_at = t0.elapsed();
    println!("the viewer that left: {line:?}, logged {ended_at:?} after the leader asked");
    assert!(line.starts_with("leaver 499 "), "{line}");
    assert!(ended_at < hold, "{ended_at:?}");

    // The leader and the origin did not notice.
    assert_eq!(leader.join().unwrap(), 200);
    assert_eq!(asked(&log, path), 1);
}
