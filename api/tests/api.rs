//! The real API binary against a private redis-server.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use rtmp_live_testkit::{metrics, wait, Api, Redis};
use serde_json::{json, Value};

/// Not the testkit's client: a 5 s timeout, and redirects are answers
/// under test (`/authorize`'s 302), not followed.
fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn ready(c: &Client, api: &Api) -> u16 {
    c.get(format!("{}/readyz", api.url()))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn report(c: &Client, api: &Api, body: &Value, token: Option<&str>) -> Response {
    let mut r = c.post(format!("{}/streams", api.url())).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn stream(name: &str, host: &str) -> Value {
    json!({"name": name, "manifest": "index.m3u8", "host": host})
}

fn lookup(c: &Client, api: &Api, name: &str) -> (u16, Value) {
    let r = c
        .get(format!("{}/streams/{name}", api.url()))
        .send()
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn hosts(v: &Value) -> Vec<String> {
    v["origins"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["host"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_json_error(r: Response, status: u16) {
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().expect("JSON error body");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}

#[test]
fn registration_lookup_and_ttl_expiry() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "2")]);
    let c = client();
    assert_eq!(lookup(&c, &api, "golive").0, 404);
    assert_eq!(
        report(&c, &api, &stream("golive", "10.0.0.5:8080"), None)
            .status()
            .as_u16(),
        204
    );
    let (s, v) = lookup(&c, &api, "golive");
    assert_eq!(s, 200);
    assert_eq!(v["name"], "golive");
    assert_eq!(v["manifest"], "index.m3u8");
    assert_eq!(v["host"], "10.0.0.5:8080");
    assert_eq!(hosts(&v), vec!["10.0.0.5:8080"]);
    let all: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["streams"][0]["name"], "golive");

    // Expires by itself (Redis TTL), 2 s after the last report.
    std::thread::sleep(Duration::from_millis(1200));
    let refreshed = Instant::now();
    report(&c, &api, &stream("golive", "10.0.0.5:8080"), None);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        lookup(&c, &api, "golive").0,
        200,
        "refreshed by the second report"
    );
    // Gone once 2 s passed since that report.
    let v = wait::until(Duration::from_secs(5), "golive to expire", || {
        let (s, v) = lookup(&c, &api, "golive");
        (s == 404).then_some(v)
    });
    assert!(
        refreshed.elapsed() >= Duration::from_secs(2),
        "expired {:?} after the last report",
        refreshed.elapsed()
    );
    assert_eq!(v["error"], "stream not found");
    let all: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["streams"], json!([]));
}

#[test]
fn two_origins_expire_separately_and_delete() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "2")]);
    let c = client();
    report(&c, &api, &stream("s", "10.0.0.6:8080"), None);
    report(&c, &api, &stream("s", "10.0.0.5:8080"), None);
    let (_, v) = lookup(&c, &api, "s");
    assert_eq!(hosts(&v), vec!["10.0.0.5:8080", "10.0.0.6:8080"]);
    assert_eq!(v["host"], "10.0.0.5:8080");
    // Only .6 keeps reporting: .5 expires on its own.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(900));
        report(&c, &api, &stream("s", "10.0.0.6:8080"), None);
    }
    let (s, v) = lookup(&c, &api, "s");
    assert_eq!(s, 200);
    assert_eq!(hosts(&v), vec!["10.0.0.6:8080"]);
    assert_eq!(v["host"], "10.0.0.6:8080");

    // DELETE with a host removes that origin only; without, all of them.
    report(&c, &api, &stream("s", "10.0.0.7:8080"), None);
    let r = c
        .delete(format!("{}/streams/s?host=10.0.0.6:8080", api.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(hosts(&lookup(&c, &api, "s").1), vec!["10.0.0.7:8080"]);
    report(&c, &api, &stream("s", "10.0.0.8:8080"), None);
    assert_eq!(
        c.delete(format!("{}/streams/s", api.url()))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    assert_eq!(lookup(&c, &api, "s").0, 404);
    assert_eq!(
        c.delete(format!("{}/streams/s", api.url()))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        204,
        "idempotent"
    );
}

#[test]
fn bad_input_is_rejected_and_nothing_is_stored() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[]);
    let c = client();
    let long = "a".repeat(65);
    let bad = [
        stream("bad name", "10.0.0.1:80"),
        stream("../x", "10.0.0.1:80"),
        stream(&long, "10.0.0.1:80"),
        stream("", "10.0.0.1:80"),
        json!({"name": "ok", "manifest": "a/index.m3u8", "host": "10.0.0.1"}),
        json!({"name": "ok", "manifest": "../index.m3u8", "host": "10.0.0.1"}),
        json!({"name": "ok", "manifest": "index.mp4", "host": "10.0.0.1"}),
        stream("ok", "http://10.0.0.1"),
        stream("ok", "10.0.0.1/path"),
        stream("ok", "user@10.0.0.1"),
        stream("ok", "10.0.0.1 :80"),
        stream("ok", "10.0.0.1:0"),
        stream("ok", "10.0.0.1:70000"),
        stream("ok", ""),
        json!({"name": "ok", "manifest": "index.m3u8"}),
        json!({"name": 5, "manifest": "index.m3u8", "host": "10.0.0.1"}),
    ];
    for b in &bad {
        assert_json_error(report(&c, &api, b, None), 400);
    }
    let raw = |body: &str, ct: &str| {
        c.post(format!("{}/streams", api.url()))
            .header("content-type", ct)
            .body(body.to_string())
            .send()
            .unwrap()
    };
    assert_json_error(raw("{not json", "application/json"), 400);
    assert_json_error(
        raw(
            &format!("{{\"name\":\"{}\"}}", "x".repeat(5000)),
            "application/json",
        ),
        413,
    );
    assert_json_error(
        raw(&stream("ok", "10.0.0.1").to_string(), "text/plain"),
        415,
    );
    assert_json_error(
        c.get(format!("{}/streams/bad.name", api.url()))
            .send()
            .unwrap(),
        400,
    );
    assert_json_error(
        c.delete(format!("{}/streams/ok?host=http://x", api.url()))
            .send()
            .unwrap(),
        400,
    );
    assert_json_error(c.get(format!("{}/nope", api.url())).send().unwrap(), 404);
    assert_json_error(c.put(format!("{}/streams", api.url())).send().unwrap(), 405);
    // Unknown fields are ignored.
    let extra =
        json!({"name": "ok", "manifest": "index.m3u8", "host": "10.0.0.1:80", "bitrate": 5});
    assert_eq!(report(&c, &api, &extra, None).status().as_u16(), 204);
    let all: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        all["streams"].as_array().unwrap().len(),
        1,
        "only the valid report is stored: {all}"
    );
}

#[test]
fn report_token_is_required_when_set() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("API_REPORT_TOKEN", "s3cret")]);
    let c = client();
    let body = stream("t", "10.0.0.1:80");
    assert_json_error(report(&c, &api, &body, None), 401);
    assert_json_error(report(&c, &api, &body, Some("wrong")), 401);
    assert_eq!(lookup(&c, &api, "t").0, 404);
    assert_eq!(
        report(&c, &api, &body, Some("s3cret")).status().as_u16(),
        204
    );
    assert_json_error(
        c.delete(format!("{}/streams/t", api.url())).send().unwrap(),
        401,
    );
    assert_eq!(
        c.delete(format!("{}/streams/t", api.url()))
            .bearer_auth("s3cret")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    // Reads stay open: edges look streams up without a token.
    assert_eq!(lookup(&c, &api, "t").0, 404);
}

