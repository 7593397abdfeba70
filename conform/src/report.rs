//! The run's report: counters, per-playlist results, findings; the JSON
//! written by `--report` and the short stdout summary.

use serde::Serialize;

use crate::findings::{Finding, Severity};
use crate::rules::blocking::HoldStats;
use crate::rules::master::Observed;

/// What the checker did, per playlist (summed in the totals).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    pub playlist_requests: u64,
    pub playlist_revisions: u64,
    pub blocking_requests: u64,
    /// Blocking requests for the part after the last one of a complete segment.
    pub blocking_past_last_requests: u64,
    pub plain_reloads: u64,
    pub stale_reloads: u64,
    pub delta_requests: u64,
    pub delta_verified: u64,
    pub probe_requests: u64,
    pub parts_fetched: u64,
    pub part_bytes: u64,
    pub segments_fetched: u64,
    pub segment_bytes: u64,
    pub init_fetches: u64,
    pub hint_requests: u64,
    pub hints_verified: u64,
    pub decodes: u64,
    pub decoded_frames: u64,
    pub rendition_report_checks: u64,
    pub http_errors: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            playlist_requests,
            playlist_revisions,
            blocking_requests,
            blocking_past_last_requests,
            plain_reloads,
            stale_reloads,
            delta_requests,
            delta_verified,
            probe_requests,
            parts_fetched,
            part_bytes,
            segments_fetched,
            segment_bytes,
            init_fetches,
            hint_requests,
            hints_verified,
            decodes,
            decoded_frames,
            rendition_report_checks,
            http_errors
        );
    }
}

/// One followed media playlist.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PlaylistReport {
    pub url: String,
    /// `fmp4`, `mpegts` or `unknown`.
    pub media_format: String,
    pub counters: Counters,
    /// Hold times of blocking requests for the next part.
    pub hold: HoldStats,
    pub observed: Observed,
    pub findings: Vec<Finding>,
}

/// An external checker's run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExternalRun {
    pub tool: String,
    pub files: usize,
    pub failures: usize,
}

/// Rule catalogue entry, for readers of the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub section: &'static str,
    pub summary: &'static str,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub url: String,
    pub seconds: f64,
    pub started_unix_ms: u128,
    pub master: bool,
    pub errors: usize,
    pub warnings: usize,
    pub counters: Counters,
    pub findings: Vec<Finding>,
    pub playlists: Vec<PlaylistReport>,
    pub external: Vec<ExternalRun>,
    pub rules: Vec<RuleInfo>,
}

impl Report {
    /// Sorts findings (errors first, then by rule) and counts them.
    pub fn finish(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.rule.cmp(&b.rule))
                .then(a.at_secs.total_cmp(&b.at_secs))
        });
        self.errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        self.warnings = self.findings.len() - self.errors;
    }

    /// The stdout summary: one line, then one line per rule that fired
    /// (first message, how many distinct findings and occurrences).
    pub fn summary(&self) -> String {
        let c = &self.counters;
        let holds: Vec<String> = self
            .playlists
            .iter()
            .filter(|p| p.hold.count > 0)
            .map(|p| {
                format!(
                    "p50 {} / p99 {} / max {} ms",
                    p.hold.p50_ms, p.hold.p99_ms, p.hold.max_ms
                )
            })
            .collect();
        let mut s = format!(
            "{} {:.0}s: {} playlist(s), {} revisions, {} blocking reloads{}, {} parts ({} KiB), {} segments ({} KiB), {} hints ({} verified), {} decodes, {} delta updates ({} verified) -> {} error(s), {} warning(s)\n",
            self.url,
            self.seconds,
            self.playlists.len(),
            c.playlist_revisions,
            c.blocking_requests,
            if holds.is_empty() { String::new() } else { format!(" (hold {})", holds.join("; ")) },
            c.parts_fetched,
            c.part_bytes / 1024,
            c.segments_fetched,
            c.segment_bytes / 1024,
            c.hint_requests,
            c.hints_verified,
            c.decodes,
            c.delta_requests,
            c.delta_verified,
            self.errors,
            self.warnings,
        );
        let mut rules: Vec<&str> = self.findings.iter().map(|f| f.rule.as_str()).collect();
        rules.dedup();
        for rule in rules {
            let of: Vec<&Finding> = self.findings.iter().filter(|f| f.rule == rule).collect();
            let first = of[0];
            let seen: u64 = of.iter().map(|f| f.occurrences).sum();
            s += &format!(
                "{} {rule} [{}] x{} ({} seen): {}{}\n",
                first.severity.letter(),
                first.section,
                of.len(),
                seen,
                first.message,
                first
                    .revision
                    .map(|r| format!(" ({} rev {r})", short(&first.playlist)))
                    .unwrap_or_default(),
            );
        }
        s
    }
}

fn short(url: &str) -> &str {
    url.rsplit_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rule: &str, sev: Severity) -> Finding {
        Finding {
            rule: rule.into(),
            severity: sev,
            section: "1".into(),
            message: "m".into(),
            playlist: "http://h/s/index.m3u8".into(),
            revision: Some(3),
            uri: None,
            at_secs: 1.0,
            occurrences: 2,
        }
    }

    #[test]
    fn summary_groups_by_rule_errors_first() {
        let mut r = Report {
            url: "u".into(),
            findings: vec![
                f("b-warn", Severity::Warning),
                f("a-err", Severity::Error),
                f("a-err", Severity::Error),
            ],
            ..Default::default()
        };
        r.finish();
        assert_eq!((r.errors, r.warnings), (2, 1));
        let s = r.summary();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("E a-err [1] x2 (4 seen): m (s/index.m3u8 rev 3)"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("W b-warn"));
    }
}
