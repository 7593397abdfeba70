//! ABR on: each published stream becomes a three-rendition ladder with a
//! master playlist, routed by the edge as one stream.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `#EXT-X-STREAM-INF` attributes and URI of each variant.
fn variants(master: &str) -> Vec<(HashMap<String, String>, String)> {
    let mut out = Vec::new();
    let mut lines = master.lines().map(str::trim);
    while let Some(l) = lines.next() {
        if let Some(attrs) = l.strip_prefix("#EXT-X-STREAM-INF:") {
            let mut map = HashMap::new();
            // Attributes are comma-separated; CODECS is a quoted list.
            let mut rest = attrs;
            while !rest.is_empty() {
                let (k, after) = rest.split_once('=').unwrap();
                let (v, next) = if let Some(q) = after.strip_prefix('"') {
                    let end = q.find('"').unwrap();
                    (q[..end].to_string(), q[end + 1..].trim_start_matches(','))
                } else {
                    match after.split_once(',') {
                        Some((v, n)) => (v.to_string(), n),
                        None => (after.to_string(), ""),
                    }
                };
                map.insert(k.to_string(), v);
                rest = next;
            }
            let uri = lines.by_ref().find(|l| !l.is_empty()).unwrap().to_string();
            out.push((map, uri));
        }
    }
    out
}

/// MSN and index of the last `#EXT-X-PART` of an LL playlist (`None`
/// without parts).
fn last_part(text: &str) -> Option<(u64, u64)> {
    let (seq, segs) = media_playlist(text);
    let mut msn = seq;
    let mut last = None;
    let mut idx = 0;
    for line in text.lines() {
        if line.starts_with("#EXT-X-PART:") {
            last = Some((msn, idx));
            idx += 1;
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            msn += 1;
            idx = 0;
        }
    }
    debug_assert_eq!(msn, seq + segs.len() as u64);
    last
}

/// Part durations of each complete segment listed with its parts:
/// `(msn, [DURATION, ...])`.
fn complete_parts(text: &str) -> Vec<(u64, Vec<f64>)> {
    let (mut msn, _) = media_playlist(text);
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let d = rest
                .split(',')
                .find_map(|a| a.strip_prefix("DURATION="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("DURATION in {line}"));
            parts.push(d);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            if !parts.is_empty() {
                out.push((msn, std::mem::take(&mut parts)));
            }
            msn += 1;
        }
    }
    out
}

/// This host's first non-loopback IPv4 address.
fn external_ipv4() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
}

/// Someone who reaches the origin's RTMP port from another address tries
/// to publish straight into the packaging applications: a forged
/// rendition, a stream without a key, a name that climbs out of the HLS
/// folder. They are not on the public port, and their own port listens on
/// loopback only. (When they shared the public port, nginx-rtmp refused
/// such publishes but started the ABR ladder before its access rules ran:
/// a process pair per attempt, and `mkdir` on the forged name.)
fn forged_publishes_are_refused(p: &Platform) {
    let Some(ip) = external_ipv4() else {
        println!("no non-loopback IPv4 address here: forged publishes not tried");
        return;
    };
    let hls = p.origin_dir(1).join("hls");
    let packaging = p.ports.origin(1).packaging;
    assert!(
        std::net::TcpStream::connect((ip.as_str(), packaging)).is_err(),
        "the packaging port {packaging} answers on {ip}"
    );
    for (app, playpath) in [
        ("abr", "forged/720p"),
        ("hls", "forged"),
        ("hls", "../../forged-outside"),
    ] {
        let t = Instant::now();
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25",
                "-t",
                "4",
            ])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-f", "flv"])
            .args(["-rtmp_app", app, "-rtmp_playpath", playpath])
            .arg(format!("rtmp://{ip}:{}", p.rtmp_port(1)))
            .output()
            .unwrap();
        println!(
            "publish to {app}/{playpath} from {ip}: {} after {:?}",
            out.status,
            t.elapsed()
        );
        assert!(
            !out.status.success(),
            "{app}/{playpath}: a publish from {ip} was accepted"
        );
        // no ladder was started for it
        let ladders: Vec<String> = p
            .leftovers()
            .into_iter()
            .filter(|c| c.contains("forged"))
            .collect();
        assert!(ladders.is_empty(), "{app}/{playpath}: {ladders:?}");
    }
    // Nothing outside the HLS folder; no files for the forged streams.
    assert!(!p.state.path().join("forged-outside").exists());
    assert!(!hls.join("forged").exists());
    assert!(p.api_stream("forged").is_none());
}