const KEY1: &str = "0123456789abcdef0123";
const KEY2: &str = "s3cr3t-s3cr3t-s3cr3t";

#[test]
fn authorize_maps_keys_to_public_names() {
    let redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[
            ("STREAM_KEYS", &format!("{KEY1}=golive,{KEY2}=show")),
            ("PUBLISH_REDIRECT", "rtmp://127.0.0.1:1935/hls/{name}"),
        ],
    );
    let c = client();
    let r = c
        .get(format!(
            "{}/authorize?app=stream&name={KEY1}&addr=1.2.3.4",
            api.url()
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "rtmp://127.0.0.1:1935/hls/golive");
    let form = [
        ("call", "publish"),
        ("app", "stream"),
        ("name", KEY2),
        ("addr", "1.2.3.4"),
        ("tcurl", "rtmp://x/stream"),
    ];
    let r = c
        .post(format!("{}/authorize", api.url()))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        r.headers()["location"],
        "rtmp://127.0.0.1:1935/hls/show",
        "the secret key never leaves the API"
    );
    assert_json_error(
        c.get(format!("{}/authorize?name=show", api.url()))
            .send()
            .unwrap(),
        403,
    );
    assert_json_error(
        c.get(format!("{}/authorize?name=golive", api.url()))
            .send()
            .unwrap(),
        403,
    );
    assert_json_error(
        c.get(format!("{}/authorize", api.url())).send().unwrap(),
        403,
    );
    assert_json_error(
        c.post(format!("{}/authorize", api.url()))
            .form(&[("name", "nope")])
            .send()
            .unwrap(),
        403,
    );
    let log = api.proc.log();
    assert!(
        log.contains("publish allowed") && log.contains("1.2.3.4"),
        "{log}"
    );
    assert!(log.contains("publish denied"), "{log}");
    assert!(
        !log.contains(KEY1) && !log.contains(KEY2),
        "stream keys are never logged:\n{log}"
    );
}

#[test]
fn invalid_stream_keys_stop_the_api_at_start() {
    let redis = Redis::start();
    let out = std::process::Command::new(rtmp_live_testkit::artifact("rtmp-live-api"))
        .env("STREAM_KEYS", "good,bad key")
        .env("REDIS_URL", redis.url())
        .env(
            "API_LISTEN",
            format!("127.0.0.1:{}", rtmp_live_testkit::free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("STREAM_KEYS"));
}

#[test]
fn redis_outage_fails_fast_and_recovers_without_restart() {
    let mut redis = Redis::start();
    let api = Api::start(&redis.url(), &[("REDIS_TIMEOUT_MS", "300")]);
    let c = client();
    report(&c, &api, &stream("r", "10.0.0.1:80"), None);
    assert_eq!(ready(&c, &api), 200);

    redis.stop();
    for _ in 0..3 {
        let t = Instant::now();
        assert_json_error(
            c.get(format!("{}/streams/r", api.url())).send().unwrap(),
            503,
        );
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "took {:?}",
            t.elapsed()
        );
        assert_json_error(report(&c, &api, &stream("r", "10.0.0.1:80"), None), 503);
    }
    assert_eq!(
        c.get(format!("{}/healthz", api.url()))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(ready(&c, &api), 503);

    redis.restart(); // same port, empty data
    wait::until_explained(
        Duration::from_secs(10),
        || (report(&c, &api, &stream("r", "10.0.0.1:80"), None).status() == 204).then_some(()),
        || format!("the API to recover:\n{}", api.proc.log()),
    );
    assert_eq!(lookup(&c, &api, "r").0, 200);
    assert_eq!(ready(&c, &api), 200);
}

#[test]
fn api_starts_while_redis_is_down() {
    let mut redis = Redis::start();
    redis.stop();
    let api = Api::start(&redis.url(), &[("REDIS_TIMEOUT_MS", "300")]);
    let c = client();
    assert_eq!(ready(&c, &api), 503);
    redis.restart();
    wait::until_true(Duration::from_secs(10), "the API to become ready", || {
        ready(&c, &api) == 200
    });
}

#[test]
fn sigterm_stops_gracefully() {
    let redis = Redis::start();
    let mut api = Api::start(&redis.url(), &[]);
    api.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let code = api.proc.wait_exit(Duration::from_secs(5)).expect("exited");
    assert_eq!(code, Some(0));
}

// ----- credentials -------------------------------------------------------

/// Runs the API binary with exactly `env` (plus a free port and `redis`),
/// expecting it to refuse to start; returns what it printed.
fn refused_start(redis: &Redis, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(rtmp_live_testkit::artifact("rtmp-live-api"));
    cmd.env_clear()
        .env("REDIS_URL", redis.url())
        .env(
            "API_LISTEN",
            format!("127.0.0.1:{}", rtmp_live_testkit::free_port()),
        )
        .envs(env.iter().copied());
    let mut p = rtmp_live_testkit::Proc::spawn("rtmp-live-api", cmd);
    let code = p.wait_exit(Duration::from_secs(5));
    let log = p.log();
    assert_eq!(code, Some(Some(1)), "expected a refusal to start:\n{log}");
    log
}

#[test]
fn refuses_to_start_without_credentials_unless_insecure() {
    let redis = Redis::start();
    let keys = format!("{KEY1}=golive");
    let log = refused_start(&redis, &[("API_REPORT_TOKEN", "a-long-report-token")]);
    assert!(log.contains("STREAM_KEYS is required"), "{log}");
    let log = refused_start(
        &redis,
        &[
            ("API_REPORT_TOKEN", "a-long-report-token"),
            ("STREAM_KEYS", " , "),
        ],
    );
    assert!(log.contains("STREAM_KEYS is required"), "{log}");
    let log = refused_start(&redis, &[("STREAM_KEYS", &keys)]);
    assert!(
        log.contains("API_REPORT_TOKEN or API_ORIGIN_TOKENS is required"),
        "{log}"
    );
    let log = refused_start(
        &redis,
        &[("STREAM_KEYS", &keys), ("API_INSECURE_NO_AUTH", "0")],
    );
    assert!(log.contains("--insecure-no-auth"), "{log}");
    // Short keys, bare or mapped, never start (and are not echoed).
    for short in ["golive", "golive=golive", "0123456789abcde=show"] {
        let log = refused_start(
            &redis,
            &[
                ("API_REPORT_TOKEN", "a-long-report-token"),
                ("STREAM_KEYS", short),
            ],
        );
        assert!(log.contains("at least 16"), "{log}");
        assert!(!log.contains("0123456789abcde"), "{log}");
    }
    let log = refused_start(
        &redis,
        &[
            ("STREAM_KEYS", &keys),
            ("API_ORIGIN_TOKENS", "tok=http://x"),
        ],
    );
    assert!(log.contains("API_ORIGIN_TOKENS"), "{log}");

    // The explicit switch starts it, loudly; writes are then open.
    let api = Api::start(&redis.url(), &[("API_INSECURE_NO_AUTH", "1")]);
    let c = client();
    assert_eq!(
        report(&c, &api, &stream("i", "10.0.0.1:80"), None)
            .status()
            .as_u16(),
        204
    );
    let log = api.proc.log();
    assert!(log.contains("INSECURE") && log.contains("ANYONE"), "{log}");
    // No key configured: every publish is refused.
    assert_json_error(
        c.get(format!("{}/authorize?name={KEY1}", api.url()))
            .send()
            .unwrap(),
        403,
    );
}

const TOK_A: &str = "origin-a-token-0123456789";
const TOK_B: &str = "origin-b-token-0123456789";
const TOK_ANY: &str = "any-host-token-0123456789";

fn secure_api(redis: &Redis, extra: &[(&str, &str)]) -> Api {
    let keys = format!("{KEY1}=show,{KEY2}=show");
    let tokens = format!("{TOK_A}=10.0.0.5:8080|origin1:8080,{TOK_B}=10.0.0.6:8080");
    let mut env = vec![
        ("API_INSECURE_NO_AUTH", "0"),
        ("STREAM_KEYS", keys.as_str()),
        ("API_ORIGIN_TOKENS", tokens.as_str()),
        ("API_REPORT_TOKEN", TOK_ANY),
    ];
    env.extend_from_slice(extra);
    Api::start(&redis.url(), &env)
}

fn delete(c: &Client, api: &Api, path: &str, token: Option<&str>) -> Response {
    let mut r = c.delete(format!("{}{path}", api.url()));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

#[test]
fn writes_are_limited_to_the_tokens_hosts() {
    let redis = Redis::start();
    let api = secure_api(&redis, &[]);
    let c = client();
    let a = stream("s", "10.0.0.5:8080");

    // Unauthenticated: 401 + JSON + WWW-Authenticate, nothing stored.
    let r = report(&c, &api, &a, None);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_json_error(r, 401);
    assert_json_error(report(&c, &api, &a, Some("wrong-token-0123456789")), 401);
    // A token used for a host it does not list: 403, nothing stored.
    assert_json_error(report(&c, &api, &a, Some(TOK_B)), 403);
    assert_json_error(
        report(&c, &api, &stream("s", "origin1:8080"), Some(TOK_B)),
        403,
    );
    assert_eq!(lookup(&c, &api, "s").0, 404);
    let all: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["streams"], json!([]), "nothing stored");

    // Its own hosts: accepted.
    assert_eq!(report(&c, &api, &a, Some(TOK_A)).status().as_u16(), 204);
    assert_eq!(
        report(&c, &api, &stream("s", "origin1:8080"), Some(TOK_A))
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        report(&c, &api, &stream("s", "10.0.0.6:8080"), Some(TOK_B))
            .status()
            .as_u16(),
        204
    );
    let three = vec!["10.0.0.5:8080", "10.0.0.6:8080", "origin1:8080"];
    assert_eq!(hosts(&lookup(&c, &api, "s").1), three);

    // Deletes: only the token's own hosts, and a per-origin token must name one.
    assert_json_error(delete(&c, &api, "/streams/s?host=10.0.0.5:8080", None), 401);
    assert_json_error(
        delete(&c, &api, "/streams/s?host=10.0.0.5:8080", Some(TOK_B)),
        403,
    );
    assert_json_error(delete(&c, &api, "/streams/s", Some(TOK_A)), 403);
    assert_eq!(hosts(&lookup(&c, &api, "s").1), three, "nothing removed");
    assert_eq!(
        delete(&c, &api, "/streams/s?host=origin1:8080", Some(TOK_A))
            .status()
            .as_u16(),
        204
    );
    // The any-host token may do anything, including deleting every origin.
    assert_eq!(
        report(&c, &api, &stream("s", "10.9.9.9:1"), Some(TOK_ANY))
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        delete(&c, &api, "/streams/s", Some(TOK_ANY))
            .status()
            .as_u16(),
        204
    );
    assert_eq!(lookup(&c, &api, "s").0, 404);
    let log = api.proc.log();
    assert!(log.contains("not allowed for this host"), "{log}");
    assert!(!log.contains(TOK_A) && !log.contains(TOK_ANY), "{log}");
}

// ----- since ---------------------------------------------------------------

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn since_of(c: &Client, api: &Api, name: &str, host: &str) -> u64 {
    let (s, v) = lookup(c, api, name);
    assert_eq!(s, 200, "{v}");
    v["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in {v}"))["since"]
        .as_u64()
        .unwrap()
}

