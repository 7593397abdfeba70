//! `rtmp-live-audience`: simulated viewers of one stream spread over
//! edges, for the viewer-count benchmark (`scripts/bench-audience.sh`):
//! how close the edges' counts (`edge_router_viewers` in each edge's
//! metrics) and the API's sum of them (`viewers` of `GET /streams/<name>`)
//! come to the truth, and how long a viewer who left keeps being counted.
//!
//! Viewer `i` watches through edge `i % edges`, reloading the media
//! playlist about every second (and fetching each new segment with
//! `segments`), from a loopback source address of its own or shared with
//! `group - 1` others who each send an `X-Playback-Session-Id`
//! ([`crowd`]). The truth is what a perfect counter keyed like the edges
//! (`key`) would say: the distinct keys of the viewers that are watching
//! (their last playlist request, within 5 s, was answered), per edge and
//! summed.
//!
//! A run: the viewers start over `ramp` seconds; the counts are read every
//! second for at least `seconds`, until the API's has held still for
//! `settle` seconds (or `settle_timeout` more seconds passed); the counts
//! then are the measurement. With `keep` below 1, the others leave at once
//! and the counts are read every 0.5 s for up to `linger` seconds: the
//! drop-out time is when the API's count came within the tolerance of the
//! remaining truth and stayed there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

pub mod crowd;
pub mod viewer;
pub mod watch;

pub use crowd::{Identity, Key};
use viewer::{Board, Habits, Seat, Tally};
use watch::{error_pct, first_within, settled, stays_within, Observer, Reading};

/// A viewer is watching while its last playlist request within this was
/// answered.
const WATCHING: Duration = Duration::from_secs(5);
/// The API's count has settled when its readings over the settle window
/// are within this fraction of each other (or 2 viewers).
const STEADY: f64 = 0.01;
/// After the drop, the readings stop this long after the API's count came
/// (and stayed) within the tolerance, to show that it stays.
const HOLD_AFTER_DROP: f64 = 10.0;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The stream's media playlist through each edge.
    pub edges: Vec<Url>,
    /// Each edge's metrics (the same order as `edges`), or none.
    pub metrics: Vec<Url>,
    /// The stream at the API (`GET /streams/<name>`), or none.
    pub api: Option<Url>,
    /// The stream's name in the edges' metrics.
    pub stream: String,
    pub viewers: usize,
    pub identity: Identity,
    /// Viewers per shared address.
    pub group: usize,
    /// What the edges count a viewer by.
    pub key: Key,
    /// Seconds between a viewer's playlist reloads.
    pub interval: f64,
    pub segments: bool,
    /// Seconds over which the viewers start.
    pub ramp: f64,
    /// Least seconds measured after the ramp.
    pub seconds: f64,
    /// Seconds the API's count must hold still.
    pub settle: f64,
    /// Most seconds waited beyond `seconds` for it.
    pub settle_timeout: f64,
    /// Fraction of the viewers that stay after the measurement (1: none
    /// leave, no drop-out measurement).
    pub keep: f64,
    /// Most seconds the counts are followed after the drop.
    pub linger: f64,
    /// Goal: counts within this many percent of the truth.
    pub tolerance_pct: f64,
    /// Goal: a viewer who left is out of the API's count within this.
    pub dropout_goal_s: f64,
    /// Makes the session ids of this run.
    pub seed: u64,
}

/// One edge's figures.
#[derive(Debug, Default, Serialize)]
pub struct EdgeReport {
    pub playlist: String,
    /// Viewers watching through it.
    pub viewers: usize,
    /// Their distinct source addresses.
    pub addresses: usize,
    /// Distinct viewer keys among them (what a perfect counter says).
    pub truth: usize,
    /// The edge's own count (`edge_router_viewers`), if read.
    pub count: Option<u64>,
    pub error_pct: Option<f64>,
}

/// The measurement of the counts against the truth.
#[derive(Debug, Default, Serialize)]
pub struct Accuracy {
    /// Viewers watching (answered within 5 s) when the counts were taken.
    pub watching: usize,
    /// The sum of the edges' truths.
    pub truth: usize,
    /// The API's count, if read.
    pub api: Option<u64>,
    pub api_error_pct: Option<f64>,
    /// The API's count held still over the settle window.
    pub settled: bool,
    /// Seconds after the ramp when the counts were taken.
    pub taken_after_s: f64,
    /// The API's lowest and highest count over the settle window.
    pub api_min: Option<u64>,
    pub api_max: Option<u64>,
    pub edges: Vec<EdgeReport>,
    /// Every reading: `[t, api, edge 1, ...]`, t in seconds after the ramp.
    pub readings: Vec<Reading>,
}

