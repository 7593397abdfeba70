//! Rule 12: the multivariant playlist against what its variants carry
//! (4.4.6.2, 6.2.4).

use serde::Serialize;

use super::ids_media::*;
use crate::findings::Issue;
use crate::m3u8::master::Variant;
use crate::m3u8::ServerControl;

/// What the checker measured on one variant during the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observed {
    /// RFC 6381 codecs of the media (init section or MPEG-TS elementary streams).
    pub codecs: Vec<String>,
    /// Video size from the SPS (cropped), else the sample entry.
    pub size: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// Peak segment bit rate (bits/s) over runs of 0.5-1.5 target durations.
    pub peak_bps: Option<f64>,
    pub average_bps: Option<f64>,
    pub segments: usize,
}

/// Peak and average segment bit rate of `(msn, bytes, duration)` segments
/// (4.4.6.2: the peak over any contiguous run lasting 0.5-1.5 x TD).
pub fn bit_rates(segments: &[(u64, u64, f64)], td: f64) -> (Option<f64>, Option<f64>) {
    let mut peak: Option<f64> = None;
    for i in 0..segments.len() {
        let (mut bytes, mut dur) = (0u64, 0.0);
        for j in i..segments.len() {
            if j > i && segments[j].0 != segments[j - 1].0.saturating_add(1) {
                break;
            }
            bytes += segments[j].1;
            dur += segments[j].2;
            if dur > 1.5 * td + 1e-9 {
                break;
            }
            if dur >= 0.5 * td - 1e-9 && dur > 0.0 {
                let r = bytes as f64 * 8.0 / dur;
                peak = Some(peak.map_or(r, |p: f64| p.max(r)));
            }
        }
    }
    let (b, d) = segments
        .iter()
        .fold((0u64, 0.0), |(b, d), s| (b + s.1, d + s.2));
    (peak, (d > 0.0).then(|| b as f64 * 8.0 / d))
}

/// The frame rate from video sample durations (their mean: RTMP sources
/// carry millisecond timestamps, so 30 fps alternates 33 and 34 ms) and the
/// timescale.
pub fn frame_rate(durations: &[u32], timescale: u32) -> Option<f64> {
    let d: Vec<u64> = durations
        .iter()
        .filter(|d| **d > 0)
        .map(|d| u64::from(*d))
        .collect();
    if d.is_empty() || timescale == 0 {
        return None;
    }
    let mean = d.iter().sum::<u64>() as f64 / d.len() as f64;
    Some(f64::from(timescale) / mean)
}

fn family(c: &str) -> &str {
    c.split('.').next().unwrap_or(c)
}

/// Checks one EXT-X-STREAM-INF against the media measured on its playlist.
/// `groups`: the variant refers to EXT-X-MEDIA groups (then codecs of
/// other renditions may be declared too).
pub fn check_variant(v: &Variant, o: &Observed, groups: bool) -> Vec<Issue> {
    let mut out = Vec::new();
    let key = v.uri.clone();
    match &v.codecs {
        None => out.push(Issue::new(
            &MASTER_CODECS_MISSING,
            key.clone(),
            format!("{}: EXT-X-STREAM-INF has no CODECS", v.uri),
        )),
        Some(decl) if !o.codecs.is_empty() => {
            let declared: Vec<String> = decl
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            let media: Vec<String> = o.codecs.iter().map(|c| c.to_ascii_lowercase()).collect();
            let mut problems = Vec::new();
            for c in &media {
                if !declared.contains(c) {
                    problems.push(format!("the media has {c}"));
                }
            }
            for c in &declared {
                if !media.contains(c) && (!groups || media.iter().any(|m| family(m) == family(c))) {
                    problems.push(format!("{c} is not in the media"));
                }
            }
            if !problems.is_empty() {
                out.push(Issue::new(
                    &MASTER_CODECS,
                    key.clone(),
                    format!(
                        "{}: CODECS=\"{decl}\" but {} (media: {})",
                        v.uri,
                        problems.join(", "),
                        media.join(",")
                    ),
                ));
            }
        }
        Some(_) => {}
    }
    if let (Some((dw, dh)), Some((w, h))) = (v.resolution, o.size) {
        if (dw, dh) != (w, h) {
            out.push(Issue::new(
                &MASTER_RESOLUTION,
                key.clone(),
                format!("{}: RESOLUTION={dw}x{dh} but the video is {w}x{h}", v.uri),
            ));
        }
    }
    if let (Some(d), Some(f)) = (v.frame_rate, o.frame_rate) {
        if (d - f).abs() > 0.05 {
            out.push(Issue::new(
                &MASTER_FRAME_RATE,
                key.clone(),
                format!(
                    "{}: FRAME-RATE={d:.3} but the video runs at {f:.3} fps",
                    v.uri
                ),
            ));
        }
    }
    if let (Some(bw), Some(peak)) = (v.bandwidth, o.peak_bps) {
        if peak > bw as f64 {
            out.push(Issue::new(
                &MASTER_BANDWIDTH,
                key.clone(),
                format!("{}: BANDWIDTH={bw} but the peak segment bit rate measured over {} segments is {peak:.0} ({:.0} %)", v.uri, o.segments, peak * 100.0 / bw as f64),
            ));
        }
    }
    if let (Some(abw), Some(avg)) = (v.average_bandwidth, o.average_bps) {
        let ratio = avg / abw.max(1) as f64;
        if !(0.5..=1.1).contains(&ratio) {
            out.push(Issue::new(
                &MASTER_AVERAGE_BANDWIDTH,
                key,
                format!(
                    "{}: AVERAGE-BANDWIDTH={abw} but the measured average is {avg:.0} ({:.0} %)",
                    v.uri,
                    ratio * 100.0
                ),
            ));
        }
    }
    out
}

