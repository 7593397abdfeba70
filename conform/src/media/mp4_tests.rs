use super::*;
use crate::media::testkit::{fragment, init, video, S};

#[test]
fn parses_the_init_section() {
    let info = parse_init(&init(90000)).unwrap();
    assert_eq!(info.tracks.len(), 2);
    let v = info.main_track().unwrap();
    assert_eq!((v.id, v.handler.as_str(), v.timescale), (1, "vide", 90000));
    assert_eq!(v.codec, "avc1.64001f");
    assert_eq!(v.sps.map(|s| (s.width, s.height)), Some((1280, 720)));
    assert_eq!(v.entry_size, Some((1280, 720)));
    let a = info.track(2).unwrap();
    assert_eq!(
        (a.handler.as_str(), a.codec.as_str()),
        ("soun", "mp4a.40.2")
    );
}

#[test]
fn init_errors() {
    assert!(parse_init(b"").is_err());
    assert!(parse_init(&fragment(1, &[(1, 0, &video(2, 3000, true))])).is_err());
    let mut bad = init(90000);
    bad.truncate(bad.len() - 10);
    assert!(parse_init(&bad).is_err());
}

#[test]
fn parses_a_clean_fragment() {
    let info = parse_init(&init(90000)).unwrap();
    let audio = [S(1024, 10, true), S(1024, 10, true)];
    let b = fragment(7, &[(1, 9000, &video(10, 3000, true)), (2, 4800, &audio)]);
    let (m, issues) = parse_fragments(&b, &info, "p");
    assert!(issues.is_empty(), "{issues:?}");
    let v = &m.tracks[&1];
    assert_eq!(
        (v.first_tfdt, v.end, v.duration, v.samples),
        (Some(9000), Some(39000), 30000, 10)
    );
    assert_eq!((v.first_sync, v.any_sync), (Some(true), true));
    assert_eq!(m.tracks[&2].end, Some(4800 + 2048));
    // Two fragments in a row: contiguous.
    let mut two = fragment(1, &[(1, 0, &video(3, 3000, false))]);
    two.extend(fragment(2, &[(1, 9000, &video(3, 3000, false))]));
    let (m, issues) = parse_fragments(&two, &info, "p");
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(m.tracks[&1].first_sync, Some(false));
    assert_eq!(m.fragments, 2);
}

#[test]
fn structural_problems() {
    let info = parse_init(&init(90000)).unwrap();
    let ids = |b: &[u8]| -> Vec<&'static str> {
        parse_fragments(b, &info, "p")
            .1
            .iter()
            .map(|i| i.rule.id)
            .collect()
    };
    // Unknown track.
    assert_eq!(
        ids(&fragment(1, &[(9, 0, &video(1, 3000, true))])),
        vec!["fmp4-unknown-track"]
    );
    // Gap between fragments.
    let mut two = fragment(1, &[(1, 0, &video(3, 3000, false))]);
    two.extend(fragment(2, &[(1, 9001, &video(3, 3000, false))]));
    assert_eq!(ids(&two), vec!["tfdt-not-contiguous"]);
    // mdat larger than the samples.
    let mut b = fragment(1, &[(1, 0, &video(2, 3000, true))]);
    let moof_len = u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize;
    let mdat_len = u32::from_be_bytes(b[moof_len..moof_len + 4].try_into().unwrap()) + 4;
    b[moof_len..moof_len + 4].copy_from_slice(&mdat_len.to_be_bytes());
    b.extend([0; 4]);
    assert_eq!(ids(&b), vec!["fmp4-sample-data"]);
    // Truncated: the mdat's size runs past the end.
    let b = fragment(1, &[(1, 0, &video(2, 3000, true))]);
    assert_eq!(ids(&b[..b.len() - 1]), vec!["fmp4-structure"]);
    // Garbage never panics.
    for n in 0..b.len() {
        let mut x = b.clone();
        x[n] ^= 0xff;
        let _ = parse_fragments(&x, &info, "p");
        let _ = parse_fragments(&b[..n], &info, "p");
    }
}

#[test]
fn sync_flags() {
    assert!(is_sync(0x0200_0000));
    assert!(is_sync(0));
    assert!(!is_sync(0x0101_0000));
    assert!(!is_sync(0x0001_0000));
}
