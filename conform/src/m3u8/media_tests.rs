use super::*;
use crate::m3u8::date;

const LL_TS: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.080
#EXT-X-PART-INF:PART-TARGET=0.360
#EXT-X-MEDIA-SEQUENCE:1061
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T17:47:19.779Z
#EXTINF:2.000,
1796579239771.ts
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T17:47:21.777Z
#EXT-X-PART:DURATION=0.333,URI=\"1796579241768.ts\",BYTERANGE=\"13160@0\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.334,URI=\"1796579241768.ts\",BYTERANGE=\"7896\"
#EXTINF:2.000,
1796579241768.ts
#EXT-X-PROGRAM-DATE-TIME:2026-12-06T17:47:23.774Z
#EXT-X-PART:DURATION=0.333,URI=\"1796579243767.ts\",BYTERANGE=\"13912@0\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1796579243767.ts\",BYTERANGE-START=13912
";

#[test]
fn parses_segments_parts_pending_and_hints() {
    let (pl, issues) = parse(LL_TS.as_bytes());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(pl.version, Some(6));
    assert_eq!(pl.target_duration, Some(2));
    assert_eq!(pl.part_target, Some(0.36));
    assert_eq!(pl.server_control.part_hold_back, Some(1.08));
    assert!(pl.server_control.can_block_reload);
    assert_eq!(pl.segments.len(), 2);
    assert_eq!(pl.segments[0].msn, 1061);
    assert_eq!(pl.segments[1].msn, 1062);
    let p = &pl.segments[1].parts;
    assert_eq!(p.len(), 2);
    assert_eq!(
        p[1].byterange,
        Some(Range {
            offset: 13160,
            length: 7896
        }),
        "offset from the previous part"
    );
    assert!(p[0].independent && !p[1].independent);
    let pe = pl.pending.as_ref().unwrap();
    assert_eq!(pe.msn, 1063);
    assert_eq!(pe.meta.pdt_ms, date::parse_ms("2026-12-06T17:47:23.774Z"));
    assert_eq!(pl.next_part(), Pos { msn: 1063, part: 1 });
    assert_eq!(pl.last_part(), Some(Pos { msn: 1063, part: 0 }));
    assert_eq!(pl.hints[0].start, 13912);
    assert!(pl.features.byterange && pl.features.float_extinf);
}

#[test]
fn fmp4_with_map_skip_and_reports() {
    let body = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.2
#EXT-X-PART-INF:PART-TARGET=0.4
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:2.0,
s13.m4s
#EXT-X-DISCONTINUITY
#EXTINF:2.0,
s14.m4s
#EXT-X-PART:DURATION=0.4,URI=\"p1.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=15,LAST-PART=0
";
    let (pl, issues) = parse(body.as_bytes());
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(pl.skipped_segments, Some(3));
    assert_eq!(pl.segments[0].msn, 13, "MSN counts the skipped segments");
    assert_eq!(pl.segments[0].meta.map.as_ref().unwrap().uri, "init.mp4");
    assert_eq!(pl.segments[1].meta.disc_seq, 1);
    assert_eq!(pl.pending.as_ref().unwrap().msn, 15);
    assert_eq!(pl.reports[0].last_msn, Some(15));
    assert!(pl.features.skip && pl.features.map);
}

fn rule_ids(body: &str) -> Vec<&'static str> {
    parse(body.as_bytes()).1.iter().map(|i| i.rule.id).collect()
}

#[test]
fn flags_tags_after_the_first_part_of_their_segment() {
    let ids = rule_ids(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
#EXT-X-PART:DURATION=0.5,URI=\"a\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXTINF:0.5,\nseg\n",
    );
    assert!(ids.contains(&"syntax-tag-placement"), "{ids:?}");
}

#[test]
fn flags_duplicates_unknown_tags_missing_target_and_bad_numbers() {
    let ids = rule_ids(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-VERSION:3\n#EXT-X-FOO\n#EXTINF:+2.0,\nseg.ts\n",
    );
    for id in [
        "syntax-duplicate-tag",
        "syntax-unknown-tag",
        "syntax-missing-required",
        "syntax-value",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
}

#[test]
fn flags_master_tags_and_missing_header() {
    let ids = rule_ids("#EXT-X-TARGETDURATION:2\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n");
    assert!(ids.contains(&"syntax-extm3u"));
    assert!(ids.contains(&"syntax-master-media-mixed"));
}

#[test]
fn part_byterange_without_offset_needs_a_previous_part_of_the_same_uri() {
    let ids = rule_ids(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
#EXT-X-PART:DURATION=0.5,URI=\"a.ts\",BYTERANGE=\"100\"\n",
    );
    assert!(ids.contains(&"syntax-value"), "{ids:?}");
}

#[test]
fn hostile_input_does_not_panic() {
    let samples: [&[u8]; 6] = [
        b"",
        b"\xff\xfe\x00",
        b"#EXTM3U\n#EXT-X-PART:\n#EXT-X-BYTERANGE:@\n#EXTINF:,\n",
        b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\na\n#EXTINF:1,\nb\n",
        b"#EXTM3U\n#EXT-X-PART:URI=\"\xe2\x82\",DURATION=\n",
        b"#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:9999-99-99T99:99:99.9999999999Z\n",
    ];
    for s in samples {
        let _ = parse(s);
    }
}
