//! Following one media playlist: the blocking-reload loop of a strict
//! LL-HLS client. What happens with each playlist received is in
//! `revision.rs`, media in `media.rs`, hints in `hints.rs`, the periodic
//! side requests (plain reloads, delta updates, bad-request probes,
//! rendition reports) in `side.rs`.

mod hints;
mod media;
mod side;

use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use super::http::with_query;
use super::{display, Shared};
use crate::findings::{Collector, Context, Issue};
use crate::m3u8::{media as m3u8_media, MediaPlaylist, Pos};
use crate::report::{Counters, PlaylistReport};
use crate::rules::blocking;
use crate::rules::history::History;
use crate::rules::ids_media::{BLOCKING_HELD_TOO_LONG, PLAYLIST_FETCH_FAILED};
use hints::HintState;
use media::MediaState;
use side::SideState;

/// Everything known about one followed media playlist.
pub struct VariantState {
    pub shared: Arc<Shared>,
    pub url: Url,
    pub findings: Collector,
    pub counters: Counters,
    pub history: History,
    /// The newest full playlist received.
    pub last: Option<MediaPlaylist>,
    pub last_body: Vec<u8>,
    pub revision: u64,
    /// Hold times (s) of blocking requests for the next part.
    pub holds: Vec<f64>,
    pub media: MediaState,
    pub hints: HintState,
    pub side: SideState,
    /// Last new part / segment seen by a request that waited for it.
    pub cadence_part: Option<(Pos, Instant, bool)>,
    pub cadence_segment: Option<(u64, Instant, bool)>,
}

impl VariantState {
    pub fn new(shared: Arc<Shared>, url: Url) -> Self {
        VariantState {
            shared,
            url,
            findings: Collector::new(),
            counters: Counters::default(),
            history: History::new(),
            last: None,
            last_body: Vec::new(),
            revision: 0,
            holds: Vec::new(),
            media: MediaState::default(),
            hints: HintState::default(),
            side: SideState::default(),
            cadence_part: None,
            cadence_segment: None,
        }
    }

    pub fn ctx(&self, uri: Option<&str>) -> Context {
        Context {
            playlist: self.url.to_string(),
            revision: (self.revision > 0).then_some(self.revision),
            uri: uri.map(str::to_string),
            at_secs: self.shared.now(),
        }
    }

    pub fn add(&mut self, issues: Vec<Issue>) {
        let ctx = self.ctx(None);
        self.findings.add_all(issues, &ctx);
    }

    pub fn add_at(&mut self, issues: Vec<Issue>, uri: &str) {
        let ctx = self.ctx(Some(uri));
        self.findings.add_all(issues, &ctx);
    }

    pub fn td(&self) -> f64 {
        // Clamped: the value comes from the network and sizes time limits.
        let td = self
            .last
            .as_ref()
            .and_then(|p| p.target_duration)
            .unwrap_or(6);
        (td as f64).clamp(1.0, 3600.0)
    }

    /// Time limit of a blocking request: 3 target durations plus slack.
    pub fn blocking_timeout(&self) -> Duration {
        Duration::from_secs_f64(3.0 * self.td() + 3.0)
    }

