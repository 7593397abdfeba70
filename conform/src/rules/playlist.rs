//! Rules over one media playlist revision (pure functions).

use url::Url;

use super::ids::*;
use super::ids_media::{EXTINF_PARTS_MISMATCH, PARTS_NOT_TILING};
use crate::findings::Issue;
use crate::m3u8::{MediaPlaylist, Part};

/// Tolerance for comparing decimal durations written with ms precision.
const EPS: f64 = 1e-6;

/// Runs every single-revision rule.
pub fn check(pl: &MediaPlaylist) -> Vec<Issue> {
    let mut out = Vec::new();
    part_durations(pl, &mut out);
    hold_backs_and_target(pl, &mut out);
    version(pl, &mut out);
    pdt_within(pl, &mut out);
    parts_vs_segments(pl, &mut out);
    part_retention(pl, &mut out);
    hints(pl, &mut out);
    out
}

/// Rule 6 (6.2.2): parts of a segment whose last part is more than three
/// target durations from the end should be gone.
pub fn part_retention(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    let Some(td) = pl.target_duration else { return };
    let limit = 3.0 * td as f64;
    for s in pl.segments.iter().filter(|s| !s.parts.is_empty()) {
        let after = pl.seconds_after(s.msn);
        if after > limit + 0.001 {
            out.push(Issue::new(
                &PART_KEPT_TOO_LONG,
                format!("msn {}", s.msn),
                format!("msn {}: its parts are still listed with {after:.3} s of media after them (> 3 x TARGETDURATION = {limit:.0} s)", s.msn),
            ));
        }
    }
}

/// Rule 1 (4.4.4.9): part durations against PART-TARGET.
pub fn part_durations(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    let Some(pt) = pl.part_target else {
        if pl.has_parts {
            out.push(Issue::new(
                &PART_INF_MISSING,
                "part-inf",
                "EXT-X-PART without EXT-X-PART-INF",
            ));
        }
        return;
    };
    let all = pl.parts();
    for (i, (pos, part, _, last_of_parent)) in all.iter().enumerate() {
        let key = format!("msn {} part {}", pos.msn, pos.part);
        if part.duration > pt + EPS {
            out.push(Issue::new(
                &PART_OVER_TARGET,
                key.clone(),
                format!(
                    "{key} ({}): DURATION {:.3} > PART-TARGET {pt:.3}",
                    part.uri, part.duration
                ),
            ));
        }
        // The last listed part of the segment in progress may turn out to be
        // the last of its parent: judged once the segment is complete.
        let last_listed_pending = i + 1 == all.len() && pl.segment(pos.msn).is_none();
        let next_is_gap = all
            .get(i + 1)
            .is_some_and(|n| n.0.msn == pos.msn && n.1.gap);
        let exempt =
            part.independent || part.gap || next_is_gap || *last_of_parent || last_listed_pending;
        if !exempt && part.duration < 0.85 * pt - EPS {
            out.push(Issue::new(
                &PART_UNDER_85,
                key.clone(),
                format!(
                    "{key} ({}): DURATION {:.3} < 85 % of PART-TARGET ({:.3}) and it is neither INDEPENDENT nor its segment's last",
                    part.uri,
                    part.duration,
                    0.85 * pt
                ),
            ));
        }
    }
}

