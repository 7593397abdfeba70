//! The playlist writer's tests.

use super::*;
use crate::timeline::Segment;
use std::time::{Duration, UNIX_EPOCH};

const NGINX: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-TARGETDURATION:2\n\
#EXTINF:0.300,\n4.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n5.ts\n#EXTINF:2.000,\n6.ts\n#EXTINF:1.988,\n7.ts\n";

#[test]
fn parses_nginx_rtmp_playlist() {
    let up = parse(NGINX).unwrap();
    assert_eq!(up.version, 3);
    assert_eq!(up.media_sequence, 4);
    assert_eq!(up.target_duration, 2);
    assert_eq!(up.segments.len(), 4);
    assert_eq!(up.segments[1].msn, 5);
    assert!(up.segments[1].discontinuity && !up.segments[2].discontinuity);
    assert_eq!(up.segments[3].duration, 1.988);
    assert_eq!(up.next_msn(), 8);
    assert_eq!(up.last_msn(), Some(7));
    assert_eq!(up.segment(6).unwrap().uri, "6.ts");
    assert!(up.segment(3).is_none() && up.segment(8).is_none());
    assert!(!up.endlist);
    assert_eq!(parse("#EXT-X-VERSION:3\n"), Err(PlaylistError::NotM3u8));
    assert_eq!(
        parse("#EXTM3U\nfoo.ts\n"),
        Err(PlaylistError::Bad("segment without EXTINF"))
    );
    let ev = parse("#EXTM3U\n#EXT-X-PLAYLIST-TYPE: EVENT\n#EXT-X-TARGETDURATION:2\n").unwrap();
    assert_eq!(ev.header, vec!["#EXT-X-PLAYLIST-TYPE: EVENT".to_string()]);
    assert_eq!(ev.next_msn(), 0);
}

const P: LlParams = LlParams {
    target_duration: 2,
    part_target: 0.36,
    part_hold_back: 1.08,
    skip_until: 12.0,
};

/// `n` complete 2 s segments of six parts, then one in progress with
/// `current` parts; a discontinuity at `disc`.
fn timeline(n: u64, current: usize, disc: Option<u64>) -> Timeline {
    let t0 = UNIX_EPOCH + Duration::from_millis(1_795_688_771_478);
    let mut t = Timeline::new(1000);
    for msn in 0..=n {
        t.begin(Segment {
            msn: 10 + msn,
            file: 1000 + 2000 * msn,
            init: if disc.is_some_and(|d| msn >= d) {
                7
            } else {
                1000
            },
            start: msn * 180_000,
            parts: vec![],
            complete: false,
            announced: false,
            discontinuity: disc == Some(msn),
            pdt: t0 + Duration::from_secs(2 * msn),
            compacted: false,
        });
        let k = if msn == n { current } else { 6 };
        for i in 0..k as u64 {
            t.add_part(
                i * 100,
                100,
                if i % 3 == 1 { 30_060 } else { 29_970 },
                i == 0,
            );
        }
        if msn < n {
            t.complete();
        }
    }
    t
}

