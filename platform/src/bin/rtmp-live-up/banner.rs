//! What `make up` prints once everything started: where OBS publishes and
//! where viewers play.

use std::process::Command;

use rtmp_live_platform::Topology;

use crate::say::say;

/// `public_host`, else the first address of `hostname -I`, else loopback.
fn host(public_host: Option<&str>) -> String {
    if let Some(h) = public_host.filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    Command::new("hostname")
        .arg("-I")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

pub fn print(t: &Topology, public_host: Option<&str>, obs_key: Option<&str>) {
    let s = &t.settings;
    let host = host(public_host);
    let edge = s.ports.edge;
    let manifest = t.manifest();
    say(&format!(
        "RTMP Live is up (state in {})",
        s.state_dir.display()
    ));
    say(&format!(
        "  OBS: server rtmp://{host}:{}/stream",
        s.ports.origin(1).rtmp
    ));
    for k in 2..=s.origins {
        say(&format!(
            "       origin {k}: rtmp://{host}:{}/stream",
            s.ports.origin(k).rtmp
        ));
    }
    match obs_key {
        Some(key) => {
            say(&format!(
                "  OBS stream key: {key}   (kept in {}/stream-key; publishes as golive)",
                s.state_dir.display()
            ));
            say(&format!(
                "  play: http://{host}:{edge}/golive/{manifest}   (VLC, ffplay, hls.js)"
            ));
            say(&format!(
                "        http://{host}:{edge}/#golive   (the edge's player page)"
            ));
        }
        None => {
            say("  OBS stream key: one of your STREAM_KEYS");
            say(&format!(
                "  play: http://{host}:{edge}/<name>/{manifest}   (VLC, ffplay, hls.js)"
            ));
            say(&format!(
                "        http://{host}:{edge}/   (the edge's player page)"
            ));
        }
    }
    let apis: Vec<String> = t
        .api_url()
        .split(',')
        .map(|u| format!("{u}/metrics"))
        .collect();
    say(&format!(
        "  metrics: http://127.0.0.1:{edge}/metrics (edge), {} (API)",
        apis.join(", ")
    ));
    say("  test stream: make stream     stop: Ctrl-C");
}
