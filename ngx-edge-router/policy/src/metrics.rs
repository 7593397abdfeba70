//! The edge module's Prometheus metrics: what is counted, and the text
//! exposition format (version 0.0.4) of a snapshot. The counters live in
//! the shared zone (all workers); this renders them.

use std::fmt::Write;

/// What happened to one viewer request's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A fresh cached route.
    FreshHit,
    /// An expired route, served because the API failed (or said "not
    /// found" inside the grace window).
    StaleHit,
    /// An expired route, served while it is refreshed in the background.
    Updating,
    /// A cached "not found".
    NegativeHit,
    /// No usable route: this request asked the API.
    Miss,
    /// No usable route: waited for another request's lookup.
    CoalescedWait,
    /// A lookup failed (API down, slow, broken answer).
    ApiError,
    /// Refused: too many lookups in flight, or the route's origins are not
    /// allowed.
    Refused,
    /// Found by probing the configured origins while the API could not
    /// answer.
    Probed,
}

impl Event {
    pub const ALL: [Event; 9] = [
        Event::FreshHit,
        Event::StaleHit,
        Event::Updating,
        Event::NegativeHit,
        Event::Miss,
        Event::CoalescedWait,
        Event::ApiError,
        Event::Refused,
        Event::Probed,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Event::FreshHit => "fresh_hit",
            Event::StaleHit => "stale_hit",
            Event::Updating => "updating",
            Event::NegativeHit => "negative_hit",
            Event::Miss => "miss",
            Event::CoalescedWait => "coalesced_wait",
            Event::ApiError => "api_error",
            Event::Refused => "refused",
            Event::Probed => "probed",
        }
    }
}

/// Upper bounds (ms) of the API lookup latency histogram; a last bucket
/// holds everything above.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500];

/// The bucket of a latency.
pub fn bucket(ms: u64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|&b| ms <= b)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// One origin's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginCounters {
    pub addr: String,
    /// Attempts (a request sent to it, first choice or failover).
    pub selections: u64,
    pub failures: u64,
    /// Skipped now after failures (`edge_router_max_fails`).
    pub down: bool,
}

/// Everything the metrics handler reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub events: [u64; 9],
    /// Per bucket (not cumulative), the last one above every bound.
    pub latency: [u64; 10],
    pub latency_sum_ms: u64,
    pub routes: u64,
    pub negative_routes: u64,
    pub zone_bytes: u64,
    pub zone_used_bytes: u64,
    pub evictions: u64,
    pub origins: Vec<OriginCounters>,
    /// Viewer requests not counted (the audience table was full).
    pub audience_full: u64,
    /// Each counted stream and its viewers at this edge (name, count).
    pub viewers: Vec<(String, u64)>,
}

