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
    for i in 0..peers.urls.len() {
        if peers.down_until[i].is_some_and(|t| t > Instant::now()) {
            continue;
        }
        // the segments of ours that are not among our last ones: the peer
        // tells about them too, if it lists them
        let at: Vec<u64> = match reg.get(key) {
            Some(s) => {
                let l = s.state.lock().expect("stream lock").labels();
                let n = l.marks.len().saturating_sub(8);
                l.marks[..n].iter().map(|m| m.start).take(MAX_AT).collect()
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
    settled
}

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
