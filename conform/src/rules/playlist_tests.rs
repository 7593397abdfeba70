use super::*;
use crate::m3u8::media;

fn ids_of(body: &str) -> Vec<&'static str> {
    let (pl, _) = media::parse(body.as_bytes());
    check(&pl).iter().map(|i| i.rule.id).collect()
}

const HEAD: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-PART-INF:PART-TARGET=0.5\n";

#[test]
fn a_clean_ll_playlist_has_no_issue() {
    let body = format!(
        "{HEAD}#EXT-X-PART:DURATION=0.5,URI=\"a0\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.5,URI=\"a1\"\n\
#EXT-X-PART:DURATION=0.5,URI=\"a2\"\n#EXT-X-PART:DURATION=0.2,URI=\"a3\"\n#EXTINF:1.700,\na.ts\n\
#EXT-X-PART:DURATION=0.5,URI=\"b0\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.1,URI=\"b1\"\n"
    );
    assert_eq!(ids_of(&body), Vec::<&str>::new());
}

#[test]
fn part_durations_over_target_and_under_85_percent() {
    let body = format!(
        "{HEAD}#EXT-X-PART:DURATION=0.51,URI=\"a0\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.4,URI=\"a1\"\n\
#EXT-X-PART:DURATION=0.2,URI=\"a2\"\n#EXTINF:1.110,\na.ts\n"
    );
    let ids = ids_of(&body);
    assert_eq!(ids.iter().filter(|i| **i == "part-over-target").count(), 1);
    assert_eq!(
        ids.iter().filter(|i| **i == "part-under-85pct").count(),
        1,
        "{ids:?}"
    );
}

#[test]
fn gap_and_before_gap_parts_are_exempt() {
    let body = format!(
        "{HEAD}#EXT-X-PART:DURATION=0.2,URI=\"a0\"\n#EXT-X-PART:DURATION=0.2,URI=\"a1\",GAP=YES\n\
#EXT-X-PART:DURATION=0.5,URI=\"a2\"\n#EXTINF:0.900,\na.ts\n"
    );
    assert!(!ids_of(&body).contains(&"part-under-85pct"));
}

#[test]
fn hold_backs() {
    let ids = ids_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n");
    assert!(ids.contains(&"part-hold-back-missing"));
    let ids = ids_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=0.9,HOLD-BACK=5\n#EXT-X-PART-INF:PART-TARGET=0.5\n",
    );
    assert!(ids.contains(&"part-hold-back-below-2x"));
    assert!(ids.contains(&"hold-back-below-3x"));
    let ids = ids_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1.2\n#EXT-X-PART-INF:PART-TARGET=0.5\n");
    assert_eq!(ids, vec!["part-hold-back-below-3x"]);
}

#[test]
fn extinf_rounding_against_target_duration() {
    let ok = ids_of("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.499,\na.ts\n");
    assert!(ok.is_empty(), "{ok:?}");
    let bad = ids_of("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.5,\na.ts\n");
    assert_eq!(bad, vec!["extinf-over-target"]);
}

#[test]
fn version_requirements() {
    let ids = ids_of("#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:2.0,\na.m4s\n");
    assert_eq!(ids, vec!["version-too-low"]);
    let ids = ids_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n");
    assert!(ids.is_empty(), "integer EXTINF needs no version: {ids:?}");
    let ids = ids_of(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=12\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n#EXTINF:2.0,\na.ts\n",
    );
    assert_eq!(ids, vec!["version-too-low"]);
    let (pl, _) = media::parse(
        b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-BYTERANGE:10@0\n#EXTINF:2,\na.ts\n",
    );
    assert_eq!(required_version(&pl).0, 4);
}

#[test]
fn can_skip_until_and_skip_without_it() {
    let ids = ids_of("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=6\n");
    assert_eq!(ids, vec!["can-skip-until-below-6x"]);
    let ids = ids_of(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
    );
    assert_eq!(ids, vec!["skip-without-can-skip-until"]);
}

#[test]
fn program_date_time_continuity() {
    let body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n#EXTINF:2.000,\na.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.001Z\n#EXTINF:2.000,\nb.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.010Z\n#EXTINF:2.000,\nc.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:03.000Z\n#EXTINF:2.000,\nd.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z\n#EXTINF:2.000,\ne.ts\n";
    let (pl, _) = media::parse(body.as_bytes());
    let mut out = Vec::new();
    pdt_within(&pl, &mut out);
    let keys: Vec<_> = out.iter().map(|i| (i.rule.id, i.key.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            ("pdt-not-continuous", "msn 2"),
            ("pdt-backwards", "msn 3"),
            ("pdt-not-continuous", "msn 3"),
        ]
    );
}

#[test]
fn extinf_against_parts_and_byterange_tiling() {
    let body = format!(
        "{HEAD}#EXT-X-PART:DURATION=0.5,URI=\"a.ts\",BYTERANGE=\"100@0\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.5,URI=\"a.ts\",BYTERANGE=\"100@150\"\n#EXTINF:1.002,\na.ts\n"
    );
    let ids = ids_of(&body);
    assert!(ids.contains(&"extinf-parts-mismatch"), "{ids:?}");
    assert!(ids.contains(&"parts-byterange-not-contiguous"), "{ids:?}");
}

#[test]
fn hints_with_endlist_and_duplicates() {
    let body = format!(
        "{HEAD}#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"y\"\n#EXT-X-ENDLIST\n"
    );
    let ids = ids_of(&body);
    assert!(ids.contains(&"hint-with-endlist"));
    assert!(ids.contains(&"hint-duplicate-type"));
}

#[test]
fn uris_must_resolve() {
    let (pl, _) = media::parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nhttp://[bad\n");
    let base = Url::parse("http://h/s/index.m3u8").unwrap();
    assert_eq!(uris(&pl, &base).len(), 1);
}

#[test]
fn parts_kept_beyond_three_target_durations() {
    let mut body = HEAD.to_string();
    for m in 0..5 {
        body += &format!("#EXT-X-PART:DURATION=0.5,URI=\"p{m}\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.5,URI=\"q{m}\"\n#EXTINF:1.000,\ns{m}\n");
    }
    body += "#EXT-X-PART:DURATION=0.5,URI=\"p5\",INDEPENDENT=YES\n";
    let (pl, _) = media::parse(body.as_bytes());
    let mut out = Vec::new();
    part_retention(&pl, &mut out);
    // TD 2: 6 s limit; segment 0 has 4.5 s after it: fine.
    assert!(out.is_empty());
    let body = body.replace("TARGETDURATION:2", "TARGETDURATION:1");
    let (pl, _) = media::parse(body.as_bytes());
    part_retention(&pl, &mut out);
    let keys: Vec<_> = out.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, vec!["msn 0", "msn 1"]);
}
