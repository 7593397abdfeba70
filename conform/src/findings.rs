//! Findings: what a rule reports, and the per-run collector that gives each
//! one its context (variant, playlist revision, time) and folds repeats.
//!
//! Rules are pure functions that return [`Issue`]s. An issue carries a
//! `key` naming the thing it is about (`msn 12 part 3`, a tag and attribute)
//! so that the same violation seen again in the next playlist revision is
//! counted, not listed twice.

use std::collections::HashMap;

use serde::Serialize;

/// How bad a finding is. Both make the run fail (exit status 1); the level
/// tells a MUST from a SHOULD (or from a player-compatibility concern).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn letter(self) -> char {
        match self {
            Severity::Warning => 'W',
            Severity::Error => 'E',
        }
    }
}

/// One rule of the catalogue (`rules::ids`).
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable identifier, kebab-case; never reused for another meaning.
    pub id: &'static str,
    pub severity: Severity,
    /// Where the requirement is written (RFC 8216bis section unless noted).
    pub section: &'static str,
    pub summary: &'static str,
}

/// What a rule found, before the collector adds where and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    pub rule: &'static Rule,
    /// Identifies the violating thing; repeats with the same key are folded.
    pub key: String,
    pub message: String,
}

impl Issue {
    pub fn new(rule: &'static Rule, key: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            rule,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A finding as reported (stdout and the JSON report).
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub section: String,
    pub message: String,
    /// The playlist the finding is about (variant URI, or the master).
    pub playlist: String,
    /// The playlist revision (1-based, per playlist) where it was first seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The resource concerned, when not the playlist itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Seconds since the start of the run when first seen.
    pub at_secs: f64,
    /// How many times it was seen (same rule, same key).
    pub occurrences: u64,
}

/// Where an issue was seen.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub playlist: String,
    pub revision: Option<u64>,
    pub uri: Option<String>,
    pub at_secs: f64,
}

/// At most this many distinct findings are kept per rule and playlist; more
/// are only counted (a broken stream must not produce a million-line report).
const MAX_PER_RULE: usize = 200;

/// Collects findings of one playlist (or the master), folding repeats.
#[derive(Debug, Default)]
pub struct Collector {
    findings: Vec<Finding>,
    index: HashMap<(String, String), usize>,
    per_rule: HashMap<String, usize>,
    /// Findings not kept because of [`MAX_PER_RULE`], per rule.
    pub dropped: HashMap<String, u64>,
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, issue: Issue, ctx: &Context) {
        self.add_raw(
            issue.rule.id,
            issue.rule.severity,
            issue.rule.section,
            issue.key,
            issue.message,
            ctx,
        );
    }

    pub fn add_all(&mut self, issues: impl IntoIterator<Item = Issue>, ctx: &Context) {
        for issue in issues {
            self.add(issue, ctx);
        }
    }

    /// Adds a finding whose rule is not in the catalogue (external checkers).
    pub fn add_raw(
        &mut self,
        rule: &str,
        severity: Severity,
        section: &str,
        key: String,
        message: String,
        ctx: &Context,
    ) {
        let k = (rule.to_string(), key);
        if let Some(&i) = self.index.get(&k) {
            self.findings[i].occurrences += 1;
            return;
        }
        let count = self.per_rule.entry(rule.to_string()).or_insert(0);
        if *count >= MAX_PER_RULE {
            *self.dropped.entry(rule.to_string()).or_insert(0) += 1;
            return;
        }
        *count += 1;
        self.index.insert(k, self.findings.len());
        self.findings.push(Finding {
            rule: rule.to_string(),
            severity,
            section: section.to_string(),
            message,
            playlist: ctx.playlist.clone(),
            revision: ctx.revision,
            uri: ctx.uri.clone(),
            at_secs: (ctx.at_secs * 1000.0).round() / 1000.0,
            occurrences: 1,
        });
    }

    pub fn len(&self) -> usize {
        self.findings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static R: Rule = Rule {
        id: "test-rule",
        severity: Severity::Error,
        section: "0",
        summary: "test",
    };

    #[test]
    fn repeats_are_folded_by_key() {
        let mut c = Collector::new();
        let ctx = Context::default();
        c.add(Issue::new(&R, "a", "first"), &ctx);
        c.add(Issue::new(&R, "a", "again"), &ctx);
        c.add(Issue::new(&R, "b", "other"), &ctx);
        let f = c.into_findings();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].occurrences, 2);
        assert_eq!(f[0].message, "first");
    }

    #[test]
    fn distinct_findings_per_rule_are_bounded() {
        let mut c = Collector::new();
        let ctx = Context::default();
        for i in 0..(MAX_PER_RULE + 5) {
            c.add(Issue::new(&R, format!("{i}"), "x"), &ctx);
        }
        assert_eq!(c.len(), MAX_PER_RULE);
        assert_eq!(c.dropped["test-rule"], 5);
    }
}