#[test]
fn since_is_kept_by_heartbeats_and_new_per_registration() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "2")]);
    let c = client();
    let (a, b) = ("10.0.0.5:8080", "10.0.0.6:8080");
    let before = now_ms();
    report(&c, &api, &stream("s", a), None);
    let s1 = since_of(&c, &api, "s", a);
    assert!(s1 >= before && s1 <= now_ms(), "{before} <= {s1}");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        report(&c, &api, &stream("s", a), None);
        assert_eq!(since_of(&c, &api, "s", a), s1, "kept across heartbeats");
    }
    std::thread::sleep(Duration::from_millis(20));
    report(&c, &api, &stream("s", b), None);
    let sb = since_of(&c, &api, "s", b);
    assert!(sb > s1, "each origin has its own registration");
    assert_eq!(since_of(&c, &api, "s", a), s1);

    // After a DELETE of that origin, a new registration: a new since.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        delete(&c, &api, &format!("/streams/s?host={a}"), None)
            .status()
            .as_u16(),
        204
    );
    report(&c, &api, &stream("s", a), None);
    let s2 = since_of(&c, &api, "s", a);
    assert!(s2 > s1, "{s2} > {s1}");
    assert_eq!(
        since_of(&c, &api, "s", b),
        sb,
        "the other origin is untouched"
    );

    // After its TTL expired, too.
    wait::until_true(Duration::from_secs(5), "s to expire", || {
        lookup(&c, &api, "s").0 == 404
    });
    report(&c, &api, &stream("s", a), None);
    let s3 = since_of(&c, &api, "s", a);
    assert!(s3 >= s2 + 2000, "{s3} vs {s2}");
}

// ----- authorize: failed attempts, ownership ---------------------------------

/// nginx-rtmp's `on_publish` as an origin's discovery forwards it: with
/// the origin's token.
fn authorize(c: &Client, api: &Api, key: &str, addr: Option<&str>) -> Response {
    authorize_as(c, api, key, addr, Some(TOK_ANY))
}

