//! Multivariant ("master") playlist parser; hand-written for the same
//! reason as the media parser (see `media.rs`).

use std::collections::HashSet;

use super::attrs::{self, AttrList};
use super::lines::{self, Line, MASTER_TAGS};
use crate::findings::Issue;
use crate::rules::ids;

/// An EXT-X-STREAM-INF and its URI.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variant {
    pub uri: String,
    pub bandwidth: Option<u64>,
    pub average_bandwidth: Option<u64>,
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    pub audio: Option<String>,
    pub video: Option<String>,
}

/// An EXT-X-MEDIA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendition {
    pub kind: String,
    pub group_id: String,
    pub name: String,
    pub uri: Option<String>,
}

/// A parsed multivariant playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MasterPlaylist {
    pub version: Option<u64>,
    pub variants: Vec<Variant>,
    pub renditions: Vec<Rendition>,
    pub independent_segments: bool,
    /// Features raising the required version: EXT-X-DEFINE (8), QUERYPARAM
    /// (11), "SERVICE" INSTREAM-ID (7), REQ- attributes (12).
    pub needs_version: Vec<(u64, &'static str)>,
}

/// Media playlist tags and media segment tags (mixing them in is an error).
const MEDIA_ONLY: &[&str] = &[
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-ENDLIST",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-I-FRAMES-ONLY",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
    "EXTINF",
    "EXT-X-BYTERANGE",
    "EXT-X-DISCONTINUITY",
    "EXT-X-KEY",
    "EXT-X-MAP",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-GAP",
    "EXT-X-BITRATE",
    "EXT-X-PART",
    "EXT-X-SKIP",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
];