/// Rule 4 (4.4.3.1, 4.4.3.8): hold-backs and TARGETDURATION vs EXTINF.
pub fn hold_backs_and_target(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    let sc = &pl.server_control;
    if let Some(pt) = pl.part_target {
        match sc.part_hold_back {
            None => out.push(Issue::new(
                &PART_HOLD_BACK_MISSING,
                "phb",
                "EXT-X-PART-INF present but EXT-X-SERVER-CONTROL has no PART-HOLD-BACK",
            )),
            Some(phb) if phb < 2.0 * pt - EPS => out.push(Issue::new(
                &PART_HOLD_BACK_2X,
                "phb",
                format!(
                    "PART-HOLD-BACK {phb:.3} < 2 x PART-TARGET ({:.3})",
                    2.0 * pt
                ),
            )),
            Some(phb) if phb < 3.0 * pt - EPS => out.push(Issue::new(
                &PART_HOLD_BACK_3X,
                "phb",
                format!(
                    "PART-HOLD-BACK {phb:.3} < 3 x PART-TARGET ({:.3})",
                    3.0 * pt
                ),
            )),
            Some(_) => {}
        }
    }
    let Some(td) = pl.target_duration else { return };
    let td = td as f64;
    if let Some(hb) = sc.hold_back {
        if hb < 3.0 * td - EPS {
            out.push(Issue::new(
                &HOLD_BACK_3X,
                "hb",
                format!("HOLD-BACK {hb:.3} < 3 x TARGETDURATION ({})", 3.0 * td),
            ));
        }
    }
    if let Some(csu) = sc.can_skip_until {
        if csu < 6.0 * td - EPS {
            out.push(Issue::new(
                &CAN_SKIP_UNTIL_SMALL,
                "csu",
                format!(
                    "CAN-SKIP-UNTIL {csu:.3} < 6 x TARGETDURATION ({})",
                    6.0 * td
                ),
            ));
        }
    }
    if pl.skipped_segments.is_some() && sc.can_skip_until.is_none() {
        out.push(Issue::new(
            &SKIP_WITHOUT_CAN_SKIP,
            "skip",
            "EXT-X-SKIP but no CAN-SKIP-UNTIL",
        ));
    }
    for s in &pl.segments {
        if s.duration.round() > td {
            out.push(Issue::new(
                &EXTINF_OVER_TARGET,
                format!("msn {}", s.msn),
                format!(
                    "msn {} ({}): EXTINF {:.3} rounds above TARGETDURATION {td}",
                    s.msn, s.uri, s.duration
                ),
            ));
        }
    }
}

/// The EXT-X-VERSION the features of a media playlist need (section 8),
/// with the reason for the highest one.
pub fn required_version(pl: &MediaPlaylist) -> (u64, &'static str) {
    let f = &pl.features;
    let mut need = (1, "");
    let mut up = |v: u64, why: &'static str, used: bool| {
        if used && v > need.0 {
            need = (v, why);
        }
    };
    up(2, "the IV attribute of EXT-X-KEY", f.key_iv);
    up(3, "floating-point EXTINF durations", f.float_extinf);
    up(4, "EXT-X-BYTERANGE / BYTERANGE", f.byterange);
    up(4, "EXT-X-I-FRAMES-ONLY", pl.i_frames_only);
    up(5, "KEYFORMAT / KEYFORMATVERSIONS", f.key_format);
    up(5, "METHOD=SAMPLE-AES", f.sample_aes);
    up(5, "EXT-X-MAP", f.map);
    up(
        6,
        "EXT-X-MAP without EXT-X-I-FRAMES-ONLY",
        f.map && !pl.i_frames_only,
    );
    up(8, "EXT-X-DEFINE", f.define);
    up(9, "EXT-X-SKIP", f.skip);
    up(10, "EXT-X-SKIP replacing date ranges", f.skip_dateranges);
    up(11, "EXT-X-DEFINE with QUERYPARAM", f.define_queryparam);
    up(12, "an attribute starting with REQ-", f.req_attribute);
    need
}

/// Rule 13 (section 8): EXT-X-VERSION not lower than needed.
pub fn version(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    let (need, why) = required_version(pl);
    let have = pl.version.unwrap_or(1);
    if have < need {
        out.push(Issue::new(
            &VERSION_TOO_LOW,
            format!("{have}<{need}"),
            format!("EXT-X-VERSION is {have} (absent means 1) but {why} needs {need}"),
        ));
    }
}

/// Rule 7 within one revision: consecutive segments' dates.
pub fn pdt_within(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    // (expected PDT of the next segment, PDT of the previous segment)
    let mut expect: Option<(f64, i64)> = None;
    let metas = pl
        .segments
        .iter()
        .map(|s| (s.msn, &s.meta, Some(s.duration)))
        .chain(pl.pending.iter().map(|p| (p.msn, &p.meta, None)));
    for (msn, meta, duration) in metas {
        if meta.discontinuity {
            expect = None;
        }
        match (meta.pdt_ms, expect) {
            (Some(pdt), Some((want, prev))) => {
                if pdt < prev {
                    out.push(Issue::new(
                        &PDT_BACKWARDS,
                        format!("msn {msn}"),
                        format!(
                            "msn {msn}: PROGRAM-DATE-TIME is {} ms before the previous segment's",
                            prev - pdt
                        ),
                    ));
                }
                let off = pdt as f64 - want;
                if off.abs() > 1.0 + EPS {
                    out.push(Issue::new(
                        &PDT_NOT_CONTINUOUS,
                        format!("msn {msn}"),
                        format!("msn {msn}: PROGRAM-DATE-TIME is {off:+.0} ms off the previous PDT + EXTINF"),
                    ));
                }
                expect = duration.map(|d| (pdt as f64 + d * 1000.0, pdt));
            }
            (Some(pdt), None) => expect = duration.map(|d| (pdt as f64 + d * 1000.0, pdt)),
            (None, Some((want, prev))) => expect = duration.map(|d| (want + d * 1000.0, prev)),
            (None, None) => {}
        }
    }
}

