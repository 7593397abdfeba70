//! The part cutter's tests, and fragments like nginx-rtmp's for other
//! modules' tests.

use super::*;
use crate::ts::tests::{nginx_pat_pmt, pes_packets};

/// A fragment like nginx-rtmp writes: header, leading audio, then 30 fps
/// video (keyframes where `key(i)`), an audio PES every 5 frames.
pub fn fragment(frames: usize, start: u64, key: impl Fn(usize) -> bool) -> (Vec<u8>, Vec<u64>) {
    let mut f = nginx_pat_pmt();
    let (mut vcc, mut acc) = (0u8, 0u8);
    f.extend(pes_packets(0x101, &mut acc, start - 9000, None, false, 700));
    let mut video_offsets = Vec::new();
    for i in 0..frames {
        let t = start + i as u64 * 3000;
        video_offsets.push(f.len() as u64);
        f.extend(pes_packets(
            0x100,
            &mut vcc,
            t,
            None,
            key(i),
            if key(i) { 9000 } else { 2500 },
        ));
        if i % 5 == 4 {
            f.extend(pes_packets(0x101, &mut acc, t - 12000, None, false, 700));
        }
    }
    (f, video_offsets)
}

#[test]
fn cuts_every_half_second_at_video_pes_starts() {
    let (f, vo) = fragment(60, 63_000, |i| i == 0);
    let mut s = FragmentScanner::new(0.5);
    assert_eq!(s.push(&f), 3);
    let p = s.parts();
    assert_eq!(p[0].offset, 0);
    assert_eq!(p[1].offset, vo[15]);
    assert_eq!(p[2].offset, vo[30]);
    assert_eq!(s.next_part_start(), vo[45]);
    for q in p {
        assert!((q.duration - 0.5).abs() < 1e-9, "{q:?}");
    }
    assert!(p[0].independent && !p[1].independent);
    s.finish(Some(1.967), None);
    let p = s.parts();
    assert_eq!(p.len(), 4);
    assert_eq!(p[3].offset + p[3].len, f.len() as u64);
    assert!((p[3].duration - 0.467).abs() < 1e-9);
    // the parts tile the file
    let mut at = 0;
    for q in p {
        assert_eq!(q.offset, at);
        at += q.len;
    }
    assert_eq!(at, f.len() as u64);
}

#[test]
fn byte_by_byte_growth_gives_the_same_parts() {
    let (f, _) = fragment(40, 90_000, |i| i == 0 || i == 22);
    let mut whole = FragmentScanner::new(0.5);
    whole.push(&f);
    let mut bits = FragmentScanner::new(0.5);
    // odd chunk sizes, like page-by-page visibility of 188-byte writes
    for c in f.chunks(97) {
        bits.push(c);
    }
    assert_eq!(whole.parts(), bits.parts());
    assert_eq!(bits.bytes(), f.len() as u64);
    // no part is closed before the PES that ends it is complete on disk
    let mut s = FragmentScanner::new(0.5);
    let p1 = whole.parts()[1].offset as usize;
    s.push(&f[..p1 + 187]);
    assert_eq!(s.parts().len(), 0);
    s.push(&f[p1 + 187..p1 + 188]);
    assert_eq!(s.parts().len(), 1);
}

#[test]
fn part_at_a_mid_segment_keyframe_is_independent() {
    // keyframe at frame 30 (1.0 s): the part starting there is independent
    let (f, vo) = fragment(60, 90_000, |i| i == 0 || i == 30);
    let mut s = FragmentScanner::new(0.5);
    s.push(&f);
    let p = s.parts();
    assert_eq!(p[2].offset, vo[30]);
    assert!(p[2].independent);
    assert!(!p[1].independent);
}

