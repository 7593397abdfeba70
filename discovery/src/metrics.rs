//! Prometheus metrics, served as text on the local listener's `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::ingest::IngestFacts;

/// The labels of a per-stream ingest series.
type StreamLabels = [(&'static str, String); 2];
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Two label pairs, e.g. `[("op", "register"), ("result", "ok")]`.
pub type Labels = [(&'static str, &'static str); 2];

/// The report operations.
pub const OPS: [&str; 2] = ["register", "deregister"];
/// How a report attempt ended: accepted, failed (network, timeout, 5xx:
/// retried with backoff) or rejected (4xx).
pub const RESULTS: [&str; 3] = ["ok", "failed", "rejected"];

/// Where an authorization decision came from: the API's own answer, the
/// memory of an earlier allow (API unreachable), or a refusal because the API
/// was unreachable and nothing usable was remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    Api,
    Cache,
    Refused,
}

impl AuthSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthSource::Api => "api",
            AuthSource::Cache => "cache",
            AuthSource::Refused => "refused",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// Streams currently live (being reported).
    pub streams: Gauge,
    reports: Family<Labels, Counter>,
    /// Duration of every report attempt, whatever its result.
    pub report_seconds: Histogram,
    /// Report attempts that did not land (failed or rejected).
    pub report_failures: Counter,
    /// Full rescans of the HLS folder.
    pub rescans: Counter,
    authorize: Family<Labels, Counter>,
    /// Allow decisions remembered for API outages.
    pub auth_remembered: Gauge,
    /// Per-stream ingest facts from nginx-rtmp's statistics, by name.
    ingest: Vec<(&'static str, Family<StreamLabels, FloatGauge>)>,
    /// Scrapes of nginx-rtmp's statistics that failed.
    pub rtmp_stat_errors: Counter,
}

/// One ingest series: name, help, and the fact it reports.
type IngestSeries = (&'static str, &'static str, fn(&IngestFacts) -> f64);

const INGEST: [IngestSeries; 8] = [
    (
        "stream_ingest_bits_per_second",
        "Incoming bitrate of a published stream (nginx-rtmp bw_in)",
        |f| f.bw_in,
    ),
    (
        "stream_ingest_video_bits_per_second",
        "Incoming video bitrate of a published stream",
        |f| f.bw_video,
    ),
    (
        "stream_ingest_audio_bits_per_second",
        "Incoming audio bitrate of a published stream",
        |f| f.bw_audio,
    ),
    (
        "stream_video_frames_per_second",
        "Frame rate the publisher announced",
        |f| f.fps,
    ),
    (
        "stream_video_width_pixels",
        "Width of the published video",
        |f| f.width,
    ),
    (
        "stream_video_height_pixels",
        "Height of the published video",
        |f| f.height,
    ),
    (
        "stream_published_seconds",
        "How long the stream has been published",
        |f| f.uptime_secs,
    ),
    (
        "stream_rtmp_clients",
        "RTMP clients of the stream, the publisher included",
        |f| f.clients,
    ),
];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("discovery");
        let streams = Gauge::default();
        let reports = Family::<Labels, Counter>::default();
        let report_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let report_failures = Counter::default();
        let rescans = Counter::default();
        let authorize = Family::<Labels, Counter>::default();
        let auth_remembered = Gauge::default();
        registry.register(
            "streams_watched",
            "Live streams on this origin being reported",
            streams.clone(),
        );
        registry.register(
            "reports",
            "Report attempts to the API by operation and result",
            reports.clone(),
        );
        registry.register(
            "report_duration_seconds",
            "Duration of report attempts to the API",
            report_seconds.clone(),
        );
        registry.register(
            "report_failures",
            "Report attempts that failed or were rejected",
            report_failures.clone(),
        );
        registry.register("rescans", "Full rescans of the HLS folder", rescans.clone());
        registry.register(
            "authorize_decisions",
            "Publish authorizations answered, by source (api, cache, refused) and decision",
            authorize.clone(),
        );
        registry.register(
            "authorize_remembered",
            "Allow decisions remembered for API outages",
            auth_remembered.clone(),
        );
        // Every series exists from the start, at zero.
        for op in OPS {
            for result in RESULTS {
                let _ = reports.get_or_create(&[("op", op), ("result", result)]);
            }
        }
        for (source, decision) in [
            (AuthSource::Api, "allow"),
            (AuthSource::Api, "deny"),
            (AuthSource::Cache, "allow"),
            (AuthSource::Refused, "deny"),
        ] {
            let _ = authorize.get_or_create(&[("source", source.as_str()), ("decision", decision)]);
        }
        let ingest = INGEST
            .iter()
            .map(|(name, help, _)| {
                let family = Family::<StreamLabels, FloatGauge>::default();
                registry.register(*name, *help, family.clone());
                (*name, family)
            })
            .collect();
        let rtmp_stat_errors = Counter::default();
        registry.register(
            "rtmp_stat_errors",
            "Reads of nginx-rtmp's statistics page that failed",
            rtmp_stat_errors.clone(),
        );
        Metrics {
            registry,
            ingest,
            rtmp_stat_errors,
            streams,
            reports,
            report_seconds,
            report_failures,
            rescans,
            authorize,
            auth_remembered,
        }
    }

    /// Counts one report attempt of `op` that ended with `result` after `secs`.
    pub fn report(&self, op: &'static str, result: &'static str, secs: f64) {
        self.reports
            .get_or_create(&[("op", op), ("result", result)])
            .inc();
        self.report_seconds.observe(secs);
        if result != "ok" {
            self.report_failures.inc();
        }
    }

    /// Counts one authorization decision.
    pub fn authorize(&self, source: AuthSource, allowed: bool) {
        let decision = if allowed { "allow" } else { "deny" };
        self.authorize
            .get_or_create(&[("source", source.as_str()), ("decision", decision)])
            .inc();
    }

    /// Replaces the per-stream ingest series with `facts` (streams that
    /// ended disappear); only streams with a publisher are reported.
    pub fn set_ingest(&self, facts: &[IngestFacts]) {
        for ((_, family), (_, _, value)) in self.ingest.iter().zip(INGEST.iter()) {
            family.clear();
            for f in facts.iter().filter(|f| f.publishing) {
                family
                    .get_or_create(&[("app", f.app.clone()), ("stream", f.stream.clone())])
                    .set(value(f));
            }
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
