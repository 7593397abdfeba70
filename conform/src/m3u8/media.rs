//! Media playlist parser.
//!
//! Hand-written on purpose: the checker must see exactly what is in the
//! text (tag order, duplicates, number formats, where a tag sits relative to
//! the parts of its segment), which the m3u8 crates normalise away or
//! refuse outright. Every problem becomes an [`Issue`]; parsing goes on so
//! that the other rules still run.

use std::collections::HashSet;

use super::attrs::{self, AttrList};
use super::lines::{self, Line};
use super::model::*;
use crate::findings::Issue;
use crate::rules::ids;

#[derive(Default)]
pub(super) struct State {
    pub(super) pl: MediaPlaylist,
    pub(super) issues: Vec<Issue>,
    pub(super) once: HashSet<String>,
    pub(super) meta: SegMeta,
    pub(super) map: Option<MapRef>,
    pub(super) parts: Vec<Part>,
    pub(super) extinf: Option<f64>,
    pub(super) byterange: Option<(u64, Option<u64>)>,
    pub(super) prev_seg_range: Option<(String, u64)>,
    pub(super) next_msn: Option<u64>,
    pub(super) disc_count: u64,
}

/// Parses a media playlist body.
pub fn parse(body: &[u8]) -> (MediaPlaylist, Vec<Issue>) {
    let mut st = State::default();
    let split = lines::split(body, &mut st.issues);
    lines::check_header(&split, &mut st.issues);
    for (n, text) in &split {
        match lines::classify(text) {
            None => {}
            Some(Line::Uri(uri)) => st.uri(uri),
            Some(Line::Tag { name, value }) => st.tag(*n, name, value),
        }
    }
    st.finish()
}

impl State {
    pub(super) fn issue(
        &mut self,
        rule: &'static crate::findings::Rule,
        key: &str,
        message: String,
    ) {
        self.issues.push(Issue::new(rule, key, message));
    }

    pub(super) fn msn(&mut self) -> u64 {
        *self.next_msn.get_or_insert(
            self.pl
                .media_sequence
                .saturating_add(self.pl.skipped_segments.unwrap_or(0)),
        )
    }

    pub(super) fn started(&self) -> bool {
        self.next_msn.is_some()
    }

    pub(super) fn int(&mut self, tag: &str, value: Option<&str>) -> Option<u64> {
        let v = value.unwrap_or("");
        if !attrs::is_decimal_integer(v) {
            self.issue(
                &ids::SYNTAX_VALUE,
                tag,
                format!("{tag}: {v:?} is not a decimal-integer"),
            );
        }
        v.trim().parse().ok()
    }

    /// Tags that apply to the parent segment must precede its first part.
    pub(super) fn before_parts(&mut self, tag: &str) {
        if !self.parts.is_empty() {
            let m = format!("{tag} after the first EXT-X-PART of its parent segment");
            self.issue(&ids::SYNTAX_PLACEMENT, &m.clone(), m);
        }
    }

    pub(super) fn attrs(&mut self, tag: &str, value: Option<&str>) -> AttrList {
        let list = attrs::parse(tag, value.unwrap_or(""), &mut self.issues);
        if list.pairs.iter().any(|(n, _)| n.starts_with("REQ-")) {
            self.pl.features.req_attribute = true;
        }
        list
    }

    pub(super) fn extinf(&mut self, v: &str) {
        if self.extinf.is_some() {
            self.issue(
                &ids::SYNTAX_PLACEMENT,
                "EXTINF",
                "EXTINF not followed by a URI line".into(),
            );
        }
        let (dur, _title) = match v.split_once(',') {
            Some(x) => x,
            None => {
                self.issue(
                    &ids::SYNTAX_VALUE,
                    "EXTINF-comma",
                    "EXTINF without the ',' after the duration".into(),
                );
                (v, "")
            }
        };
        if !attrs::is_decimal_float(dur) {
            self.issue(
                &ids::SYNTAX_VALUE,
                "EXTINF",
                format!("EXTINF: {dur:?} is not a decimal number"),
            );
        }
        if dur.contains('.') {
            self.pl.features.float_extinf = true;
        }
        self.extinf = Some(attrs::parse_lenient_float(dur).unwrap_or(0.0));
    }