#[test]
fn parts_never_exceed_the_target_at_25_fps() {
    // 25 fps: 3600 ticks per frame; 0.5 s is not a whole number of frames
    let mut f = nginx_pat_pmt();
    let mut cc = 0;
    for i in 0..50u64 {
        f.extend(pes_packets(0x100, &mut cc, i * 3600, None, i == 0, 2000));
    }
    let mut s = FragmentScanner::new(0.5);
    s.push(&f);
    assert!(!s.parts().is_empty());
    for p in s.parts() {
        assert!(p.duration <= 0.5 && p.duration >= 0.425, "{p:?}");
    }
    assert_eq!(s.frame_ticks(), 3600);
}

/// Fed packet by packet, every frame's `ticks_to_cut` points at the
/// frame that then closes the part, planned or not.
#[test]
fn ticks_to_cut_predicts_the_closing_frame() {
    for (fps, target, expected) in [
        (30, 0.36, false),
        (25, 0.36, true),
        (25, 0.5, false),
        (60, 0.36, true),
    ] {
        let frag = video(120, fps);
        let mut prev = FragmentScanner::new(target);
        prev.push(&frag);
        prev.finish(None, None);
        let mut s = FragmentScanner::with_expected(
            target,
            expected.then(|| prev.expected_next()).flatten(),
        );
        let mut predicted = None;
        let mut checked = 0;
        for p in frag.chunks(PACKET_LEN) {
            let (parts, last) = (s.parts().len(), s.last_ts());
            s.push(p);
            if s.parts().len() > parts {
                // the frame just read closed a part
                // the right frame (RTMP's timestamps are whole ms)
                let off = ts::ts_diff(predicted.expect("a prediction"), s.last_ts().unwrap());
                assert!(
                    off.abs() < s.frame_ticks() / 2,
                    "{fps} fps, {target} s, part {parts}: {off}"
                );
                checked += 1;
            }
            if s.last_ts() != last {
                predicted = s.ticks_to_cut().map(|t| s.last_ts().unwrap() + t as u64);
            }
        }
        assert!(checked >= 5, "{fps} fps: {checked} parts checked");
    }
}

/// `frames` of video at `fps` (ms-rounded timestamps, like RTMP's),
/// keyframe first.
pub fn video(frames: u64, fps: u64) -> Vec<u8> {
    let mut f = nginx_pat_pmt();
    let mut cc = 0;
    for i in 0..frames {
        let t = 900_000 + (i * 1000 / fps) * 90;
        f.extend(pes_packets(0x100, &mut cc, t, None, i == 0, 2000));
    }
    f
}

/// Part durations of `(frames, fps)` cut with `expected`, and what it
/// tells of the next fragment.
fn durations(
    (frames, fps): (u64, u64),
    expected: Option<Expected>,
) -> (Vec<f64>, Option<Expected>) {
    durations_at(0.5, (frames, fps), expected)
}

fn durations_at(
    target: f64,
    (frames, fps): (u64, u64),
    expected: Option<Expected>,
) -> (Vec<f64>, Option<Expected>) {
    let mut s = FragmentScanner::with_expected(target, expected);
    s.push(&video(frames, fps));
    // nginx's EXTINF: up to the next keyframe
    s.finish(Some(frames as f64 / fps as f64), None);
    let d = s
        .parts()
        .iter()
        .map(|p| (p.duration * 1000.0).round() / 1000.0);
    (d.collect(), s.expected_next())
}

