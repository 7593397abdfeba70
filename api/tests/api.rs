//! The real API binary against a private redis-server.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use rtmp_live_testkit::{Api, Redis};
use serde_json::{json, Value};

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
    report(&c, &api, &stream("golive", "10.0.0.5:8080"), None);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        lookup(&c, &api, "golive").0,
        200,
        "refreshed by the second report"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let (s, v) = lookup(&c, &api, "golive");
    assert_eq!(s, 404);
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

#[test]
fn authorize_maps_keys_to_public_names() {
    let redis = Redis::start();
    let api = Api::start(
        &redis.url(),
        &[
            ("STREAM_KEYS", "golive,s3cr3t=show"),
            ("PUBLISH_REDIRECT", "rtmp://127.0.0.1:1935/hls/{name}"),
        ],
    );
    let c = client();
    let r = c
        .get(format!(
            "{}/authorize?app=stream&name=golive&addr=1.2.3.4",
            api.url()
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "rtmp://127.0.0.1:1935/hls/golive");
    let form = [
        ("call", "publish"),
        ("app", "stream"),
        ("name", "s3cr3t"),
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if report(&c, &api, &stream("r", "10.0.0.1:80"), None)
            .status()
            .as_u16()
            == 204
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "API did not recover:\n{}",
            api.proc.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .get(format!("{}/readyz", api.url()))
        .send()
        .unwrap()
        .status()
        .as_u16()
        != 200
    {
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigterm_stops_gracefully() {
    let redis = Redis::start();
    let mut api = Api::start(&redis.url(), &[]);
    api.proc.signal(nix::sys::signal::Signal::SIGTERM);
    let code = api.proc.wait_exit(Duration::from_secs(5)).expect("exited");
    assert_eq!(code, Some(0));
}