/// Parses a multivariant playlist body.
pub fn parse(body: &[u8]) -> (MasterPlaylist, Vec<Issue>) {
    let mut issues = Vec::new();
    let split = lines::split(body, &mut issues);
    lines::check_header(&split, &mut issues);
    let mut pl = MasterPlaylist::default();
    let mut once = HashSet::new();
    let mut pending: Option<Variant> = None;
    for (n, text) in &split {
        let line = match lines::classify(text) {
            Some(l) => l,
            None => continue,
        };
        let (name, value) = match line {
            Line::Uri(uri) => {
                match pending.take() {
                    Some(mut v) => {
                        v.uri = uri.to_string();
                        pl.variants.push(v);
                    }
                    None => issues.push(Issue::new(
                        &ids::SYNTAX_PLACEMENT,
                        "master-uri",
                        "a URI line not preceded by EXT-X-STREAM-INF",
                    )),
                }
                continue;
            }
            Line::Tag { name, value } => (name, value),
        };
        if pending.is_some() && name != "EXT-X-STREAM-INF" {
            issues.push(Issue::new(
                &ids::SYNTAX_PLACEMENT,
                "stream-inf-uri",
                "EXT-X-STREAM-INF not followed by its URI line",
            ));
        }
        let once_tag = matches!(
            name,
            "EXT-X-VERSION" | "EXT-X-INDEPENDENT-SEGMENTS" | "EXT-X-START"
        );
        if once_tag && !once.insert(name.to_string()) {
            issues.push(Issue::new(
                &ids::SYNTAX_DUPLICATE,
                name,
                format!("{name} appears more than once"),
            ));
        }
        let mut attrs_of = |issues: &mut Vec<Issue>| -> AttrList {
            let a = attrs::parse(name, value.unwrap_or(""), issues);
            if a.pairs.iter().any(|(k, _)| k.starts_with("REQ-")) {
                pl.needs_version
                    .push((12, "an attribute starting with REQ-"));
            }
            a
        };
        match name {
            "EXTM3U" if *n == 1 => {}
            "EXTM3U" => issues.push(Issue::new(
                &ids::SYNTAX_DUPLICATE,
                name,
                "#EXTM3U appears again",
            )),
            "EXT-X-VERSION" => {
                let v = value.unwrap_or("");
                if !attrs::is_decimal_integer(v) {
                    issues.push(Issue::new(
                        &ids::SYNTAX_VALUE,
                        name,
                        format!("{name}: {v:?} is not a decimal-integer"),
                    ));
                }
                pl.version = v.parse().ok();
            }
            "EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
            "EXT-X-STREAM-INF" => {
                if pending.is_some() {
                    issues.push(Issue::new(
                        &ids::SYNTAX_PLACEMENT,
                        "stream-inf-uri",
                        "EXT-X-STREAM-INF not followed by its URI line",
                    ));
                }
                let a = attrs_of(&mut issues);
                a.require("BANDWIDTH", &mut issues);
                let i = &mut issues;
                pending = Some(Variant {
                    uri: String::new(),
                    bandwidth: a.int("BANDWIDTH", i),
                    average_bandwidth: a.int("AVERAGE-BANDWIDTH", i),
                    codecs: a.quoted("CODECS", i),
                    resolution: a.resolution("RESOLUTION", i),
                    frame_rate: a.float("FRAME-RATE", i),
                    audio: a.quoted("AUDIO", i),
                    video: a.quoted("VIDEO", i),
                });
            }
            "EXT-X-MEDIA" => {
                let a = attrs_of(&mut issues);
                for req in ["TYPE", "GROUP-ID", "NAME"] {
                    a.require(req, &mut issues);
                }
                let i = &mut issues;
                if a.quoted("INSTREAM-ID", i)
                    .is_some_and(|v| v.starts_with("SERVICE"))
                {
                    pl.needs_version.push((7, "INSTREAM-ID=\"SERVICEn\""));
                }
                pl.renditions.push(Rendition {
                    kind: a.enumerated("TYPE", i).unwrap_or_default(),
                    group_id: a.quoted("GROUP-ID", i).unwrap_or_default(),
                    name: a.quoted("NAME", i).unwrap_or_default(),
                    uri: a.quoted("URI", i),
                });
            }
            "EXT-X-DEFINE" => {
                let a = attrs_of(&mut issues);
                pl.needs_version.push((8, "EXT-X-DEFINE"));
                if a.has("QUERYPARAM") {
                    pl.needs_version.push((11, "EXT-X-DEFINE with QUERYPARAM"));
                }
            }
            "EXT-X-START"
            | "EXT-X-I-FRAME-STREAM-INF"
            | "EXT-X-SESSION-DATA"
            | "EXT-X-SESSION-KEY"
            | "EXT-X-CONTENT-STEERING" => {
                // Consciously not evaluated beyond the attribute-list syntax.
                attrs_of(&mut issues);
            }
            n if MEDIA_ONLY.contains(&n) => issues.push(Issue::new(
                &ids::SYNTAX_MIXED,
                n,
                format!("media playlist tag {n} in a multivariant playlist"),
            )),
            n => {
                debug_assert!(!MASTER_TAGS.contains(&n));
                issues.push(Issue::new(
                    &ids::SYNTAX_UNKNOWN_TAG,
                    n,
                    format!("unknown tag #{n}"),
                ));
            }
        }
    }
    if pending.is_some() {
        issues.push(Issue::new(
            &ids::SYNTAX_PLACEMENT,
            "stream-inf-uri",
            "EXT-X-STREAM-INF not followed by its URI line",
        ));
    }
    (pl, issues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variants_and_renditions() {
        let body = b"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"a\"\n\
720p/index.m3u8\n";
        let (pl, issues) = parse(body);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(pl.variants.len(), 1);
        let v = &pl.variants[0];
        assert_eq!(v.uri, "720p/index.m3u8");
        assert_eq!(v.bandwidth, Some(800_000));
        assert_eq!(v.resolution, Some((1280, 720)));
        assert_eq!(v.frame_rate, Some(30.0));
        assert_eq!(pl.renditions[0].uri.as_deref(), Some("audio/index.m3u8"));
    }

    #[test]
    fn flags_missing_bandwidth_mixed_tags_and_dangling_stream_inf() {
        let body = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-STREAM-INF:CODECS=\"avc1.64001f\"\n";
        let (_, issues) = parse(body);
        let ids: Vec<_> = issues.iter().map(|i| i.rule.id).collect();
        assert!(ids.contains(&"syntax-missing-required"), "{ids:?}");
        assert!(ids.contains(&"syntax-master-media-mixed"));
        assert!(ids.contains(&"syntax-tag-placement"));
    }
}
