//! LL-HLS through the whole platform: ffmpeg publishes to the real origin
//! (nginx-rtmp), its LL-HLS component (`rtmp-live-llhls`, started beside
//! discovery) packages the fragment in progress as CMAF parts, and viewers
//! reach it through the real edge.
//!
//! - the playlist at the usual URL is an LL-HLS playlist of fMP4 segments
//!   (init segment, parts, preload hint, server control);
//! - a blocking reload for the next part is held until the part exists,
//!   and viewers waiting for the same part share one origin request;
//! - the preload hint's part, asked for before it exists, is held and
//!   answered with the bytes later listed; viewers asking for it share one
//!   origin request; parts and segments are cached as final;
//! - a segment is its parts one after the other;
//! - ffprobe and VLC still read the same URL;
//! - a component that hangs costs the origin's answers a timeout, then
//!   nginx-rtmp's files are served;
//! - without the component the origin serves the plain playlist from disk.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(',').next()?,
    })
}

/// What a viewer needs of an LL playlist.
#[derive(Debug)]
struct Ll {
    /// MSN of the segment whose parts are listed last without a URI line
    /// (in progress).
    current_msn: u64,
    /// Its parts so far.
    current: Vec<String>,
    /// Listed (complete) segments: (msn, uri, the parts listed for it).
    segments: Vec<(u64, String, Vec<String>)>,
    map: String,
    hint: Option<String>,
}

fn parse_ll(text: &str) -> Ll {
    let (seq, _) = media_playlist(text);
    let mut ll = Ll {
        current_msn: seq,
        current: Vec::new(),
        segments: Vec::new(),
        map: String::new(),
        hint: None,
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            ll.current.push(attr(rest, "URI").expect("URI").to_string());
        } else if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            ll.map = attr(rest, "URI").expect("URI").to_string();
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            ll.hint = attr(rest, "URI").map(str::to_string);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            // a segment line closes the parts listed before it
            let parts = std::mem::take(&mut ll.current);
            ll.segments.push((ll.current_msn, line.to_string(), parts));
            ll.current_msn += 1;
        }
    }
    ll
}

