//! LL-HLS through the whole platform: ffmpeg publishes to the real origin
//! (nginx-rtmp), its LL-HLS component (`rtmp-live-llhls`, started by
//! scripts/up.sh beside discovery) cuts the fragment in progress into
//! byte-range parts, and viewers reach it through the real edge.
//!
//! - the playlist at the usual URL carries the LL tags (parts, preload hint,
//!   server control) on top of nginx-rtmp's segments;
//! - a blocking reload for the next part is held until the part exists,
//!   and viewers waiting for the same part share one origin request;
//! - a part's byte range through the edge equals the same bytes of the
//!   finished segment, and a range that may be cut short is never cached;
//! - ffprobe and VLC still read the same URL;
//! - a component that hangs costs the origin's answers a timeout, then the
//!   files are served;
//! - without the component the origin serves the plain playlist from disk.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One `#EXT-X-PART` line.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    uri: String,
    off: u64,
    len: u64,
}

/// What a viewer needs of an LL playlist.
#[derive(Debug)]
struct Ll {
    /// MSN of the segment whose parts are listed last (in progress).
    current_msn: u64,
    /// Its parts so far.
    current: Vec<Part>,
    /// Listed (complete) segments: (msn, uri).
    segments: Vec<(u64, String)>,
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(',').next()?,
    })
}

fn parse_ll(text: &str) -> Ll {
    let (seq, segs) = media_playlist(text);
    let segments: Vec<(u64, String)> = segs
        .into_iter()
        .enumerate()
        .map(|(i, (_, u))| (seq + i as u64, u))
        .collect();
    let mut current = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let (len, off) = attr(rest, "BYTERANGE")
                .and_then(|b| b.split_once('@'))
                .expect("BYTERANGE len@off");
            let p = Part {
                uri: attr(rest, "URI").expect("URI").to_string(),
                off: off.parse().unwrap(),
                len: len.parse().unwrap(),
            };
            current.push(p);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            // a segment line closes the parts listed before it
            current.clear();
        }
    }
    Ll {
        current_msn: seq + segments.len() as u64,
        current,
        segments,
    }
}

/// Waits until the edge's playlist at `path` lists segment `uri`.
fn wait_listed(p: &Platform, path: &str, uri: &str) {
    wait_until(Duration::from_secs(10), &format!("{uri} listed"), || {
        let ll = parse_ll(&p.edge_get(path).text());
        ll.segments.iter().any(|(_, u)| u == uri).then_some(())
    });
}

fn get_range(p: &Platform, path: &str, range: &str) -> Resp {
    let r = p
        .http
        .get(p.edge_url(path))
        .header("Range", range)
        .send()
        .unwrap_or_else(|e| panic!("GET {path} {range}: {e}"));
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().map(|b| b.to_vec()).unwrap_or_default(),
    }
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

