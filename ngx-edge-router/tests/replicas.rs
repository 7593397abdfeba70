//! Several edges and several API instances, as a platform past one machine
//! runs them: a viewer gets the same origin from every edge (the sticky
//! choice is rendezvous hashing of the viewer key over the stream's
//! origins, computed alike by each edge), and an edge whose API instance
//! dies asks another.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use rtmp_live_testkit::{wait, Api, Redis};

/// The edges' upstream of every API instance, as the template's
/// (`API_SERVERS`); a refused connection goes to the next instance.
fn apis_upstream(apis: &[&Api]) -> String {
    let servers: String = apis
        .iter()
        .map(|a| format!("server {} max_fails=1 fail_timeout=5s; ", a.addr()))
        .collect();
    format!("upstream edge_apis {{ {servers} }}")
}

#[test]
fn viewers_keep_their_origin_across_edges_and_api_instances() {
    let redis = Redis::start();
    let api1 = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let mut api2 = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let origins: Vec<Origin> = ["A", "B", "C"]
        .iter()
        .map(|id| Origin::start(id, &["s"]))
        .collect();
    let c = client();
    for o in &origins {
        register(&c, &api1.url(), "s", &o.host());
    }
    let opts = EdgeOpts {
        valid: "300ms",
        http_extra: apis_upstream(&[&api1, &api2]),
        ..EdgeOpts::new("edge_apis")
    };
    let edges: Vec<Edge> = (0..3).map(|_| Edge::start(&opts)).collect();

    // 60 viewers, each asking every edge (DNS round robin or a load
    // balancer may send them to any): one origin per viewer.
    let mut chosen: HashMap<String, String> = HashMap::new();
    for v in 0..60 {
        let viewer = format!("viewer-{v}");
        for (i, e) in edges.iter().enumerate() {
            let r = get(&c, &e.url("/s/index.m3u8"), &viewer);
            assert_eq!(r.status, 200, "edge {i}, {viewer}");
            let first = chosen.entry(viewer.clone()).or_insert(r.origin.clone());
            assert_eq!(*first, r.origin, "{viewer}: edge {i} chose another origin");
        }
    }
    let mut per_origin: HashMap<&str, usize> = HashMap::new();
    for o in chosen.values() {
        *per_origin.entry(o.as_str()).or_default() += 1;
    }
    println!("60 viewers over 3 edges: {per_origin:?} (same origin from every edge)");
    assert_eq!(per_origin.len(), 3, "every origin gets viewers");

    // One API instance dies: routes keep being refreshed through the
    // other (a 300 ms route expires many times over), no viewer sees an
    // error, and no viewer changes origin.
    api2.stop();
    let lookups_before: usize = edges.iter().map(Edge::lookups).sum();
    for round in 0..5 {
        for (viewer, origin) in &chosen {
            for e in &edges {
                let r = get(&c, &e.url("/s/index.m3u8"), viewer);
                assert_eq!(r.status, 200, "round {round}, {viewer}");
                assert_eq!(&r.origin, origin, "round {round}, {viewer}");
            }
        }
        std::thread::sleep(Duration::from_millis(350));
    }
    let lookups: usize = edges.iter().map(Edge::lookups).sum::<usize>() - lookups_before;
    assert!(
        lookups >= 3,
        "the routes were refreshed ({lookups} lookups)"
    );
    // A change made through the instance that is left reaches every edge.
    deregister(&c, &api1.url(), "s", &origins[0].host());
    for e in &edges {
        wait::until_true(Duration::from_secs(5), "the route without A", || {
            (0..20).all(|v| {
                get(&c, &e.url("/s/index.m3u8"), &format!("viewer-{v}")).origin != origins[0].host()
            })
        });
    }
    println!("API instance 2 stopped: {lookups} lookups answered by instance 1, 0 errors");
}
