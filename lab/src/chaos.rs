//! The chaos run: viewers on every edge, the new-publish probe, then each
//! fault in turn: injected, held, healed, and measured until the platform
//! is whole again (every viewer advancing, a new publish accepted, the
//! node doing its job).

use std::time::{Duration, Instant};

use rtmp_live_testkit::player::Player;

use crate::faults::{self, Fault};
use crate::report::Outcome;
use crate::traffic::Probe;
use crate::up::{say, wait_for, Running, PROBES};

/// How long after its heal a fault may take to recover before the run
/// calls it unrecovered.
const RECOVERY_LIMIT: Duration = Duration::from_secs(90);

struct Viewers {
    /// (stream index: 0 golive, 1 second; the player)
    players: Vec<(usize, Player)>,
}

impl Viewers {
    /// Two viewers of golive and one of second starting on each edge; each
    /// moves to the next edge when one fails it (a player's own 3 s
    /// timeout), as behind one name with several addresses.
    fn start(edges: &[String]) -> Viewers {
        let mut players = Vec::new();
        for i in 0..edges.len() {
            let mut mine = edges.to_vec();
            mine.rotate_left(i);
            for (s, stream) in [(0, "golive"), (0, "golive"), (1, "second")] {
                let viewer = format!("198.51.100.{}", players.len() + 1);
                let p = Player::start_on(mine.clone(), stream, &viewer, Duration::from_secs(3));
                players.push((s, p));
            }
        }
        Viewers { players }
    }

    fn all_advanced_since(&self, t: Instant) -> bool {
        self.players
            .iter()
            .all(|(_, p)| p.snapshot().last_advance.is_some_and(|a| a > t))
    }
}

pub fn run(r: &Running, list: &[Fault], hold: Duration) -> Result<Vec<Outcome>, String> {
    let lab = &r.lab;
    let viewers = Viewers::start(&lab.edge_urls());
    let urls: Vec<Vec<String>> = ["origin-1", "origin-2"]
        .iter()
        .map(|o| PROBES.iter().map(|n| lab.rtmp_url(o, n)).collect())
        .collect();
    let probe = Probe::start(move |o, k| urls[o % 2][k % PROBES.len()].clone());
    let warm = Instant::now();
    wait_for(
        "viewers playing, a probe accepted",
        Duration::from_secs(60),
        || {
            viewers
                .players
                .iter()
                .all(|(_, p)| p.snapshot().segments >= 2)
                && probe.accepted_since(warm).is_some()
        },
    )?;
    say("viewers play on every edge; new publishes accepted");
    let mut out = Vec::new();
    let baseline = Fault {
        name: "none (baseline)",
        action: faults::Action::Loss(0.0),
        probe_origin: 0,
    };
    out.push(measure(r, &viewers, &probe, &baseline, hold, false));
    for f in list {
        say(&format!("fault: {}", f.name));
        let o = measure(r, &viewers, &probe, f, hold, true);
        say(&format!(
            "{}: errors {:?}, stall {:?}, publish after {:?}",
            o.fault, o.errors, o.stall, o.publish_after
        ));
        out.push(o);
        // the platform settles (a restarted node's first heartbeats, the
        // edges' five-second memory of a failed API) before the next one
        std::thread::sleep(Duration::from_secs(10));
    }
    Ok(out)
}

fn measure(
    r: &Running,
    v: &Viewers,
    probe: &Probe,
    f: &Fault,
    hold: Duration,
    inject: bool,
) -> Outcome {
    let (p, lab) = (&r.podman, &r.lab);
    let mut o = Outcome {
        fault: f.name.into(),
        node: "-".into(),
        hold,
        ..Outcome::default()
    };
    probe
        .target
        .store(f.probe_origin, std::sync::atomic::Ordering::SeqCst);
    let reconnects = || -> usize {
        r.publishers
            .iter()
            .map(|p| p.reconnects.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    };
    let reconnects_before = reconnects();
    for (_, pl) in &v.players {
        pl.reset();
    }
    let t0 = Instant::now();
    let injected = if inject {
        match faults::inject(p, lab, f) {
            Ok(i) => Some(i),
            Err(e) => {
                o.notes.push(format!("not injected: {e}"));
                None
            }
        }
    } else {
        None
    };
    if let Some(n) = injected.as_ref().and_then(|i| i.node.clone()) {
        o.node = n;
    }
    let mut healed: Option<Instant> = None;
    // when the node's return is timed from: its heal, or the fault's start
    // for a node podman restarts by itself
    let mut back_from = injected.as_ref().filter(|i| i.self_healing()).map(|_| t0);
    loop {
        if healed.is_none() && t0.elapsed() >= hold {
            if let Some(i) = &injected {
                if let Err(e) = faults::heal(p, i) {
                    o.notes.push(format!("heal: {e}"));
                }
            }
            healed = Some(Instant::now());
            back_from = back_from.or(healed);
        }
        if let Some(b) = back_from {
            if o.node_back_after.is_none() && (o.node == "-" || faults::healthy(p, lab, &o.node)) {
                o.node_back_after = Some(b.elapsed());
            }
        }
        if o.viewers_after.is_none() && v.all_advanced_since(t0) {
            o.viewers_after = Some(t0.elapsed());
        }
        if let Some(h) = healed {
            o.publish_after = probe.accepted_since(t0).map(|t| t - t0);
            let whole = o.viewers_after.is_some()
                && o.node_back_after.is_some()
                && o.publish_after.is_some();
            if whole {
                break;
            }
            if h.elapsed() > RECOVERY_LIMIT {
                o.notes
                    .push(format!("not whole {RECOVERY_LIMIT:?} after the heal"));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // a few more seconds of viewing, so that a stall right at the end counts
    std::thread::sleep(Duration::from_secs(5));
    o.refused = probe.refused_since(t0);
    o.reconnects = reconnects() - reconnects_before;
    for (s, pl) in &v.players {
        let seen = pl.snapshot();
        o.errors[*s] += seen.errors.len();
        o.retried += seen.retried;
        o.stall[*s] = o.stall[*s].max(seen.stall_now());
        if let Some(e) = seen.errors.first() {
            if o.notes.len() < 4 {
                o.notes.push(format!("first error: {e}"));
            }
        }
    }
    o
}