fn authorize_as(
    c: &Client,
    api: &Api,
    key: &str,
    addr: Option<&str>,
    token: Option<&str>,
) -> Response {
    let mut form = vec![("call", "publish"), ("app", "stream"), ("name", key)];
    if let Some(a) = addr {
        form.push(("addr", a));
    }
    let mut r = c.post(format!("{}/authorize", api.url())).form(&form);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

/// `/authorize` trusts `addr` (the publisher's address, which the guess
/// limit counts by): only origins may call it. Without an origin's token
/// (any-host or per-origin) it answers 401 with a short JSON body and one
/// log line, whatever the key, and counts nothing.
#[test]
fn authorize_needs_an_origins_token() {
    let redis = Redis::start();
    let api = secure_api(&redis, &[("AUTHORIZE_MAX_FAILURES_PER_MIN", "3")]);
    let c = client();
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        for key in [KEY1, "guess-0123456789abcdef"] {
            let r = authorize_as(&c, &api, key, Some("198.51.100.7"), token);
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
            let r = r.text().unwrap();
            assert!(r.len() < 100, "{r}");
            let v: Value = serde_json::from_str(&r).unwrap();
            assert!(v["error"].as_str().unwrap().contains("token"), "{r}");
            // GET (nginx-rtmp's other form) too.
            let mut g = c.get(format!(
                "{}/authorize?name={key}&addr=198.51.100.7",
                api.url()
            ));
            if let Some(t) = token {
                g = g.bearer_auth(t);
            }
            assert_json_error(g.send().unwrap(), 401);
        }
    }
    // Nothing was counted: 20 refused calls, and the address is not limited.
    assert_eq!(
        authorize(&c, &api, KEY1, Some("198.51.100.7"))
            .status()
            .as_u16(),
        302
    );
    // Every origin token is accepted, per-origin ones included.
    for tok in [TOK_A, TOK_B] {
        assert_eq!(
            authorize_as(&c, &api, KEY1, Some("198.51.100.8"), Some(tok))
                .status()
                .as_u16(),
            302
        );
    }
    let log = api.proc.log();
    let refused = log.matches("missing or invalid token").count();
    assert_eq!(refused, 12, "one line per refused call:\n{log}");
    assert!(!log.contains("wrong-token"), "{log}");
}

#[test]
fn failed_authorize_attempts_are_limited_per_client() {
    let redis = Redis::start();
    let api = secure_api(&redis, &[("AUTHORIZE_MAX_FAILURES_PER_MIN", "3")]);
    let c = client();
    for i in 0..3 {
        assert_json_error(
            authorize(
                &c,
                &api,
                &format!("guess-{i}-0123456789abc"),
                Some("203.0.113.7"),
            ),
            403,
        );
    }
    // Past the limit: 429 even with the right key, with Retry-After.
    for key in ["guess-x-0123456789abc", KEY1] {
        let r = authorize(&c, &api, key, Some("203.0.113.7"));
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_json_error(r, 429);
    }
    // Other publishers are not affected.
    assert_eq!(
        authorize(&c, &api, KEY1, Some("203.0.113.8"))
            .status()
            .as_u16(),
        302
    );
    // Without an addr parameter the caller's own address counts.
    for _ in 0..3 {
        assert_json_error(authorize(&c, &api, "wrong-0123456789abcdef", None), 403);
    }
    assert_json_error(authorize(&c, &api, KEY1, None), 429);
    assert_eq!(
        authorize(&c, &api, KEY1, Some("203.0.113.9"))
            .status()
            .as_u16(),
        302
    );
    assert!(api.proc.log().contains("too many failed attempts"));
}

fn redis_cli(redis: &Redis, args: &[&str]) -> String {
    let out = redis.cli().args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_live_name_has_one_owner() {
    let redis = Redis::start();
    let api = secure_api(&redis, &[("STREAM_TTL_SECS", "2")]);
    let c = client();
    // KEY1 and KEY2 both map to "show". KEY1 starts publishing on origin A.
    assert_eq!(
        authorize(&c, &api, KEY1, Some("198.51.100.1"))
            .status()
            .as_u16(),
        302
    );
    // Allowed but not registered yet: the name is held for its first report.
    assert_json_error(authorize(&c, &api, KEY2, Some("198.51.100.2")), 403);
    report(&c, &api, &stream("show", "10.0.0.5:8080"), Some(TOK_A));
    let owner = redis_cli(&redis, &["GET", "rl:owner:show"]);
    assert_eq!(owner.len(), 64, "a SHA-256 hex digest: {owner}");
    assert!(!owner.contains(KEY1));
    let ttl: i64 = redis_cli(&redis, &["TTL", "rl:owner:show"])
        .parse()
        .unwrap();
    assert!(ttl > 2, "owner TTL {ttl}");

    // Another key for the live name: refused, and not counted as a guess.
    for _ in 0..12 {
        assert_json_error(authorize(&c, &api, KEY2, Some("198.51.100.2")), 403);
    }
    assert!(api.proc.log().contains("live under another key"));
    // The rightful publisher reconnecting (e.g. through another origin): allowed.
    assert_eq!(
        authorize(&c, &api, KEY1, Some("198.51.100.3"))
            .status()
            .as_u16(),
        302
    );
    assert_eq!(redis_cli(&redis, &["GET", "rl:owner:show"]), owner);

    // Heartbeats keep the owner record alive while the stream is live.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        report(&c, &api, &stream("show", "10.0.0.5:8080"), Some(TOK_A));
    }
    assert_json_error(authorize(&c, &api, KEY2, Some("198.51.100.2")), 403);

    // Once the name is no longer live (deregistered), another key takes over.
    assert_eq!(
        delete(&c, &api, "/streams/show?host=10.0.0.5:8080", Some(TOK_A))
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        authorize(&c, &api, KEY2, Some("198.51.100.2"))
            .status()
            .as_u16(),
        302
    );
    assert_ne!(redis_cli(&redis, &["GET", "rl:owner:show"]), owner);
    report(&c, &api, &stream("show", "10.0.0.6:8080"), Some(TOK_B));
    assert_json_error(authorize(&c, &api, KEY1, Some("198.51.100.1")), 403);
    // ...and after a registration expired by itself, too.
    wait::until_true(
        Duration::from_secs(5),
        "show's registration to expire",
        || lookup(&c, &api, "show").0 == 404,
    );
    assert_eq!(
        authorize(&c, &api, KEY1, Some("198.51.100.1"))
            .status()
            .as_u16(),
        302
    );
    assert_eq!(redis_cli(&redis, &["GET", "rl:owner:show"]), owner);
}

// ----- hardening -------------------------------------------------------------

#[test]
fn idle_connections_do_not_stop_lookups() {
    use std::io::Write;
    let redis = Redis::start();
    let mut api = Api::start(&redis.url(), &[]);
    let c = client();
    report(&c, &api, &stream("s", "10.0.0.1:80"), None);
    let addr: std::net::SocketAddr = api.addr().parse().unwrap();
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        if i % 2 == 0 {
            // Half of them send an incomplete request head.
            s.write_all(b"GET /streams/s HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        idle.push(s);
    }
    let fresh = client();
    for path in ["/healthz", "/streams/s", "/healthz", "/streams/s"] {
        let t = Instant::now();
        let r = fresh.get(format!("{}{path}", api.url())).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{path} took {:?} with 1000 idle connections",
            t.elapsed()
        );
    }
    // SIGTERM still stops it promptly and cleanly, idle connections or not.
    let t = Instant::now();
    api.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let code = api.proc.wait_exit(Duration::from_secs(8)).expect("exited");
    assert_eq!(code, Some(0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(idle);
}

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&out).into_owned())
            }
            Err(_) => return None, // still open after `limit`
        }
    }
}

