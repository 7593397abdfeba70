//! The periodic side requests of a follower: plain reloads, delta updates
//! (rule 10), deliberate bad blocking requests (rule 9) and rendition
//! report checks (rule 11).

use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

use super::VariantState;
use crate::findings::Issue;
use crate::follow::http::{with_query, FetchError, Response};
use crate::follow::{display, ready};
use crate::m3u8::{media as m3u8_media, MediaPlaylist};
use crate::rules::blocking::Probe;
use crate::rules::ids_media::PLAYLIST_FETCH_FAILED;
use crate::rules::{delta, playlist, rendition};

type ProbeJob = JoinHandle<(Probe, String, Result<Response, FetchError>)>;

#[derive(Default)]
pub struct SideState {
    next_plain: f64,
    next_delta: f64,
    next_probe: f64,
    next_reports: f64,
    probes_sent: usize,
    probes: Vec<ProbeJob>,
}

impl VariantState {
    /// Starts what is due (each at its own rate).
    pub async fn side_tasks(&mut self, pl: &MediaPlaylist) {
        let now = self.shared.now();
        let td = self.td();
        if now >= self.side.next_plain {
            self.side.next_plain = now + td.max(2.0);
            self.plain_reload("plain").await;
        }
        if pl.server_control.can_skip_until.is_some() && now >= self.side.next_delta {
            self.side.next_delta = now + (3.0 * td).max(4.0);
            self.delta_update().await;
        }
        let probes_on = self.shared.opts.probes && pl.server_control.can_block_reload;
        if probes_on
            && now >= 1.0
            && now >= self.side.next_probe
            && self.side.probes_sent < Probe::ALL.len()
        {
            self.side.next_probe = now + 2.0;
            let probe = Probe::ALL[self.side.probes_sent];
            self.side.probes_sent += 1;
            self.counters.probe_requests += 1;
            let query = probe.query(pl);
            let url = with_query(&self.url, &query);
            let http = self.shared.http.clone();
            let (max, timeout) = (self.shared.opts.max_playlist_bytes, self.blocking_timeout());
            self.side.probes.push(tokio::spawn(async move {
                let r = http.get(&url, None, max, timeout).await;
                (probe, query, r)
            }));
        }
    }

    /// Waits (at most `grace` each) for the probes still running and judges them.
    pub async fn wait_probes(&mut self, grace: Duration) {
        for job in std::mem::take(&mut self.side.probes) {
            if let Ok(Ok((probe, query, r))) = tokio::time::timeout(grace, job).await {
                self.judge_probe(probe, &query, &r);
            }
        }
    }

    fn judge_probe(&mut self, probe: Probe, query: &str, r: &Result<Response, FetchError>) {
        let (status, secs) = match r {
            Ok(resp) => (Some(resp.status), resp.secs),
            Err(FetchError::Timeout(s)) => (None, *s),
            Err(_) => (None, 0.0),
        };
        self.add(probe.judge(query, status, secs));
    }

    /// Judges the probes that answered.
    pub fn poll_side(&mut self) {
        for job in std::mem::take(&mut self.side.probes) {
            if !job.is_finished() {
                self.side.probes.push(job);
                continue;
            }
            if let Some(Ok((probe, query, r))) = ready(job) {
                self.judge_probe(probe, &query, &r);
            }
        }
    }

    async fn get_playlist(&mut self, url: &Url) -> Result<Response, String> {
        self.counters.playlist_requests += 1;
        let (max, timeout) = (
            self.shared.opts.max_playlist_bytes,
            self.shared.opts.request_timeout,
        );
        match self.shared.http.get(url, None, max, timeout).await {
            Ok(r) if r.status == 200 => Ok(r),
            Ok(r) => {
                self.counters.http_errors += 1;
                Err(format!("status {}", r.status))
            }
            Err(e) => {
                self.counters.http_errors += 1;
                Err(e.to_string())
            }
        }
    }

