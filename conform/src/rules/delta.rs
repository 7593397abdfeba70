//! Rule 10: Playlist Delta Updates (6.2.5.1, 4.4.5.2). A delta answer plus
//! the segments the client already has must be the full playlist fetched at
//! the same time, and only segments beyond the Skip Boundary may be skipped.

use super::history::History;
use super::ids::*;
use crate::findings::Issue;
use crate::m3u8::MediaPlaylist;

/// The outcome of one comparison.
#[derive(Debug, Default, PartialEq)]
pub struct DeltaCheck {
    pub issues: Vec<Issue>,
    /// Whether the reconstruction could be compared (the skipped segments
    /// were all known from earlier revisions).
    pub verified: bool,
}

/// Seconds from the start of segment `msn` to the end of the last
/// complete segment, given each segment's duration.
fn from_start_to_end(durations: &[(u64, f64)], msn: u64) -> f64 {
    durations
        .iter()
        .filter(|(m, _)| *m >= msn)
        .map(|(_, d)| d)
        .sum()
}

/// Compares `delta` (answer to `_HLS_skip=YES`) with `full` (fetched at the
/// same time), the skipped segments coming from `history`.
pub fn check(delta: &MediaPlaylist, full: &MediaPlaylist, history: &History) -> DeltaCheck {
    let mut out = DeltaCheck::default();
    let Some(csu) = full.server_control.can_skip_until else {
        return out;
    };
    let Some(skipped) = delta.skipped_segments else {
        let durations: Vec<(u64, f64)> =
            full.segments.iter().map(|s| (s.msn, s.duration)).collect();
        let skippable = full
            .segments
            .first()
            .is_some_and(|s| from_start_to_end(&durations, s.msn) > csu + 0.001);
        if skippable && !full.endlist {
            out.issues.push(Issue::new(
                &DELTA_NOT_PROVIDED,
                "no-skip",
                format!("_HLS_skip=YES answered with a full playlist although {:.1} s of segments lie beyond CAN-SKIP-UNTIL={csu}", full.duration() - csu),
            ));
        }
        return out;
    };
    // Reconstruct: (msn, uri, duration) of every segment of the delta.
    let first = delta.media_sequence;
    let mut rebuilt: Vec<(u64, String, f64)> = Vec::new();
    for msn in first..first.saturating_add(skipped) {
        match history.segment(msn) {
            Some(r) => rebuilt.push((msn, r.uri.clone(), r.duration)),
            None => return out,
        }
        if rebuilt.len() > 100_000 {
            return out;
        }
    }
    rebuilt.extend(
        delta
            .segments
            .iter()
            .map(|s| (s.msn, s.uri.clone(), s.duration)),
    );
    out.verified = true;
    let mut diffs = Vec::new();
    for s in &full.segments {
        if let Some((_, uri, d)) = rebuilt.iter().find(|r| r.0 == s.msn) {
            if *uri != s.uri || (d - s.duration).abs() > 1e-6 {
                diffs.push(format!(
                    "msn {}: {uri} {d:.3} vs full {} {:.3}",
                    s.msn, s.uri, s.duration
                ));
            }
        } else if s.msn >= first && s.msn < delta.next_msn() {
            diffs.push(format!("msn {} missing from the reconstruction", s.msn));
        }
        if let Some(d) = delta.segment(s.msn) {
            if d.parts != s.parts {
                diffs.push(format!("msn {}: parts differ", s.msn));
            }
        }
    }
    let same_revision =
        delta.media_sequence == full.media_sequence && delta.next_part() == full.next_part();
    if same_revision && rebuilt.len() != full.segments.len() {
        diffs.push(format!(
            "{} segments reconstructed, the full playlist has {}",
            rebuilt.len(),
            full.segments.len()
        ));
    }
    if same_revision && delta.discontinuity_sequence != full.discontinuity_sequence {
        diffs.push("DISCONTINUITY-SEQUENCE differs".into());
    }
    if !diffs.is_empty() {
        out.issues.push(Issue::new(
            &DELTA_MISMATCH,
            diffs[0].clone(),
            format!(
                "delta update (SKIPPED-SEGMENTS={skipped}) does not rebuild the full playlist: {}",
                diffs.join("; ")
            ),
        ));
    }
    if skipped > 0 {
        let durations: Vec<(u64, f64)> = rebuilt.iter().map(|r| (r.0, r.2)).collect();
        let last_skipped = first.saturating_add(skipped) - 1;
        let dist = from_start_to_end(&durations, last_skipped);
        if dist < csu - 0.001 {
            out.issues.push(Issue::new(
                &DELTA_SKIPPED_RECENT,
                format!("msn {last_skipped}"),
                format!("skipped msn {last_skipped}, which starts {dist:.3} s from the end (< CAN-SKIP-UNTIL {csu})"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::m3u8::media;

    fn full(first: u64, n: u64) -> String {
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12.0\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
        );
        for m in first..first + n {
            s += &format!("#EXTINF:2.000,\ns{m}.ts\n");
        }
        s
    }

    fn delta(first: u64, n: u64, skip: u64) -> String {
        full(first, n)
            .replacen(
                "#EXTINF",
                &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skip}\n#EXTINF"),
                1,
            )
            .split('\n')
            .scan(0u64, |seen, line| {
                // Drop the EXTINF/URI pairs of the first `skip` segments.
                if line.starts_with("#EXTINF") || line.ends_with(".ts") {
                    *seen += 1;
                    if *seen <= 2 * skip {
                        return Some(String::new());
                    }
                }
                Some(format!("{line}\n"))
            })
            .collect()
    }

    fn run(h: &History, d: &str, f: &str) -> (Vec<&'static str>, bool) {
        let (d, _) = media::parse(d.as_bytes());
        let (f, _) = media::parse(f.as_bytes());
        let r = check(&d, &f, h);
        (r.issues.iter().map(|i| i.rule.id).collect(), r.verified)
    }

    #[test]
    fn a_correct_delta_rebuilds_the_playlist() {
        let mut h = History::new();
        h.absorb(&media::parse(full(10, 10).as_bytes()).0);
        assert_eq!(run(&h, &delta(10, 10, 3), &full(10, 10)), (vec![], true));
    }

    #[test]
    fn wrong_deltas() {
        let mut h = History::new();
        h.absorb(&media::parse(full(10, 10).as_bytes()).0);
        let (ids, _) = run(
            &h,
            &delta(10, 10, 3).replace("s15.ts", "x.ts"),
            &full(10, 10),
        );
        assert_eq!(ids, vec!["delta-mismatch"]);
        let (ids, _) = run(&h, &delta(10, 10, 6), &full(10, 10));
        assert_eq!(ids, vec!["delta-skipped-inside-boundary"]);
        let (ids, _) = run(&h, &full(10, 10), &full(10, 10));
        assert_eq!(ids, vec!["delta-not-provided"]);
        let (ids, verified) = run(&History::new(), &delta(10, 10, 3), &full(10, 10));
        assert_eq!((ids, verified), (vec![], false));
    }
}