#[test]
fn renders_segments_parts_map_and_hint() {
    let t = timeline(2, 2, None);
    let mut out = render(&t, &P, false, false);
    push_reports(
        &mut out,
        &[
            RenditionReport {
                rendition: "x".into(),
                msn: 12,
                part: Some(1),
            },
            RenditionReport {
                rendition: "y".into(),
                msn: 11,
                part: None,
            },
        ],
    );
    let want = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.080\n\
#EXT-X-PART-INF:PART-TARGET=0.360\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-MAP:URI=\"init-1000.mp4\"\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-26T10:26:11.478Z\n";
    assert!(out.starts_with(want), "{out}");
    // every complete segment: EXTINF the sum of its parts
    assert_eq!(out.matches("#EXTINF:2.000,\n").count(), 2, "{out}");
    assert!(out.contains("#EXTINF:2.000,\n3000.m4s\n"), "{out}");
    assert!(out.contains("#EXT-X-PART:DURATION=0.333,URI=\"1000-0.m4s\",INDEPENDENT=YES\n"));
    assert!(out.contains("#EXT-X-PART:DURATION=0.334,URI=\"1000-1.m4s\"\n"));
    // the part in progress's segment has no EXTINF; the hint names the
    // next part
    assert!(
        out.ends_with(
            "#EXT-X-PART:DURATION=0.334,URI=\"1000-13.m4s\"\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1000-14.m4s\"\n\
#EXT-X-RENDITION-REPORT:URI=\"../x/index.m3u8\",LAST-MSN=12,LAST-PART=1\n\
#EXT-X-RENDITION-REPORT:URI=\"../y/index.m3u8\",LAST-MSN=11\n"
        ),
        "{out}"
    );
    // one map, one date-time per segment
    assert_eq!(out.matches("#EXT-X-MAP").count(), 1);
    assert_eq!(out.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 3);
    assert!(out.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-26T10:26:15.478Z\n"));
}

#[test]
fn a_segment_just_completed_is_listed_by_its_parts_until_the_next_has_one() {
    // segment 11 is complete, segment 12 has no part yet
    let t = timeline(2, 0, None);
    let out = render(&t, &P, false, false);
    assert_eq!(out.matches("#EXTINF").count(), 1, "{out}");
    // and without a hint: the next part is not the open segment's
    assert!(
        out.ends_with("#EXT-X-PART:DURATION=0.333,URI=\"1000-11.m4s\"\n"),
        "{out}"
    );
    let v = t.view(0.36).unwrap();
    assert_eq!((v.current_msn, v.current_parts), (11, 6));
}

#[test]
fn parts_of_old_segments_are_left_out() {
    // 5 complete segments (10 s) + one part: only the segments ending
    // within 6 s of the end keep their parts
    let t = timeline(5, 1, None);
    let out = render(&t, &P, false, false);
    assert!(!out.contains("\"1000-5.m4s\""), "{out}");
    assert!(!out.contains("\"1000-11.m4s\""), "{out}");
    assert!(out.contains("\"1000-12.m4s\""), "{out}");
    assert_eq!(out.matches("#EXTINF").count(), 5);
}

#[test]
fn a_new_session_is_a_discontinuity_with_its_own_map() {
    let t = timeline(3, 1, Some(2));
    let out = render(&t, &P, false, false);
    assert!(out.contains("3000.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-7.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"), "{out}");
    assert_eq!(out.matches("#EXT-X-MAP").count(), 2);
}

#[test]
fn delta_updates_skip_what_is_older_than_the_boundary() {
    // 9 complete segments (18 s) + 2 parts: the first 3 end 12 s or
    // more before the end
    let t = timeline(9, 2, None);
    assert_eq!(skippable(&t, 12.0), 3);
    let full = render(&t, &P, false, false);
    let delta = render(&t, &P, true, false);
    assert!(delta.contains("#EXT-X-VERSION:9\n"));
    assert!(delta.contains("#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-MAP:URI=\"init-1000.mp4\"\n"), "{delta}");
    assert!(
        !delta.contains("\n5000.m4s\n") && delta.contains("\n7000.m4s\n"),
        "{delta}"
    );
    assert!(delta.len() < full.len());
    // nothing to skip: the full playlist
    let t = timeline(3, 2, None);
    assert_eq!(render(&t, &P, true, false), render(&t, &P, false, false));
}

#[test]
fn durations_print_exactly() {
    assert_eq!(seconds(30_060), "0.334");
    assert_eq!(seconds(180_000), "2.000");
    assert_eq!(seconds(3003), "0.03337");
    assert_eq!(format_pdt(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
}

/// A DVR window: dates only where the spec needs them (the first segment,
/// a discontinuity) and on what a delta update holds; every other
/// segment's date follows from the durations before it, to the
/// millisecond. Compacted old segments render the same.
#[test]
fn a_long_window_dates_few_segments_and_compacts_the_same() {
    let mut t = timeline(60, 2, Some(20));
    let full = render(&t, &P, false, false);
    let dated: Vec<&str> = full
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"))
        .collect();
    // the first, the discontinuity (20), and those ending in the last 12 s
    // (segments 54..=59 and the one in progress)
    assert_eq!(dated.len(), 2 + 7, "{full}");
    assert!(full.contains(
        "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-7.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"
    ));
    // computed dates agree with each listed one
    let mut at: Option<f64> = None;
    let mut pending = 0.0;
    for l in full.lines() {
        if let Some(d) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let ms = humantime::parse_rfc3339(d)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if let Some(a) = at {
                assert!((a + pending - ms).abs() < 0.001, "{l}: {}", a + pending);
            }
            at = Some(ms);
            pending = 0.0;
        } else if let Some(d) = l.strip_prefix("#EXTINF:") {
            pending += d.trim_end_matches(',').parse::<f64>().unwrap();
        }
    }
    // a delta update is unchanged by the window's length
    let delta = render(&t, &P, true, false);
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=54"), "{delta}");
    assert_eq!(
        delta.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
        7,
        "{delta}"
    );
    // merging old parts changes nothing listed
    t.compact(60 * CLOCK);
    assert_eq!(render(&t, &P, false, false), full);
    assert_eq!(render(&t, &P, true, false), delta);
    assert!(full.len() < 60 * 60, "{} bytes", full.len());
}
