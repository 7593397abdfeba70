//! The benchmark's report: what was measured (per edge and at the API),
//! the goals, and its human summary.

use std::collections::HashMap;

use serde::Serialize;

use super::watch::Reading;
use super::{Identity, Key};

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