#[test]
fn abr_ladder_through_the_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Platform::start(1, true, &[("DISCOVERY_STALE_SECS", "6")]);
    let t0 = Instant::now();
    let mut publisher = publish(p.rtmp_port(1), &key("golive"), "1280x720", 30, None);

    let master = wait_until(
        Duration::from_secs(30),
        "master playlist at the edge",
        || {
            let r = p.edge_get("/golive/master.m3u8");
            (r.status == 200).then(|| r.text())
        },
    );
    println!("publish -> master playlist at the edge: {:?}", t0.elapsed());
    let api = p.api_stream("golive").expect("registered");
    assert_eq!(
        api["manifest"], "master.m3u8",
        "discovery reports the master playlist"
    );

    let vs = variants(&master);
    assert_eq!(vs.len(), 3, "{master}");
    // lowest rate first: players start with the first entry, and hls.js
    // with its defaults would switch down from a higher one before playing
    let rates: Vec<u64> = vs
        .iter()
        .map(|(a, _)| a["BANDWIDTH"].parse().unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] < w[1]), "{master}");
    let mut playlists = Vec::new();
    for (attrs, uri) in &vs {
        for key in ["BANDWIDTH", "RESOLUTION", "CODECS"] {
            assert!(
                attrs.contains_key(key),
                "{key} missing for {uri}: {attrs:?}"
            );
        }
        assert!(
            attrs["CODECS"].contains("avc1") && attrs["CODECS"].contains("mp4a"),
            "{attrs:?}"
        );
        // the test source carries no captions, and the master says so
        // (a player not told looks for them in the segments)
        assert_eq!(
            attrs.get("CLOSED-CAPTIONS").map(String::as_str),
            Some("NONE"),
            "{attrs:?}"
        );
        let (w, h) = attrs["RESOLUTION"].split_once('x').unwrap();
        let (w, h): (u64, u64) = (w.parse().unwrap(), h.parse().unwrap());

        // A segment of each rendition, through the edge, decodes at the
        // advertised resolution.
        let path = format!("/golive/{uri}");
        let dir = uri.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let (text, segs) = wait_until(Duration::from_secs(20), "rendition segments", || {
            let r = p.edge_get(&path);
            let pl = media_playlist(&r.text());
            (r.status == 200 && pl.1.len() >= 2).then(|| (r.text(), pl.1))
        });
        let probe = ffprobe(&segment_media(
            &p,
            &format!("/golive/{dir}"),
            &text,
            &segs[0].1,
        ));
        let video = probe
            .streams
            .iter()
            .find(|s| s.0 == "video")
            .expect("video stream");
        println!(
            "{uri}: {} {}x{} (advertised {w}x{h}, BANDWIDTH {})",
            video.1, video.2, video.3, attrs["BANDWIDTH"]
        );
        assert_eq!((video.2, video.3), (w, h), "{uri}");
        assert!(
            probe.streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
            "{uri}"
        );
        playlists.push(path);
    }

    // Renditions' segment boundaries line up: same sequence numbers, same
    // durations.
    let lists: Vec<(u64, Vec<(f64, String)>)> = playlists
        .iter()
        .map(|path| media_playlist(&p.edge_get(path).text()))
        .collect();
    let n = lists.iter().map(|l| l.1.len()).min().unwrap();
    assert!(n >= 2);
    for l in &lists[1..] {
        assert_eq!(l.0, lists[0].0, "media sequences differ");
        for i in 0..n - 1 {
            let (a, b) = (lists[0].1[i].0, l.1[i].0);
            assert!((a - b).abs() < 0.1, "segment {i}: {a} vs {b}");
        }
    }

    // LL-HLS on every rendition (the component is on by default): parts of
    // the fragment in progress, blocking reloads, and rendition reports of
    // the two other renditions.
    let mut parts_by_rendition = Vec::new();
    for r in ["720p", "480p", "240p"] {
        let path = format!("/golive/{r}/index.m3u8");
        let (msn, part, text) = wait_until(Duration::from_secs(10), "parts listed", || {
            // (no hint while a segment just completed waits for the next
            // one's first part: a third of a second in two)
            let text = p.edge_get(&path).text();
            let ll = last_part(&text)?;
            text.contains("#EXT-X-PRELOAD-HINT:")
                .then_some((ll.0, ll.1, text))
        });
        assert!(
            text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{text}");
        let reports: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-RENDITION-REPORT:"))
            .collect();
        assert_eq!(reports.len(), 2, "{text}");
        for other in ["720p", "480p", "240p"].iter().filter(|o| **o != r) {
            let rep = reports
                .iter()
                .find(|l| l.contains(&format!("URI=\"../{other}/index.m3u8\"")))
                .unwrap_or_else(|| panic!("no report of {other} in {r}: {text}"));
            // aligned renditions: the sibling is at (about) the same place
            let last_msn: u64 = rep
                .split(',')
                .find_map(|a| a.strip_prefix("LAST-MSN="))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("LAST-MSN in {rep}"));
            assert!(last_msn.abs_diff(msn) <= 1, "{r} at {msn}: {rep}");
            assert!(rep.contains("LAST-PART="), "{rep}");
        }
        // The next part, asked for before it exists: held, then answered
        // with it listed.
        let (want_msn, want_part) = (msn, part + 1);
        let t = Instant::now();
        let r2 = p.edge_get(&format!("{path}?_HLS_msn={want_msn}&_HLS_part={want_part}"));
        let held = t.elapsed();
        assert_eq!(r2.status, 200, "{}", r2.text());
        let (m2, p2) = last_part(&r2.text()).expect("parts");
        assert!(
            (m2, p2) >= (want_msn, want_part),
            "{r}: asked for {want_msn}.{want_part}, got {m2}.{p2}"
        );
        println!("{r}: blocking reload for {want_msn}.{want_part} answered after {held:?}");
        parts_by_rendition.push(complete_parts(&r2.text()));
    }
    // The renditions' parts line up too: the same parts (count and
    // durations) in every segment listed with parts by all three.
    let mut compared = 0;
    for (msn, durations) in &parts_by_rendition[0] {
        let others: Vec<&Vec<f64>> = parts_by_rendition[1..]
            .iter()
            .filter_map(|r| r.iter().find(|(m, _)| m == msn).map(|(_, d)| d))
            .collect();
        if others.len() != 2 {
            continue;
        }
        for d in others {
            assert_eq!(
                d.len(),
                durations.len(),
                "segment {msn}: {d:?} vs {durations:?}"
            );
            for (a, b) in d.iter().zip(durations) {
                assert!(
                    (a - b).abs() < 0.05,
                    "segment {msn}: {d:?} vs {durations:?}"
                );
            }
        }
        compared += 1;
    }
    println!("parts aligned across the three renditions in {compared} segment(s)");
    assert!(
        compared >= 1,
        "no segment listed with parts by all three: {parts_by_rendition:?}"
    );

    // A player: ffmpeg reads the master through the edge and plays 4 s.
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            &p.edge_url("/golive/master.m3u8"),
            "-t",
            "4",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg playback failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // nginx-rtmp's hls_cleanup deletes any playlist under its hls_path
    // older than hls_playlist_length (8 s), every 16 s: the ladder keeps the
    // master's time fresh. Still there, at the origin, half a minute in.
    let master_url = format!("http://{}/golive/master.m3u8", p.origin_host(1));
    while t0.elapsed() < Duration::from_secs(30) {
        let r = get(&p.http, &master_url);
        assert_eq!(
            r.status,
            200,
            "master at the origin after {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(p.api_stream("golive").is_some(), "still registered");

    forged_publishes_are_refused(&p);

    let before = renditions_match_origin(&p);

    // The publisher stops: no transcoder remains.
    publisher.stop();
    let t = Instant::now();
    wait_until(Duration::from_secs(15), "the ladder to stop", || {
        let ladders: Vec<String> = p
            .leftovers()
            .into_iter()
            .filter(|c| c.contains("ffmpeg"))
            .collect();
        ladders.is_empty().then_some(())
    });
    println!("publisher stopped -> ladder gone after {:?}", t.elapsed());

    // The same key publishes again, from a smaller source: a working
    // ladder again, whose rungs are not taller than the source.
    let _again = publish(p.rtmp_port(1), &key("golive"), "640x360", 30, None);
    wait_until(
        Duration::from_secs(30),
        "a ladder after reconnecting",
        || {
            let running = p.leftovers().iter().any(|c| c.contains("ffmpeg"));
            let r = p.edge_get("/golive/720p/index.m3u8");
            let (_, segs) = media_playlist(&r.text());
            (running && r.status == 200 && !segs.is_empty()).then_some(())
        },
    );
    // Every segment of the new session, through the edge, is the origin's
    // file of this session, never a cached one of the last session.
    // A rendition's segments are numbered in order (`<epoch + MSN>.m4s`,
    // each rendition its own epoch): wait until the new session's are
    // listed in every rendition (each rendition's playlist is rewritten
    // when its own fragment closes).
    let number = |path: &str| -> u64 {
        path.rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".ts").or_else(|| f.strip_suffix(".m4s")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("fragment name: {path}"))
    };
    let rendition = |path: &str| -> String {
        let mut parts = path.rsplit('/');
        parts.next();
        parts.next().unwrap_or("").to_string()
    };
    let old = |r: &str| {
        before
            .iter()
            .filter(|s| rendition(s) == r)
            .map(|s| number(s))
            .max()
            .unwrap_or(0)
    };
    let newer = |s: &str| number(s) > old(&rendition(s));
    wait_until(
        Duration::from_secs(30),
        "the new session's segments",
        || {
            ["720p", "480p", "240p"]
                .iter()
                .all(|r| {
                    let text = p.edge_get(&format!("/golive/{r}/index.m3u8")).text();
                    media_playlist(&text)
                        .1
                        .iter()
                        .any(|(_, u)| number(u) > old(r))
                })
                .then_some(())
        },
    );
    let after = renditions_match_origin(&p);
    let new: Vec<&String> = after.iter().filter(|s| newer(s)).collect();
    assert!(
        ["720p", "480p", "240p"]
            .iter()
            .all(|r| new.iter().any(|s| s.contains(&format!("/{r}/")))),
        "{after:?}"
    );
    println!(
        "after reconnecting: {} segments of the new session byte-identical to the origin's",
        new.len()
    );
    // No upscaling: the ladder started for the 640x360 publisher encodes
    // its 480p rung at 640x360, and its 720p rung, which can only copy the
    // 480p one, at 640x360 too: the last session's master lists 720p, and
    // players that loaded it go on playing it (a fresh 640x360 stream gets
    // a stub there instead: e2e/tests/browser.rs). (For a few seconds after the
    // reconnect, each rendition's playlist still lists the last session's
    // 1280x720 segments, then EXT-X-DISCONTINUITY and the new ones: the
    // newest segment is looked at.)
    for (r, size) in [
        ("720p", (640, 360)),
        ("480p", (640, 360)),
        ("240p", (426, 240)),
    ] {
        wait_until(
            Duration::from_secs(30),
            "a segment at the source's size",
            || {
                let text = p.edge_get(&format!("/golive/{r}/index.m3u8")).text();
                let (_, segs) = media_playlist(&text);
                let (_, newest) = segs.last()?;
                let probe = ffprobe(&segment_media(&p, &format!("/golive/{r}"), &text, newest));
                let video = probe.streams.iter().find(|s| s.0 == "video")?;
                ((video.2, video.3) == size).then_some(())
            },
        );
    }
    println!("a 640x360 publisher after a 1280x720 one: 720p and 480p at 640x360, 240p at 426x240");
    // The master says so too: the new ladder's master is made from its own
    // fragments, not from the last session's that the renditions' playlists
    // still list after the reconnect (encoded at 1280x720). Of the two
    // 640x360 renditions it lists the cheaper one; lowest rate first.
    wait_until(
        Duration::from_secs(20),
        "the master with the new source's sizes",
        || {
            let r = get(&p.http, &master_url);
            let sizes: Vec<(String, String)> = variants(&r.text())
                .into_iter()
                .map(|(a, uri)| (uri, a.get("RESOLUTION").cloned().unwrap_or_default()))
                .collect();
            (sizes
                == [
                    ("240p/index.m3u8", "426x240"),
                    ("480p/index.m3u8", "640x360"),
                ]
                .map(|(u, s)| (u.to_string(), s.to_string())))
            .then_some(())
        },
    );
    // The first session (ended above) is a recording of the whole ladder.
    abr_session_is_recorded(&p);

    p.stop_and_check_clean();
}

