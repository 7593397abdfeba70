//! Recordings at the real API against a private redis-server: origins
//! report theirs, viewers list a stream's, the edge looks one up by name;
//! bad reports are refused whole; unreported recordings are forgotten.

use std::time::Duration;

use reqwest::blocking::{Client, Response};
use rtmp_live_testkit::{wait, Api, Redis};
use serde_json::{json, Value};

const TOK_A: &str = "origin-a-token-0123456789";
const TOK_B: &str = "origin-b-token-0123456789";
const KEY: &str = "0123456789abcdef0123";

fn api(redis: &Redis) -> Api {
    let keys = format!("{KEY}=show:signed");
    let tokens = format!("{TOK_A}=10.0.0.5:8080,{TOK_B}=10.0.0.6:8080");
    Api::start(
        &redis.url(),
        &[
            ("API_INSECURE_NO_AUTH", "0"),
            ("STREAM_KEYS", keys.as_str()),
            ("API_ORIGIN_TOKENS", tokens.as_str()),
            ("STREAM_TTL_SECS", "2"),
        ],
    )
}

fn rec(name: &str, start: u64, secs: f64) -> Value {
    json!({"name": name, "start": start, "end": start + (secs * 1000.0) as u64,
           "duration": secs, "bytes": 1000, "manifest": "index.m3u8"})
}

fn put(c: &Client, api: &Api, host: &str, recs: Value, token: Option<&str>) -> Response {
    let mut r = c
        .put(format!("{}/recordings/{host}", api.url()))
        .json(&json!({ "recordings": recs }));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().unwrap()
}

fn get(c: &Client, api: &Api, path: &str) -> (u16, Value) {
    let r = c.get(format!("{}{path}", api.url())).send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn recordings_are_reported_listed_looked_up_and_forgotten() {
    let redis = Redis::start();
    let api = api(&redis);
    let c = Client::new();
    let (t1, t2) = (1_765_000_000_000u64, 1_765_000_100_000u64);
    // origin A holds two sessions of "show", origin B the second one too
    let r = put(
        &c,
        &api,
        "10.0.0.5:8080",
        json!([rec("show", t1, 60.0), rec("show", t2, 30.5)]),
        Some(TOK_A),
    );
    assert_eq!(r.status(), 204);
    assert_eq!(
        put(
            &c,
            &api,
            "10.0.0.6:8080",
            json!([rec("show", t2, 30.5)]),
            Some(TOK_B)
        )
        .status(),
        204
    );

    // listed newest first, once each, with the URL viewers play
    let (s, v) = get(&c, &api, "/streams/show/recordings");
    assert_eq!(s, 200);
    let list = v["recordings"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["start"], t2);
    assert_eq!(list[0]["url"], format!("/show~{t2}/index.m3u8"));
    assert_eq!(list[1]["duration"], 60.0);
    // a stream with none: an empty list
    assert_eq!(
        get(&c, &api, "/streams/other/recordings").1["recordings"],
        json!([])
    );

    // the edge's lookup: both origins, `since` the start, signed like the
    // stream
    let (s, v) = get(&c, &api, &format!("/streams/show~{t2}"));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], format!("show~{t2}"));
    let hosts: Vec<&str> = v["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["10.0.0.5:8080", "10.0.0.6:8080"]);
    assert_eq!(v["origins"][0]["since"], t2);
    assert_eq!(v["signed"], true);
    assert_eq!(get(&c, &api, "/streams/show~1").0, 404);
    for bad in ["show~01", "show~", "sh.ow~1", "show~1~2"] {
        assert_eq!(get(&c, &api, &format!("/streams/{bad}")).0, 400, "{bad}");
    }

    // refused whole: no token, another origin's host, an invalid entry, too
    // many; nothing of them is stored
    assert_eq!(
        put(&c, &api, "10.0.0.5:8080", json!([rec("x", 1, 1.0)]), None).status(),
        401
    );
    assert_eq!(
        put(
            &c,
            &api,
            "10.0.0.5:8080",
            json!([rec("x", 1, 1.0)]),
            Some(TOK_B)
        )
        .status(),
        403
    );
    let mut bad = rec("x", 10, 1.0);
    bad["end"] = json!(5);
    assert_eq!(
        put(
            &c,
            &api,
            "10.0.0.5:8080",
            json!([rec("x", 1, 1.0), bad]),
            Some(TOK_A)
        )
        .status(),
        400
    );
    let mut evil = rec("x", 1, 1.0);
    evil["name"] = json!("../etc");
    assert_eq!(
        put(&c, &api, "10.0.0.5:8080", json!([evil]), Some(TOK_A)).status(),
        400
    );
    let many: Vec<Value> = (0..10_001).map(|i| rec("x", i, 1.0)).collect();
    assert_eq!(
        put(&c, &api, "10.0.0.5:8080", json!(many), Some(TOK_A)).status(),
        400
    );
    assert_eq!(
        get(&c, &api, "/streams/x/recordings").1["recordings"],
        json!([])
    );

    // not reported again (retention deleted it at origin A; B keeps
    // reporting): A's copies are forgotten, B's stays
    wait::until(
        Duration::from_secs(10),
        "origin A's recordings forgotten",
        || {
            assert_eq!(
                put(
                    &c,
                    &api,
                    "10.0.0.6:8080",
                    json!([rec("show", t2, 30.5)]),
                    Some(TOK_B)
                )
                .status(),
                204
            );
            std::thread::sleep(Duration::from_millis(500)); // B's heartbeat
            let (_, v) = get(&c, &api, "/streams/show/recordings");
            let list = v["recordings"].as_array().cloned().unwrap_or_default();
            let (_, l) = get(&c, &api, &format!("/streams/show~{t2}"));
            (list.len() == 1 && l["origins"].as_array().map(Vec::len) == Some(1)).then_some(())
        },
    );
    let (_, v) = get(&c, &api, &format!("/streams/show~{t2}"));
    assert_eq!(v["host"], "10.0.0.6:8080");
    assert_eq!(get(&c, &api, &format!("/streams/show~{t1}")).0, 404);
}
