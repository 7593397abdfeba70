//! Bringing the lab up: the network, every node in dependency order, each
//! waited for until it does its job, then the publishers. The lab is taken
//! down when this handle drops (unless kept).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::faults::healthy;
use crate::nodes::{Lab, Role};
use crate::podman::{Podman, Result};
use crate::traffic::Publisher;

/// The streams: `golive` published by two encoders, one to each origin
/// (as a streamer with a backup encoder would); `second` to the second
/// origin only.
pub const STREAMS: [&str; 2] = ["golive", "second"];

/// The new-publish probe's names, a key each (an attempt every 1.5-3.5 s:
/// enough for a run of 20 minutes before a key is used again).
pub static PROBES: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| (1..=600).map(|i| format!("probe{i}")).collect());

pub struct Running {
    pub podman: Podman,
    pub lab: Lab,
    pub publishers: Vec<Publisher>,
    pub keep: bool,
}

pub fn say(what: &str) {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs();
    eprintln!("[lab +{t}s] {what}");
}

pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return Ok(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("{what}: not within {limit:?}"))
}

impl Running {
    pub fn start(net: &str, work: PathBuf, keep: bool) -> Result<Running> {
        let podman = Podman {
            prefix: "rtmp-live-lab".into(),
        };
        podman.remove(true);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let names: Vec<&str> = STREAMS
            .iter()
            .copied()
            .chain(PROBES.iter().map(String::as_str))
            .collect();
        let lab = Lab::new(net, crate::nodes::Secrets::generate(&names));
        podman.create_network(&lab.subnet(), &lab.gateway())?;
        let r = Running {
            podman,
            lab,
            publishers: Vec::new(),
            keep,
        };
        // sentinels first: a Redis node asks them for the master as it
        // starts
        for role in [
            Role::Sentinel,
            Role::Redis,
            Role::Api,
            Role::Origin,
            Role::Edge,
        ] {
            let names: Vec<String> = r.lab.of(role).map(|n| n.name.clone()).collect();
            for n in &names {
                r.podman.run(r.lab.node(n), &work)?;
            }
            for n in &names {
                wait_for(&format!("{n} healthy"), Duration::from_secs(90), || {
                    healthy(&r.podman, &r.lab, n)
                })
                .map_err(|e| format!("{e}\n{}", r.podman.logs(n, 30)))?;
            }
            say(&format!("up: {}", names.join(", ")));
        }
        Ok(r)
    }

    /// `golive` to both origins, `second` to the second; waits until both
    /// play through the first edge.
    pub fn publish(&mut self) -> Result<()> {
        let lab = &self.lab;
        self.publishers = vec![
            Publisher::start(lab.rtmp_url("origin-1", "golive"), "426x240"),
            Publisher::start(lab.rtmp_url("origin-2", "golive"), "426x240"),
            Publisher::start(lab.rtmp_url("origin-2", "second"), "320x180"),
        ];
        let edge = lab.edge_urls()[0].clone();
        let c = rtmp_live_testkit::http::client();
        for s in ["golive", "second"] {
            let url = format!("{edge}/{s}/index.m3u8");
            wait_for(&format!("{s} playing"), Duration::from_secs(60), || {
                c.get(&url).send().is_ok_and(|r| r.status() == 200)
            })?;
        }
        say("publishing: golive on both origins, second on origin-2");
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.publishers.clear();
        if self.keep {
            say("kept: `rtmp-live-lab down` removes it");
        } else {
            self.podman.remove(false);
            say("down: every container and the network removed");
        }
    }
}
