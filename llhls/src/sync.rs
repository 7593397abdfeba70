//! Asking the other origins of each stream for their labels (see
//! [`crate::labels`]), and answering them (`GET /.sync/<key>`, through the
//! origin's HTTP port, which only edges and peers reach).
//!
//! Each stream is compared with every peer once a second until it agrees
//! with one of them or is the one the others adopt, then every
//! [`SETTLED`]: a peer that comes back, or a relay that lost a segment,
//! is met again within that. A peer that does not answer within
//! [`TIMEOUT`] is skipped for that round; nothing here holds a stream's
//! lock while it waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::labels::{decide, Labels, Verdict};
use crate::registry::Registry;
use crate::timeline::CLOCK;

/// How often a stream whose labels are settled is compared again.
pub const SETTLED: Duration = Duration::from_secs(5);
/// How often an unsettled one is.
pub const UNSETTLED: Duration = Duration::from_secs(1);
/// How long a peer may take to answer.
pub const TIMEOUT: Duration = Duration::from_millis(800);
/// The largest answer read.
const MAX_ANSWER: usize = 16 * 1024;

/// What this origin answers for stream `key`, the segments that start at
/// `at` included (the asking origin's first and each session's first).
pub fn answer(reg: &Registry, key: &str, at: &[u64]) -> Option<Value> {
    let s = reg.get(key)?;
    let labels = s.state.lock().expect("stream lock").labels_at(at);
    Some(labels.to_json())
}

/// The starts an asking origin names (`at=<start>,<start>...`), at most
/// [`MAX_AT`]; anything else in the query is ignored.
pub fn parse_at(query: Option<&str>) -> Vec<u64> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| kv.strip_prefix("at="))
        .flat_map(|v| v.split(','))
        .filter_map(|n| n.parse().ok())
        .take(MAX_AT)
        .collect()
}

/// The most starts one question names.
const MAX_AT: usize = 48;

/// Compares every stream with the `peers` (base URLs of the other origins'
/// HTTP, `http://host:port`), for as long as the runtime runs.
pub fn spawn(reg: Arc<Registry>, peers: Vec<String>) {
    if peers.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .expect("an HTTP client");
        let mut peers = Peers::new(peers);
        // per stream: when it is compared next, and its sessions then
        let mut due: HashMap<String, (Instant, u64)> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let names = reg.names();
            due.retain(|k, _| names.contains(k));
            for key in names {
                let Some(sessions) = reg
                    .get(&key)
                    .map(|s| s.state.lock().expect("stream lock").timeline().sessions())
                else {
                    continue;
                };
                // a new publish session is compared at once: its date-times
                // are each origin's own until then
                if due
                    .get(&key)
                    .is_some_and(|(at, seen)| *at > Instant::now() && *seen == sessions)
                {
                    continue;
                }
                let settled = compare(&reg, &client, &mut peers, &key).await;
                let wait = if settled { SETTLED } else { UNSETTLED };
                due.insert(key, (Instant::now() + wait, sessions));
            }
        }
    });
}

/// The peers, and when each one that did not answer is asked again: a
/// peer that is down costs one [`TIMEOUT`] per [`RETRY`], not one per
/// stream.
struct Peers {
    urls: Vec<String>,
    down_until: Vec<Option<Instant>>,
}

/// How long a peer that did not answer is left alone.
const RETRY: Duration = Duration::from_secs(2);

impl Peers {
    fn new(urls: Vec<String>) -> Peers {
        let n = urls.len();
        Peers {
            urls,
            down_until: vec![None; n],
        }
    }
}

