//! Viewer reports from edges: `PUT /edges/{edge}/viewers` with the edge
//! token and `{"streams":{"<name>":<count>,...}}`. An edge reports how many
//! viewers it serves per stream, every few seconds; the platform's count of
//! a stream is the sum over the edges with a fresh report (read from a
//! per-process snapshot, `viewer_snapshot.rs`). In Redis:
//!
//! - `rl:viewers:{edge}` = the edge's current report, one `name count` line
//!   per stream, `PX ttl`: replaced by each report, gone `ttl` after the
//!   last one (a stopped edge's viewers fade out by themselves);
//! - `rl:viewer-edges`: sorted set of edge ids scored by the time of their
//!   last report (Redis's clock, unix ms, so API replicas agree), trimmed
//!   of expired ones by every report and expiring with the newest one.
//!
//! Everything is bounded whatever a token holder sends: at most
//! [`MAX_ENTRIES`] streams per report, at most [`MAX_EDGES`] edges with a
//! fresh report (a new edge id beyond that is refused with 503 rather than
//! evicting edges that keep reporting), and only names that are registered
//! (`rl:streams`) are stored, so spraying names grows nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use axum::extract::State;
use axum::http::StatusCode;
use redis::Script;
use rtmp_live_types::is_valid_name;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, EdgeReporter};
use crate::state::Shared;
use crate::store::Store;
use crate::viewer_snapshot::{EDGES, REPORT_PREFIX};

/// Most streams one report may name (400 beyond).
pub const MAX_ENTRIES: usize = 10_000;
/// A count is capped here: no edge serves more viewers of one stream.
pub const MAX_COUNT: u64 = 1_000_000_000;
/// Most edges with a fresh report.
pub const MAX_EDGES: u64 = 1_000;
/// Largest report body: [`MAX_ENTRIES`] names of 64 characters and their
/// counts fit (the API's other routes take 4 KiB at most).
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest edge id.
pub const MAX_EDGE_LEN: usize = 128;

/// Stores one edge's report. KEYS[1] = rl:viewer-edges, KEYS[2] =
/// rl:viewers:{edge}, KEYS[3] = rl:streams; ARGV = edge id, ttl (ms), most
/// edges, the report (`name count` lines). Returns the number of streams
/// kept (registered names), or -1 when the edge is new and the cap is
/// reached.
const REPORT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - ttl))
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return -1
end
local kept = {}
for name, count in string.gmatch(ARGV[4], '([^ \n]+) (%d+)') do
  if redis.call('SISMEMBER', KEYS[3], name) == 1 then
    table.insert(kept, name .. ' ' .. count)
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], table.concat(kept, '\n'), 'PX', ttl)
return #kept
";

static REPORT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REPORT));

/// An edge's id in the path: `[A-Za-z0-9_.:-]{1,128}` (a host name, an
/// address with its port, a container name).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct EdgeId(String);

impl TryFrom<String> for EdgeId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<EdgeId, &'static str> {
        let ok = !s.is_empty()
            && s.len() <= MAX_EDGE_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(EdgeId(s))
        } else {
            Err("invalid edge id: expected [A-Za-z0-9_.:-]{1,128}")
        }
    }
}

/// The body of a report. Unknown fields are ignored (edges may send more).
#[derive(Debug, Deserialize)]
pub struct ViewerReport {
    streams: HashMap<String, u64>,
}

/// A report as stored: `name count` lines, sorted by name, of the valid
/// names with viewers (counts capped at [`MAX_COUNT`]); and how many names
/// were invalid.
fn encode(streams: &HashMap<String, u64>) -> (String, usize) {
    let mut valid: Vec<(&String, u64)> = streams
        .iter()
        .filter(|(n, c)| is_valid_name(n) && **c > 0)
        .map(|(n, c)| (n, (*c).min(MAX_COUNT)))
        .collect();
    valid.sort_unstable();
    let invalid = streams.keys().filter(|n| !is_valid_name(n)).count();
    let mut out = String::new();
    for (n, c) in valid {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "{n} {c}");
    }
    (out, invalid)
}

/// `PUT /edges/{edge}/viewers`: replaces the edge's report (204).
pub async fn report(
    State(s): Shared,
    _edge: EdgeReporter,
    ApiPath(edge): ApiPath<EdgeId>,
    ApiJson(report): ApiJson<ViewerReport>,
) -> Result<StatusCode, ApiError> {
    if report.streams.len() > MAX_ENTRIES {
        return Err(ApiError::BadRequest(format!(
            "a report names at most {MAX_ENTRIES} streams"
        )));
    }
    let (lines, invalid) = encode(&report.streams);
    if invalid > 0 {
        tracing::debug!(edge = %edge.0, invalid, "viewer report: invalid stream names skipped");
    }
    let kept = store(&s.store, &edge.0, &lines, s.viewers.ttl_ms()).await?;
    if kept < 0 {
        tracing::warn!(edge = %edge.0, max = MAX_EDGES, "viewer report refused: too many edges report viewers");
        return Err(ApiError::Unavailable("too many edges report viewers"));
    }
    tracing::debug!(edge = %edge.0, streams = kept, "viewer report");
    Ok(StatusCode::NO_CONTENT)
}

/// Runs [`REPORT`]: the number of streams kept, -1 at the edge cap.
async fn store(store: &Store, edge: &str, lines: &str, ttl_ms: u64) -> Result<i64, ApiError> {
    let key = format!("{REPORT_PREFIX}{edge}");
    let key = &key;
    store
        .run(|mut c| async move {
            REPORT_SCRIPT
                .key(EDGES)
                .key(key)
                .key(crate::store::STREAMS)
                .arg(edge)
                .arg(ttl_ms)
                .arg(MAX_EDGES)
                .arg(lines)
                .invoke_async(&mut c)
                .await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_ids() {
        for ok in ["edge-1", "10.0.0.5:8081", "a.b_c", "::1", &"e".repeat(128)] {
            assert!(EdgeId::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a b", "é", "[::1]", &"e".repeat(129), "a%2f"] {
            assert!(EdgeId::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports_keep_valid_names_with_viewers() {
        let streams: HashMap<String, u64> = [
            ("b", 2),
            ("a", u64::MAX),
            ("none", 0),
            ("bad name", 5),
            ("../x", 1),
            ("x\ny 1", 1),
        ]
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
        let (lines, invalid) = encode(&streams);
        assert_eq!(lines, "a 1000000000\nb 2");
        assert_eq!(invalid, 3);
        assert_eq!(encode(&HashMap::new()), (String::new(), 0));
    }
}
