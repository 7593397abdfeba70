use super::*;
use crate::m3u8::media;

fn pl(pending: usize) -> MediaPlaylist {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXTINF:2.0,\ns10\n#EXT-X-PART:DURATION=0.5,URI=\"a\"\n#EXT-X-PART:DURATION=0.5,URI=\"b\"\n#EXTINF:1.0,\ns11\n",
    );
    for i in 0..pending {
        s += &format!("#EXT-X-PART:DURATION=0.5,URI=\"c{i}\"\n");
    }
    media::parse(s.as_bytes()).0
}

#[test]
fn next_request_is_the_next_part_or_past_the_last() {
    assert_eq!(
        next_request(&pl(0), false),
        Request {
            msn: 12,
            part: Some(0)
        }
    );
    assert_eq!(
        next_request(&pl(0), true),
        Request {
            msn: 11,
            part: Some(2)
        }
    );
    assert_eq!(
        next_request(&pl(2), true),
        Request {
            msn: 12,
            part: Some(2)
        }
    );
    assert_eq!(
        next_request(&pl(2), false).query(),
        "_HLS_msn=12&_HLS_part=2"
    );
}

#[test]
fn satisfies_follows_6_2_5_2() {
    let p = pl(1);
    assert!(satisfies(
        &p,
        Request {
            msn: 11,
            part: Some(1)
        }
    ));
    assert!(
        satisfies(
            &p,
            Request {
                msn: 11,
                part: Some(2)
            }
        ),
        "past the last part = part 0 of the next"
    );
    assert!(satisfies(
        &p,
        Request {
            msn: 12,
            part: Some(0)
        }
    ));
    assert!(!satisfies(
        &p,
        Request {
            msn: 12,
            part: Some(1)
        }
    ));
    assert!(satisfies(
        &p,
        Request {
            msn: 11,
            part: None
        }
    ));
    assert!(!satisfies(
        &p,
        Request {
            msn: 12,
            part: None
        }
    ));
    assert!(!satisfies(
        &pl(0),
        Request {
            msn: 11,
            part: Some(2)
        }
    ));
}

#[test]
fn judges_answers() {
    let p = pl(1);
    let r = Request {
        msn: 12,
        part: Some(0),
    };
    assert!(answer(r, Some(200), 0.3, 2.0, Some(&p)).is_empty());
    let ids = |v: Vec<Issue>| v.iter().map(|i| i.rule.id).collect::<Vec<_>>();
    assert_eq!(
        ids(answer(
            Request {
                msn: 12,
                part: Some(3)
            },
            Some(200),
            0.3,
            2.0,
            Some(&p)
        )),
        vec!["blocking-answer-too-old"]
    );
    assert_eq!(
        ids(answer(r, Some(200), 7.0, 2.0, Some(&p))),
        vec!["blocking-held-too-long"]
    );
    assert_eq!(
        ids(answer(r, Some(503), 6.1, 2.0, None)),
        vec!["blocking-unavailable"]
    );
    assert_eq!(
        ids(answer(r, Some(404), 0.0, 2.0, None)),
        vec!["blocking-unexpected-status"]
    );
}

#[test]
fn probes() {
    let p = pl(1);
    assert_eq!(Probe::MsnTooFar.query(&p), "_HLS_msn=14");
    assert_eq!(Probe::PartTooFar.query(&p), "_HLS_msn=12&_HLS_part=9");
    assert_eq!(Probe::PartWithoutMsn.query(&p), "_HLS_part=1");
    assert!(Probe::MsnTooFar.judge("q", Some(400), 0.01).is_empty());
    assert_eq!(
        Probe::MsnTooFar.judge("q", Some(400), 2.0)[0].rule.id,
        "bad-request-slow"
    );
    assert_eq!(
        Probe::PartWithoutMsn.judge("q", Some(200), 0.01)[0].rule.id,
        "part-without-msn-not-rejected"
    );
    assert_eq!(
        Probe::PartTooFar.judge("q", None, 8.0)[0].rule.id,
        "part-too-far-not-rejected"
    );
    assert!((advance_part_limit(0.36) - 8.333).abs() < 0.001);
    assert_eq!(advance_part_limit(2.0), 3.0);
}

#[test]
fn cadence_and_stats() {
    let p = Pos { msn: 1, part: 4 };
    let m = part_cadence(p, Pos { msn: 1, part: 5 }, 2, 0.66, 0.36)
        .unwrap()
        .message;
    assert_eq!(m, "2 parts from msn 1 part 5 appeared together 0.660 s after msn 1 part 4 (PART-TARGET 0.360 s)");
    assert!(part_cadence(p, Pos { msn: 1, part: 5 }, 1, 0.40, 0.36).is_none());
    assert!(segment_cadence(1, 3.2, 2.0).is_some());
    let s = hold_stats(&[0.1, 0.2, 0.3, 0.4]);
    assert_eq!((s.count, s.p50_ms, s.max_ms), (4, 300.0, 400.0));
}