/// How long viewers who left kept being counted.
#[derive(Debug, Default, Serialize)]
pub struct Dropout {
    /// Viewers that stayed, and left.
    pub kept: usize,
    pub left: usize,
    /// The truth once they left, summed and per edge.
    pub truth: usize,
    pub edge_truth: Vec<usize>,
    /// The leavers' last request, seconds after the drop (≤ 0, or a few
    /// ms for a request under way).
    pub last_leaver_request_s: Option<f64>,
    /// Seconds after the drop when the API's count was first within the
    /// tolerance of the truth, and from when it stayed there.
    pub api_first_within_s: Option<f64>,
    pub api_within_s: Option<f64>,
    /// The same for each edge's own count.
    pub edges_within_s: Vec<Option<f64>>,
    /// The last reading's counts.
    pub api_final: Option<u64>,
    pub edges_final: Vec<Option<u64>>,
    /// Every reading: `[t, api, edge 1, ...]`, t in seconds after the drop.
    pub readings: Vec<Reading>,
}

/// The goals and whether they were met (`None`: not measured).
#[derive(Debug, Default, Serialize)]
pub struct Goals {
    pub tolerance_pct: f64,
    pub accuracy_met: Option<bool>,
    pub dropout_s: f64,
    pub dropout_met: Option<bool>,
}

/// The run's figures (printed as JSON).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub viewers: usize,
    pub edges: usize,
    pub identity: Option<Identity>,
    pub key: Option<Key>,
    pub group: usize,
    /// Viewers sending a session id.
    pub with_session: usize,
    pub seed: u64,
    pub seconds: f64,
    pub playlists: usize,
    pub segments: usize,
    pub segment_bytes: u64,
    /// Failed requests by kind.
    pub errors: HashMap<String, usize>,
    pub accuracy: Accuracy,
    pub dropout: Option<Dropout>,
    pub goals: Goals,
}

fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// Runs the viewers and reads the counts; the report.
pub async fn run(o: Options) -> Result<Report, String> {
    if o.edges.is_empty() {
        return Err("no edge".into());
    }
    if !o.metrics.is_empty() && o.metrics.len() != o.edges.len() {
        return Err("give one metrics URL per edge, or none".into());
    }
    if o.viewers > crowd::MAX_VIEWERS {
        return Err(format!("at most {} viewers", crowd::MAX_VIEWERS));
    }
    let n_edges = o.edges.len();
    let people = crowd::crowd(o.viewers, n_edges, o.identity, o.group, o.seed);
    let stay = crowd::stayers(&people, o.keep);
    let observer = Observer::new(o.api.clone(), o.metrics.clone(), o.stream.clone())?;
    let board = Arc::new(Board::new(o.viewers));
    let habits = Habits {
        interval: o.interval,
        segments: o.segments,
        timeout: Duration::from_secs(5),
    };
    let (phase, watching) = tokio::sync::watch::channel(0u8);
    let mut jobs = Vec::with_capacity(o.viewers);
    for (i, who) in people.iter().enumerate() {
        let seat = Seat {
            i,
            who: who.clone(),
            playlist: o.edges[who.edge].clone(),
            first: Duration::from_secs_f64(o.ramp * i as f64 / o.viewers.max(1) as f64),
            leave_at: if stay[i] { 2 } else { 1 },
        };
        jobs.push(tokio::spawn(viewer::watch(
            seat,
            habits,
            watching.clone(),
            Arc::clone(&board),
        )));
    }
    tokio::time::sleep(Duration::from_secs_f64(o.ramp)).await;

    // the measurement
    let measuring = Instant::now();
    let mut readings: Vec<Reading> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let steady = loop {
        tick.tick().await;
        let t = since(measuring);
        if observer.reads() {
            let r = observer.read(t).await;
            progress("measure", &r, None);
            readings.push(r);
        }
        if t < o.seconds {
            continue;
        }
        if !observer.has_api() {
            break false;
        }
        if settled(&readings, o.settle, STEADY) {
            break true;
        }
        if t >= o.seconds + o.settle_timeout {
            break false;
        }
    };
    let taken_after_s = since(measuring);
    let is_watching = |i: usize| board.watching(i, WATCHING);
    let truth = crowd::truth(&people, n_edges, o.key, is_watching);
    let addresses = crowd::truth(&people, n_edges, Key::Addr, is_watching);
    let last = readings.last();
    let recent: Vec<u64> = readings
        .iter()
        .filter(|r| r.t >= taken_after_s - o.settle)
        .filter_map(|r| r.api)
        .collect();
    let mut accuracy = Accuracy {
        watching: (0..o.viewers).filter(|&i| is_watching(i)).count(),
        truth: truth.iter().sum(),
        api: last.and_then(|r| r.api),
        settled: steady,
        taken_after_s,
        api_min: recent.iter().copied().min(),
        api_max: recent.iter().copied().max(),
        ..Accuracy::default()
    };
    accuracy.api_error_pct = accuracy.api.map(|c| error_pct(c, accuracy.truth));
    for (e, url) in o.edges.iter().enumerate() {
        let count = last.and_then(|r| r.edges.get(e).copied().flatten());
        accuracy.edges.push(EdgeReport {
            playlist: url.to_string(),
            viewers: people
                .iter()
                .enumerate()
                .filter(|&(i, w)| w.edge == e && is_watching(i))
                .count(),
            addresses: addresses[e],
            truth: truth[e],
            count,
            error_pct: count.map(|c| error_pct(c, truth[e])),
        });
    }
    accuracy.readings = readings;

    // the drop
    let dropout = if o.keep < 1.0 && observer.reads() {
        let dropped = Instant::now();
        let dropped_s = since(board.start);
        let _ = phase.send(1);
        let stays_watching = |i: usize| stay[i] && board.watching(i, WATCHING);
        let edge_truth = crowd::truth(&people, n_edges, o.key, stays_watching);
        let truth: usize = edge_truth.iter().sum();
        let mut readings: Vec<Reading> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let t = since(dropped);
            let r = observer.read(t).await;
            progress("drop", &r, Some(truth));
            readings.push(r);
            let held = if observer.has_api() {
                stays_within(&readings, truth, o.tolerance_pct, |r| r.api)
            } else {
                (0..n_edges)
                    .map(|e| {
                        stays_within(&readings, edge_truth[e], o.tolerance_pct, |r| r.edges[e])
                    })
                    .try_fold(0.0f64, |a, w| w.map(|w| a.max(w)))
            };
            if held.is_some_and(|w| t - w >= HOLD_AFTER_DROP) || t >= o.linger {
                break;
            }
        }
        let last_leaver = (0..o.viewers)
            .filter(|&i| !stay[i])
            .filter_map(|i| board.last_try_s(i))
            .reduce(f64::max)
            .map(|s| s - dropped_s);
        let last = readings.last();
        Some(Dropout {
            kept: stay.iter().filter(|&&s| s).count(),
            left: stay.iter().filter(|&&s| !s).count(),
            truth,
            last_leaver_request_s: last_leaver,
            api_first_within_s: first_within(&readings, truth, o.tolerance_pct, |r| r.api),
            api_within_s: stays_within(&readings, truth, o.tolerance_pct, |r| r.api),
            edges_within_s: (0..n_edges)
                .map(|e| {
                    stays_within(&readings, edge_truth[e], o.tolerance_pct, |r| {
                        r.edges.get(e).copied().flatten()
                    })
                })
                .collect(),
            api_final: last.and_then(|r| r.api),
            edges_final: last.map(|r| r.edges.clone()).unwrap_or_default(),
            edge_truth,
            readings,
        })
    } else {
        None
    };
    let _ = phase.send(2);

    let mut report = Report {
        viewers: o.viewers,
        edges: n_edges,
        identity: Some(o.identity),
        key: Some(o.key),
        group: o.group,
        with_session: people.iter().filter(|w| w.session.is_some()).count(),
        seed: o.seed,
        seconds: since(board.start),
        ..Report::default()
    };
    for j in jobs {
        let t: Tally = j.await.map_err(|e| e.to_string())?;
        report.playlists += t.playlists;
        report.segments += t.segments;
        report.segment_bytes += t.segment_bytes;
        for (k, n) in t.errors {
            *report.errors.entry(k).or_default() += n;
        }
    }
    let within = |e: Option<f64>| e.map(|e| e.abs() <= o.tolerance_pct);
    let edge_errors: Vec<Option<bool>> =
        accuracy.edges.iter().map(|e| within(e.error_pct)).collect();
    report.goals = Goals {
        tolerance_pct: o.tolerance_pct,
        accuracy_met: within(accuracy.api_error_pct)
            .map(|ok| ok && edge_errors.iter().all(|e| e.unwrap_or(true))),
        dropout_s: o.dropout_goal_s,
        dropout_met: dropout
            .as_ref()
            .filter(|_| observer.has_api())
            .map(|d| d.api_within_s.is_some_and(|s| s <= o.dropout_goal_s)),
    };
    report.accuracy = accuracy;
    report.dropout = dropout;
    Ok(report)
}