    /// A plain (non-blocking) reload; `false` if it failed.
    pub async fn plain_reload(&mut self, kind: &str) -> bool {
        self.counters.plain_reloads += 1;
        let url = self.url.clone();
        match self.get_playlist(&url).await {
            Ok(r) => {
                let parsed = m3u8_media::parse(&r.body);
                self.on_playlist(r.body, parsed, kind, false).await;
                true
            }
            Err(e) => {
                let u = display(&self.url);
                self.add(vec![Issue::new(
                    &PLAYLIST_FETCH_FAILED,
                    format!("plain {e}"),
                    format!("{u}: plain reload failed: {e}"),
                )]);
                false
            }
        }
    }

    /// `_HLS_skip=YES` and a full playlist fetched at the same time.
    async fn delta_update(&mut self) {
        self.counters.delta_requests += 1;
        self.counters.playlist_requests += 2;
        let (max, timeout) = (
            self.shared.opts.max_playlist_bytes,
            self.shared.opts.request_timeout,
        );
        let skip_url = with_query(&self.url, "_HLS_skip=YES");
        let http = &self.shared.http;
        let (d, f) = tokio::join!(
            http.get(&skip_url, None, max, timeout),
            http.get(&self.url, None, max, timeout)
        );
        let (Ok(d), Ok(f)) = (d, f) else { return };
        if d.status != 200 || f.status != 200 {
            let m = format!(
                "delta update: statuses {} (_HLS_skip=YES) and {} (full)",
                d.status, f.status
            );
            self.add(vec![Issue::new(&PLAYLIST_FETCH_FAILED, "delta-status", m)]);
            return;
        }
        let (dpl, dsyntax) = m3u8_media::parse(&d.body);
        self.shared.save(&self.url, self.revision, "delta", &d.body);
        self.add(dsyntax);
        self.add(playlist::check(&dpl));
        let parsed = m3u8_media::parse(&f.body);
        let full = parsed.0.clone();
        self.on_playlist(f.body, parsed, "plain", false).await;
        let r = delta::check(&dpl, &full, &self.history);
        if r.verified {
            self.counters.delta_verified += 1;
        }
        self.add(r.issues);
    }

    /// Rendition reports (when due) against the siblings' own playlists, fetched right
    /// after (with a blocking request for the reported position, so that a
    /// cached older copy cannot make a correct report look ahead).
    pub async fn check_reports(&mut self, pl: &MediaPlaylist) {
        let now = self.shared.now();
        if self.shared.siblings.is_empty() || now < self.side.next_reports {
            return;
        }
        self.side.next_reports = now + self.td().max(2.0);
        let siblings = self.shared.siblings.clone();
        let reported: Vec<(crate::m3u8::RenditionReport, Url)> = pl
            .reports
            .iter()
            .filter_map(|r| Some((r.clone(), self.url.join(&r.uri).ok()?)))
            .collect();
        if pl.has_parts {
            let urls: Vec<Url> = reported.iter().map(|r| r.1.clone()).collect();
            self.add(rendition::missing(&self.url, &urls, &siblings));
        }
        for (r, u) in reported {
            if let Some(i) = rendition::sibling(&u, &self.url, &siblings) {
                self.add(vec![i]);
                continue;
            }
            let own = rendition::last_position(pl);
            let msn = r.last_msn.unwrap_or(own.0);
            let part = r
                .last_part
                .or(if r.last_msn.is_none() { own.1 } else { None });
            let target = match part {
                Some(p) if pl.server_control.can_block_reload => {
                    with_query(&u, &format!("_HLS_msn={msn}&_HLS_part={p}"))
                }
                None if pl.server_control.can_block_reload => {
                    with_query(&u, &format!("_HLS_msn={msn}"))
                }
                _ => u.clone(),
            };
            let Ok(resp) = self.get_playlist(&target).await else {
                continue;
            };
            self.counters.rendition_report_checks += 1;
            let (sib, _) = m3u8_media::parse(&resp.body);
            let name = display(&u);
            let mut issues = rendition::check(&r, pl, &sib, &name);
            let pt = sib.part_target.unwrap_or(0.0);
            if target != u && resp.secs > pt + 0.15 && issues.is_empty() {
                issues.push(Issue::new(
                    &crate::rules::ids_media::REPORT_AHEAD,
                    name.clone(),
                    format!("report says {name} is at msn {msn} part {part:?}, but {name} only had it {:.2} s later", resp.secs),
                ));
            }
            self.add(issues);
        }
    }
}
