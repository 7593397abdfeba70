//! Preload hints (rule 8): each hinted part is requested the moment its
//! hint appears, and the answer is compared with the part once listed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::VariantState;
use crate::follow::http::{FetchError, Response, OPEN_END};
use crate::follow::ready;
use crate::m3u8::MediaPlaylist;
use crate::rules::hint::{self, Hinted, Listed};

type HintJob = JoinHandle<Result<Response, FetchError>>;

#[derive(Default)]
pub struct HintState {
    requested: HashSet<String>,
    inflight: Vec<(Hinted, HintJob)>,
    /// Answered hints waiting for their part (with when they were answered).
    done: Vec<(Hinted, Result<Response, FetchError>, Instant)>,
    position_judged: HashSet<String>,
}

impl HintState {
    /// Moves finished requests to `done`.
    pub fn poll(&mut self) {
        let inflight = std::mem::take(&mut self.inflight);
        for (h, job) in inflight {
            if job.is_finished() {
                let r = match ready(job) {
                    Some(Ok(r)) => r,
                    _ => Err(FetchError::Transport("hint task failed".into())),
                };
                self.done.push((h, r, Instant::now()));
            } else {
                self.inflight.push((h, job));
            }
        }
    }

    /// Waits (at most `grace`) for the requests still running.
    pub async fn wait(&mut self, grace: Duration) {
        for (h, job) in std::mem::take(&mut self.inflight) {
            let r = match tokio::time::timeout(grace, job).await {
                Ok(Ok(r)) => r,
                _ => Err(FetchError::Timeout(grace.as_secs_f64())),
            };
            self.done.push((h, r, Instant::now()));
        }
    }
}

impl VariantState {
    /// Requests every new TYPE=PART hint of `pl`, before its bytes exist.
    pub fn schedule_hints(&mut self, pl: &MediaPlaylist) {
        for h in pl.hints.iter().filter(|h| h.kind == "PART") {
            let Ok(url) = self.url.join(&h.uri) else {
                continue;
            };
            let hinted = Hinted {
                uri: url.to_string(),
                start: h.start,
                length: h.length,
                ranged: h.ranged,
                expected: pl.next_part(),
            };
            if !self.hints.requested.insert(hinted.key()) {
                continue;
            }
            self.counters.hint_requests += 1;
            let range = h.ranged.then(|| {
                let last = h
                    .length
                    .map(|l| h.start.saturating_add(l).saturating_sub(1))
                    .unwrap_or(OPEN_END);
                (h.start, last)
            });
            let http = self.shared.http.clone();
            let max = self.shared.opts.max_media_bytes;
            let timeout = self.blocking_timeout();
            let job = tokio::spawn(async move { http.get(&url, range, max, timeout).await });
            self.hints.inflight.push((hinted, job));
        }
        if self.hints.requested.len() > 10_000 {
            self.hints.requested.clear();
        }
    }

    /// Judges hints whose part is now listed (and fetched).
    pub fn judge_hints(&mut self, pl: &MediaPlaylist) {
        let listed: Vec<Listed> = pl
            .parts()
            .into_iter()
            .filter_map(|(pos, p, _, _)| {
                let uri = self.url.join(&p.uri).ok()?.to_string();
                Some(Listed {
                    pos,
                    uri,
                    start: p.byterange.map(|r| r.offset).unwrap_or(0),
                })
            })
            .collect();
        let all: Vec<Hinted> = self
            .hints
            .inflight
            .iter()
            .map(|x| x.0.clone())
            .chain(self.hints.done.iter().map(|x| x.0.clone()))
            .collect();
        for h in all {
            if self.hints.position_judged.contains(&h.key()) {
                continue;
            }
            if let Some(issues) = hint::position(&h, &listed) {
                self.hints.position_judged.insert(h.key());
                self.add_at(issues, &h.uri);
            }
        }
        let expiry = Duration::from_secs_f64(3.0 * self.td() + 3.0);
        let done = std::mem::take(&mut self.hints.done);
        for (h, r, at) in done {
            let found = listed.iter().find(|l| l.uri == h.uri && l.start == h.start);
            let part = found
                .and_then(|l| self.media.part_bytes.get(&l.pos))
                .cloned();
            match part {
                Some(part) => {
                    let (status, body, secs) = match &r {
                        Ok(resp) => (Some(resp.status), resp.body.as_slice(), resp.secs),
                        Err(FetchError::Timeout(s)) => (None, &[][..], *s),
                        Err(_) => (None, &[][..], 0.0),
                    };
                    let issues = hint::bytes(&h, status, body, secs, &part);
                    self.counters.hints_verified += 1;
                    self.add_at(issues, &h.uri);
                }
                None if at.elapsed() < expiry => self.hints.done.push((h, r, at)),
                None => {}
            }
        }
        if self.hints.position_judged.len() > 10_000 {
            self.hints.position_judged.clear();
        }
    }
}