    /// `<n>[@<o>]`.
    pub(super) fn range_value(&mut self, tag: &str, v: &str) -> Option<(u64, Option<u64>)> {
        let (n, o) = match v.split_once('@') {
            Some((n, o)) => (n, Some(o)),
            None => (v, None),
        };
        if !attrs::is_decimal_integer(n) || o.is_some_and(|o| !attrs::is_decimal_integer(o)) {
            self.issue(
                &ids::SYNTAX_VALUE,
                tag,
                format!("{tag}: byte range {v:?} is not <n>[@<o>]"),
            );
            return None;
        }
        Some((n.parse().ok()?, o.and_then(|o| o.parse().ok())))
    }

    pub(super) fn part(&mut self, value: Option<&str>) {
        self.pl.has_parts = true;
        let a = self.attrs("EXT-X-PART", value);
        a.require("URI", &mut self.issues);
        a.require("DURATION", &mut self.issues);
        let i = &mut self.issues;
        let uri = a.quoted("URI", i).unwrap_or_default();
        let duration = a.float("DURATION", i).unwrap_or(0.0);
        let independent = a.yes("INDEPENDENT", false, i);
        let gap = a.yes("GAP", false, i);
        let byterange = match a.quoted("BYTERANGE", i) {
            None => None,
            Some(r) => {
                self.pl.features.byterange = true;
                match self.range_value("EXT-X-PART", &r) {
                    Some((length, Some(offset))) => Some(Range { offset, length }),
                    Some((length, None)) => match self
                        .parts
                        .last()
                        .filter(|p| p.uri == uri)
                        .and_then(|p| p.byterange)
                    {
                        Some(prev) => Some(Range {
                            offset: prev.end(),
                            length,
                        }),
                        None => {
                            let m = "EXT-X-PART: BYTERANGE without offset and no previous part of the same URI in its parent segment".to_string();
                            self.issue(&ids::SYNTAX_VALUE, &m.clone(), m);
                            None
                        }
                    },
                    None => None,
                }
            }
        };
        self.parts.push(Part {
            uri,
            duration,
            independent,
            gap,
            byterange,
        });
    }

    fn take_meta(&mut self) -> SegMeta {
        if self.meta.discontinuity {
            self.disc_count += 1;
        }
        let mut meta = std::mem::take(&mut self.meta);
        meta.map = self.map.clone();
        meta.disc_seq = self
            .pl
            .discontinuity_sequence
            .saturating_add(self.disc_count);
        meta
    }

    pub(super) fn uri(&mut self, uri: &str) {
        let msn = self.msn();
        let duration = match self.extinf.take() {
            Some(d) => d,
            None => {
                self.issue(
                    &ids::SYNTAX_PLACEMENT,
                    "uri-no-extinf",
                    "a URI line without EXTINF".into(),
                );
                0.0
            }
        };
        let byterange = match self.byterange.take() {
            None => None,
            Some((length, Some(offset))) => Some(Range { offset, length }),
            Some((length, None)) => {
                match self
                    .prev_seg_range
                    .as_ref()
                    .filter(|(u, _)| u == uri)
                    .map(|(_, end)| *end)
                {
                    Some(offset) => Some(Range { offset, length }),
                    None => {
                        let m = "EXT-X-BYTERANGE without offset and no previous sub-range of the same URI".to_string();
                        self.issue(&ids::SYNTAX_VALUE, &m.clone(), m);
                        None
                    }
                }
            }
        };
        self.prev_seg_range = byterange.map(|r| (uri.to_string(), r.end()));
        let meta = self.take_meta();
        let parts = std::mem::take(&mut self.parts);
        self.pl.segments.push(Segment {
            msn,
            uri: uri.to_string(),
            duration,
            byterange,
            meta,
            parts,
        });
        self.next_msn = Some(msn.saturating_add(1));
    }

    pub(super) fn finish(mut self) -> (MediaPlaylist, Vec<Issue>) {
        if self.extinf.is_some() {
            self.issue(
                &ids::SYNTAX_PLACEMENT,
                "EXTINF",
                "EXTINF not followed by a URI line".into(),
            );
        }
        if !self.parts.is_empty() {
            let msn = self.msn();
            let meta = self.take_meta();
            let parts = std::mem::take(&mut self.parts);
            self.pl.pending = Some(Pending { msn, meta, parts });
        }
        if self.pl.target_duration.is_none() {
            self.issue(
                &ids::SYNTAX_MISSING,
                "EXT-X-TARGETDURATION",
                "EXT-X-TARGETDURATION is missing".into(),
            );
        }
        (self.pl, self.issues)
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