/// 6.2.4: every media playlist has the same TARGETDURATION and
/// EXT-X-SERVER-CONTROL.
pub fn consistency(playlists: &[(String, Option<u64>, ServerControl)]) -> Vec<Issue> {
    let mut out = Vec::new();
    let Some((first, td, sc)) = playlists.first() else {
        return out;
    };
    for (name, t, s) in &playlists[1..] {
        if t != td {
            out.push(Issue::new(
                &VARIANTS_DIFFER,
                format!("td {name}"),
                format!("{name} has TARGETDURATION {t:?}, {first} has {td:?}"),
            ));
        }
        if s != sc {
            out.push(Issue::new(
                &VARIANTS_DIFFER,
                format!("sc {name}"),
                format!("{name} has EXT-X-SERVER-CONTROL {s:?}, {first} has {sc:?}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant() -> Variant {
        Variant {
            uri: "720p/index.m3u8".into(),
            bandwidth: Some(3_000_000),
            average_bandwidth: Some(2_500_000),
            codecs: Some("avc1.64001F,mp4a.40.2".into()),
            resolution: Some((1280, 720)),
            frame_rate: Some(30.0),
            ..Default::default()
        }
    }

    fn observed() -> Observed {
        Observed {
            codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
            size: Some((1280, 720)),
            frame_rate: Some(30.0),
            peak_bps: Some(2_900_000.0),
            average_bps: Some(2_600_000.0),
            segments: 10,
        }
    }

    fn ids(v: Vec<Issue>) -> Vec<&'static str> {
        v.iter().map(|i| i.rule.id).collect()
    }

    #[test]
    fn a_matching_variant_passes() {
        assert!(check_variant(&variant(), &observed(), false).is_empty());
    }

    #[test]
    fn mismatches() {
        let o = Observed {
            codecs: vec!["avc1.4d401f".into(), "mp4a.40.5".into()],
            size: Some((1920, 1080)),
            frame_rate: Some(25.0),
            peak_bps: Some(3_500_000.0),
            average_bps: Some(900_000.0),
            segments: 10,
        };
        assert_eq!(
            ids(check_variant(&variant(), &o, false)),
            vec![
                "master-codecs-mismatch",
                "master-resolution-mismatch",
                "master-frame-rate-mismatch",
                "master-bandwidth-below-peak",
                "master-average-bandwidth-off"
            ]
        );
        let v = Variant {
            codecs: None,
            ..variant()
        };
        assert_eq!(
            ids(check_variant(&v, &observed(), false)),
            vec!["master-codecs-missing"]
        );
    }

    #[test]
    fn bit_rate_windows_and_frame_rate() {
        // TD 2: single 2 s segments qualify, as do pairs of 1 s ones.
        let segs = [
            (1, 250_000, 2.0),
            (2, 500_000, 2.0),
            (3, 100_000, 1.0),
            (4, 300_000, 1.0),
        ];
        let (peak, avg) = bit_rates(&segs, 2.0);
        assert_eq!(peak, Some(2_400_000.0));
        assert_eq!(avg, Some(1_150_000.0 * 8.0 / 6.0));
        assert_eq!(
            frame_rate(&[1000, 1000, 1001, 999, 1000], 30000),
            Some(30.0)
        );
    }
}