/// Requests in the origin's access log whose request line contains `needle`.
fn origin_requests(p: &Platform, needle: &str) -> usize {
    std::fs::read_to_string(p.origin_dir(1).join("access.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Runs `n` viewers at once, each GETting `path` through the edge: their
/// statuses, bodies and answer times (from one clock started before them).
fn together(p: &Platform, path: &str, n: usize) -> Vec<(u16, Vec<u8>, f64)> {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let r = p.edge_get(path);
                    (r.status, r.body, t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn ll_hls_through_origin_component_and_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "1")]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 30, None);
    let path = "/golive/index.m3u8";

    // 1. The usual URL, through the edge, is an LL-HLS playlist of CMAF
    //    segments.
    let text = wait_until(
        Duration::from_secs(40),
        "parts in the edge playlist",
        || {
            // (no hint while a segment just completed waits for the next
            // one's first part: a third of a second in two)
            let r = p.edge_get(path);
            let ll = parse_ll(&r.text());
            (r.status == 200 && !ll.current.is_empty() && ll.hint.is_some()).then(|| r.text())
        },
    );
    for tag in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.080",
        "#EXT-X-PART-INF:PART-TARGET=0.360",
        "#EXT-X-MAP:URI=\"init-",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=",
        "#EXT-X-PROGRAM-DATE-TIME:",
        ",INDEPENDENT=YES",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    let ll = parse_ll(&text);
    assert!(!ll.segments.is_empty(), "{text}");
    assert!(
        ll.segments.iter().all(|(_, u, _)| u.ends_with(".m4s")),
        "{text}"
    );

    // 2. Blocking reloads for the next part, one after another: each is
    //    held until that part is listed.
    let mut waits = Vec::new();
    let mut ll = parse_ll(&p.edge_get(path).text());
    for _ in 0..8 {
        let (msn, part) = (ll.current_msn, ll.current.len());
        let q = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
        let t0 = Instant::now();
        let r = p.edge_get(&q);
        let waited = t0.elapsed().as_secs_f64();
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let next = parse_ll(&r.text());
        // the answer holds the requested part (or the segment is complete
        // and the next one started)
        let has = if next.current_msn == msn {
            next.current.len() > part
        } else {
            next.current_msn > msn
        };
        assert!(has, "{q} answered without that part:\n{}", r.text());
        waits.push(waited);
        ll = next;
    }
    println!(
        "blocking reloads through the edge: waits {:?} s",
        waits
            .iter()
            .map(|w| (w * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    // 8 parts of 1/3 s appear over about 2.7 s: the requests were held, not
    // answered at once with the old playlist.
    let held: f64 = waits.iter().sum();
    assert!(held > 1.6, "blocking reloads were not held: {waits:?}");

    // 3. Viewers waiting for the same part share one origin request, and
    //    all get it when it arrives.
    let ll = parse_ll(&p.edge_get(path).text());
    let (msn, part) = (ll.current_msn, ll.current.len() + 1);
    let q = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
    let viewers = 8;
    let answers = together(&p, &q, viewers);
    assert!(answers.iter().all(|a| a.0 == 200), "{q}");
    let needle = format!("_HLS_msn={msn}&_HLS_part={part} ");
    let at_origin = wait_until(Duration::from_secs(2), "the origin's log", || {
        Some(origin_requests(&p, &needle)).filter(|n| *n > 0)
    });
    let times: Vec<f64> = answers.iter().map(|a| a.2).collect();
    println!("{viewers} viewers waiting for part {msn}.{part}: answered at {times:?} s, origin requests {at_origin}");
    // one origin request per edge worker (edge_router_collapse; the
    // platform runs 2), however many viewers
    assert!(
        (1..=2).contains(&at_origin),
        "collapsed at the edge: {at_origin}"
    );
    let spread = times.iter().fold(0.0, |a: f64, b| a.max(*b))
        - times.iter().fold(f64::MAX, |a, b| a.min(*b));
    assert!(
        spread < 0.15,
        "answers spread over {spread:.3} s: {times:?}"
    );

    // 4. The preload hint's part, asked for by several viewers before it
    //    exists: held, one origin request per edge worker, answered with
    //    the bytes then listed under its name.
    let hint = wait_until(Duration::from_secs(5), "a preload hint", || {
        parse_ll(&p.edge_get(path).text()).hint
    });
    let hinted = together(&p, &format!("/golive/{hint}"), viewers);
    assert!(
        hinted.iter().all(|a| a.0 == 200 && a.1 == hinted[0].1),
        "{hint}"
    );
    let at_origin = origin_requests(&p, &format!("/golive/{hint} "));
    assert!(
        (1..=2).contains(&at_origin),
        "{hint} asked of the origin {at_origin} times"
    );
    wait_until(Duration::from_secs(5), "the hinted part listed", || {
        let ll = parse_ll(&p.edge_get(path).text());
        let all: Vec<String> = ll
            .segments
            .iter()
            .flat_map(|s| s.2.clone())
            .chain(ll.current.clone())
            .collect();
        all.contains(&hint).then_some(())
    });
    let again = p.edge_get(&format!("/golive/{hint}"));
    assert_eq!(again.body, hinted[0].1);
    assert_eq!(again.header("x-cache-status"), "HIT", "{hint}");
    assert!(
        again.header("cache-control").contains("immutable"),
        "{hint}"
    );
    println!("{viewers} viewers asking for hinted part {hint} before it existed: {at_origin} origin request(s), all answered");

    // 5. A complete segment is its parts, one after the other; segments and
    //    the init segment are final.
    let ll = wait_until(Duration::from_secs(10), "a segment with its parts", || {
        let ll = parse_ll(&p.edge_get(path).text());
        ll.segments.iter().any(|s| !s.2.is_empty()).then_some(ll)
    });
    let (msn, uri, parts) = ll
        .segments
        .iter()
        .find(|s| !s.2.is_empty())
        .unwrap()
        .clone();
    let seg = p.edge_get(&format!("/golive/{uri}"));
    assert_eq!(seg.status, 200);
    assert!(seg.header("cache-control").contains("immutable"));
    let mut cat = Vec::new();
    for part in &parts {
        let r = p.edge_get(&format!("/golive/{part}"));
        assert_eq!(r.status, 200, "{part}");
        cat.extend(r.body);
    }
    assert!(
        cat == seg.body,
        "segment {msn} ({uri}) is not its {} parts",
        parts.len()
    );
    let init = p.edge_get(&format!("/golive/{}", ll.map));
    assert_eq!(init.status, 200);
    assert!(init.header("cache-control").contains("immutable"));
    assert_eq!(&init.body[4..8], b"ftyp");
    // the fragment nginx-rtmp is writing is still never cached as a whole
    let hls = p.origin_dir(1).join("hls/golive");
    let growing = std::fs::read_dir(&hls)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".ts"))
        .max()
        .unwrap();
    let early = p.edge_get(&format!("/golive/{growing}"));
    assert_eq!(early.status, 200);
    assert_eq!(early.header("cache-control"), "no-store", "{growing}");
    println!(
        "segment {msn} = its {} parts; the growing {growing} not stored",
        parts.len()
    );

    // 6. Players that do not speak LL-HLS read the same URL.
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name"])
        .args(["-of", "csv=p=0"])
        .arg(p.edge_url(path))
        .output()
        .expect("ffprobe");
    let codecs = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && codecs.contains("h264") && codecs.contains("aac"),
        "ffprobe: {codecs} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ... and so does VLC's HLS client, following the live playlist: the
    //     playlist holds 8 s, so 14 s of media read in 20 s took reloads.
    let vlc = vlc_record(&p.edge_url(path), 20);
    let codecs: Vec<&str> = vlc.streams.iter().map(|s| s.1.as_str()).collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"aac"),
        "VLC read {codecs:?}"
    );
    assert!(
        vlc.video_seconds >= 14.0,
        "VLC read {:.1} s of video in 20 s",
        vlc.video_seconds
    );
    println!("VLC read {:.1} s of video in 20 s", vlc.video_seconds);

    // 7. The component hangs (stopped, its sockets still open): plain
    //    playlist requests get the file after their 1 s timeout, fragments
    //    after the fragment check's 1 s, blocking reloads after 7 s, before
    //    the edge's 8 s would count this origin as failed.
    let pid = llhls_pid(&p).expect("rtmp-live-llhls of origin 1 running");
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
    let origin = p.origin_host(1);
    let timed = |url: &str| {
        let t0 = Instant::now();
        let r = get(&p.http, url);
        (r, t0.elapsed())
    };
    let (plain, took) = timed(&format!("http://{origin}{path}"));
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert!(!plain.text().contains("#EXT-X-PART"), "{}", plain.text());
    assert!(
        took < Duration::from_secs(3),
        "plain playlist took {took:?}"
    );
    let listed = media_playlist(&plain.text()).1;
    let (seg, took) = timed(&format!("http://{origin}/golive/{}", listed[0].1));
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("cache-control"), "public, max-age=10");
    assert!(took < Duration::from_secs(3), "fragment took {took:?}");
    let (blocking, took) = timed(&format!("http://{origin}{path}?_HLS_msn=1&_HLS_part=0"));
    assert_eq!(blocking.status, 200, "{}", blocking.text());
    assert!(!blocking.text().contains("#EXT-X-PART"));
    assert!(
        took < Duration::from_secs(8),
        "blocking reload took {took:?}"
    );
    println!("component hung: plain playlist, fragment and blocking reload served from disk");

    // 8. Without the component the origin serves the plain playlist from
    //    disk, to plain and blocking requests alike.
    let pid = llhls_pid(&p).expect("rtmp-live-llhls of origin 1 running");
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let direct = get(&p.http, &format!("http://{origin}{path}"));
    assert_eq!(direct.status, 200, "{}", direct.text());
    assert!(!direct.text().contains("#EXT-X-PART"), "{}", direct.text());
    let listed = media_playlist(&direct.text()).1;
    assert!(!listed.is_empty());
    // its fragments too, cacheable for a few seconds only (nothing can tell
    // a complete fragment from the growing one now)
    let seg = get(&p.http, &format!("http://{origin}/golive/{}", listed[0].1));
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("cache-control"), "public, max-age=10");
    let q = format!("http://{origin}{path}?_HLS_msn=1&_HLS_part=0");
    let blocking = get(&p.http, &q);
    assert_eq!(blocking.status, 200, "{}", blocking.text());
    assert!(!media_playlist(&blocking.text()).1.is_empty());
    let edge = wait_until(
        Duration::from_secs(5),
        "the plain playlist at the edge",
        || {
            let r = p.edge_get(path);
            (r.status == 200 && !r.text().contains("#EXT-X-PART")).then_some(r)
        },
    );
    assert!(!media_playlist(&edge.text()).1.is_empty());
    let mut lat = waits.clone();
    println!(
        "blocking reload wait p50 {:.3} s, max {:.3} s",
        pct(&mut lat, 0.5),
        pct(&mut lat, 1.0)
    );
}
