//! The tags of a media playlist (RFC 8216bis 4.4), one arm each: the
//! second half of the media playlist parser (`media.rs`).

use super::attrs;
use super::date;
use super::lines::MASTER_TAGS;
use super::media::State;
use super::model::*;
use crate::rules::ids;

/// Tags that may appear at most once (4.4.1.2, 4.4.2, 4.4.3, 4.4.5.2).
pub(super) const ONCE: &[&str] = &[
    "EXT-X-VERSION",
    "EXT-X-INDEPENDENT-SEGMENTS",
    "EXT-X-START",
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-ENDLIST",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-I-FRAMES-ONLY",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-SKIP",
];

impl State {
    pub(super) fn tag(&mut self, line_no: usize, name: &str, value: Option<&str>) {
        if ONCE.contains(&name) && !self.once.insert(name.to_string()) {
            self.issue(
                &ids::SYNTAX_DUPLICATE,
                name,
                format!("{name} appears more than once"),
            );
        }
        let no_value = |st: &mut State| {
            if value.is_some() {
                st.issue(&ids::SYNTAX_VALUE, name, format!("{name} takes no value"));
            }
        };
        match name {
            "EXTM3U" => {
                if line_no != 1 {
                    self.issue(&ids::SYNTAX_DUPLICATE, name, "#EXTM3U appears again".into());
                }
            }
            "EXT-X-VERSION" => self.pl.version = self.int(name, value),
            "EXT-X-TARGETDURATION" => {
                self.pl.target_duration = self.int(name, value);
                if self.pl.target_duration == Some(0) {
                    self.issue(
                        &ids::SYNTAX_VALUE,
                        name,
                        "TARGETDURATION must be at least 1".into(),
                    );
                }
            }
            "EXT-X-MEDIA-SEQUENCE" | "EXT-X-DISCONTINUITY-SEQUENCE" => {
                if self.started() || self.disc_count > 0 {
                    self.issue(
                        &ids::SYNTAX_PLACEMENT,
                        name,
                        format!("{name} after the first segment"),
                    );
                }
                let v = self.int(name, value).unwrap_or(0);
                if name == "EXT-X-MEDIA-SEQUENCE" {
                    self.pl.media_sequence = v;
                } else {
                    self.pl.discontinuity_sequence = v;
                }
            }
            "EXT-X-ENDLIST" => {
                no_value(self);
                self.pl.endlist = true;
            }
            "EXT-X-I-FRAMES-ONLY" => {
                no_value(self);
                self.pl.i_frames_only = true;
            }
            "EXT-X-INDEPENDENT-SEGMENTS" => {
                no_value(self);
                self.pl.independent_segments = true;
            }
            "EXT-X-PLAYLIST-TYPE" => match value {
                Some(v @ ("EVENT" | "VOD")) => self.pl.playlist_type = Some(v.to_string()),
                v => self.issue(
                    &ids::SYNTAX_VALUE,
                    name,
                    format!("{name}: {v:?} is not EVENT or VOD"),
                ),
            },
            "EXT-X-START" => {
                let a = self.attrs(name, value);
                a.require("TIME-OFFSET", &mut self.issues);
                if let Some(v) = a.enumerated("TIME-OFFSET", &mut self.issues) {
                    if !attrs::is_signed_decimal_float(&v) {
                        self.issue(
                            &ids::SYNTAX_ATTRIBUTE,
                            name,
                            format!(
                                "{name}: TIME-OFFSET {v:?} is not a signed-decimal-floating-point"
                            ),
                        );
                    }
                }
                a.yes("PRECISE", false, &mut self.issues);
            }
            "EXT-X-DEFINE" => {
                let a = self.attrs(name, value);
                self.pl.features.define = true;
                self.pl.features.define_queryparam |= a.has("QUERYPARAM");
            }
            "EXT-X-PART-INF" => {
                let a = self.attrs(name, value);
                a.require("PART-TARGET", &mut self.issues);
                self.pl.part_target = a.float("PART-TARGET", &mut self.issues);
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = self.attrs(name, value);
                let i = &mut self.issues;
                self.pl.server_control = ServerControl {
                    can_block_reload: a.yes("CAN-BLOCK-RELOAD", true, i),
                    can_skip_until: a.float("CAN-SKIP-UNTIL", i),
                    can_skip_dateranges: a.yes("CAN-SKIP-DATERANGES", true, i),
                    hold_back: a.float("HOLD-BACK", i),
                    part_hold_back: a.float("PART-HOLD-BACK", i),
                };
            }
            "EXTINF" => self.extinf(value.unwrap_or("")),
            "EXT-X-BYTERANGE" => {
                self.pl.features.byterange = true;
                self.byterange = self.range_value(name, value.unwrap_or(""));
            }
            "EXT-X-DISCONTINUITY" => {
                no_value(self);
                self.before_parts(name);
                self.meta.discontinuity = true;
            }
            "EXT-X-KEY" => {
                self.before_parts(name);
                let a = self.attrs(name, value);
                a.require("METHOD", &mut self.issues);
                let f = &mut self.pl.features;
                f.key_format |= a.has("KEYFORMAT") || a.has("KEYFORMATVERSIONS");
                f.key_iv |= a.has("IV");
                let method = a.enumerated("METHOD", &mut self.issues);
                self.pl.features.sample_aes |= method.as_deref() == Some("SAMPLE-AES");
            }
            "EXT-X-MAP" => {
                self.before_parts(name);
                self.pl.features.map = true;
                let a = self.attrs(name, value);
                a.require("URI", &mut self.issues);
                let uri = a.quoted("URI", &mut self.issues).unwrap_or_default();
                let byterange = match a.quoted("BYTERANGE", &mut self.issues) {
                    Some(r) => match self.range_value(name, &r) {
                        Some((length, Some(offset))) => Some(Range { offset, length }),
                        Some((length, None)) => {
                            self.issue(
                                &ids::SYNTAX_ATTRIBUTE,
                                name,
                                "EXT-X-MAP: BYTERANGE needs an offset".into(),
                            );
                            Some(Range { offset: 0, length })
                        }
                        None => None,
                    },
                    None => None,
                };
                self.map = Some(MapRef { uri, byterange });
            }
            "EXT-X-PROGRAM-DATE-TIME" => {
                self.before_parts(name);
                let v = value.unwrap_or("");
                self.meta.pdt_ms = date::parse_ms(v);
                if self.meta.pdt_ms.is_none() {
                    self.issue(
                        &ids::SYNTAX_VALUE,
                        name,
                        format!("{name}: {v:?} is not an ISO 8601 date-time"),
                    );
                }
            }
            "EXT-X-GAP" => {
                no_value(self);
                self.meta.gap = true;
            }
            "EXT-X-BITRATE" => {
                self.int(name, value);
            }
            "EXT-X-PART" => self.part(value),
            "EXT-X-DATERANGE" => {
                // Consciously not evaluated beyond its syntax.
                let a = self.attrs(name, value);
                a.require("ID", &mut self.issues);
            }
            "EXT-X-SKIP" => {
                if self.started() {
                    self.issue(
                        &ids::SYNTAX_PLACEMENT,
                        name,
                        "EXT-X-SKIP after the first segment".into(),
                    );
                }
                let a = self.attrs(name, value);
                a.require("SKIPPED-SEGMENTS", &mut self.issues);
                self.pl.skipped_segments =
                    Some(a.int("SKIPPED-SEGMENTS", &mut self.issues).unwrap_or(0));
                self.pl.features.skip = true;
                self.pl.features.skip_dateranges |= a.has("RECENTLY-REMOVED-DATERANGES");
            }
            "EXT-X-PRELOAD-HINT" => {
                let a = self.attrs(name, value);
                a.require("TYPE", &mut self.issues);
                a.require("URI", &mut self.issues);
                let i = &mut self.issues;
                let hint = PreloadHint {
                    kind: a.enumerated("TYPE", i).unwrap_or_default(),
                    uri: a.quoted("URI", i).unwrap_or_default(),
                    start: a.int("BYTERANGE-START", i).unwrap_or(0),
                    length: a.int("BYTERANGE-LENGTH", i),
                    ranged: a.has("BYTERANGE-START") || a.has("BYTERANGE-LENGTH"),
                };
                if hint.kind != "PART" && hint.kind != "MAP" {
                    self.issue(
                        &ids::SYNTAX_ATTRIBUTE,
                        name,
                        format!(
                            "EXT-X-PRELOAD-HINT: TYPE {:?} is not PART or MAP",
                            hint.kind
                        ),
                    );
                }
                self.pl.hints.push(hint);
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = self.attrs(name, value);
                a.require("URI", &mut self.issues);
                let i = &mut self.issues;
                self.pl.reports.push(RenditionReport {
                    uri: a.quoted("URI", i).unwrap_or_default(),
                    last_msn: a.int("LAST-MSN", i),
                    last_part: a.int("LAST-PART", i),
                });
            }
            n if MASTER_TAGS.contains(&n) => {
                self.issue(
                    &ids::SYNTAX_MIXED,
                    n,
                    format!("multivariant tag {n} in a media playlist"),
                );
            }
            n => self.issue(&ids::SYNTAX_UNKNOWN_TAG, n, format!("unknown tag #{n}")),
        }
    }
}
