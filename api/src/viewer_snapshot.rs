//! The viewer counts this process answers with: a snapshot of every fresh
//! edge report (see `viewers.rs`), summed per stream and refreshed in the
//! background every [`REFRESH_EVERY`] (2 s). `GET /streams/{name}` is the
//! edges' route lookup: reading the counts there costs no Redis round trip,
//! at the price of counts up to one refresh old.
//!
//! One task refreshes, on a Redis connection of its own (a large read never
//! queues lookups behind it), each read bounded by a timeout. A failure is
//! logged once, not per tick, and the snapshot is kept until no report in
//! it can still be fresh (the report TTL), then emptied: counts are then 0,
//! never stale numbers presented as current.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use redis::Script;

use crate::metrics::Metrics;
use crate::redis_target::Connector;

/// Redis: the sorted set of edges with a report, by the time of their last
/// one (written by `viewers.rs`, read here).
pub const EDGES: &str = "rl:viewer-edges";
/// Redis: one edge's current report is `REPORT_PREFIX` + its id.
pub const REPORT_PREFIX: &str = "rl:viewers:";

/// How often the snapshot is refreshed (and the longest one read may take),
/// unless the report TTL is short: see [`refresh_every`].
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// [`REFRESH_EVERY`], or half the report TTL when that is shorter (at
/// least 250 ms): every report is read at least twice while it is fresh.
pub fn refresh_every(ttl: Duration) -> Duration {
    REFRESH_EVERY.min(ttl / 2).max(Duration::from_millis(250))
}

/// The fresh reports. KEYS[1] = rl:viewer-edges; ARGV = ttl (ms), report
/// key prefix. Returns each fresh report's value (one per edge).
const FRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')) do
  local v = redis.call('GET', ARGV[2] .. e)
  if v then table.insert(out, v) end
end
return out
";

static FRESH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(FRESH));

/// Viewers per stream summed over the fresh reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    totals: HashMap<String, u64>,
    edges: usize,
}

impl Snapshot {
    /// Sums reports of `name count` lines (one report per edge); lines of
    /// any other shape are skipped.
    pub fn from_reports(reports: &[String]) -> Snapshot {
        let mut totals: HashMap<String, u64> = HashMap::new();
        for line in reports.iter().flat_map(|r| r.lines()) {
            let Some((name, count)) = line.split_once(' ') else {
                continue;
            };
            if let Ok(n) = count.parse::<u64>() {
                let t = totals.entry(name.to_string()).or_default();
                *t = t.saturating_add(n);
            }
        }
        Snapshot {
            totals,
            edges: reports.len(),
        }
    }

    /// Viewers of `name` across the edges (0 when none reported it).
    pub fn viewers(&self, name: &str) -> u64 {
        self.totals.get(name).copied().unwrap_or(0)
    }

    /// Edges with a fresh report.
    pub fn edges(&self) -> usize {
        self.edges
    }
}

/// The current snapshot, shared by the handlers and the refresher.
pub struct ViewerCounts {
    current: RwLock<Arc<Snapshot>>,
    ttl: Duration,
}

impl ViewerCounts {
    /// `ttl`: how long a report counts after it arrived.
    pub fn new(ttl: Duration) -> ViewerCounts {
        ViewerCounts {
            current: RwLock::new(Arc::new(Snapshot::default())),
            ttl,
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, s: Snapshot) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    pub fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Refreshes `counts` from Redis every [`refresh_every`] until the runtime
/// stops, on a connection of its own (`redis`).
pub fn spawn_refresher(
    counts: Arc<ViewerCounts>,
    redis: Connector,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        let mut last_ok = Instant::now();
        let every = refresh_every(counts.ttl);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let read = tokio::time::timeout(every, read(&redis, counts.ttl_ms()))
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {every:?}")));
            match read {
                Ok(reports) => {
                    counts.set(Snapshot::from_reports(&reports));
                    last_ok = Instant::now();
                    if failing {
                        tracing::info!("viewer counts: reading the edges' reports again");
                        failing = false;
                    }
                }
                Err(e) => {
                    metrics.redis_errors.inc();
                    if !failing {
                        tracing::warn!(
                            "viewer counts: cannot read the edges' reports: {e} (logged once \
                             until it works again; counts drop to 0 once no report can be fresh)"
                        );
                        failing = true;
                    }
                    if last_ok.elapsed() >= counts.ttl {
                        counts.set(Snapshot::default());
                    }
                }
            }
        }
    })
}

/// One read of the fresh reports, connecting first if needed (the
/// connection reconnects by itself afterwards, or finds the new master).
async fn read(redis: &Connector, ttl_ms: u64) -> Result<Vec<String>, String> {
    let mut c = redis.get().await?;
    let res = FRESH_SCRIPT
        .key(EDGES)
        .arg(ttl_ms)
        .arg(REPORT_PREFIX)
        .invoke_async(&mut c.conn)
        .await;
    res.map_err(|e| {
        redis.failed(c.generation, Some(&e));
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_summed_per_stream() {
        let s = Snapshot::from_reports(&[
            "a 3\nb 1".to_string(),
            "a 4".to_string(),
            String::new(),
            format!("a {}\nodd line\nc x", u64::MAX),
        ]);
        assert_eq!(s.viewers("a"), u64::MAX, "saturates");
        assert_eq!(s.viewers("b"), 1);
        assert_eq!(s.viewers("c"), 0);
        assert_eq!(s.viewers("nope"), 0);
        assert_eq!(s.edges(), 4, "an edge without viewers still reported");
        let t = Snapshot::from_reports(&["a 3\nb 1".to_string(), "a 4".to_string()]);
        assert_eq!((t.viewers("a"), t.edges()), (7, 2));
    }

    #[test]
    fn refreshed_at_least_twice_per_ttl() {
        assert_eq!(refresh_every(Duration::from_secs(15)), REFRESH_EVERY);
        assert_eq!(
            refresh_every(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_every(Duration::from_secs(0)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn counts_start_empty() {
        let c = ViewerCounts::new(Duration::from_secs(15));
        assert_eq!(*c.snapshot(), Snapshot::default());
        assert_eq!(c.ttl_ms(), 15_000);
    }
}