#[test]
fn slow_and_idle_connections_are_closed_and_capped() {
    use std::io::Write;
    let redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[
            ("API_HEADER_READ_TIMEOUT_SECS", "1"),
            ("API_BODY_TIMEOUT_SECS", "1"),
            ("API_MAX_CONNECTIONS", "8"),
        ],
    );
    let addr: std::net::SocketAddr = api.addr().parse().unwrap();
    let connect = || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();

    // An incomplete request head: closed after the header-read timeout.
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(5)).is_some(),
        "still open after 5 s"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t.elapsed()
    );

    // An idle keep-alive connection after one answered request: closed too.
    let mut keep = connect();
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let got = read_until_closed(&mut keep, Duration::from_secs(5)).expect("closed");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // A request body that never completes: 408 with a JSON body.
    let mut body = connect();
    body.write_all(
        b"POST /streams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":",
    )
    .unwrap();
    let got = read_until_closed(&mut body, Duration::from_secs(5)).expect("answered");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"error\""), "{got}");

    // At the connection cap, a new client waits until idle ones time out.
    let held: Vec<_> = (0..8).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let r = client()
        .get(format!("{}/healthz", api.url()))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(500) && t.elapsed() < Duration::from_secs(4),
        "{:?}",
        t.elapsed()
    );
    drop(held);
}

#[test]
fn listing_is_bounded_and_paged() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[]);
    let c = client();
    for n in ["e", "a", "d", "b", "c"] {
        report(&c, &api, &stream(n, "10.0.0.1:80"), None);
    }
    let get = |q: &str| -> (u16, Value) {
        let r = c.get(format!("{}/streams{q}", api.url())).send().unwrap();
        (r.status().as_u16(), r.json().unwrap())
    };
    let (s, all) = get("");
    assert_eq!(s, 200);
    assert_eq!(all["streams"].as_array().unwrap().len(), 5);
    assert_eq!(all["truncated"], false);
    let mut names = Vec::new();
    let mut q = "?limit=2".to_string();
    for page in 0.. {
        let (_, v) = get(&q);
        for s in v["streams"].as_array().unwrap() {
            names.push(s["name"].as_str().unwrap().to_string());
        }
        if v["truncated"] == false {
            assert!(v["next_cursor"].is_null());
            break;
        }
        assert!(page < 5);
        assert_eq!(v["streams"].as_array().unwrap().len(), 2);
        q = format!("?limit=2&cursor={}", v["next_cursor"].as_str().unwrap());
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(get("?limit=0").0, 400);
    assert_eq!(get("?limit=x").0, 400);
    assert_eq!(get("?cursor=../x").0, 400);
    assert_eq!(
        get("?limit=100000").1["streams"].as_array().unwrap().len(),
        5
    );
}

#[test]
fn request_logs_escape_control_characters() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[]);
    let c = client();
    assert_json_error(
        c.get(format!("{}/streams/x%0d%0aINJECTED%1b%5b31m", api.url()))
            .send()
            .unwrap(),
        400,
    );
    // The response's log line is written after the answer.
    wait::until_explained(
        Duration::from_secs(5),
        || api.proc.log().contains("status=400").then_some(()),
        || format!("the response's log line:\n{}", api.proc.log()),
    );
    let log = api.proc.log();
    assert!(log.contains("/streams/x%0d%0aINJECTED%1b%5b31m"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("INJECTED")) && !log.contains('\u{1b}'),
        "{log}"
    );
    assert!(log.contains("status=400"), "{log}");
}

// ----- metrics -----------------------------------------------------------------

/// The value of one series of the exposition (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    metrics::value(text, series).unwrap_or(0.0)
}

#[test]
fn metrics_count_requests_redis_and_live_streams() {
    let mut redis = Redis::start();
    let api = Api::start(&redis.url(), &[("REDIS_TIMEOUT_MS", "300")]);
    let c = client();
    let scrape = || {
        let r = c.get(format!("{}/metrics", api.url())).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text"));
        r.text().unwrap()
    };
    let lookups_404 =
        r#"rtmp_live_api_http_requests_total{method="GET",route="/streams/{name}",status="404"}"#;
    let reports_204 =
        r#"rtmp_live_api_http_requests_total{method="POST",route="/streams",status="204"}"#;
    let before = scrape();
    assert_eq!(sample(&before, lookups_404), 0.0);
    for _ in 0..3 {
        assert_eq!(lookup(&c, &api, "nope").0, 404);
    }
    report(&c, &api, &stream("m", "10.0.0.1:80"), None);
    report(&c, &api, &stream("m", "10.0.0.2:80"), None);
    report(&c, &api, &stream("n", "10.0.0.1:80"), None);
    assert_eq!(lookup(&c, &api, "m").0, 200);
    c.get(format!("{}/no/such/route", api.url()))
        .send()
        .unwrap();
    let m = scrape();
    assert_eq!(sample(&m, lookups_404), 3.0, "{m}");
    assert_eq!(sample(&m, reports_204), 3.0, "{m}");
    assert_eq!(
        sample(
            &m,
            r#"rtmp_live_api_http_requests_total{method="GET",route="/streams/{name}",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            r#"rtmp_live_api_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        1.0,
        "raw paths never become label values: {m}"
    );
    assert!(!m.contains("/no/such/route"));
    assert_eq!(
        sample(
            &m,
            r#"rtmp_live_api_http_request_duration_seconds_count{method="GET",route="/streams/{name}"}"#
        ),
        4.0,
        "{m}"
    );
    assert_eq!(sample(&m, "rtmp_live_api_live_streams"), 2.0, "{m}");
    assert_eq!(sample(&m, "rtmp_live_api_live_origins"), 3.0, "{m}");
    assert!(
        sample(&m, "rtmp_live_api_redis_call_duration_seconds_count") >= 7.0,
        "{m}"
    );
    assert_eq!(sample(&m, "rtmp_live_api_redis_errors_total"), 0.0, "{m}");
    // Every metric is in the reference.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .unwrap();
    assert_eq!(
        rtmp_live_testkit::metrics::undocumented(&m, &doc),
        Vec::<String>::new(),
        "metrics missing from docs/configuration.md"
    );

    // Redis down: lookups fail with 503 and the errors are counted.
    redis.stop();
    for _ in 0..2 {
        assert_eq!(lookup(&c, &api, "m").0, 503);
    }
    let m = scrape();
    assert!(sample(&m, "rtmp_live_api_redis_errors_total") >= 2.0, "{m}");
    assert_eq!(
        sample(
            &m,
            r#"rtmp_live_api_http_requests_total{method="GET",route="/streams/{name}",status="503"}"#
        ),
        2.0
    );
}

#[test]
fn live_names_list_only_names() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[]);
    let c = client();
    ready(&c, &api);
    for (name, host) in [("b", "10.0.0.7:8080"), ("a", "10.0.0.8:8080")] {
        assert_eq!(report(&c, &api, &stream(name, host), None).status(), 204);
    }
    let r = c.get(format!("{}/live", api.url())).send().unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["streams"], serde_json::json!(["a", "b"]));
    assert_eq!(v["truncated"], false);
    assert_eq!(v["viewers"], json!({"a": 0, "b": 0}), "no edge reported");
    assert!(!text.contains("10.0.0."), "origin addresses leaked: {text}");
}

/// Redis requires a password: the API sends it (REDIS_PASSWORD, or in
/// REDIS_URL) and never logs it; without it the API is not ready.
#[test]
fn redis_password_is_sent_and_never_logged() {
    let redis = Redis::start();
    let c = client();
    let bare = format!("redis://127.0.0.1:{}", redis.port);
    let without = Api::start(&bare, &[]);
    assert_eq!(ready(&c, &without), 503);
    let with_env = Api::start(&bare, &[("REDIS_PASSWORD", redis.password.as_str())]);
    assert_eq!(ready(&c, &with_env), 200);
    let in_url = Api::start(&redis.url(), &[]);
    assert_eq!(ready(&c, &in_url), 200);
    for api in [&without, &with_env, &in_url] {
        let log = api.proc.log();
        assert!(log.contains("API listening"), "{log}");
        assert!(!log.contains(&redis.password), "{log}");
    }
}

