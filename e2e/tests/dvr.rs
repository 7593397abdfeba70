//! The DVR window through the whole platform (a short one, 24 s, so the
//! test sees it fill and slide): ffmpeg publishes to the real origin, the
//! LL-HLS component keeps the window, viewers reach it through the edge.
//!
//! - the playlist holds the window, not the 8 s live playlist, then slides;
//! - its oldest segment plays, is immutable and cached at the edge;
//! - a low-latency client's delta update skips the old segments;
//! - ffmpeg plays from the start of the window;
//! - a publisher that reconnects starts a new session after a
//!   discontinuity, and the old session stays listed and playable;
//! - without the LL-HLS component nginx-rtmp's playlist holds the window.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const WINDOW: f64 = 24.0;
const PATH: &str = "/golive/index.m3u8";

/// Seconds the playlist's listed segments span.
fn span(text: &str) -> f64 {
    media_playlist(text).1.iter().map(|(d, _)| d).sum()
}

fn fills_and_slides(p: &Platform) -> String {
    let first = wait_until(Duration::from_secs(40), "a listed segment", || {
        let (seq, segs) = media_playlist(&p.edge_get(PATH).text());
        (!segs.is_empty()).then_some(seq)
    });
    // the first segment stays listed well past the 8 s a live playlist
    // holds, until the others span the window
    let full = wait_until(
        Duration::from_secs(60),
        "the playlist to span the window",
        || {
            let text = p.edge_get(PATH).text();
            let (seq, _) = media_playlist(&text);
            assert_eq!(seq, first, "left before the window filled:\n{text}");
            (span(&text) >= WINDOW - 2.5).then_some(text)
        },
    );
    // then it slides: the window, never more than a segment over it
    wait_until(Duration::from_secs(20), "the window to slide", || {
        let text = p.edge_get(PATH).text();
        let (seq, _) = media_playlist(&text);
        assert!(span(&text) <= WINDOW + 2.5, "{text}");
        (seq > first).then_some(())
    });
    full
}

#[test]
fn a_dvr_window_fills_slides_and_survives_a_reconnect() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "1"), ("DVR_WINDOW", "24s")]);
    let mut publisher = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    fills_and_slides(&p);

    // The oldest listed segment plays, is final, and a second viewer gets
    // it from the edge's cache.
    let text = p.edge_get(PATH).text();
    let (_, segs) = media_playlist(&text);
    let oldest = &segs[0].1;
    let media = segment_media(&p, "/golive", &text, oldest);
    let probe = ffprobe(&media);
    assert!(probe.video_seconds > 1.5, "{oldest}: {:?}", probe.streams);
    let again = p.edge_get(&format!("/golive/{oldest}"));
    assert_eq!(again.header("x-cache-status"), "HIT");
    assert!(
        again.header("cache-control").contains("immutable"),
        "{}",
        again.header("cache-control")
    );

    // A low-latency client's delta update leaves the old segments out
    // (RFC 8216bis 6.2.5.1): what it reloads does not grow with the
    // window.
    let delta = p.edge_get(&format!("{PATH}?_HLS_skip=YES")).text();
    let skipped: usize = delta
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no EXT-X-SKIP:\n{delta}"));
    assert!(skipped >= 4, "{skipped} skipped:\n{delta}");
    assert!(!delta.contains(&format!("\n{oldest}\n")), "{delta}");

    // ffmpeg, asked to start at the window's first segment, reads it.
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
        .args(["-live_start_index", "0", "-i", &p.edge_url(PATH)])
        .args(["-map", "0:v", "-frames:v", "50", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(p.state_dir().join("edge-access.log")).unwrap();
    let fetched_oldest = log
        .lines()
        .filter(|l| l.contains(&format!("/golive/{oldest}")))
        .count();
    assert!(fetched_oldest >= 3, "ffmpeg did not start at {oldest}");

    // The publisher reconnects (OBS does after a network drop): the new
    // session follows a discontinuity and the old one stays listed.
    let before = p.edge_get(PATH).text();
    let (_, old) = media_playlist(&before);
    publisher.stop();
    std::thread::sleep(Duration::from_millis(500)); // a reconnect's gap
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    let after = wait_until(
        Duration::from_secs(30),
        "the new session's segments after a discontinuity",
        || {
            let text = p.edge_get(PATH).text();
            let tail = text.split("#EXT-X-DISCONTINUITY\n").nth(1)?;
            (media_playlist(tail).1.len() >= 2).then_some(text)
        },
    );
    let last_old = &old.last().unwrap().1;
    assert!(after.contains(&format!("\n{last_old}\n")), "{after}");
    let (before_disc, _) = after.split_once("#EXT-X-DISCONTINUITY\n").unwrap();
    let (_, old_listed) = media_playlist(before_disc);
    assert!(old_listed.len() >= 3, "{after}");
    for (_, uri) in &old_listed {
        let r = p.edge_get(&format!("/golive/{uri}"));
        assert_eq!(r.status, 200, "{uri} of the old session");
    }
}

/// Without the LL-HLS component nginx-rtmp's own playlist holds the window
/// (its `hls_playlist_length`), of the TS fragments it writes.
#[test]
fn without_ll_hls_nginx_rtmp_keeps_the_window() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "0"), ("DVR_WINDOW", "24s")]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    let text = fills_and_slides(&p);
    let (_, segs) = media_playlist(&text);
    assert!(segs.iter().all(|(_, u)| u.ends_with(".ts")), "{text}");
    let media = segment_media(&p, "/golive", &text, &segs[0].1);
    assert!(ffprobe(&media).video_seconds > 1.5);
}
