//! Recordings: each origin's discovery reports the finished recordings it
//! holds every heartbeat (`PUT /recordings/{host}`, the origin's token, the
//! whole list); viewers list a stream's (`GET /streams/{name}/recordings`)
//! and the edge looks one up by its name (`GET /streams/<name>~<start>`)
//! to know which origin serves it. In Redis:
//!
//! - `rl:rec:{name}`: hash of `<start>@<host>` → `<expires-ms> <json>`,
//!   rewritten by each report; a recording not reported again (retention
//!   deleted it, its origin is gone) is ignored once expired and dropped by
//!   the next report. The key expires with its newest entry.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rtmp_live_types::recording::{self, Listed, Recording, RecordingReport};
use rtmp_live_types::{Host, Origin, StreamInfo, StreamName};
use serde::Serialize;

use crate::auth::Writer;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::Shared;
use crate::store::{now_ms, Store};

/// Largest report body: [`recording::MAX_PER_REPORT`] recordings.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

fn key(name: &str) -> String {
    format!("rl:rec:{name}")
}

/// `PUT /recordings/{host}`: 204.
pub async fn report(
    State(s): Shared,
    writer: Writer,
    ApiPath(host): ApiPath<Host>,
    ApiJson(report): ApiJson<RecordingReport>,
) -> Result<StatusCode, ApiError> {
    writer.refuse_host(&host, "recordings report")?;
    if report.recordings.len() > recording::MAX_PER_REPORT {
        return Err(ApiError::BadRequest(format!(
            "at most {} recordings per report",
            recording::MAX_PER_REPORT
        )));
    }
    if let Some(name) = report.invalid() {
        return Err(ApiError::BadRequest(format!(
            "invalid recording of {name:?}"
        )));
    }
    store(&s.store, &host, &report.recordings).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn store(store: &Store, host: &str, recs: &[Recording]) -> Result<(), ApiError> {
    let now = now_ms();
    let ttl_ms = store.ttl_secs() * 1000;
    let expires = now + ttl_ms;
    let mut by_name: HashMap<&str, Vec<&Recording>> = HashMap::new();
    for r in recs {
        by_name.entry(&r.name).or_default().push(r);
    }
    // the entries of these names, to drop the expired ones
    let names: Vec<&str> = by_name.keys().copied().collect();
    let names = &names;
    let existing: Vec<HashMap<String, String>> = store
        .run(|mut c| async move {
            let mut p = redis::pipe();
            for n in names {
                p.hgetall(key(n));
            }
            p.query_async(&mut c).await
        })
        .await?;
    let mut p = redis::pipe();
    for ((name, rs), old) in by_name.iter().zip(existing) {
        let k = key(name);
        let stale: Vec<String> = old
            .into_iter()
            .filter(|(_, v)| expiry(v) <= now)
            .map(|(f, _)| f)
            .collect();
        if !stale.is_empty() {
            p.hdel(&k, stale).ignore();
        }
        for r in rs {
            // (plain fields and validated finite numbers: cannot fail)
            let json = serde_json::to_string(r).unwrap_or_default();
            p.hset(
                &k,
                format!("{}@{host}", r.start),
                format!("{expires} {json}"),
            )
            .ignore();
        }
        p.pexpire(&k, ttl_ms as i64).ignore();
    }
    let p = &p;
    store
        .run(|mut c| async move { p.query_async::<()>(&mut c).await })
        .await
}

fn expiry(v: &str) -> u64 {
    v.split_once(' ')
        .and_then(|(e, _)| e.parse().ok())
        .unwrap_or(0)
}

/// The live (unexpired) recordings of `name`, with their origins.
async fn read(store: &Store, name: &str) -> Result<Vec<(String, Recording)>, ApiError> {
    let k = key(name);
    let k = &k;
    let all: HashMap<String, String> = store
        .run(|mut c| async move { redis::cmd("HGETALL").arg(k).query_async(&mut c).await })
        .await?;
    let now = now_ms();
    Ok(all
        .into_iter()
        .filter_map(|(field, v)| {
            let (exp, json) = v.split_once(' ')?;
            if exp.parse::<u64>().ok()? <= now {
                return None;
            }
            let (_, host) = field.split_once('@')?;
            let r: Recording = serde_json::from_str(json).ok()?;
            Some((host.to_string(), r))
        })
        .collect())
}

#[derive(Serialize)]
pub struct RecordingList {
    name: String,
    recordings: Vec<Listed>,
}

/// `GET /streams/{name}/recordings`: newest first (an empty list for a
/// stream with none).
pub async fn list(
    State(s): Shared,
    ApiPath(name): ApiPath<StreamName>,
) -> Result<Json<RecordingList>, ApiError> {
    let mut recs: Vec<Recording> = read(&s.store, &name)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    recs.sort_by_key(|r| std::cmp::Reverse(r.start));
    recs.dedup_by_key(|r| r.start);
    Ok(Json(RecordingList {
        name: name.into_string(),
        recordings: recs.iter().map(Listed::of).collect(),
    }))
}

/// The edge's lookup of recording `<name>~<start>`: the origins holding
/// it, as for a live stream (`since` is the start: one cache entry per
/// recording).
pub async fn lookup(
    s: &crate::state::AppState,
    name: &str,
    start: u64,
) -> Result<Option<StreamInfo>, ApiError> {
    let mut origins: Vec<(String, Recording)> = read(&s.store, name)
        .await?
        .into_iter()
        .filter(|(_, r)| r.start == start)
        .collect();
    origins.sort_by(|a, b| a.0.cmp(&b.0));
    let Some((host, first)) = origins.first() else {
        return Ok(None);
    };
    Ok(Some(StreamInfo {
        name: first.playback_name(),
        manifest: first.manifest.clone(),
        host: host.clone(),
        origins: origins
            .iter()
            .map(|(h, r)| Origin {
                host: h.clone(),
                manifest: r.manifest.clone(),
                since: r.start,
            })
            .collect(),
        // a recording of a stream that needs signed links needs them too
        signed: s.keys.is_signed(name),
        viewers: 0,
    }))
}