/// Fetches each rendition's listed segments through the edge and compares
/// them with the origin's bytes; returns the segment paths checked.
/// The ended session is one recording: the ladder's master over every
/// rendition's finished playlist, played through the edge.
fn abr_session_is_recorded(p: &Platform) {
    let rec = wait_until(Duration::from_secs(30), "the ABR session recorded", || {
        let r = get(&p.http, &p.api_url("/streams/golive/recordings"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        v["recordings"].as_array()?.first().cloned()
    });
    let url = rec["url"].as_str().unwrap();
    assert!(
        url.starts_with("/golive~") && url.ends_with("/master.m3u8"),
        "{rec}"
    );
    let master = p.edge_get(url);
    assert_eq!(master.status, 200, "{url}");
    let dir = url.rsplit_once('/').unwrap().0;
    let listed = variants(&master.text());
    assert_eq!(listed.len(), 3, "{}", master.text());
    for (_, uri) in &listed {
        let media = p.edge_get(&format!("{dir}/{uri}"));
        assert_eq!(media.status, 200, "{dir}/{uri}");
        let text = media.text();
        assert!(
            text.contains("#EXT-X-ENDLIST") && text.contains("#EXT-X-PLAYLIST-TYPE:VOD"),
            "{text}"
        );
        let secs: f64 = media_playlist(&text).1.iter().map(|(d, _)| d).sum();
        let want = rec["duration"].as_f64().unwrap();
        assert!((secs - want).abs() < 2.5, "{uri}: {secs} s of {want} s");
    }
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,height",
            "-of",
            "csv=p=0",
        ])
        .arg(p.edge_url(url))
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let streams = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        streams.contains("video,720") && streams.contains("video,240"),
        "{streams}"
    );
    println!("ABR recording: {rec}");
}

fn renditions_match_origin(p: &Platform) -> Vec<String> {
    let mut checked = Vec::new();
    for r in ["720p", "480p", "240p"] {
        let (_, segs) = media_playlist(&p.edge_get(&format!("/golive/{r}/index.m3u8")).text());
        for (_, uri) in segs {
            let path = format!("/golive/{r}/{uri}");
            let at_edge = p.edge_get(&path);
            let at_origin = get(&p.http, &format!("http://{}{path}", p.origin_host(1)));
            if at_origin.status != 200 {
                continue;
            }
            assert_eq!(at_edge.status, 200, "{path}");
            assert!(
                at_edge.body == at_origin.body,
                "{path}: edge and origin differ"
            );
            checked.push(path);
        }
    }
    assert!(!checked.is_empty());
    checked
}