#[test]
fn ll_hls_through_origin_component_and_edge() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(1, false, &[("LLHLS", "1")]);
    let _publisher = publish(p.rtmp_port(1), &key("golive"), "640x360", 30, None);
    let path = "/golive/index.m3u8";

    // 1. The usual URL, through the edge, is an LL-HLS playlist.
    let text = wait_until(
        Duration::from_secs(40),
        "parts in the edge playlist",
        || {
            let r = p.edge_get(path);
            (r.status == 200 && !parse_ll(&r.text()).current.is_empty()).then(|| r.text())
        },
    );
    for tag in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=",
        "#EXT-X-PART-INF:PART-TARGET=0.360",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=",
        "#EXT-X-PROGRAM-DATE-TIME:",
        ",INDEPENDENT=YES",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    let ll = parse_ll(&text);
    assert!(!ll.segments.is_empty(), "{text}");
    // the parts of the fragment in progress name a file nginx-rtmp is
    // writing, not a listed segment
    let cur_uri = ll.current[0].uri.clone();
    assert!(
        ll.segments.iter().all(|(_, u)| *u != cur_uri),
        "parts of a listed segment as current:\n{text}"
    );

    // 2. Blocking reloads for the next part, one after another: each is
    //    held until that part is listed, whose bytes are then on disk.
    let hls_dir = p.origin_dir(1).join("hls/golive");
    let mut waits = Vec::new();
    // (part, its bytes fetched through the edge right after it was listed)
    let mut fetched: Vec<(Part, Vec<u8>)> = Vec::new();
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
        if next.current_msn == msn {
            let np = next.current[part].clone();
            let on_disk = std::fs::metadata(hls_dir.join(&np.uri)).map_or(0, |m| m.len());
            assert!(
                on_disk >= np.off + np.len,
                "part {np:?} listed before its bytes were on disk ({on_disk})"
            );
            let range = format!("bytes={}-{}", np.off, np.off + np.len - 1);
            let r = get_range(&p, &format!("/golive/{}", np.uri), &range);
            assert_eq!(r.status, 206, "{range}: {}", r.text());
            assert_eq!(r.body.len() as u64, np.len);
            // a browser must not store it: its file is still growing (see 4.)
            assert_eq!(r.header("cache-control"), "no-store", "{range}");
            fetched.push((np, r.body));
        }
        waits.push(waited);
        ll = next;
    }
    let held: f64 = waits.iter().sum();
    println!(
        "blocking reloads through the edge: waits {:?} s",
        waits
            .iter()
            .map(|w| (w * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    // 8 parts of 1/3 s appear over about 2.7 s: the requests were held, not
    // answered at once with the old playlist.
    assert!(held > 1.6, "blocking reloads were not held: {waits:?}");
    assert!(
        waits.iter().all(|w| *w < 3.0),
        "a part took too long: {waits:?}"
    );

    // 3. Viewers waiting for the same part share one origin request.
    let ll = parse_ll(&p.edge_get(path).text());
    let (msn, part) = (ll.current_msn, ll.current.len() + 1);
    let q = format!("{path}?_HLS_msn={msn}&_HLS_part={part}");
    let viewers = 8;
    let answers: Vec<(u16, f64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..viewers)
            .map(|_| {
                s.spawn(|| {
                    let t0 = Instant::now();
                    let r = p.edge_get(&q);
                    (r.status, t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    std::thread::sleep(Duration::from_millis(300));
    let needle = format!("_HLS_msn={msn}&_HLS_part={part} ");
    let at_origin = origin_requests(&p, &needle);
    println!("{viewers} viewers waiting for part {msn}.{part}: answers {answers:?}, origin requests {at_origin}");
    // one origin request per edge worker (edge_router_collapse; the
    // platform runs 2), however many viewers
    assert!(
        (1..=2).contains(&at_origin),
        "collapsed at the edge: {at_origin}"
    );
    // ... and all of them answered when the part was: nginx's cache lock
    // would have left the waiters to its 500 ms poll
    let times = answers.iter().map(|a| a.1);
    let spread = times.clone().fold(0.0, f64::max) - times.fold(f64::MAX, f64::min);
    assert!(
        spread < 0.15,
        "answers spread over {spread:.3} s: {answers:?}"
    );

    // 4. Part byte ranges fetched through the edge while their segment was
    //    being written equal the finished segment.
    assert!(fetched.len() >= 4, "parts fetched: {}", fetched.len());
    // the same range again: from the edge's cache (a complete range is final)
    let (np0, body0) = fetched[0].clone();
    let range0 = format!("bytes={}-{}", np0.off, np0.off + np0.len - 1);
    let again = get_range(&p, &format!("/golive/{}", np0.uri), &range0);
    assert_eq!(again.body, body0);
    assert_eq!(again.header("x-cache-status"), "HIT", "{range0}");
    // ... and still not to be stored by viewers. A browser that kept a part
    // of the growing file would ask for the next one with If-Range and the
    // ETag of the smaller file; that no longer matches, so nginx answers
    // 200 with the whole file, which the browser hands to the player as the
    // part (hls.js then misplaced media and stalled):
    assert_eq!(again.header("cache-control"), "no-store", "{range0}");
    let stale = p
        .http
        .get(p.edge_url(&format!("/golive/{}", np0.uri)))
        .header("Range", "bytes=0-187")
        .header("If-Range", "\"0-0\"")
        .send()
        .unwrap();
    assert_eq!(stale.status().as_u16(), 200, "If-Range with another ETag");
    // that whole-file answer is not kept under the range's cache key
    let r = get_range(&p, &format!("/golive/{}", np0.uri), "bytes=0-187");
    assert_eq!((r.status, r.body.len()), (206, 188));
    // ranges of the fragment in progress that reach past its current end
    // (open, or closed beyond it) are cut short: never cached. (A fragment
    // with at most two parts so far: over a second left to run.)
    let ll = wait_until(
        Duration::from_secs(5),
        "a part of the next fragment",
        || {
            Some(parse_ll(&p.edge_get(path).text()))
                .filter(|ll| (1..=2).contains(&ll.current.len()))
        },
    );
    let growing = format!("/golive/{}", ll.current[0].uri);
    for range in ["bytes=0-", "bytes=0-999999999"] {
        for _ in 0..2 {
            let r = get_range(&p, &growing, range);
            assert_eq!(r.status, 206, "{range}");
            assert!(r.body.len() < 999_999_999);
            assert_ne!(r.header("x-cache-status"), "HIT", "{range} cached");
        }
    }
    // A plain GET of the fragment in progress returns the bytes written so
    // far: the origin says no-store, so the edge never keeps that copy (it
    // would serve a truncated segment to everyone later).
    let early = p.edge_get(&growing);
    assert_eq!(early.status, 200);
    assert_eq!(early.header("cache-control"), "no-store", "{growing}");
    let growing_uri = ll.current[0].uri.clone();
    // once listed, each segment holds the same bytes at the same offsets
    let last_uri = fetched.last().unwrap().0.uri.clone();
    wait_listed(&p, path, &last_uri);
    wait_listed(&p, path, &growing_uri);
    let full = p.edge_get(&growing);
    assert_eq!(full.status, 200);
    assert_ne!(
        full.header("x-cache-status"),
        "HIT",
        "a partial copy was kept"
    );
    assert!(full.body.len() > early.body.len());
    assert!(full.header("cache-control").contains("immutable"));
    assert_eq!(&full.body[..early.body.len()], &early.body[..]);
    assert_eq!(p.edge_get(&growing).header("x-cache-status"), "HIT");
    println!(
        "plain GET of the growing fragment: {} bytes, no-store; once listed: {} bytes, cached",
        early.body.len(),
        full.body.len()
    );
    let mut uris: Vec<String> = fetched.iter().map(|(np, _)| np.uri.clone()).collect();
    uris.dedup();
    for uri in &uris {
        let whole = p.edge_get(&format!("/golive/{uri}"));
        assert_eq!(whole.status, 200);
        // whole segments are final
        assert!(
            whole.header("cache-control").contains("immutable"),
            "{uri}: {}",
            whole.header("cache-control")
        );
        for (np, body) in fetched.iter().filter(|(np, _)| np.uri == *uri) {
            assert_eq!(
                &whole.body[np.off as usize..(np.off + np.len) as usize],
                &body[..],
                "part {np:?} differs from the finished segment"
            );
        }
    }
    println!(
        "{} parts fetched as byte ranges through the edge while their segment grew \
         equal the finished segments {uris:?}",
        fetched.len()
    );

    // 5. Players that do not speak LL-HLS read the same URL.
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

    // 6. The component hangs (stopped, its sockets still open): plain
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

    // 7. Without the component the origin serves the plain playlist from
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

/// PID of origin 1's `rtmp-live-llhls` (started by scripts/up.sh).
fn llhls_pid(p: &Platform) -> Option<i32> {
    let hls = p.origin_dir(1).join("hls");
    let needle = format!("HLS_PATH={}", hls.display());
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmd).contains("rtmp-live-llhls") {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if String::from_utf8_lossy(&env)
            .split('\0')
            .any(|kv| kv == needle)
        {
            return Some(pid);
        }
    }
    None
}