/// Every route of the API is in the reference (docs/configuration.md):
/// a route added without its line there fails here.
#[test]
fn every_route_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let routes = std::fs::read_to_string(root.join("src/routes.rs")).unwrap();
    let doc = std::fs::read_to_string(root.join("../docs/configuration.md")).unwrap();
    let paths: Vec<&str> = routes
        .split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .collect();
    assert!(paths.len() >= 7, "{paths:?}");
    let missing: Vec<&&str> = paths
        .iter()
        .filter(|p| !doc.contains(&format!(" {p}")) && !doc.contains(&format!("|{p}")))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/configuration.md: {missing:?}"
    );
}

// ----- playback tokens -------------------------------------------------------

use rtmp_live_types::playback;

const OPERATOR: &str = "operator-token-0123456789";
const EDGE: &str = "edge-reporter-token-0123456789";
const SECRET: &str = "playback-secret-0123456789abcdef";

/// A file in the temporary folder, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, content: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!(
            "api-test-{tag}-{}-{}",
            std::process::id(),
            rtmp_live_testkit::free_port()
        ));
        std::fs::write(&p, content).unwrap();
        TempFile(p)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

/// `POST /streams/{name}/playback-tokens`, with a JSON body unless `None`.
fn issue(c: &Client, api: &Api, name: &str, body: Option<Value>, token: Option<&str>) -> Response {
    let mut r = c.post(format!("{}/streams/{name}/playback-tokens", api.url()));
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn issued(r: Response) -> Value {
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().unwrap()
}

#[test]
fn playback_tokens_are_issued_to_the_operator() {
    let redis = Redis::start();
    // The file ends in a newline, which is not part of the secret.
    let secret = TempFile::new("secret", &format!("{SECRET}\n"));
    let api = secure_api(
        &redis,
        &[
            ("API_OPERATOR_TOKEN", OPERATOR),
            ("API_EDGE_TOKEN", EDGE),
            ("API_PLAYBACK_SECRET_FILE", secret.path()),
        ],
    );
    let c = client();
    let verify = |v: &Value, stream: &str, address: &str| {
        let t = v["token"].as_str().unwrap();
        playback::verify(
            SECRET.as_bytes(),
            t.as_bytes(),
            stream.as_bytes(),
            now_secs(),
            address.as_bytes(),
        )
    };

    // No body: an unbound token for an hour. The stream need not be live.
    let before = now_secs();
    let v = issued(issue(&c, &api, "show", None, Some(OPERATOR)));
    let token = v["token"].as_str().unwrap().to_string();
    let expires = v["expires"].as_u64().unwrap();
    assert!(
        (before + 3600..=now_secs() + 3600).contains(&expires),
        "{v}"
    );
    assert_eq!(v["path"], format!("/t/{token}/show/index.m3u8"));
    assert!(token.len() <= playback::MAX_TOKEN_LEN, "{token}");
    assert_eq!(playback::parse(token.as_bytes()).unwrap().expires, expires);
    assert_eq!(verify(&v, "show", "198.51.100.1"), Ok(()));
    assert_eq!(
        verify(&v, "other", "198.51.100.1"),
        Err(playback::Refused::BadSignature),
        "for its stream only"
    );

    // Bound to an address, with a lifetime: only from that address.
    let v = issued(issue(
        &c,
        &api,
        "show",
        Some(json!({"ttl_secs": 60, "address": "192.0.2.7"})),
        Some(OPERATOR),
    ));
    assert!(v["token"].as_str().unwrap().contains(".a."), "{v}");
    assert!(v["expires"].as_u64().unwrap() <= now_secs() + 60);
    assert_eq!(verify(&v, "show", "192.0.2.7"), Ok(()));
    assert_eq!(
        verify(&v, "show", "192.0.2.8"),
        Err(playback::Refused::BadSignature)
    );
    // IPv6 in its canonical form, as the edge sees it; `{}` is the default.
    let v = issued(issue(
        &c,
        &api,
        "show",
        Some(json!({"address": "2001:DB8:0::0:7"})),
        Some(OPERATOR),
    ));
    assert_eq!(verify(&v, "show", "2001:db8::7"), Ok(()));
    let v = issued(issue(&c, &api, "show", Some(json!({})), Some(OPERATOR)));
    assert_eq!(verify(&v, "show", ""), Ok(()));

    // Missing or wrong credentials, the other roles' included: 401.
    let mut refused = 0;
    for token in [
        None,
        Some("wrong-token-0123456789"),
        Some(TOK_ANY),
        Some(EDGE),
    ] {
        let r = issue(&c, &api, "show", None, token);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body = r.text().unwrap();
        assert!(body.len() < 100 && body.contains("\"error\""), "{body}");
        refused += 1;
    }
    // Invalid requests: 400 (415 for a body that is not JSON).
    let bad_bodies = [
        json!({"ttl_secs": 0}),
        json!({"ttl_secs": 604_801}),
        json!({"ttl_secs": -1}),
        json!({"ttl_secs": "60"}),
        json!({"address": "nope"}),
        json!({"address": "192.0.2.7:80"}),
        json!({"address": "192.0.2.300"}),
        json!({"adress": "192.0.2.7"}),
        json!([]),
    ];
    for b in bad_bodies {
        assert_json_error(issue(&c, &api, "show", Some(b), Some(OPERATOR)), 400);
    }
    assert_eq!(
        issue(
            &c,
            &api,
            "show",
            Some(json!({"ttl_secs": 604_800})),
            Some(OPERATOR)
        )
        .status()
        .as_u16(),
        201
    );
    for name in ["bad.name", "a%20b", &"x".repeat(65)] {
        assert_json_error(issue(&c, &api, name, None, Some(OPERATOR)), 400);
    }
    assert_json_error(
        c.post(format!("{}/streams/show/playback-tokens", api.url()))
            .bearer_auth(OPERATOR)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap(),
        415,
    );

    let log = api.proc.log();
    assert_eq!(log.matches("playback token issued").count(), 5, "{log}");
    assert_eq!(
        log.matches("missing or invalid operator token").count(),
        refused,
        "one line per refusal:\n{log}"
    );
    for secret in [&token[..], &token[token.len() - 20..], OPERATOR, SECRET] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}

#[test]
fn playback_tokens_need_a_secret_and_an_operator_token() {
    let redis = Redis::start();
    let secret = TempFile::new("secret", SECRET);
    let c = client();
    let error_of = |r: Response| -> (u16, Value) { (r.status().as_u16(), r.json().unwrap()) };

    // No secret: 503, for the operator as for anyone.
    let api = secure_api(&redis, &[("API_OPERATOR_TOKEN", OPERATOR)]);
    let (s, v) = error_of(issue(&c, &api, "show", None, Some(OPERATOR)));
    assert_eq!(s, 503);
    assert_eq!(v, json!({"error": "playback signing is not configured"}));
    assert_eq!(issue(&c, &api, "show", None, None).status().as_u16(), 401);

    // A secret but no operator token: 503 too.
    let api = secure_api(&redis, &[("API_PLAYBACK_SECRET_FILE", secret.path())]);
    let (s, v) = error_of(issue(&c, &api, "show", None, Some(OPERATOR)));
    assert_eq!(s, 503);
    assert!(v["error"].as_str().unwrap().contains("operator"), "{v}");
    assert!(api.proc.log().contains("API_OPERATOR_TOKEN is not"));

    // --insecure-no-auth without an operator token: open, as the writes are.
    let open = Api::start(&redis.url(), &[("API_PLAYBACK_SECRET_FILE", secret.path())]);
    assert_eq!(issue(&c, &open, "show", None, None).status().as_u16(), 201);
    assert!(open.proc.log().contains("INSECURE: no API_OPERATOR_TOKEN"));

    // Weak, shared or unreadable credentials stop the API at start.
    let short = TempFile::new("short", "0123456789abcde\n");
    let keys = format!("{KEY1}=show");
    let base = [
        ("STREAM_KEYS", keys.as_str()),
        ("API_REPORT_TOKEN", TOK_ANY),
    ];
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("API_PLAYBACK_SECRET_FILE", short.path())], "at least 16"),
        (
            &[("API_PLAYBACK_SECRET_FILE", "/nonexistent/secret")],
            "API_PLAYBACK_SECRET_FILE",
        ),
        (
            &[("API_OPERATOR_TOKEN", "short-token")],
            "API_OPERATOR_TOKEN",
        ),
        (&[("API_EDGE_TOKEN", "short-token")], "API_EDGE_TOKEN"),
        (
            &[
                ("API_OPERATOR_TOKEN", OPERATOR),
                ("API_EDGE_TOKEN", OPERATOR),
            ],
            "must differ",
        ),
        (&[("API_EDGE_TOKEN", TOK_ANY)], "must differ"),
    ];
    for (extra, expected) in cases {
        let env: Vec<(&str, &str)> = base.iter().chain(extra).copied().collect();
        let log = refused_start(&redis, &env);
        assert!(log.contains(expected), "{extra:?}: {log}");
        assert!(
            !log.contains("0123456789abcde") && !log.contains("short-token"),
            "{log}"
        );
    }
}

