//! The API on Redis Sentinel (real redis-server nodes and sentinels), and a
//! registry that is lost under it: the master follows a failover, writes
//! come back with the origins' reports, and a name is never granted to two
//! keys.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use rtmp_live_testkit::sentinel::RedisHa;
use rtmp_live_testkit::{wait, Api, Redis};
use serde_json::{json, Value};

const KEY_A: &str = "sentinel-key-aaaaaaaaaaaaaaaa";
const KEY_B: &str = "sentinel-key-bbbbbbbbbbbbbbbb";

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize(c: &Client, api: &Api, key: &str) -> Response {
    c.post(format!("{}/authorize", api.url()))
        .form(&[("call", "publish"), ("app", "stream"), ("name", key)])
        .send()
        .unwrap()
}

/// An origin's report, with the owner its discovery learned from
/// `/authorize` (SHA-256 of the key that started the publish).
fn report(c: &Client, api: &Api, name: &str, host: &str) -> u16 {
    report_owned(c, api, name, host, Some(KEY_A))
}

fn report_owned(c: &Client, api: &Api, name: &str, host: &str, key: Option<&str>) -> u16 {
    let mut body = json!({"name": name, "manifest": "index.m3u8", "host": host});
    if let Some(k) = key {
        body["owner"] = json!(sha256_hex(k));
    }
    c.post(format!("{}/streams", api.url()))
        .json(&body)
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn lookup(c: &Client, api: &Api, name: &str) -> (u16, Value) {
    match c.get(format!("{}/streams/{name}", api.url())).send() {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn sha256_hex(s: &str) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut p| {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(s.as_bytes())?;
            p.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Both keys publish the same name (two encoders of one streamer, or a
/// leaked second key): only the first may hold it while it is live.
fn keys() -> String {
    format!("{KEY_A}=golive,{KEY_B}=golive")
}

#[test]
fn the_api_follows_a_sentinel_failover() {
    let mut ha = RedisHa::start(2, 1000);
    let api = Api::start(
        "redis://127.0.0.1:1",
        &[
            ("REDIS_SENTINELS", &ha.sentinels()),
            ("REDIS_PASSWORD", &ha.password),
            ("REDIS_SENTINEL_PASSWORD", &ha.password),
            ("REDIS_WAIT_REPLICAS", "1"),
            ("STREAM_KEYS", &keys()),
            ("REDIS_TIMEOUT_MS", "500"),
        ],
    );
    let c = client();
    wait::until_true(
        Duration::from_secs(15),
        "the API to find the master",
        || {
            c.get(format!("{}/readyz", api.url()))
                .send()
                .is_ok_and(|r| r.status() == 200)
        },
    );
    // right after the start, until a replica has synced, claims answer 503
    wait::until_true(
        Duration::from_secs(20),
        "a claim on a synced replica",
        || authorize(&c, &api, KEY_A).status() == 302,
    );
    assert_eq!(report(&c, &api, "golive", "10.0.0.1:8080"), 204);
    let master = ha.master_port().expect("a master");
    assert_eq!(master, ha.ports[0]);

    // The master dies (SIGKILL). Writes the API acknowledged went to a
    // replica first (WAIT 1 for claims; the reports are re-sent by every
    // heartbeat): the promoted replica has the owner record.
    let killed = Instant::now();
    ha.kill_node(0);
    let mut errors = 0;
    let back = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no new master within 30 s ({errors} failed reports):\n{}\n{}",
            api.proc.log(),
            ha.logs()
        );
        // an origin's heartbeat, every 250 ms here
        if report(&c, &api, "golive", "10.0.0.1:8080") == 204 {
            break killed.elapsed();
        }
        errors += 1;
        std::thread::sleep(Duration::from_millis(250));
    };
    let new_master = ha.master_port().expect("a new master");
    assert_ne!(new_master, ha.ports[0], "the sentinels promoted a replica");
    println!(
        "master killed: reports accepted again after {back:?} ({errors} refused with 503), \
         new master :{new_master}"
    );
    let (s, v) = lookup(&c, &api, "golive");
    assert_eq!(s, 200, "{v}");
    // The claim survived: the other key cannot take the live name, the
    // owner's own key can start again.
    let b = authorize(&c, &api, KEY_B);
    assert_eq!(b.status(), 403, "{}", api.proc.log());
    let a = authorize(&c, &api, KEY_A);
    assert_eq!(a.status(), 302, "{}", api.proc.log());
    assert!(
        api.proc.log().contains("redis master from the sentinels"),
        "{}",
        api.proc.log()
    );

    // The old master comes back: the sentinels make it a replica, and the
    // API keeps writing to the new master (no READONLY errors reach a
    // caller once it moved).
    ha.start_node(0);
    wait::until_true(
        Duration::from_secs(20),
        "the old master to become a replica",
        || {
            let out = ha.cli(0).arg("ROLE").output().expect("redis-cli");
            String::from_utf8_lossy(&out.stdout).starts_with("slave")
        },
    );
    for i in 0..20 {
        assert_eq!(
            report(&c, &api, "golive", "10.0.0.1:8080"),
            204,
            "report {i} after the old master returned:\n{}",
            api.proc.log()
        );
    }
}

#[test]
fn the_api_leaves_a_master_that_hangs() {
    // A master that stops answering (SIGSTOP: what a network dropping its
    // packets looks like from the API) is left on the timeout, not only on
    // a broken connection.
    let ha = RedisHa::start(2, 1000);
    let api = Api::start(
        "redis://127.0.0.1:1",
        &[
            ("REDIS_SENTINELS", &ha.sentinels()),
            ("REDIS_PASSWORD", &ha.password),
            ("REDIS_SENTINEL_PASSWORD", &ha.password),
            ("REDIS_WAIT_REPLICAS", "1"),
            ("STREAM_KEYS", &keys()),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
    );
    let c = client();
    wait::until_true(
        Duration::from_secs(20),
        "a claim on a synced replica",
        || authorize(&c, &api, KEY_A).status() == 302,
    );
    assert_eq!(report(&c, &api, "golive", "10.0.0.1:8080"), 204);
    ha.signal_node(0, nix::sys::signal::Signal::SIGSTOP);
    let stopped = Instant::now();
    let back = wait::until_explained(
        Duration::from_secs(30),
        || (report(&c, &api, "golive", "10.0.0.1:8080") == 204).then(|| stopped.elapsed()),
        || {
            format!(
                "reports on a new master:\n{}\n{}",
                api.proc.log(),
                ha.logs()
            )
        },
    );
    assert_ne!(ha.master_port(), Some(ha.ports[0]));
    println!("master stopped (SIGSTOP): reports accepted again after {back:?}");
    assert!(
        api.proc.log().contains("timed out"),
        "the hang was met as a timeout:\n{}",
        api.proc.log()
    );
    assert_eq!(authorize(&c, &api, KEY_B).status(), 403);
    // It wakes up as a replica of the new master.
    ha.signal_node(0, nix::sys::signal::Signal::SIGCONT);
    wait::until_true(
        Duration::from_secs(20),
        "the old master to become a replica",
        || {
            let out = ha.cli(0).arg("ROLE").output().expect("redis-cli");
            String::from_utf8_lossy(&out.stdout).starts_with("slave")
        },
    );
    for i in 0..20 {
        assert_eq!(
            report(&c, &api, "golive", "10.0.0.1:8080"),
            204,
            "report {i} after the old master woke up:\n{}",
            api.proc.log()
        );
    }
}

#[test]
fn a_claim_waits_for_a_replica() {
    let mut ha = RedisHa::start(1, 60_000);
    let api = Api::start(
        "redis://127.0.0.1:1",
        &[
            ("REDIS_SENTINELS", &ha.sentinels()),
            ("REDIS_PASSWORD", &ha.password),
            ("REDIS_SENTINEL_PASSWORD", &ha.password),
            ("REDIS_WAIT_REPLICAS", "1"),
            ("STREAM_KEYS", &keys()),
        ],
    );
    let c = client();
    wait::until_true(Duration::from_secs(20), "the replica to sync", || {
        authorize(&c, &api, KEY_A).status() == 302
    });
    // Without its replica the master cannot confirm a claim: 503 (the
    // encoder retries), and one log line says why.
    ha.stop_node(1);
    let r = authorize(&c, &api, KEY_A);
    assert_eq!(r.status(), 503);
    let body: Value = r.json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("replicas"),
        "{body}"
    );
    assert!(api
        .proc
        .log()
        .contains("claim not confirmed by enough replicas"));
    ha.start_node(1);
    wait::until_true(Duration::from_secs(20), "the replica to sync again", || {
        authorize(&c, &api, KEY_A).status() == 302
    });
}

#[test]
fn a_lost_registry_keeps_live_names_for_their_owners() {
    let redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[("STREAM_KEYS", &keys()), ("REGISTRY_RECOVERY_SECS", "4")],
    );
    let c = client();
    assert_eq!(authorize(&c, &api, KEY_A).status(), 302);
    assert_eq!(report(&c, &api, "golive", "10.0.0.1:8080"), 204);
    // The API has seen the registry's epoch (it checks every second).
    wait::until_true(Duration::from_secs(5), "the epoch to be read", || {
        api.proc.log().contains("registry epoch")
    });

    // Everything is lost (a failover to an empty replica looks the same).
    let flush = redis.cli().arg("FLUSHALL").output().expect("redis-cli");
    assert!(flush.status.success());
    let lost = Instant::now();
    // The other key cannot take the name while the origins report again.
    let r = authorize(&c, &api, KEY_B);
    assert_eq!(r.status(), 503, "{}", api.proc.log());
    let body: Value = r.json().unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("recovering"),
        "{body}"
    );
    assert!(api.proc.log().contains("the registry was lost"));
    // The origin's next heartbeat brings the stream back, with its owner.
    assert_eq!(report(&c, &api, "golive", "10.0.0.1:8080"), 204);
    assert_eq!(lookup(&c, &api, "golive").0, 200);
    let owner = redis
        .cli()
        .args(["GET", "rl:owner:golive"])
        .output()
        .expect("redis-cli");
    assert_eq!(
        String::from_utf8_lossy(&owner.stdout).trim(),
        sha256_hex(KEY_A)
    );
    // The owner may start again at once; the other key, once the recovery
    // is over, finds the name live under another key.
    assert_eq!(authorize(&c, &api, KEY_A).status(), 302);
    let after = wait::until_explained(
        Duration::from_secs(10),
        || {
            let s = authorize(&c, &api, KEY_B).status().as_u16();
            (s != 503).then_some(s)
        },
        || format!("the recovery to end:\n{}", api.proc.log()),
    );
    assert_eq!(after, 403);
    println!("recovering for {:?} after the loss", lost.elapsed());
    // A name that nobody had is free again after the recovery.
    assert_eq!(lookup(&c, &api, "other").0, 404);
}

#[test]
fn reports_restore_a_missing_owner_but_never_replace_one() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_KEYS", &keys())]);
    let c = client();
    assert_eq!(authorize(&c, &api, KEY_A).status(), 302);
    // a report naming another owner does not take the name
    assert_eq!(
        report_owned(&c, &api, "golive", "10.0.0.1:8080", Some(KEY_B)),
        204
    );
    let owner = || {
        let o = redis
            .cli()
            .args(["GET", "rl:owner:golive"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(owner(), sha256_hex(KEY_A));
    // an owner that is not a SHA-256 is refused (400) and stores nothing
    let r = c
        .post(format!("{}/streams", api.url()))
        .json(&json!({"name": "x", "manifest": "index.m3u8", "host": "10.0.0.2:1", "owner": "KEY"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(lookup(&c, &api, "x").0, 404);
}
