use super::*;
use crate::media::mp4::{parse_fragments, parse_init};
use crate::media::testkit::{fragment, init, video, S};

fn part(independent: bool, duration: f64) -> Part {
    Part {
        uri: "p.m4s".into(),
        duration,
        independent,
        gap: false,
        byterange: None,
    }
}

fn facts(tfdt: u64, samples: &[S]) -> Facts {
    let init = parse_init(&init(30000)).unwrap();
    let (m, issues) = parse_fragments(&fragment(1, &[(1, tfdt, samples)]), &init, "p");
    assert!(issues.is_empty(), "{issues:?}");
    facts_fmp4(&m, &init)
}

fn ids(v: Vec<Issue>) -> Vec<&'static str> {
    v.iter().map(|i| i.rule.id).collect()
}

#[test]
fn independent_flags_against_sync_samples() {
    let key_first = facts(0, &video(10, 1000, true));
    let no_key = facts(0, &video(10, 1000, false));
    let mut key_later = video(10, 1000, false);
    key_later[3].2 = true;
    let key_later = facts(0, &key_later);
    assert!(independent("p", &part(true, 0.333), &key_first, true, true).is_empty());
    assert!(independent("p", &part(false, 0.333), &no_key, false, false).is_empty());
    assert_eq!(
        ids(independent("p", &part(true, 0.333), &no_key, false, false)),
        vec!["independent-without-keyframe"]
    );
    assert_eq!(
        ids(independent(
            "p",
            &part(true, 0.333),
            &key_later,
            false,
            false
        )),
        vec!["independent-keyframe-not-first"]
    );
    assert_eq!(
        ids(independent(
            "p",
            &part(false, 0.333),
            &key_first,
            false,
            false
        )),
        vec!["keyframe-not-independent"]
    );
    assert_eq!(
        ids(independent("p", &part(false, 0.333), &no_key, true, true)),
        vec![
            "segment-start-not-independent",
            "independent-segments-violated"
        ]
    );
}

#[test]
fn part_and_segment_durations_against_samples() {
    let f = facts(0, &video(10, 1000, true)); // 10 x 1000 / 30000 = 0.3333 s
    assert!(part_duration("p", &part(true, 0.333), &f).is_empty());
    assert_eq!(
        ids(part_duration("p", &part(true, 0.335), &f)),
        vec!["part-duration-mismatch"]
    );
    assert!(segment_duration("s", 0.334, &f).is_empty());
    assert_eq!(
        ids(segment_duration("s", 0.4, &f)),
        vec!["extinf-media-mismatch"]
    );
}

#[test]
fn timeline_exact_continuity_and_jumps() {
    let mut t = Timeline::new();
    assert!(t
        .check("a", &facts(0, &video(10, 1000, true)), false, "i")
        .is_empty());
    assert!(t
        .check("b", &facts(10_000, &video(10, 1000, false)), false, "i")
        .is_empty());
    assert_eq!(
        ids(t.check("c", &facts(20_001, &video(10, 1000, false)), false, "i")),
        vec!["tfdt-not-contiguous"]
    );
    assert_eq!(
        ids(t.check("d", &facts(0, &video(10, 1000, true)), false, "i")),
        vec!["timeline-jump-without-discontinuity"]
    );
    assert!(
        t.check("e", &facts(5, &video(10, 1000, true)), true, "i")
            .is_empty(),
        "a discontinuity resets"
    );
    assert_eq!(
        ids(t.check("f", &facts(3, &video(1, 1000, true)), false, "other")),
        vec!["timeline-jump-without-discontinuity"]
    );
}

#[test]
fn concatenation_and_ts_start() {
    assert!(concat("s", b"abc", b"abc").is_empty());
    assert_eq!(
        ids(concat("s", b"abc", b"abd")),
        vec!["segment-not-parts-concat"]
    );
    let mut s = TsScan::default();
    assert_eq!(
        ids(ts_start("p", &s, false)),
        vec!["ts-packet-sync", "ts-part-without-pat-pmt"]
    );
    s.aligned = true;
    assert!(ts_start("p", &s, true).is_empty());
}

#[test]
fn decoder_verdicts() {
    let ok = Decoded {
        errors: vec![],
        video_frames: Some(60),
        exit_ok: true,
    };
    assert!(decoded("s", &ok, Some((60, 0))).is_empty());
    assert_eq!(
        ids(decoded("s", &ok, Some((58, 1)))),
        vec!["decode-frame-count"]
    );
    let bad = Decoded {
        errors: vec!["x".into()],
        video_frames: None,
        exit_ok: true,
    };
    assert_eq!(ids(decoded("s", &bad, Some((60, 0)))), vec!["decode-error"]);
}
