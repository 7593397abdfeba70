//! `edge_router_metrics`: drive traffic through a real edge (real API and
//! redis-server, real origin nginx processes) and check that the counters,
//! shared by all workers, moved as they should.

mod common;

use std::time::Duration;

use common::*;
use rtmp_live_testkit::{wait, Api, Redis};

#[test]
fn counters_follow_hits_misses_stale_routes_and_origin_failures() {
    let redis = Redis::start();
    let mut api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let a = Origin::start("A", &["s1"]);
    let mut b = Origin::start("B", &["s1"]);
    let c = client();
    register(&c, &api.url(), "s1", &a.host());
    register(&c, &api.url(), "s1", &b.host());
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        valid: "500ms",
        ..EdgeOpts::new(&api.addr())
    });
    let m = |s: &str| edge.metric(s);
    let outcome = |o: &str| m(&format!("edge_router_requests_total{{outcome=\"{o}\"}}"));

    // 20 requests, one viewer: misses (one per worker at most), then hits.
    for _ in 0..20 {
        assert_eq!(get(&c, &edge.url("/s1/index.m3u8"), "v").status, 200);
    }
    let (miss, hit) = (outcome("miss"), outcome("fresh_hit"));
    println!("after 20 requests: miss {miss}, fresh_hit {hit}");
    assert!((1.0..=2.0).contains(&miss), "{miss}");
    assert_eq!(miss + hit + outcome("coalesced_wait"), 20.0);
    assert!(m("edge_router_api_lookup_seconds_count") >= miss);
    assert_eq!(m("edge_router_routes"), 1.0);
    assert!(m("edge_router_zone_bytes") > 0.0);
    assert!(m("edge_router_zone_used_bytes") > 0.0);
    // Every metric is in the module's reference.
    let doc =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let text = rtmp_live_testkit::metrics::scrape(&edge.url("/metrics"));
    assert_eq!(
        rtmp_live_testkit::metrics::undocumented(&text, &doc),
        Vec::<String>::new(),
        "metrics missing from ngx-edge-router/README.md"
    );
    let selections: f64 = edge
        .metrics()
        .iter()
        .filter(|(k, _)| k.starts_with("edge_router_origin_selections_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(selections, 20.0, "one attempt per request");

    // A negative hit.
    assert_eq!(get(&c, &edge.url("/nosuch/index.m3u8"), "v").status, 404);
    assert_eq!(get(&c, &edge.url("/nosuch/index.m3u8"), "v").status, 404);
    assert!(outcome("negative_hit") >= 1.0);
    assert!(m("edge_router_negative_routes") >= 1.0);

    // The API goes away: updating, then stale hits and API errors.
    api.stop();
    // Once the route expired (500 ms), the request that finds it so starts a
    // refresh, which fails; later ones are stale hits.
    wait::until_true(
        Duration::from_secs(5),
        "updating, stale hits and API errors to be counted",
        || {
            assert_eq!(get(&c, &edge.url("/s1/index.m3u8"), "v").status, 200);
            outcome("updating") >= 1.0 && outcome("stale_hit") >= 1.0 && outcome("api_error") >= 1.0
        },
    );
    println!(
        "API down: updating {}, stale_hit {}, api_error {}",
        outcome("updating"),
        outcome("stale_hit"),
        outcome("api_error")
    );
    assert!(outcome("updating") >= 1.0);
    assert!(outcome("stale_hit") >= 1.0);
    assert!(outcome("api_error") >= 1.0);

    // An origin fails: its failure is counted and it is reported down.
    let b_host = b.host();
    b.nginx.stop();
    for v in 0..30 {
        assert_eq!(
            get(&c, &edge.url("/s1/index.m3u8"), &format!("w{v}")).status,
            200
        );
    }
    let failures = m(&format!(
        "edge_router_origin_failures_total{{origin=\"{b_host}\"}}"
    ));
    println!("origin B stopped: {failures} failure(s) counted");
    assert!(failures >= 1.0);
    assert_eq!(
        m(&format!("edge_router_origin_down{{origin=\"{b_host}\"}}")),
        1.0
    );
    assert_eq!(
        m(&format!(
            "edge_router_origin_down{{origin=\"{}\"}}",
            a.host()
        )),
        0.0
    );
}
