use super::*;
use crate::media::testkit::{audio_pes, packet, pat, pmt, video_pes};

#[test]
fn a_segment_start_has_pat_pmt_an_idr_sps_and_adts() {
    let mut b = pat();
    b.extend(pmt());
    b.extend(video_pes(900_000, true));
    b.extend(audio_pes());
    b.extend(video_pes(903_000, false));
    let s = scan(&b, None);
    assert!(s.aligned && s.starts_with_pat_pmt);
    assert_eq!(s.pmt.unwrap().video, Some((0x100, 0x1b)));
    assert_eq!(s.first_video_sync, Some(true));
    assert_eq!(s.video_pes, 2);
    assert_eq!(s.video_pts, vec![900_000, 903_000]);
    assert_eq!(s.sps.map(|x| (x.width, x.height)), Some((1280, 720)));
    assert_eq!(s.adts_aot, Some(2));
}

#[test]
fn a_mid_segment_part_has_no_pat_pmt_but_is_read_with_the_known_pmt() {
    let mut head = pat();
    head.extend(pmt());
    let known = scan(&head, None).pmt;
    let part = video_pes(903_000, false);
    let s = scan(&part, known);
    assert!(!s.starts_with_pat_pmt);
    assert_eq!(s.first_video_sync, Some(false));
    assert!(!s.any_video_sync);
    let s = scan(&part, None);
    assert_eq!(
        s.first_video_sync, None,
        "without a PMT the video PID is unknown"
    );
}

#[test]
fn random_access_indicator_counts_as_sync() {
    let mut b = pat();
    b.extend(pmt());
    let mut v = video_pes(0, false);
    let first = packet(0x100, true, &v[4..188], true);
    v[..188].copy_from_slice(&first);
    b.extend(v);
    assert_eq!(scan(&b, None).first_video_sync, Some(true));
}

#[test]
fn misaligned_and_garbage_input() {
    let mut b = pat();
    b.push(0);
    assert!(!scan(&b, None).aligned);
    let mut b = pat();
    b[0] = 0x46;
    assert!(!scan(&b, None).aligned);
    let mut seg = pat();
    seg.extend(pmt());
    seg.extend(video_pes(0, true));
    for n in 0..seg.len() {
        let mut x = seg.clone();
        x[n] = x[n].wrapping_add(0x5a);
        let _ = scan(&x, None);
    }
}
