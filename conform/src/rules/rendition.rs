//! Rule 11: rendition reports (4.4.5.4) against the sibling playlists.

use url::Url;

use super::ids_media::*;
use crate::findings::Issue;
use crate::m3u8::{MediaPlaylist, Pos, RenditionReport};

/// What LAST-MSN / LAST-PART should say about `pl` (4.4.5.4: with parts,
/// the MSN of the last part and its index).
pub fn last_position(pl: &MediaPlaylist) -> (u64, Option<u64>) {
    match pl.last_part() {
        Some(p) => (p.msn, Some(p.part)),
        None => (pl.last_msn().unwrap_or(pl.media_sequence), None),
    }
}

/// Seconds of media in `pl` after position `pos` (`part` None: after the
/// whole segment `msn`).
pub fn seconds_after(pl: &MediaPlaylist, msn: u64, part: Option<u64>) -> f64 {
    let parts_after = |parts: &[crate::m3u8::Part]| -> f64 {
        match part {
            Some(n) => parts
                .iter()
                .skip((n as usize).saturating_add(1))
                .map(|p| p.duration)
                .sum(),
            None => 0.0,
        }
    };
    let mut total = 0.0;
    for s in &pl.segments {
        if s.msn > msn {
            total += s.duration;
        } else if s.msn == msn {
            total += parts_after(&s.parts);
        }
    }
    if let Some(pe) = &pl.pending {
        if pe.msn > msn {
            total += pe.parts.iter().map(|p| p.duration).sum::<f64>();
        } else if pe.msn == msn {
            total += parts_after(&pe.parts);
        }
    }
    total
}

/// Checks one report against the sibling's own playlist fetched right after
/// the report was received. Omitted attributes take the containing
/// playlist's own values (4.4.5.4).
pub fn check(
    r: &RenditionReport,
    own: &MediaPlaylist,
    sibling: &MediaPlaylist,
    name: &str,
) -> Vec<Issue> {
    let mut out = Vec::new();
    let (own_msn, own_part) = last_position(own);
    let msn = r.last_msn.unwrap_or(own_msn);
    let part = r
        .last_part
        .or(if r.last_msn.is_none() { own_part } else { None });
    let (sib_msn, sib_part) = last_position(sibling);
    if part.is_none() && sib_part.is_some() {
        out.push(Issue::new(
            &REPORT_NO_LAST_PART,
            name,
            format!("report for {name} has LAST-MSN={msn} but no LAST-PART, and {name} has parts"),
        ));
    }
    let reported = Pos {
        msn,
        part: part.unwrap_or(u64::MAX),
    };
    let actual = Pos {
        msn: sib_msn,
        part: sib_part.unwrap_or(u64::MAX),
    };
    if reported > actual {
        out.push(Issue::new(
            &REPORT_AHEAD,
            name,
            format!("report says {name} is at msn {msn} part {part:?}, its playlist fetched afterwards ends at msn {sib_msn} part {sib_part:?}"),
        ));
        return out;
    }
    let behind = seconds_after(sibling, msn, part);
    let slack = sibling.part_target.unwrap_or(0.0) + sibling.target_duration.unwrap_or(0) as f64;
    if behind > slack + 0.001 {
        out.push(Issue::new(
            &REPORT_BEHIND,
            name,
            format!("report says {name} is at msn {msn} part {part:?}, {behind:.3} s behind its playlist (msn {sib_msn} part {sib_part:?}; slack {slack:.2} s)"),
        ));
    }
    out
}

/// The report's URI must name a sibling (another media playlist of the
/// multivariant playlist).
pub fn sibling(report_url: &Url, own: &Url, siblings: &[Url]) -> Option<Issue> {
    if report_url == own {
        return Some(Issue::new(
            &REPORT_UNKNOWN_URI,
            report_url.as_str(),
            format!("a rendition report names the playlist itself ({report_url})"),
        ));
    }
    (!siblings.contains(report_url)).then(|| {
        Issue::new(
            &REPORT_UNKNOWN_URI,
            report_url.as_str(),
            format!(
                "rendition report URI {report_url} is not a playlist of the multivariant playlist"
            ),
        )
    })
}

/// Siblings without a report in an LL playlist.
pub fn missing(own: &Url, reported: &[Url], siblings: &[Url]) -> Vec<Issue> {
    siblings
        .iter()
        .filter(|s| *s != own && !reported.contains(s))
        .map(|s| {
            Issue::new(
                &REPORT_MISSING,
                s.as_str(),
                format!("no EXT-X-RENDITION-REPORT for sibling {s}"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::m3u8::media;

    fn pl(pending: usize) -> MediaPlaylist {
        let mut s = String::from(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXTINF:2.0,\ns10\n#EXT-X-PART:DURATION=0.5,URI=\"a\"\n#EXT-X-PART:DURATION=0.5,URI=\"b\"\n#EXTINF:1.0,\ns11\n",
        );
        for i in 0..pending {
            s += &format!("#EXT-X-PART:DURATION=0.5,URI=\"c{i}\"\n");
        }
        media::parse(s.as_bytes()).0
    }

    fn rep(msn: Option<u64>, part: Option<u64>) -> RenditionReport {
        RenditionReport {
            uri: "../b/index.m3u8".into(),
            last_msn: msn,
            last_part: part,
        }
    }

    fn ids(v: Vec<Issue>) -> Vec<&'static str> {
        v.iter().map(|i| i.rule.id).collect()
    }

    #[test]
    fn positions() {
        assert_eq!(last_position(&pl(0)), (11, Some(1)));
        assert_eq!(last_position(&pl(2)), (12, Some(1)));
        assert_eq!(seconds_after(&pl(2), 11, Some(0)), 1.5);
    }

    #[test]
    fn reports_against_the_sibling() {
        let own = pl(2);
        assert!(check(&rep(Some(12), Some(1)), &own, &pl(2), "b").is_empty());
        assert!(
            check(&rep(Some(12), Some(0)), &own, &pl(2), "b").is_empty(),
            "one part behind"
        );
        assert!(
            check(&rep(None, None), &own, &pl(2), "b").is_empty(),
            "omitted: same as own"
        );
        assert_eq!(
            ids(check(&rep(Some(12), Some(2)), &own, &pl(2), "b")),
            vec!["rendition-report-ahead"]
        );
        assert_eq!(
            ids(check(&rep(Some(12), None), &own, &pl(2), "b")),
            vec!["rendition-report-no-last-part", "rendition-report-ahead"]
        );
        assert_eq!(
            ids(check(&rep(Some(9), Some(0)), &own, &pl(2), "b")),
            vec!["rendition-report-behind"]
        );
    }

    #[test]
    fn uris() {
        let u = |s: &str| Url::parse(s).unwrap();
        let sibs = [u("http://h/a/index.m3u8"), u("http://h/b/index.m3u8")];
        assert!(sibling(&u("http://h/b/index.m3u8"), &sibs[0], &sibs).is_none());
        assert!(sibling(&u("http://h/a/index.m3u8"), &sibs[0], &sibs).is_some());
        assert!(sibling(&u("http://h/c/index.m3u8"), &sibs[0], &sibs).is_some());
        assert_eq!(missing(&sibs[0], &[], &sibs).len(), 1);
    }
}
