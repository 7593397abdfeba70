use super::*;
use crate::m3u8::media;

/// A live playlist: segments `first..first+n` of 2 s (the last `with_parts`
/// with four 0.5 s parts), then `pending` parts of the next one.
fn live(first: u64, n: u64, with_parts: u64, pending: usize) -> String {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    for m in first..first + n {
        if m + with_parts >= first + n {
            for i in 0..4 {
                s += &format!(
                    "#EXT-X-PART:DURATION=0.5,URI=\"p{m}.{i}.m4s\"{}\n",
                    if i == 0 { ",INDEPENDENT=YES" } else { "" }
                );
            }
        }
        s += &format!("#EXTINF:2.000,\ns{m}.m4s\n");
    }
    for i in 0..pending {
        let m = first + n;
        s += &format!(
            "#EXT-X-PART:DURATION=0.5,URI=\"p{m}.{i}.m4s\"{}\n",
            if i == 0 { ",INDEPENDENT=YES" } else { "" }
        );
    }
    s
}

fn absorb(h: &mut History, body: &str) -> Vec<&'static str> {
    let (pl, issues) = media::parse(body.as_bytes());
    assert!(issues.is_empty(), "{issues:?}");
    h.absorb(&pl).iter().map(|i| i.rule.id).collect()
}

#[test]
fn a_well_behaved_live_playlist_passes() {
    let mut h = History::new();
    assert!(absorb(&mut h, &live(10, 5, 4, 1)).is_empty());
    assert!(absorb(&mut h, &live(10, 5, 4, 3)).is_empty());
    // New segment, the oldest leaves, parts of a segment 4 segments back leave.
    assert!(absorb(&mut h, &live(11, 5, 3, 0)).is_empty());
}

#[test]
fn stale_reloads_are_reported_and_ignored() {
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 2, 3));
    assert_eq!(
        absorb(&mut h, &live(10, 5, 2, 1)),
        vec!["reload-older-than-seen"]
    );
    assert!(absorb(&mut h, &live(10, 5, 2, 3)).is_empty());
}

#[test]
fn sequence_and_target_changes() {
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 0, 0));
    let body = live(10, 5, 0, 1).replace("TARGETDURATION:2", "TARGETDURATION:3");
    assert_eq!(absorb(&mut h, &body), vec!["target-duration-changed"]);
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 0, 0));
    // MEDIA-SEQUENCE 9 with one more segment: ends later, but went back.
    assert_eq!(
        absorb(&mut h, &live(9, 7, 0, 0)),
        vec!["media-sequence-decreased"]
    );
}

#[test]
fn changed_segments_and_parts() {
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 2, 2));
    let body = live(10, 5, 2, 3)
        .replace("s12.m4s", "other.m4s")
        .replace("p15.1.m4s", "x.m4s");
    let ids = absorb(&mut h, &body);
    assert!(ids.contains(&"segment-changed"), "{ids:?}");
    assert!(ids.contains(&"part-changed"), "{ids:?}");
}

#[test]
fn parts_removed_early_and_shrinking_lists() {
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 4, 1));
    // Segment 11's parts leave while 3 x 2 s = 6 s... only 6.5 s follow: fine;
    // segment 12's leave with 4.5 s after them: early.
    let ids = absorb(&mut h, &live(10, 5, 2, 2));
    assert_eq!(
        ids.iter().filter(|i| **i == "part-removed-early").count(),
        1,
        "{ids:?}"
    );
    let mut h = History::new();
    absorb(&mut h, &live(10, 5, 1, 3));
    let ids = absorb(
        &mut h,
        &live(10, 5, 1, 4).replace("#EXT-X-PART:DURATION=0.5,URI=\"p14.3.m4s\"\n", ""),
    );
    assert!(ids.contains(&"parts-not-appended"), "{ids:?}");
}

#[test]
fn discontinuity_sequence_follows_removed_discontinuities() {
    let with_disc = |first: u64, ds: u64| {
        live(first, 4, 0, 0)
            .replace(
                "#EXT-X-MEDIA-SEQUENCE",
                &format!("#EXT-X-DISCONTINUITY-SEQUENCE:{ds}\n#EXT-X-MEDIA-SEQUENCE"),
            )
            .replace(
                "#EXTINF:2.000,\ns12.m4s",
                "#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\ns12.m4s",
            )
    };
    let mut h = History::new();
    absorb(&mut h, &with_disc(10, 0));
    assert!(
        absorb(&mut h, &with_disc(12, 0)).is_empty(),
        "12 still carries its tag"
    );
    assert!(absorb(&mut h, &with_disc(13, 1)).is_empty());
    let mut h = History::new();
    absorb(&mut h, &with_disc(10, 0));
    assert_eq!(
        absorb(&mut h, &with_disc(13, 0)),
        vec!["discontinuity-sequence-wrong"]
    );
}

#[test]
fn program_date_time_moving_across_reloads() {
    let pdt = |first: u64, ms: u32| {
        live(first, 3, 0, 0).replace(
            "#EXTINF:2.000,\ns11.m4s",
            &format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.{ms:03}Z\n#EXTINF:2.000,\ns11.m4s"
            ),
        )
    };
    let mut h = History::new();
    absorb(&mut h, &pdt(10, 0));
    assert!(absorb(&mut h, &pdt(10, 1)).is_empty(), "1 ms tolerance");
    assert_eq!(absorb(&mut h, &pdt(10, 500)), vec!["pdt-changed"]);
}