/// A metric family: name, type, help, and the value of one item.
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> u64);

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// The snapshot in Prometheus' text format.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::with_capacity(2048);
    let name = "edge_router_requests_total";
    header(
        &mut o,
        name,
        "counter",
        "Routed requests by what the route cache gave them.",
    );
    for e in Event::ALL {
        let _ = writeln!(
            o,
            "{name}{{outcome=\"{}\"}} {}",
            e.label(),
            s.events[e.index()]
        );
    }
    let name = "edge_router_api_lookup_seconds";
    header(
        &mut o,
        name,
        "histogram",
        "Duration of API lookups (foreground and background).",
    );
    let mut cumulative = 0;
    for (i, b) in LATENCY_BUCKETS_MS.iter().enumerate() {
        cumulative += s.latency[i];
        let _ = writeln!(
            o,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *b as f64 / 1000.0
        );
    }
    cumulative += s.latency[LATENCY_BUCKETS_MS.len()];
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(o, "{name}_sum {}", s.latency_sum_ms as f64 / 1000.0);
    let _ = writeln!(o, "{name}_count {cumulative}");
    let found = s.routes.saturating_sub(s.negative_routes);
    for (name, kind, help, value) in [
        (
            "edge_router_routes",
            "gauge",
            "Routes in the zone (found streams).",
            found,
        ),
        (
            "edge_router_negative_routes",
            "gauge",
            "\"Not found\" entries in the zone.",
            s.negative_routes,
        ),
        (
            "edge_router_zone_bytes",
            "gauge",
            "Size of the shared zone.",
            s.zone_bytes,
        ),
        (
            "edge_router_zone_used_bytes",
            "gauge",
            "Pages of the shared zone in use.",
            s.zone_used_bytes,
        ),
        (
            "edge_router_evictions_total",
            "counter",
            "Routes evicted from a full zone.",
            s.evictions,
        ),
        (
            "edge_router_viewers_uncounted_total",
            "counter",
            "Viewer requests not counted: the zone's audience table was full.",
            s.audience_full,
        ),
    ] {
        header(&mut o, name, kind, help);
        let _ = writeln!(o, "{name} {value}");
    }
    let per_origin: [Family<OriginCounters>; 3] = [
        (
            "edge_router_origin_selections_total",
            "counter",
            "Requests sent to each origin (first choice or failover).",
            |x| x.selections,
        ),
        (
            "edge_router_origin_failures_total",
            "counter",
            "Failed attempts at each origin.",
            |x| x.failures,
        ),
        (
            "edge_router_origin_down",
            "gauge",
            "Whether the origin is skipped after failures.",
            |x| u64::from(x.down),
        ),
    ];
    for (name, kind, help, value) in per_origin {
        header(&mut o, name, kind, help);
        for x in &s.origins {
            let _ = writeln!(o, "{name}{{origin=\"{}\"}} {}", x.addr, value(x));
        }
    }
    let name = "edge_router_viewers";
    header(
        &mut o,
        name,
        "gauge",
        "Distinct viewers of each stream at this edge within the last 10-20 s (estimated).",
    );
    for (stream, n) in &s.viewers {
        let _ = writeln!(o, "{name}{{stream=\"{stream}\"}} {n}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(5), 0);
        assert_eq!(bucket(6), 1);
        assert_eq!(bucket(2_500), 8);
        assert_eq!(bucket(2_501), 9);
    }

    #[test]
    fn renders_the_exposition_format() {
        let mut s = Snapshot {
            latency_sum_ms: 1_530,
            routes: 3,
            negative_routes: 1,
            zone_bytes: 1 << 20,
            zone_used_bytes: 12_288,
            evictions: 2,
            viewers: vec![("golive".into(), 12)],
            origins: vec![OriginCounters {
                addr: "10.0.0.5:8080".into(),
                selections: 7,
                failures: 1,
                down: true,
            }],
            ..Snapshot::default()
        };
        s.events[Event::FreshHit.index()] = 40;
        s.events[Event::Miss.index()] = 2;
        s.latency[bucket(3)] += 1;
        s.latency[bucket(1_500)] += 1;
        let text = render(&s);
        for line in [
            "# TYPE edge_router_requests_total counter",
            "edge_router_requests_total{outcome=\"fresh_hit\"} 40",
            "edge_router_requests_total{outcome=\"miss\"} 2",
            "edge_router_requests_total{outcome=\"probed\"} 0",
            "# TYPE edge_router_viewers gauge",
            "edge_router_viewers{stream=\"golive\"} 12",
            "edge_router_viewers_uncounted_total 0",
            "edge_router_api_lookup_seconds_bucket{le=\"0.005\"} 1",
            "edge_router_api_lookup_seconds_bucket{le=\"1\"} 1",
            "edge_router_api_lookup_seconds_bucket{le=\"2.5\"} 2",
            "edge_router_api_lookup_seconds_bucket{le=\"+Inf\"} 2",
            "edge_router_api_lookup_seconds_sum 1.53",
            "edge_router_api_lookup_seconds_count 2",
            "edge_router_routes 2",
            "edge_router_negative_routes 1",
            "edge_router_zone_used_bytes 12288",
            "edge_router_evictions_total 2",
            "edge_router_origin_selections_total{origin=\"10.0.0.5:8080\"} 7",
            "edge_router_origin_failures_total{origin=\"10.0.0.5:8080\"} 1",
            "edge_router_origin_down{origin=\"10.0.0.5:8080\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a declared family.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{l}");
        }
    }
}