    /// One blocking reload for the next part (or, with `past_last`, for
    /// the part after the last part of the last complete segment).
    async fn blocking_reload(&mut self, pl: &MediaPlaylist, past_last: bool) {
        let req = blocking::next_request(pl, past_last);
        let next = pl.next_part();
        if req.part.is_some_and(|p| p != next.part) || req.msn != next.msn {
            self.counters.blocking_past_last_requests += 1;
        }
        let url = with_query(&self.url, &req.query());
        let td = self.td();
        let max = self.shared.opts.max_playlist_bytes;
        let timeout = self.blocking_timeout();
        let deadline = tokio::time::Instant::from_std(self.shared.deadline);
        let fetch = self.shared.http.get(&url, None, max, timeout);
        let Ok(result) = tokio::time::timeout_at(deadline, fetch).await else {
            return; // the run is over
        };
        self.counters.blocking_requests += 1;
        self.counters.playlist_requests += 1;
        match result {
            Ok(r) => {
                let parsed = (r.status == 200).then(|| m3u8_media::parse(&r.body));
                let issues = blocking::answer(
                    req,
                    Some(r.status),
                    r.secs,
                    td,
                    parsed.as_ref().map(|p| &p.0),
                );
                self.add(issues);
                if r.status == 200 {
                    self.holds.push(r.secs);
                }
                match parsed {
                    Some(parsed) => {
                        self.on_playlist(r.body, parsed, "blocking", r.secs > 0.03)
                            .await
                    }
                    None => tokio::time::sleep(Duration::from_millis(300)).await,
                }
            }
            Err(e) => {
                self.counters.http_errors += 1;
                let q = req.query();
                let issue = match e {
                    super::http::FetchError::Timeout(s) => Issue::new(
                        &BLOCKING_HELD_TOO_LONG,
                        q.clone(),
                        format!("{q}: no answer within {s:.1} s"),
                    ),
                    other => Issue::new(
                        &PLAYLIST_FETCH_FAILED,
                        format!("blocking {other}"),
                        format!("{q}: {other}"),
                    ),
                };
                self.add(vec![issue]);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }

    /// Records when new parts and segments appear (6.2.1 cadence), using
    /// only answers to requests that waited for them.
    pub fn cadence(&mut self, prev: Option<&MediaPlaylist>, pl: &MediaPlaylist, waited: bool) {
        let now = Instant::now();
        let Some(prev) = prev else { return };
        if let Some(last) = pl
            .last_part()
            .filter(|l| prev.last_part().is_none_or(|p| *l > p))
        {
            if let (Some((p, t, true)), true, Some(pt)) =
                (self.cadence_part, waited, pl.part_target)
            {
                let new: Vec<Pos> = pl
                    .parts()
                    .into_iter()
                    .map(|x| x.0)
                    .filter(|x| *x > p)
                    .collect();
                let gap = now.duration_since(t).as_secs_f64();
                if let Some(first) = new.first() {
                    let issue = blocking::part_cadence(p, *first, new.len(), gap, pt);
                    self.add(issue.into_iter().collect());
                }
            }
            self.cadence_part = Some((last, now, waited));
        }
        if let Some(msn) = pl
            .last_msn()
            .filter(|m| prev.last_msn().is_none_or(|p| *m > p))
        {
            if let (Some((p, t, true)), true) = (self.cadence_segment, waited) {
                if msn == p.saturating_add(1) {
                    let gap = now.duration_since(t).as_secs_f64();
                    let td = self.td();
                    self.add(
                        blocking::segment_cadence(msn, gap, td)
                            .into_iter()
                            .collect(),
                    );
                }
            }
            self.cadence_segment = Some((msn, now, waited));
        }
    }

    /// Waits for what is still running and builds the playlist's report.
    async fn finish(mut self) -> (PlaylistReport, Option<MediaPlaylist>) {
        let grace = self.blocking_timeout();
        self.hints.wait(grace).await;
        if let Some(pl) = self.last.clone() {
            self.judge_hints(&pl);
        }
        self.wait_probes(grace).await;
        self.wait_decodes().await;
        let observed = self.observed();
        let report = PlaylistReport {
            url: self.url.to_string(),
            media_format: self.media.format.to_string(),
            counters: self.counters.clone(),
            hold: blocking::hold_stats(&self.holds),
            observed,
            findings: Vec::new(),
        };
        let mut report = report;
        report.findings = self.findings.into_findings();
        (report, self.last)
    }
}

/// Follows `url` until the run's deadline.
pub async fn follow(shared: Arc<Shared>, url: Url) -> (PlaylistReport, Option<MediaPlaylist>) {
    let mut st = VariantState::new(shared.clone(), url);
    if !st.plain_reload("plain").await {
        let u = display(&st.url);
        let ctx = st.ctx(None);
        st.findings.add(
            Issue::new(
                &PLAYLIST_FETCH_FAILED,
                "initial",
                format!("{u}: the playlist could not be loaded"),
            ),
            &ctx,
        );
        return st.finish().await;
    }
    let mut n = 0u64;
    while Instant::now() < shared.deadline {
        let Some(pl) = st.last.clone() else { break };
        st.poll_side();
        st.poll_decodes();
        if pl.endlist {
            break;
        }
        st.side_tasks(&pl).await;
        if pl.server_control.can_block_reload {
            // Every other segment boundary, ask for the part after the last
            // part of the complete segment (6.2.5.2: part 0 of the next).
            let boundary = pl.next_part().part == 0;
            if boundary {
                n += 1;
            }
            st.blocking_reload(&pl, boundary && n.is_multiple_of(2))
                .await;
        } else {
            let wait = pl.part_target.unwrap_or(st.td() / 2.0).clamp(0.1, 5.0);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            st.plain_reload("plain").await;
        }
    }
    st.finish().await
}
