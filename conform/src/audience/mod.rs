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

use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

pub mod crowd;
pub mod report;
pub mod viewer;
pub mod watch;

pub use crowd::{Identity, Key};
pub use report::{Accuracy, Dropout, EdgeReport, Goals, Report};
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
