//! Prometheus metrics, served by `GET /metrics` (OpenMetrics text format).
//! The API's own metrics are named `rtmp_live_api_*`; the audience, which
//! is the platform's rather than this process's, `rtmp_live_*`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/streams/{name}`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthorizeLabels {
    /// allowed, unknown_key, name_taken, rate_limited, error.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// A live stream's name (bounded: only live streams get a series).
    pub stream: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: HistogramFamily,
    pub redis_errors: Counter,
    pub redis_latency: Histogram,
    pub live_streams: Gauge,
    pub live_origins: Gauge,
    pub authorize: Family<AuthorizeLabels, Counter>,
    /// Viewers per live stream across the edges (set at scrape).
    pub stream_viewers: Family<StreamLabels, Gauge>,
    /// Edges with a fresh viewer report (set at scrape).
    pub viewer_report_edges: Gauge,
    /// Held while the per-stream gauges are replaced and encoded, so that
    /// concurrent scrapes never see a half-filled family.
    scrape: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        let stream_viewers = Family::<StreamLabels, Gauge>::default();
        root.register(
            "rtmp_live_stream_viewers",
            "Viewers of a live stream across the edges with a fresh report (set at scrape)",
            stream_viewers.clone(),
        );
        let viewer_report_edges = Gauge::default();
        root.register(
            "rtmp_live_viewer_report_edges",
            "Edges with a fresh viewer report (set at scrape)",
            viewer_report_edges.clone(),
        );
        let registry = root.sub_registry_with_prefix("rtmp_live_api");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let latency: HistogramFamily =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            latency.clone(),
        );
        let redis_errors = Counter::default();
        registry.register(
            "redis_errors",
            "Redis calls that failed or timed out (including connection attempts)",
            redis_errors.clone(),
        );
        let redis_latency = latency_histogram();
        registry.register(
            "redis_call_duration_seconds",
            "Latency of Redis calls",
            redis_latency.clone(),
        );
        let live_streams = Gauge::default();
        registry.register(
            "live_streams",
            "Streams with at least one live origin (computed at scrape)",
            live_streams.clone(),
        );
        let live_origins = Gauge::default();
        registry.register(
            "live_origins",
            "Live (stream, origin) registrations (computed at scrape)",
            live_origins.clone(),
        );
        let authorize = Family::<AuthorizeLabels, Counter>::default();
        registry.register(
            "authorize",
            "Publish authorizations by result",
            authorize.clone(),
        );
        Metrics {
            registry: root,
            requests,
            latency,
            redis_errors,
            redis_latency,
            live_streams,
            live_origins,
            authorize,
            stream_viewers,
            viewer_report_edges,
            scrape: Mutex::new(()),
        }
    }

    pub fn authorize_result(&self, result: &'static str) {
        self.authorize
            .get_or_create(&AuthorizeLabels { result })
            .inc();
    }

    /// The registry in OpenMetrics text format; with `stream_viewers`,
    /// the per-stream viewer gauges are first replaced by exactly these
    /// (streams that ended lose their series).
    pub fn encode(&self, stream_viewers: Option<&[(String, u64)]>) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = stream_viewers {
            self.stream_viewers.clear();
            for (stream, n) in v {
                self.stream_viewers
                    .get_or_create(&StreamLabels {
                        stream: stream.clone(),
                    })
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Middleware (added per route, so the matched route template is known)
/// counting requests and their latency.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "other", // bounded label values whatever clients send
    }
    .to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let res = next.run(req).await;
    m.latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: res.status().as_u16(),
        })
        .inc();
    res
}
