//! Rules 2, 3 and the media half of 5: what the bytes of a part or segment
//! say against what the playlist says about them. Format-specific parsing
//! (`media::mp4`, `media::ts`) is reduced to [`Facts`] first.

use std::collections::BTreeMap;

use super::ids::TIMELINE_JUMP;
use super::ids_media::*;
use crate::findings::Issue;
use crate::m3u8::Part;
use crate::media::decode::Decoded;
use crate::media::mp4::{InitInfo, MediaInfo};
use crate::media::ts::TsScan;

/// Timing of one track in a part or segment (fMP4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackSpan {
    pub first: u64,
    pub end: u64,
    pub timescale: u32,
}

/// Format-independent facts about one part or segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// Whether the first video sample (TS: the first video PES) is a sync sample.
    pub first_sync: Option<bool>,
    pub any_sync: bool,
    /// Duration of the main (video) track in seconds.
    pub duration: Option<f64>,
    pub video_samples: Option<u64>,
    pub spans: BTreeMap<u32, TrackSpan>,
}

/// Facts of an fMP4 part or segment.
pub fn facts_fmp4(m: &MediaInfo, init: &InitInfo) -> Facts {
    let mut f = Facts::default();
    for (id, t) in &m.tracks {
        let Some(track) = init.track(*id) else {
            continue;
        };
        if let (Some(first), Some(end)) = (t.first_tfdt, t.end) {
            f.spans.insert(
                *id,
                TrackSpan {
                    first,
                    end,
                    timescale: track.timescale,
                },
            );
        }
    }
    if let Some(main) = init.main_track() {
        if let Some(t) = m.tracks.get(&main.id) {
            f.first_sync = t.first_sync;
            f.any_sync = t.any_sync;
            f.duration = Some(t.duration as f64 / f64::from(main.timescale));
            f.video_samples = (main.handler == "vide").then_some(t.samples);
        }
    }
    f
}

/// Facts of an MPEG-TS part or segment.
pub fn facts_ts(s: &TsScan) -> Facts {
    Facts {
        first_sync: s.first_video_sync,
        any_sync: s.any_video_sync,
        ..Default::default()
    }
}

/// Rule 2: INDEPENDENT=YES exactly where a part starts with a sync sample.
/// A segment whose first part is not independent is a warning (legal, but
/// clients cannot start or switch there), an error with
/// EXT-X-INDEPENDENT-SEGMENTS.
pub fn independent(
    key: &str,
    part: &Part,
    f: &Facts,
    first_of_segment: bool,
    independent_segments: bool,
) -> Vec<Issue> {
    let mut out = Vec::new();
    let Some(first) = f.first_sync else {
        return out;
    };
    let what = format!("{key} ({})", part.uri);
    if part.independent && !f.any_sync {
        out.push(Issue::new(
            &INDEPENDENT_WITHOUT_KEYFRAME,
            key,
            format!("{what}: INDEPENDENT=YES but no sync sample in it"),
        ));
    } else if part.independent && !first {
        out.push(Issue::new(
            &INDEPENDENT_NOT_FIRST,
            key,
            format!("{what}: INDEPENDENT=YES but its first video sample is not a sync sample"),
        ));
    }
    if !part.independent && first {
        out.push(Issue::new(
            &KEYFRAME_NOT_INDEPENDENT,
            key,
            format!("{what}: starts with a sync sample but lacks INDEPENDENT=YES"),
        ));
    }
    if first_of_segment && !part.independent {
        out.push(Issue::new(
            &SEGMENT_START_NOT_INDEPENDENT,
            key,
            format!("{what}: the first part of its segment is not INDEPENDENT=YES"),
        ));
    }
    if first_of_segment && independent_segments && !first {
        out.push(Issue::new(&INDEPENDENT_SEGMENTS_VIOLATED, key, format!("{what}: EXT-X-INDEPENDENT-SEGMENTS but the segment does not start with a sync sample")));
    }
    out
}

/// Rule 3: a part's DURATION against its media (1 ms).
pub fn part_duration(key: &str, part: &Part, f: &Facts) -> Vec<Issue> {
    match f.duration {
        Some(d) if (d - part.duration).abs() > 0.001 + 1e-9 => vec![Issue::new(
            &PART_DURATION_MISMATCH,
            key,
            format!(
                "{key} ({}): DURATION {:.3} but its samples last {d:.4} s",
                part.uri, part.duration
            ),
        )],
        _ => Vec::new(),
    }
}