#[test]
fn signed_names_come_from_the_stream_keys() {
    let redis = Redis::start();
    let keys = format!("{KEY1}=show:signed,{KEY2}=open");
    let api = Api::start(&redis.url(), &[("STREAM_KEYS", keys.as_str())]);
    let c = client();
    // The public name is `show`, never `show:signed`.
    let r = authorize_as(&c, &api, KEY1, None, None);
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "rtmp://127.0.0.1:1935/hls/show");
    for name in ["show", "open"] {
        report(&c, &api, &stream(name, "10.0.0.5:8080"), None);
    }
    let (_, v) = lookup(&c, &api, "show");
    assert_eq!(v["signed"], true, "{v}");
    let (_, v) = lookup(&c, &api, "open");
    assert!(v.get("signed").is_none(), "absent when false: {v}");
    let all: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["streams"][1]["name"], "show");
    assert_eq!(all["streams"][1]["signed"], true);
    assert!(all["streams"][0].get("signed").is_none(), "{all}");
}

// ----- viewer reports ----------------------------------------------------------

/// `PUT /edges/{edge}/viewers` with `{"streams": streams}`.
fn put_viewers(c: &Client, api: &Api, edge: &str, streams: Value, token: Option<&str>) -> Response {
    let mut r = c
        .put(format!("{}/edges/{edge}/viewers", api.url()))
        .json(&json!({ "streams": streams }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn viewers_of(c: &Client, api: &Api, name: &str) -> u64 {
    let (s, v) = lookup(c, api, name);
    assert_eq!(s, 200, "{v}");
    v["viewers"].as_u64().unwrap()
}

fn scrape(c: &Client, api: &Api) -> String {
    c.get(format!("{}/metrics", api.url()))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

/// Edges as they behave: each re-sends its current report every 300 ms
/// (well within the report TTL) whenever [`Edges::pump`] is called.
struct Edges<'a> {
    c: &'a Client,
    api: &'a Api,
    reports: Vec<(String, Value)>,
    last: Instant,
}

impl Edges<'_> {
    /// Sets (replaces) `edge`'s report and sends it now; `None` stops it.
    fn set(&mut self, edge: &str, streams: Option<Value>) {
        self.reports.retain(|(e, _)| e != edge);
        if let Some(v) = streams {
            let r = put_viewers(self.c, self.api, edge, v.clone(), Some(EDGE));
            assert_eq!(r.status().as_u16(), 204);
            self.reports.push((edge.to_string(), v));
        }
    }

    fn pump(&mut self) {
        if self.last.elapsed() < Duration::from_millis(300) {
            return;
        }
        for (edge, v) in &self.reports {
            let r = put_viewers(self.c, self.api, edge, v.clone(), Some(EDGE));
            assert_eq!(r.status().as_u16(), 204);
        }
        self.last = Instant::now();
    }
}

#[test]
fn viewer_counts_are_summed_across_edges_and_expire() {
    let redis = Redis::start();
    let api = secure_api(
        &redis,
        &[
            ("API_EDGE_TOKEN", EDGE),
            ("API_VIEWER_REPORT_TTL_SECS", "2"),
        ],
    );
    let c = client();
    for name in ["a", "b"] {
        assert_eq!(
            report(&c, &api, &stream(name, "10.0.0.9:8080"), Some(TOK_ANY)).status(),
            204
        );
    }
    let mut edges = Edges {
        c: &c,
        api: &api,
        reports: Vec::new(),
        last: Instant::now(),
    };
    // Invalid and unregistered names are skipped.
    edges.set(
        "edge-1",
        Some(json!({"a": 3, "b": 1, "bad name": 5, "unregistered": 7})),
    );
    edges.set("10.0.0.2:8081", Some(json!({"a": 4})));
    assert_eq!(redis_cli(&redis, &["ZCARD", "rl:viewer-edges"]), "2");
    let pttl: i64 = redis_cli(&redis, &["PTTL", "rl:viewers:edge-1"])
        .parse()
        .unwrap();
    assert!((1..=2000).contains(&pttl), "{pttl}");
    assert_eq!(redis_cli(&redis, &["GET", "rl:viewers:edge-1"]), "a 3\nb 1");

    wait::until_true(Duration::from_secs(10), "a's viewers to be 3 + 4", || {
        edges.pump();
        viewers_of(&c, &api, "a") == 7
    });
    assert_eq!(viewers_of(&c, &api, "b"), 1);
    let live: Value = c
        .get(format!("{}/live", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(live["streams"], json!(["a", "b"]));
    assert_eq!(live["viewers"], json!({"a": 7, "b": 1}));
    let list: Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list["streams"][0]["viewers"], 7);
    assert_eq!(list["streams"][1]["viewers"], 1);
    let m = scrape(&c, &api);
    assert_eq!(
        sample(&m, r#"rtmp_live_stream_viewers{stream="a"}"#),
        7.0,
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"rtmp_live_stream_viewers{stream="b"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(sample(&m, "rtmp_live_viewer_report_edges"), 2.0, "{m}");
    assert!(
        !m.contains("unregistered") && !m.contains("bad name"),
        "{m}"
    );

    // A report replaces the edge's previous one.
    edges.set("edge-1", Some(json!({"a": 10})));
    wait::until_true(Duration::from_secs(10), "edge-1's new report", || {
        edges.pump();
        viewers_of(&c, &api, "a") == 14 && viewers_of(&c, &api, "b") == 0
    });

    // edge-1 stops reporting, the other keeps on: edge-1's viewers are gone
    // once its last report is older than the TTL.
    let stopped = Instant::now();
    edges.set("edge-1", None);
    wait::until_explained(
        Duration::from_secs(10),
        || {
            edges.pump();
            let gone = viewers_of(&c, &api, "a") == 4
                && sample(&scrape(&c, &api), "rtmp_live_viewer_report_edges") == 1.0;
            gone.then_some(())
        },
        || format!("edge-1's report to expire:\n{}", api.proc.log()),
    );
    assert!(
        stopped.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        stopped.elapsed()
    );
    // Then none: every count is 0, and Redis keeps nothing.
    edges.set("10.0.0.2:8081", None);
    wait::until_true(Duration::from_secs(10), "every report to expire", || {
        let m = scrape(&c, &api);
        sample(&m, "rtmp_live_viewer_report_edges") == 0.0
            && sample(&m, r#"rtmp_live_stream_viewers{stream="a"}"#) == 0.0
    });
    assert_eq!(viewers_of(&c, &api, "a"), 0);
    assert_eq!(redis_cli(&redis, &["EXISTS", "rl:viewer-edges"]), "0");
}

/// Redis down: the background reader logs once (not per tick), counts drop
/// to 0 once no report can still be fresh, and it recovers by itself.
#[test]
fn viewer_counts_survive_a_redis_outage_quietly() {
    let mut redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[
            ("API_VIEWER_REPORT_TTL_SECS", "1"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
    );
    let c = client();
    report(&c, &api, &stream("s", "10.0.0.5:8080"), None);
    let mut edges = Edges {
        c: &c,
        api: &api,
        reports: Vec::new(),
        last: Instant::now(),
    };
    edges.set("e1", Some(json!({"s": 5})));
    let edges_gauge = || sample(&scrape(&c, &api), "rtmp_live_viewer_report_edges");
    wait::until_true(Duration::from_secs(10), "e1's report to be read", || {
        edges.pump();
        edges_gauge() == 1.0
    });

    redis.stop();
    wait::until_true(Duration::from_secs(10), "the counts to drop to 0", || {
        edges_gauge() == 0.0
    });
    // Many failed reads later (scrapes count one more each), one log line.
    wait::until_true(Duration::from_secs(10), "failed reads", || {
        sample(&scrape(&c, &api), "rtmp_live_api_redis_errors_total") >= 12.0
    });
    let log = api.proc.log();
    assert_eq!(
        log.matches("cannot read the edges' reports").count(),
        1,
        "{log}"
    );

    redis.restart();
    wait::until_explained(
        Duration::from_secs(10),
        || {
            api.proc
                .log()
                .contains("reading the edges' reports again")
                .then_some(())
        },
        || format!("the reader to recover:\n{}", api.proc.log()),
    );
}

#[test]
fn viewer_reports_need_the_edge_token_and_nothing_else_does() {
    let redis = Redis::start();
    let api = secure_api(&redis, &[("API_EDGE_TOKEN", EDGE)]);
    let c = client();
    report(&c, &api, &stream("s", "10.0.0.5:8080"), Some(TOK_A));
    let ok = json!({"s": 1});

    // Without the edge token (the registry's tokens included): 401.
    for token in [
        None,
        Some("wrong-token-0123456789"),
        Some(TOK_ANY),
        Some(TOK_A),
    ] {
        let r = put_viewers(&c, &api, "e1", ok.clone(), token);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert_json_error(r, 401);
    }
    assert_eq!(
        put_viewers(&c, &api, "e1", ok.clone(), Some(EDGE)).status(),
        204
    );
    // The edge token cannot write the registry nor ask /authorize.
    assert_json_error(
        report(&c, &api, &stream("s", "10.0.0.5:8080"), Some(EDGE)),
        401,
    );
    assert_json_error(
        delete(&c, &api, "/streams/s?host=10.0.0.5:8080", Some(EDGE)),
        401,
    );
    assert_json_error(authorize_as(&c, &api, KEY1, None, Some(EDGE)), 401);
    assert_eq!(lookup(&c, &api, "s").0, 200, "still registered");

    // Invalid reports: 400.
    let many: serde_json::Map<String, Value> =
        (0..10_001).map(|i| (format!("s{i}"), json!(1))).collect();
    let bad: [(&str, Value); 6] = [
        ("e1", Value::Object(many)),
        ("e1", json!({"s": -1})),
        ("e1", json!({"s": 1.5})),
        ("e1", json!(["s"])),
        ("a%20b", ok.clone()),
        (&"e".repeat(129), ok.clone()),
    ];
    for (edge, streams) in bad {
        assert_json_error(put_viewers(&c, &api, edge, streams, Some(EDGE)), 400);
    }
    // A count beyond u64.
    let huge = c
        .put(format!("{}/edges/e1/viewers", api.url()))
        .bearer_auth(EDGE)
        .header("content-type", "application/json")
        .body(r#"{"streams":{"s":18446744073709551616}}"#)
        .send()
        .unwrap();
    assert_json_error(huge, 400);
    let fine: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("s{i}"), json!(1))).collect();
    assert_eq!(
        put_viewers(&c, &api, "e1", Value::Object(fine), Some(EDGE)).status(),
        204,
        "10,000 entries are fine"
    );
    let log = api.proc.log();
    assert_eq!(
        log.matches("missing or invalid edge token").count(),
        4,
        "{log}"
    );
    assert!(!log.contains(EDGE), "{log}");

    // No edge token configured: 503.
    let off = secure_api(&redis, &[]);
    let r = put_viewers(&c, &off, "e1", ok, None);
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().unwrap();
    assert_eq!(v, json!({"error": "viewer reports are not configured"}));
}

/// A token holder spraying edge ids cannot grow Redis without bound: at
/// most 1,000 edges with a fresh report; a new one beyond is refused, the
/// edges already reporting are not evicted.
#[test]
fn viewer_report_edges_are_capped() {
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("API_VIEWER_REPORT_TTL_SECS", "600")]);
    let c = client();
    report(&c, &api, &stream("s", "10.0.0.5:8080"), None);
    for i in 0..1000 {
        let r = put_viewers(
            &c,
            &api,
            &format!("spray-{i}"),
            json!({"s": 1, "x": 1}),
            None,
        );
        assert_eq!(r.status().as_u16(), 204, "edge {i}");
    }
    let r = put_viewers(&c, &api, "one-too-many", json!({"s": 1}), None);
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        put_viewers(&c, &api, "spray-0", json!({"s": 2}), None).status(),
        204,
        "a reporting edge keeps reporting"
    );
    assert_eq!(redis_cli(&redis, &["ZCARD", "rl:viewer-edges"]), "1000");
    assert_eq!(
        redis_cli(&redis, &["EXISTS", "rl:viewers:one-too-many"]),
        "0"
    );
    wait::until_true(Duration::from_secs(10), "1,000 edges summed", || {
        viewers_of(&c, &api, "s") == 1001
    });
    assert!(api.proc.log().contains("too many edges report viewers"));
}