/// Compares `key` with each peer; adopts the labels that win over ours
/// (see [`decide`]). Whether the stream is settled (it agreed with a
/// peer, or a peer will adopt its labels).
async fn compare(reg: &Registry, client: &reqwest::Client, peers: &mut Peers, key: &str) -> bool {
    let mut settled = false;
    // behind a peer of the same session by more than LAGGING (and by how
    // much), or not known to be
    let mut behind: Option<u64> = None;
    for i in 0..peers.urls.len() {
        if peers.down_until[i].is_some_and(|t| t > Instant::now()) {
            continue;
        }
        // every segment of ours we tell about: the peer tells about them
        // too, if it lists them
        let at: Vec<u64> = match reg.get(key) {
            Some(s) => {
                let l = s.state.lock().expect("stream lock").labels();
                l.marks.iter().rev().map(|m| m.start).take(MAX_AT).collect()
            }
            None => return true,
        };
        let theirs = match fetch(client, &peers.urls[i], key, &at).await {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(()) => {
                peers.down_until[i] = Some(Instant::now() + RETRY);
                continue;
            }
        };
        let Some(stream) = reg.get(key) else {
            return true;
        };
        let verdict = {
            let mut st = stream.state.lock().expect("stream lock");
            let ours = st.labels();
            let v = decide(&ours, &theirs);
            tracing::debug!(key, peer = %peers.urls[i], ?v, ?ours, ?theirs, "labels compared");
            if v != Verdict::Unknown {
                let (mine, their) = (ours.marks.last(), theirs.marks.last());
                if let (Some(m), Some(t)) = (mine, their) {
                    let gap = t.start.saturating_sub(m.start);
                    if gap > LAGGING {
                        behind = Some(behind.unwrap_or(0).max(gap));
                    }
                }
            }
            match v {
                Verdict::Adopt(a) => st.adopt(&a),
                Verdict::Forget(start) => st.forget_before(start),
                _ => {}
            }
            v
        };
        let released = match verdict {
            Verdict::Unknown => false,
            _ => stream.state.lock().expect("stream lock").release(),
        };
        match verdict {
            Verdict::Adopt(_) | Verdict::Forget(_) => {
                stream.bump();
                settled = true;
            }
            Verdict::Agreed | Verdict::Ours => {
                settled = true;
                if released {
                    stream.bump();
                }
            }
            Verdict::Unknown => {}
        }
    }
    if let Some(stream) = reg.get(key) {
        let changed = stream
            .state
            .lock()
            .expect("stream lock")
            .set_lagging(behind.is_some());
        if changed {
            tracing::info!(
                key,
                behind_s = behind.unwrap_or(0) / CLOCK,
                "{}",
                if behind.is_some() {
                    "behind another origin: its viewers are sent there"
                } else {
                    "caught up with the other origins"
                }
            );
        }
        if behind.is_some() {
            // compared again within a second, to serve again soon
            return false;
        }
    }
    settled
}

/// How far (90 kHz) the latest segment may start behind a peer's of the
/// same session before this origin sends its viewers elsewhere: one and a
/// half 2 s segments (a relay is milliseconds behind its source; a frozen
/// or cut-off origin stops).
pub const LAGGING: u64 = 3 * CLOCK;

/// A peer's labels for `key`: `Ok(None)` when it has none (or answers
/// nonsense), `Err` when it does not answer.
async fn fetch(
    client: &reqwest::Client,
    peer: &str,
    key: &str,
    at: &[u64],
) -> Result<Option<Labels>, ()> {
    let at: Vec<String> = at.iter().map(u64::to_string).collect();
    let url = format!(
        "{}/.sync/{key}?at={}",
        peer.trim_end_matches('/'),
        at.join(",")
    );
    let res = client.get(&url).send().await.map_err(|_| ())?;
    if !res.status().is_success() {
        return Ok(None);
    }
    if res
        .content_length()
        .is_some_and(|n| n as usize > MAX_ANSWER)
    {
        return Ok(None);
    }
    let body = res.bytes().await.map_err(|_| ())?;
    if body.len() > MAX_ANSWER {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&body)
        .ok()
        .and_then(|v| Labels::from_json(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asker_names_at_most_max_at_segments_and_nothing_else_counts() {
        assert_eq!(parse_at(Some("at=1,2,x,3&b=4&at=5")), vec![1, 2, 3, 5]);
        assert_eq!(parse_at(None), Vec::<u64>::new());
        let many: Vec<String> = (0..500).map(|i| i.to_string()).collect();
        let q = format!("at={}", many.join(","));
        assert_eq!(parse_at(Some(&q)).len(), MAX_AT);
        assert_eq!(
            parse_at(Some("at=-1,18446744073709551616")),
            Vec::<u64>::new()
        );
    }
}
