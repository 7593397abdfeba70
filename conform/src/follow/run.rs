//! One run: load the URL; a media playlist is followed alone, a
//! multivariant playlist has every listed playlist followed concurrently,
//! then the multivariant checks (rule 12) run on what was measured.

use std::time::{SystemTime, UNIX_EPOCH};

use url::Url;

use super::http::Http;
use super::variant::follow;
use super::{Options, Shared};
use crate::error::Error;
use crate::findings::{Collector, Context, Issue};
use crate::m3u8::{lines, master, MediaPlaylist};
use crate::report::{PlaylistReport, Report, RuleInfo};
use crate::rules::ids::{SYNTAX_URI, VERSION_TOO_LOW};
use crate::rules::master::{check_variant, consistency, Observed};

/// Follows `url` for `opts.seconds` and returns the report.
pub async fn run(url: Url, opts: Options) -> Result<Report, Error> {
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let http = Http::new()?;
    let first = http
        .get(&url, None, opts.max_playlist_bytes, opts.request_timeout)
        .await
        .map_err(|e| Error::Setup {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if first.status != 200 {
        return Err(Error::Setup {
            url: url.to_string(),
            reason: format!("status {}", first.status),
        });
    }
    let mut report = Report {
        url: url.to_string(),
        started_unix_ms,
        rules: crate::rules::catalogue()
            .into_iter()
            .map(|r| RuleInfo {
                id: r.id,
                severity: r.severity,
                section: r.section,
                summary: r.summary,
            })
            .collect(),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    if !lines::is_master(&first.body) {
        let shared = Shared::new(opts, http, Vec::new());
        let (pr, _) = follow(shared, url).await;
        report.playlists.push(pr);
    } else {
        report.master = true;
        let (findings, playlists) = run_master(&url, &first.body, opts, http).await;
        report.findings.extend(findings);
        report.playlists = playlists;
    }
    report.seconds = start.elapsed().as_secs_f64();
    for p in &mut report.playlists {
        report.counters.add(&p.counters);
        report.findings.extend(p.findings.iter().cloned());
    }
    report.finish();
    Ok(report)
}

async fn run_master(
    url: &Url,
    body: &[u8],
    opts: Options,
    http: Http,
) -> (Vec<crate::findings::Finding>, Vec<PlaylistReport>) {
    let mut col = Collector::new();
    let ctx = Context {
        playlist: url.to_string(),
        revision: Some(1),
        uri: None,
        at_secs: 0.0,
    };
    let (m, issues) = master::parse(body);
    col.add_all(issues, &ctx);
    if let Some(dir) = &opts.save_dir {
        let d = dir.join(super::slug(url));
        if std::fs::create_dir_all(&d).is_ok() {
            let _ = std::fs::write(d.join("000001-master.m3u8"), body);
        }
    }
    if let Some((need, why)) = m.needs_version.iter().max_by_key(|x| x.0) {
        let have = m.version.unwrap_or(1);
        if have < *need {
            col.add(
                Issue::new(
                    &VERSION_TOO_LOW,
                    "master",
                    format!("multivariant EXT-X-VERSION {have} but {why} needs {need}"),
                ),
                &ctx,
            );
        }
    }
    let mut siblings: Vec<Url> = Vec::new();
    let uris = m
        .variants
        .iter()
        .map(|v| v.uri.clone())
        .chain(m.renditions.iter().filter_map(|r| r.uri.clone()));
    for u in uris {
        match url.join(&u) {
            Ok(full) if !siblings.contains(&full) => siblings.push(full),
            Ok(_) => {}
            Err(_) => col.add(
                Issue::new(
                    &SYNTAX_URI,
                    u.clone(),
                    format!("multivariant playlist URI {u:?} does not resolve"),
                ),
                &ctx,
            ),
        }
    }
    let shared = Shared::new(opts, http, siblings.clone());
    let tasks: Vec<_> = siblings
        .iter()
        .map(|u| tokio::spawn(follow(shared.clone(), u.clone())))
        .collect();
    let mut results: Vec<(PlaylistReport, Option<MediaPlaylist>)> = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await {
            results.push(r);
        }
    }
    let ctx = Context {
        at_secs: shared.now(),
        ..ctx
    };
    for v in &m.variants {
        let Ok(full) = url.join(&v.uri) else { continue };
        let observed: Observed = results
            .iter()
            .find(|r| r.0.url == full.as_str())
            .map(|r| r.0.observed.clone())
            .unwrap_or_default();
        let groups = v.audio.is_some() || v.video.is_some();
        col.add_all(check_variant(v, &observed, groups), &ctx);
    }
    let loaded: Vec<_> = results
        .iter()
        .filter_map(|(r, pl)| {
            pl.as_ref()
                .map(|p| (r.url.clone(), p.target_duration, p.server_control.clone()))
        })
        .collect();
    col.add_all(consistency(&loaded), &ctx);
    (
        col.into_findings(),
        results.into_iter().map(|r| r.0).collect(),
    )
}