/// Rule 3: a segment's EXTINF against its media (1 ms).
pub fn segment_duration(key: &str, extinf: f64, f: &Facts) -> Vec<Issue> {
    match f.duration {
        Some(d) if (d - extinf).abs() > 0.001 + 1e-9 => vec![Issue::new(
            &EXTINF_MEDIA_MISMATCH,
            key,
            format!("{key}: EXTINF {extinf:.3} but its samples last {d:.4} s"),
        )],
        _ => Vec::new(),
    }
}

/// Rule 3: a segment's bytes are its parts' bytes.
pub fn concat(key: &str, segment: &[u8], parts: &[u8]) -> Vec<Issue> {
    if segment == parts {
        return Vec::new();
    }
    let at = segment
        .iter()
        .zip(parts)
        .position(|(a, b)| a != b)
        .unwrap_or(segment.len().min(parts.len()));
    vec![Issue::new(
        &SEGMENT_NOT_PARTS,
        key,
        format!(
            "{key}: {} bytes, its parts {} bytes, first difference at byte {at}",
            segment.len(),
            parts.len()
        ),
    )]
}

/// Rule 3 (MPEG-TS): packets, and PAT + PMT at the start unless EXT-X-MAP.
pub fn ts_start(key: &str, s: &TsScan, has_map: bool) -> Vec<Issue> {
    let mut out = Vec::new();
    if !s.aligned {
        out.push(Issue::new(
            &TS_SYNC,
            key,
            format!("{key}: not whole 188-byte packets starting with 0x47"),
        ));
    }
    if !has_map && !s.starts_with_pat_pmt {
        out.push(Issue::new(
            &TS_NO_PAT_PMT,
            key,
            format!("{key}: does not start with PAT + PMT and no EXT-X-MAP applies"),
        ));
    }
    out
}

/// Rule 3: ffmpeg's verdict; `expected_frames` with its tolerance.
pub fn decoded(key: &str, d: &Decoded, expected_frames: Option<(u64, u64)>) -> Vec<Issue> {
    let mut out = Vec::new();
    if !d.errors.is_empty() || !d.exit_ok {
        let first = d
            .errors
            .first()
            .cloned()
            .unwrap_or_else(|| "ffmpeg failed".into());
        out.push(Issue::new(
            &DECODE_ERROR,
            key,
            format!(
                "{key}: {} decoder error line(s), first: {first}",
                d.errors.len()
            ),
        ));
    }
    if let (Some(got), Some((want, tol))) = (d.video_frames, expected_frames) {
        if got.abs_diff(want) > tol {
            out.push(Issue::new(
                &DECODE_FRAMES,
                key,
                format!("{key}: decoded {got} video frames, expected {want}"),
            ));
        }
    }
    out
}

/// The media timeline of one chain (parts, or whole segments): each
/// fragment starts where the previous one ended (rules 3 and 5).
#[derive(Debug, Default)]
pub struct Timeline {
    ends: BTreeMap<u32, (u64, u32, String)>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the previous end (a part or segment was missed).
    pub fn reset(&mut self) {
        self.ends.clear();
    }

    /// Checks `f` against the previous fragment; `discontinuity` when an
    /// EXT-X-DISCONTINUITY applies; `init` names the init section used.
    pub fn check(&mut self, key: &str, f: &Facts, discontinuity: bool, init: &str) -> Vec<Issue> {
        let mut out = Vec::new();
        for (id, span) in &f.spans {
            if let Some((end, ts, prev_init)) = self.ends.get(id) {
                if !discontinuity && *ts == span.timescale && span.first != *end {
                    let diff = span.first as i128 - *end as i128;
                    let secs = diff as f64 / f64::from(span.timescale);
                    let changed_init = prev_init != init;
                    let jump = diff < 0 || secs.abs() > 1.0 || changed_init;
                    let (rule, what) = if jump {
                        (&TIMELINE_JUMP, "jumps")
                    } else {
                        (&TFDT_NOT_CONTIGUOUS, "is off")
                    };
                    out.push(Issue::new(
                        rule,
                        format!("{key} track {id}"),
                        format!(
                            "{key} track {id}: tfdt {} {what} by {secs:+.4} s from the previous end {end}{} without EXT-X-DISCONTINUITY",
                            span.first,
                            if changed_init { " (new init section)" } else { "" }
                        ),
                    ));
                }
            }
        }
        if discontinuity {
            self.ends.clear();
        }
        for (id, span) in &f.spans {
            self.ends
                .insert(*id, (span.end, span.timescale, init.to_string()));
        }
        out
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
