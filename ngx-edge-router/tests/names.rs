//! Origins by name: the API may name an origin by host name (as in
//! containers, where addresses change); the edge resolves it with nginx's
//! resolver against a real DNS server (dnsmasq on a loopback port), applies
//! `edge_router_origins` to the name and to what it resolves to, and turns
//! every resolver failure into a 502 with an error-log line.

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rtmp_live_testkit::{free_port, wait, Api, Redis};

/// dnsmasq answering only its own records, logging every query.
struct Dns {
    port: u16,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dns {
    fn start(records: &[(&str, &str)]) -> Dns {
        // dnsmasq listens on UDP and TCP: a port free for one may be taken
        // for the other, so a start that fails is retried on another port.
        for _ in 0..10 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("dns.log");
            let mut cmd = Command::new("dnsmasq");
            cmd.args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--log-queries",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--log-facility={}", log.display()));
            for (name, ip) in records {
                cmd.arg(format!("--host-record={name},{ip}"));
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dnsmasq (package dnsmasq-base; scripts/deps.sh installs it)");
            let mut dns = Dns {
                port,
                log,
                child,
                _dir: dir,
            };
            if dns.ready() {
                return dns;
            }
            eprintln!(
                "dnsmasq on port {port} did not start: {}",
                std::fs::read_to_string(&dns.log).unwrap_or_default()
            );
        }
        panic!("dnsmasq did not start");
    }

    /// Whether it answers (any answer) on its port within 5 s.
    fn ready(&mut self) -> bool {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let query = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'r', b'e', b'a', b'd', b'y', 0, 0, 1, 0,
            1,
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            let _ = probe.send_to(&query, ("127.0.0.1", self.port));
            let mut buf = [0u8; 512];
            if probe.recv_from(&mut buf).is_ok() {
                return true;
            }
        }
        false
    }

    /// How many queries for `name` reached the server.
    fn queries(&self, name: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("query[") && l.contains(&format!(" {name} from")))
            .count()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup() -> (Redis, Api, Origin) {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "60")]);
    let origin = Origin::start("A", &["named", "rogue", "unlisted", "nx"]);
    (redis, api, origin)
}

#[test]
fn named_origins_are_resolved_allowlisted_and_cached_for_a_bounded_time() {
    let (_redis, api, origin) = setup();
    let dns = Dns::start(&[
        ("origin-a.test", "127.0.0.1"),
        // An allowed name that resolves outside the allowed addresses.
        ("rogue.test", "127.0.0.2"),
        ("other.test", "127.0.0.1"),
    ]);
    let c = client();
    let port = origin.port;
    register(&c, &api.url(), "named", &format!("origin-a.test:{port}"));
    register(&c, &api.url(), "rogue", &format!("rogue.test:{port}"));
    register(&c, &api.url(), "unlisted", &format!("other.test:{port}"));
    register(&c, &api.url(), "nx", &format!("missing.test:{port}"));
    let edge = Edge::start(&EdgeOpts {
        workers: 2,
        origins: "origin-a.test rogue.test missing.test 127.0.0.1/32".into(),
        http_extra: format!(
            "resolver 127.0.0.1:{} valid=1s ipv6=off; resolver_timeout 1s;",
            dns.port
        ),
        ..EdgeOpts::new(&api.addr())
    });

    let r = get(&c, &edge.url("/named/index.m3u8"), "v");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("origin A"), "{}", r.body);
    assert_eq!(r.origin, format!("origin-a.test:{port}"));
    assert_eq!(get(&c, &edge.url("/named/1.ts"), "v").status, 200);

    // Name allowed, address not: never contacted.
    let r = get(&c, &edge.url("/rogue/index.m3u8"), "v");
    assert_eq!(r.status, 502);
    // Name not allowed: not even resolved.
    let r = get(&c, &edge.url("/unlisted/index.m3u8"), "v");
    assert_eq!(r.status, 502);
    assert_eq!(dns.queries("other.test"), 0, "a refused name was resolved");
    // A name DNS does not know.
    let r = get(&c, &edge.url("/nx/index.m3u8"), "v");
    assert_eq!(r.status, 502);
    let log = edge.nginx.error_log();
    assert!(
        log.contains(&format!(
            "origin rogue.test:{port} (resolved to 127.0.0.2:{port})"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "origin other.test:{port} of stream \"unlisted\" is not allowed"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "origin missing.test:{port} of stream \"nx\" could not be resolved"
        )),
        "{log}"
    );

    // nginx caches the answer, for at most `valid=1s` (nginx's clock counts
    // whole seconds: up to 2 s): 3.5 s of requests make a query again, but
    // a few, not one per request.
    let before = dns.queries("origin-a.test");
    let start = Instant::now();
    let mut served = 0;
    while start.elapsed() < Duration::from_millis(3500) {
        let r = get(&c, &edge.url("/named/index.m3u8"), "v");
        assert_eq!(r.status, 200);
        served += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let q = dns.queries("origin-a.test") - before;
    eprintln!("{served} requests, {q} DNS queries for the origin");
    assert!(q >= 1, "answers were cached longer than valid=1s");
    assert!(
        q <= 8,
        "answers were not cached: {q} queries for {served} requests"
    );
}

#[test]
fn a_dead_or_missing_resolver_is_a_502_with_a_log_line_never_a_hang() {
    let (_redis, api, origin) = setup();
    let c = client();
    register(
        &c,
        &api.url(),
        "named",
        &format!("origin-a.test:{}", origin.port),
    );
    register(&c, &api.url(), "nx", &origin.host());

    let no_resolver = Edge::start(&EdgeOpts {
        origins: "origin-a.test 127.0.0.1/32".into(),
        ..EdgeOpts::new(&api.addr())
    });
    assert_eq!(
        get(&c, &no_resolver.url("/named/index.m3u8"), "v").status,
        502
    );
    assert!(no_resolver
        .nginx
        .error_log()
        .contains("no \"resolver\" is defined"));
    // Literal addresses need no resolver.
    assert_eq!(get(&c, &no_resolver.url("/nx/index.m3u8"), "v").status, 200);

    // A resolver that never answers (nothing listens on its port).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = Edge::start(&EdgeOpts {
        origins: "origin-a.test 127.0.0.1/32".into(),
        http_extra: format!(
            "resolver {} valid=1s ipv6=off; resolver_timeout 500ms;",
            silent.local_addr().unwrap()
        ),
        ..EdgeOpts::new(&api.addr())
    });
    let urls = [dead.url("/named/index.m3u8"), dead.url("/nx/index.m3u8")];
    let waiting = std::thread::spawn({
        let url = urls[0].clone();
        move || {
            let t = Instant::now();
            (get(&client(), &url, "w").status, t.elapsed())
        }
    });
    // Its query reached the resolver, which never answers.
    silent.set_nonblocking(true).unwrap();
    let mut query = [0u8; 512];
    wait::until(
        Duration::from_secs(5),
        "the edge's DNS query at the silent resolver",
        || silent.recv_from(&mut query).ok(),
    );
    // The worker is not blocked meanwhile.
    let t = Instant::now();
    assert_eq!(get(&c, &urls[1], "v").status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let (status, took) = waiting.join().unwrap();
    assert_eq!(status, 502);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(dead.nginx.error_log().contains("could not be resolved"));
}