#[test]
fn the_last_part_of_a_predicted_fragment_is_not_a_sliver() {
    // 25 fps, 2 s: as long as the target allows, the last part is 0.08 s
    let (alone, next) = durations((50, 25), None);
    assert_eq!(alone, vec![0.48, 0.48, 0.48, 0.48, 0.08]);
    let next = next.unwrap();
    assert_eq!(
        next,
        Expected {
            frames: 50,
            frame_ticks: 3600
        }
    );
    // planned from the previous fragment: 4 x 0.44 (>= 85 % of the
    // target) and 0.24
    let (planned, _) = durations((50, 25), Some(next));
    assert_eq!(planned, vec![0.44, 0.44, 0.44, 0.44, 0.24]);
    // 30 fps (ms-rounded), 2 s: 4 x 0.5 s either way
    let (alone, next) = durations((60, 30), None);
    assert_eq!(alone, vec![0.5, 0.5, 0.5, 0.5]);
    assert_eq!(durations((60, 30), next).0, vec![0.5, 0.5, 0.5, 0.5]);
    // 25 fps, 4 s keyframe interval: 8 x 0.44 + 0.48
    let (_, next) = durations((100, 25), None);
    let (planned, _) = durations((100, 25), next);
    assert_eq!(planned[..8], [0.44; 8]);
    assert_eq!(planned[8..], [0.48]);
    // a keyframe later than predicted: full parts after the plan
    let two_s = Expected {
        frames: 50,
        frame_ticks: 3600,
    };
    let (late, _) = durations((62, 25), Some(two_s));
    assert_eq!(late, vec![0.44, 0.44, 0.44, 0.44, 0.48, 0.24]);
    // every part but the last is within [85 %, 100 %] of the target
    for d in [planned, late] {
        for p in &d[..d.len() - 1] {
            assert!((0.425..=0.5).contains(p), "{d:?}");
        }
    }
}

#[test]
fn the_default_target_fits_common_frame_rates() {
    // 0.36 s: whole frames at 24, 25, 30, 50 and 60 fps, every part
    // within [85 %, 100 %] of the target but the last, and no sliver
    let target = 0.36;
    for (fps, parts) in [(24, 6), (25, 6), (30, 6), (50, 6), (60, 6)] {
        let (_, next) = durations_at(target, (2 * fps, fps), None);
        let (d, _) = durations_at(target, (2 * fps, fps), next);
        assert_eq!(d.len(), parts, "{fps} fps: {d:?}");
        for p in &d[..d.len() - 1] {
            assert!(
                (0.85 * target..=target + 0.001).contains(p),
                "{fps} fps: {d:?}"
            );
        }
        let last = d[d.len() - 1];
        assert!((0.2..=target + 0.001).contains(&last), "{fps} fps: {d:?}");
        assert!(
            (d.iter().sum::<f64>() - 2.0).abs() < 0.01,
            "{fps} fps: {d:?}"
        );
    }
    // 30 fps: ten frames a part
    let (_, next) = durations_at(target, (60, 30), None);
    let (d, _) = durations_at(target, (60, 30), next);
    assert!(d.iter().all(|p| (0.333..=0.334).contains(p)), "{d:?}");
}

#[test]
fn millisecond_rounded_30_fps_gives_half_second_parts() {
    // RTMP timestamps are whole ms: frames 33 or 34 ms apart
    let mut f = nginx_pat_pmt();
    let mut cc = 0;
    for i in 0..60u64 {
        f.extend(pes_packets(
            0x100,
            &mut cc,
            (i * 1000 / 30) * 90,
            None,
            i == 0,
            2000,
        ));
    }
    let mut s = FragmentScanner::new(0.5);
    s.push(&f);
    s.finish(Some(2.0), None);
    let d: Vec<f64> = s.parts().iter().map(|p| p.duration).collect();
    assert_eq!(d, vec![0.5, 0.5, 0.5, 0.5]);
}

#[test]
fn finish_without_extinf_uses_video_time_and_handles_wrap() {
    let start = (1u64 << 33) - 20 * 3000;
    let mut f = nginx_pat_pmt();
    let mut cc = 0;
    for i in 0..40u64 {
        f.extend(pes_packets(
            0x100,
            &mut cc,
            (start + i * 3000) & ((1 << 33) - 1),
            None,
            i == 0,
            500,
        ));
    }
    let mut s = FragmentScanner::new(0.5);
    s.push(&f);
    assert_eq!(s.parts().len(), 2);
    assert!((s.elapsed() - 39.0 / 30.0).abs() < 1e-9);
    s.finish(None, None);
    let last = s.parts().last().unwrap();
    assert!((last.duration - (10.0 / 30.0)).abs() < 1e-9, "{last:?}");
    assert!(s.is_finished());
    assert_eq!(s.push(&f), 0);
}