/// Rule 3 at playlist level: EXTINF = sum of parts, byte-range parts tile
/// their segment.
pub fn parts_vs_segments(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    for s in pl.segments.iter().filter(|s| !s.parts.is_empty()) {
        let sum: f64 = s.parts.iter().map(|p| p.duration).sum();
        if (sum - s.duration).abs() > 0.001 + EPS {
            out.push(Issue::new(
                &EXTINF_PARTS_MISMATCH,
                format!("msn {}", s.msn),
                format!(
                    "msn {}: EXTINF {:.3} but its parts add up to {sum:.3}",
                    s.msn, s.duration
                ),
            ));
        }
        let start = s.byterange.map(|r| r.offset).unwrap_or(0);
        tiling(s.msn, &s.parts, Some((s.uri.as_str(), start)), out);
    }
    if let Some(pe) = &pl.pending {
        tiling(pe.msn, &pe.parts, None, out);
    }
}

/// Each byte-range part starts where the previous one of the same URI
/// ended; the first one at the segment's own start when it is a range of
/// the segment's URI.
fn tiling(msn: u64, parts: &[Part], start: Option<(&str, u64)>, out: &mut Vec<Issue>) {
    let mut expect: Option<(&str, u64)> = start;
    for (i, p) in parts.iter().enumerate() {
        let Some(r) = p.byterange else {
            expect = None;
            continue;
        };
        let want = match expect {
            Some((uri, end)) if uri == p.uri => end,
            _ => r.offset,
        };
        if r.offset != want {
            out.push(Issue::new(
                &PARTS_NOT_TILING,
                format!("msn {msn} part {i}"),
                format!("msn {msn} part {i} ({}): BYTERANGE starts at {} but the previous part ended at {want}", p.uri, r.offset),
            ));
        }
        expect = Some((&p.uri, r.end()));
    }
}

/// Rule 8 at playlist level: hints with ENDLIST, several of one TYPE.
pub fn hints(pl: &MediaPlaylist, out: &mut Vec<Issue>) {
    if pl.endlist && !pl.hints.is_empty() {
        out.push(Issue::new(
            &HINT_WITH_ENDLIST,
            "endlist",
            "EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST",
        ));
    }
    for kind in ["PART", "MAP"] {
        let n = pl.hints.iter().filter(|h| h.kind == kind).count();
        if n > 1 {
            out.push(Issue::new(
                &HINT_DUPLICATE_TYPE,
                kind,
                format!("{n} EXT-X-PRELOAD-HINT tags of TYPE={kind}"),
            ));
        }
    }
}

/// Rule 13: every URI of the playlist resolves against its own URL.
pub fn uris(pl: &MediaPlaylist, base: &Url) -> Vec<Issue> {
    let mut out = Vec::new();
    let mut check = |what: &str, uri: &str| {
        if uri.is_empty() || base.join(uri).is_err() {
            out.push(Issue::new(
                &SYNTAX_URI,
                format!("{what} {uri}"),
                format!("{what} URI {uri:?} does not resolve"),
            ));
        }
    };
    for s in &pl.segments {
        check("segment", &s.uri);
        if let Some(m) = &s.meta.map {
            check("EXT-X-MAP", &m.uri);
        }
    }
    for (_, p, _, _) in pl.parts() {
        check("part", &p.uri);
    }
    for h in &pl.hints {
        check("preload hint", &h.uri);
    }
    for r in &pl.reports {
        check("rendition report", &r.uri);
    }
    out
}

#[cfg(test)]
#[path = "playlist_tests.rs"]
mod tests;