/// One reading, on stderr, for whoever watches the run.
fn progress(phase: &str, r: &Reading, truth: Option<usize>) {
    let edges: Vec<String> = r
        .edges
        .iter()
        .map(|e| e.map_or_else(|| "-".to_string(), |n| n.to_string()))
        .collect();
    let api = r.api.map_or_else(|| "-".to_string(), |n| n.to_string());
    let truth = truth.map(|t| format!(" (truth {t})")).unwrap_or_default();
    eprintln!(
        "{phase:8} t={:5.1} s  api {api:>6}  edges {}{truth}",
        r.t,
        edges.join(" ")
    );
}

/// A command-line value's name (`addr-session`).
fn name<T: clap::ValueEnum>(v: Option<T>) -> String {
    v.and_then(|v| v.to_possible_value())
        .map_or_else(|| "-".to_string(), |p| p.get_name().to_string())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:+.2} %"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".to_string(), |v| format!("{v:.1} s"))
}

fn met(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

impl Report {
    /// A human summary of the report.
    pub fn summary(&self) -> String {
        let a = &self.accuracy;
        let mut s = format!(
            "{} viewers ({} with a session id) over {} edges, identity {}, key {}, {} per shared address\n",
            self.viewers,
            self.with_session,
            self.edges,
            name(self.identity),
            name(self.key),
            self.group,
        );
        let errors: usize = self.errors.values().sum();
        s += &format!(
            "requests: {} playlists, {} segments ({:.1} MB), {} failed {:?}\n",
            self.playlists,
            self.segments,
            self.segment_bytes as f64 / 1e6,
            errors,
            self.errors
        );
        s += &format!(
            "counts taken {:.1} s after the ramp ({}): {} watching\n",
            a.taken_after_s,
            if a.settled { "settled" } else { "NOT settled" },
            a.watching
        );
        for (e, x) in a.edges.iter().enumerate() {
            s += &format!(
                "  edge {}: {} viewers from {} addresses, truth {}, edge count {} ({})\n",
                e + 1,
                x.viewers,
                x.addresses,
                x.truth,
                opt(x.count),
                pct(x.error_pct)
            );
        }
        s += &format!(
            "  API: truth {}, count {} ({}), over the settle window {}..{}\n",
            a.truth,
            opt(a.api),
            pct(a.api_error_pct),
            opt(a.api_min),
            opt(a.api_max)
        );
        if let Some(d) = &self.dropout {
            s += &format!(
                "drop: {} left, {} stayed (truth {}, per edge {:?}); leavers' last request {} after the drop\n",
                d.left,
                d.kept,
                d.truth,
                d.edge_truth,
                secs(d.last_leaver_request_s)
            );
            let edges: Vec<String> = d.edges_within_s.iter().map(|w| secs(*w)).collect();
            s += &format!(
                "  API within {} % of {} after {} (first at {}); each edge's own count after {}; final API {}, edges {:?}\n",
                self.goals.tolerance_pct,
                d.truth,
                secs(d.api_within_s),
                secs(d.api_first_within_s),
                edges.join(", "),
                opt(d.api_final),
                d.edges_final
            );
        }
        s += &format!(
            "goals: within {} % {}; drop-out within {} s {}\n",
            self.goals.tolerance_pct,
            met(self.goals.accuracy_met),
            self.goals.dropout_s,
            met(self.goals.dropout_met)
        );
        s
    }
}
