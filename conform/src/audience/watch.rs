//! Reading the counts while the viewers watch: the API's `viewers` of the
//! stream (`GET /streams/<name>`, the sum of the edges' fresh reports) and
//! each edge's own `edge_router_viewers{stream=...}` (its `/metrics`);
//! and what the readings say: when they settled, when they came within a
//! tolerance of the truth and stayed there.

use std::time::Duration;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use url::Url;

/// The counts at one moment, `t` seconds into a phase; `None`: that source
/// did not answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub t: f64,
    pub api: Option<u64>,
    pub edges: Vec<Option<u64>>,
}

/// As `[t, api, edge 1, edge 2, ...]` (compact: a run has hundreds).
impl Serialize for Reading {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2 + self.edges.len()))?;
        seq.serialize_element(&((self.t * 10.0).round() / 10.0))?;
        seq.serialize_element(&self.api)?;
        for e in &self.edges {
            seq.serialize_element(e)?;
        }
        seq.end()
    }
}

/// The value of `edge_router_viewers{stream="<stream>"}` in an edge's
/// metrics; 0 when the stream has no line (no viewers counted).
pub fn edge_viewers(metrics: &str, stream: &str) -> u64 {
    let prefix = format!("edge_router_viewers{{stream=\"{stream}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads the API and the edges' metrics.
pub struct Observer {
    client: reqwest::Client,
    api: Option<Url>,
    metrics: Vec<Url>,
    stream: String,
}

impl Observer {
    pub fn new(api: Option<Url>, metrics: Vec<Url>, stream: String) -> Result<Observer, String> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Observer {
            client,
            api,
            metrics,
            stream,
        })
    }

    /// Whether there is anything to read.
    pub fn reads(&self) -> bool {
        self.api.is_some() || !self.metrics.is_empty()
    }

    pub fn has_api(&self) -> bool {
        self.api.is_some()
    }

    async fn text(&self, url: &Url) -> Option<String> {
        let r = self.client.get(url.clone()).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    }

    async fn api(&self) -> Option<u64> {
        let body = self.text(self.api.as_ref()?).await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v.get("viewers")?.as_u64()
    }

    /// The API and the edges (the API while the edges are read, one after
    /// the other: a few milliseconds each).
    pub async fn read(&self, t: f64) -> Reading {
        let edges = async {
            let mut out = Vec::with_capacity(self.metrics.len());
            for m in &self.metrics {
                let text = self.text(m).await;
                out.push(text.map(|text| edge_viewers(&text, &self.stream)));
            }
            out
        };
        let (api, edges) = tokio::join!(self.api(), edges);
        Reading { t, api, edges }
    }
}

/// Whether the API's count held still over the last `window` seconds of
/// readings: every reading there answered, and they are within
/// `tolerance` (a fraction) of their largest, or 2 viewers.
pub fn settled(readings: &[Reading], window: f64, tolerance: f64) -> bool {
    let Some(last) = readings.last() else {
        return false;
    };
    let Some(first) = readings.first() else {
        return false;
    };
    if last.t - first.t < window {
        return false;
    }
    let recent: Vec<Option<u64>> = readings
        .iter()
        .filter(|r| r.t >= last.t - window)
        .map(|r| r.api)
        .collect();
    let Some(values) = recent.into_iter().collect::<Option<Vec<u64>>>() else {
        return false;
    };
    let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
        return false;
    };
    let slack = ((hi as f64) * tolerance).max(2.0);
    lo > 0 && (hi - lo) as f64 <= slack
}

/// Signed relative error of `count` against `truth`, in percent.
pub fn error_pct(count: u64, truth: usize) -> f64 {
    if truth == 0 {
        return if count == 0 { 0.0 } else { 100.0 };
    }
    (count as f64 - truth as f64) / truth as f64 * 100.0
}

fn within(v: Option<u64>, truth: usize, pct: f64) -> bool {
    v.is_some_and(|v| error_pct(v, truth).abs() <= pct)
}

/// The first reading's time at which `pick` is within `pct` % of `truth`.
pub fn first_within(
    readings: &[Reading],
    truth: usize,
    pct: f64,
    pick: impl Fn(&Reading) -> Option<u64>,
) -> Option<f64> {
    readings
        .iter()
        .find(|r| within(pick(r), truth, pct))
        .map(|r| r.t)
}

/// The time from which `pick` stayed within `pct` % of `truth` until the
/// last reading (`None`: the last reading is not within).
pub fn stays_within(
    readings: &[Reading],
    truth: usize,
    pct: f64,
    pick: impl Fn(&Reading) -> Option<u64>,
) -> Option<f64> {
    let mut from = None;
    for r in readings {
        if within(pick(r), truth, pct) {
            from.get_or_insert(r.t);
        } else {
            from = None;
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: f64, api: Option<u64>) -> Reading {
        Reading {
            t,
            api,
            edges: vec![Some(1), None],
        }
    }

    #[test]
    fn an_edges_count_is_read_from_its_metrics() {
        let m = "# TYPE edge_router_viewers gauge\n\
                 edge_router_viewers{stream=\"other\"} 3\n\
                 edge_router_viewers{stream=\"golive\"} 497\n\
                 edge_router_viewers_uncounted_total 0\n";
        assert_eq!(edge_viewers(m, "golive"), 497);
        assert_eq!(edge_viewers(m, "other"), 3);
        assert_eq!(edge_viewers(m, "gone"), 0);
        assert_eq!(edge_viewers(m, "golive2"), 0);
    }

    #[test]
    fn readings_serialize_compactly() {
        let j = serde_json::to_string(&r(1.25, Some(9))).expect("serializes");
        assert_eq!(j, "[1.3,9,1,null]");
    }

    #[test]
    fn settling_needs_the_whole_window_steady() {
        let mut v: Vec<Reading> = (0..5)
            .map(|i| r(f64::from(i), Some(100 * i as u64)))
            .collect();
        assert!(!settled(&v, 10.0, 0.01));
        for i in 5..16 {
            v.push(r(f64::from(i), Some(1000 + (i % 2) as u64)));
        }
        assert!(settled(&v, 10.0, 0.01));
        v.push(r(16.0, None));
        assert!(!settled(&v, 10.0, 0.01));
        let short: Vec<Reading> = (0..5).map(|i| r(f64::from(i), Some(1000))).collect();
        assert!(!settled(&short, 10.0, 0.01));
        let zero: Vec<Reading> = (0..12).map(|i| r(f64::from(i), Some(0))).collect();
        assert!(!settled(&zero, 10.0, 0.01));
    }

    #[test]
    fn within_and_staying_within() {
        let v: Vec<Reading> = [1000, 990, 530, 700, 520, 505, 498, 501]
            .iter()
            .enumerate()
            .map(|(i, &n)| r(i as f64, Some(n)))
            .collect();
        let api = |x: &Reading| x.api;
        assert_eq!(first_within(&v, 500, 5.0, api), Some(4.0));
        assert_eq!(stays_within(&v, 500, 5.0, api), Some(4.0));
        assert_eq!(first_within(&v, 500, 1.0, api), Some(5.0));
        assert_eq!(stays_within(&v[..4], 500, 5.0, api), None);
        assert_eq!(error_pct(495, 500), -1.0);
        assert_eq!(error_pct(0, 0), 0.0);
    }
}
