//! End to end with the real thing: stock nginx + nginx-rtmp with the origin's
//! HLS settings, an ffmpeg publisher, `rtmp-live-llhls` tailing the HLS
//! folder and packaging it as CMAF, and nginx in front routing playlists
//! and parts to it and serving the segment files, as the origin does
//! (nginx/origin-llhls.conf.template).
//!
//! Needs `nginx`, the nginx-rtmp module and `ffmpeg`/`ffprobe`; skipped (with
//! a message) when they are missing unless LLHLS_REQUIRE_LIVE=1.

use mp4_atom::{Decode, Moof};
use rtmp_live_llhls::DEFAULT_PART_TARGET;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

struct Kill(Vec<(String, Child)>);

impl Drop for Kill {
    fn drop(&mut self) {
        for (name, c) in self.0.iter_mut().rev() {
            // TERM lets the nginx master take its workers down with it
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if c.try_wait().ok().flatten().is_none() {
                eprintln!("{name} ignored SIGTERM: killing");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p < 65_000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The component's cap on held requests per stream, in this test.
const HELD_PER_STREAM: usize = 8;

fn nginx_conf(dir: &Path, rtmp: u16, http: u16, llhls: u16) -> String {
    let d = dir.display();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    format!(
        "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process on;\nuser {user};\nworker_processes 1;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{ worker_connections 256; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{rtmp}; chunk_size 4096;\n\
           application hls {{ live on; allow publish 127.0.0.1; deny publish all; drop_idle_publisher 10s;\n\
             hls on; hls_path {d}/hls; hls_nested on; hls_fragment 2s; hls_playlist_length 8s;\n\
             hls_fragment_naming system; hls_fragment_slicing aligned; hls_cleanup on; }} }} }}\n\
         http {{ access_log {d}/access.log; client_body_temp_path {d}/cb; proxy_temp_path {d}/px;\n\
           fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
           types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 m4s mp4; }}\n\
           server {{ listen 127.0.0.1:{http}; root {d}/hls;\n\
             location ~ \"/\\.\" {{ return 404; }}\n\
             location ~ \"/[0-9]+-[0-9]+\\.m4s$\" {{ proxy_pass http://127.0.0.1:{llhls}; proxy_read_timeout 7s; }}\n\
             location ~ \"\\.(?:m4s|mp4)$\" {{ }}\n\
             location ~ \\.m3u8$ {{ proxy_pass http://127.0.0.1:{llhls}; proxy_buffering off; proxy_read_timeout 7s; }}\n\
             location / {{ return 404; }} }} }}\n"
    )
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[i..];
    if let Some(r) = rest.strip_prefix('"') {
        r.split('"').next()
    } else {
        rest.split(',').next()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Part {
    uri: String,
    dur: f64,
    independent: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Seg {
    msn: u64,
    /// `None` for the segment in progress.
    uri: Option<String>,
    dur: f64,
    map: String,
    pdt: f64,
    discontinuity: bool,
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Playlist {
    text: String,
    target: u64,
    segs: Vec<Seg>,
    hint: Option<String>,
}

/// `2026-11-26T10:24:22.123Z` to seconds since the epoch.
fn parse_pdt(s: &str) -> f64 {
    let t = humantime::parse_rfc3339(s).unwrap();
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn parse(text: &str) -> Playlist {
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let mut p = Playlist {
        text: text.to_string(),
        target: 0,
        segs: vec![],
        hint: None,
    };
    let mut msn = 0;
    let mut cur = Seg {
        msn: 0,
        uri: None,
        dur: 0.0,
        map: String::new(),
        pdt: 0.0,
        discontinuity: false,
        parts: vec![],
    };
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().unwrap();
        } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap();
        } else if l.starts_with("#EXT-X-MAP:") {
            cur.map = attr(l, "URI").unwrap().to_string();
        } else if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            cur.pdt = parse_pdt(v);
        } else if l == "#EXT-X-DISCONTINUITY" {
            cur.discontinuity = true;
        } else if l.starts_with("#EXT-X-PART:") {
            cur.parts.push(Part {
                uri: attr(l, "URI").unwrap().to_string(),
                dur: attr(l, "DURATION").unwrap().parse().unwrap(),
                independent: l.contains("INDEPENDENT=YES"),
            });
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            cur.dur = v.trim_end_matches(',').parse().unwrap();
        } else if l.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.hint = attr(l, "URI").map(str::to_string);
        } else if !l.starts_with('#') && !l.is_empty() {
            cur.uri = Some(l.to_string());
            cur.msn = msn;
            msn += 1;
            let map = cur.map.clone();
            // a segment without a date of its own follows the last one's
            // (RFC 8216bis 4.4.4.6); a listed date overrides it
            let pdt = cur.pdt + cur.dur;
            p.segs.push(std::mem::replace(
                &mut cur,
                Seg {
                    msn: 0,
                    uri: None,
                    dur: 0.0,
                    map,
                    pdt,
                    discontinuity: false,
                    parts: vec![],
                },
            ));
        }
    }
    if !cur.parts.is_empty() {
        cur.msn = msn;
        cur.dur = cur.parts.iter().map(|x| x.dur).sum();
        p.segs.push(cur);
    }
    p
}

impl Playlist {
    /// The next part a client asks for: (msn, part index).
    fn next(&self) -> (u64, u64) {
        match self.segs.last() {
            Some(s) if s.uri.is_none() => (s.msn, s.parts.len() as u64),
            Some(s) => (s.msn + 1, 0),
            None => (0, 0),
        }
    }

    fn part(&self, msn: u64, i: u64) -> Option<&Part> {
        self.segs
            .iter()
            .find(|s| s.msn == msn)?
            .parts
            .get(i as usize)
    }
}

/// The rules every playlist revision keeps.
fn check(p: &Playlist, part_target: f64) {
    let t = &p.text;
    // EXT-X-MAP needs version 6, a delta update's EXT-X-SKIP 9
    let version = if t.contains("#EXT-X-SKIP:") { 9 } else { 6 };
    assert!(t.contains(&format!("#EXT-X-VERSION:{version}\n")), "{t}");
    assert!(
        t.contains(&format!(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}\n",
            6.0 * p.target as f64,
            3.0 * part_target
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!("#EXT-X-PART-INF:PART-TARGET={part_target:.3}\n")),
        "{t}"
    );
    // a hint, except while the last segment listed is complete but not
    // yet listed as one (its last part is out, the next segment's first
    // is not): then the next part is not the open segment's
    assert!(
        p.hint.is_some()
            || p.segs
                .last()
                .is_some_and(|s| s.uri.is_none() && !s.parts.is_empty()),
        "{t}"
    );
    for (i, s) in p.segs.iter().enumerate() {
        assert!(s.map.starts_with("init-") && s.map.ends_with(".mp4"), "{t}");
        assert!(s.dur.round() as u64 <= p.target, "{s:?}");
        if let Some(next) = p.segs.get(i + 1).filter(|n| !n.discontinuity) {
            // date-times follow the durations
            assert!(
                (next.pdt - (s.pdt + s.dur)).abs() < 0.0015,
                "date-time of {} is not {} + {}: {t}",
                next.msn,
                s.pdt,
                s.dur
            );
        }
        if s.parts.is_empty() {
            continue;
        }
        assert!(s.parts[0].independent, "{s:?}");
        let sum: f64 = s.parts.iter().map(|x| x.dur).sum();
        if s.uri.is_some() {
            assert!((sum - s.dur).abs() < 0.0015, "{s:?}");
        }
        for (k, x) in s.parts.iter().enumerate() {
            assert!(
                x.dur <= part_target + 0.0005,
                "part longer than PART-TARGET: {x:?}"
            );
            let last = k + 1 == s.parts.len() && s.uri.is_some();
            if !last && !x.independent {
                assert!(x.dur >= 0.85 * part_target - 0.0005, "{s:?}");
            }
        }
    }
}

/// Video track's (tfdt, sum of durations, samples, first sample sync) of a
/// chunk.
fn chunk_video(bytes: &[u8]) -> (u64, u64, usize, bool) {
    let moof = Moof::decode(&mut std::io::Cursor::new(bytes)).unwrap();
    let t = moof.traf.iter().find(|t| t.tfhd.track_id == 1).unwrap();
    let samples: Vec<_> = t.trun[0].samples.iter().collect();
    let dur = samples.iter().map(|s| u64::from(s.duration.unwrap())).sum();
    let sync = samples[0].flags.unwrap() & 0x0001_0000 == 0;
    (
        t.tfdt.as_ref().unwrap().base_media_decode_time,
        dur,
        samples.len(),
        sync,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_cmaf_from_a_real_nginx_rtmp() {
    let missing: Vec<&str> = ["nginx", "ffmpeg", "ffprobe"]
        .into_iter()
        .filter(|b| !have(b))
        .collect();
    if !missing.is_empty() || !Path::new(RTMP_MODULE).exists() {
        assert!(
            std::env::var("LLHLS_REQUIRE_LIVE").is_err(),
            "missing {missing:?} or {RTMP_MODULE}"
        );
        eprintln!("skipped: needs nginx, {RTMP_MODULE}, ffmpeg, ffprobe");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("hls")).unwrap();
    let rtmp = free_port();
    let http = rtmp + 1;
    let llhls_port = loop {
        let p = free_port();
        if p != rtmp && p != http && p + 1 != rtmp {
            break p;
        }
    };
    std::fs::write(d.join("nginx.conf"), nginx_conf(&d, rtmp, http, llhls_port)).unwrap();
    let mut procs = Kill(Vec::new());
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(&d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-e")
        .arg(d.join("error.log"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(("nginx".into(), nginx));
    let llhls = Command::new(env!("CARGO_BIN_EXE_rtmp-live-llhls"))
        .arg("--hls-path")
        .arg(d.join("hls"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{llhls_port}"))
        // small, for step 4's check of the cap
        .arg("--held-per-stream")
        .arg(HELD_PER_STREAM.to_string())
        // recordings in this test's folder, not the machine's default
        .arg("--recordings-path")
        .arg(d.join("recordings"))
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    procs.0.push(("llhls".into(), llhls));
    wait_port(rtmp);
    wait_port(http);
    wait_port(llhls_port);

    let ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "90", "-c:v", "libx264", "-preset", "ultrafast"])
        .args([
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "500k",
        ])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{rtmp}/hls/live"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(("ffmpeg".into(), ffmpeg));

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}/live/");
    let get = |path: String| {
        let c = client.clone();
        let u = format!("{base}{path}");
        async move {
            let r = c.get(&u).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.bytes().await.unwrap().to_vec())
        }
    };
    let playlist = |q: String| {
        let g = get(format!("index.m3u8{q}"));
        async move {
            let (s, b) = g.await;
            (s, String::from_utf8(b).unwrap())
        }
    };

    // 1. two complete segments and parts of the third
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let (s, body) = playlist(String::new()).await;
        if s == 200 {
            let p = parse(&body);
            if p.segs.iter().filter(|s| s.uri.is_some()).count() >= 2 {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "no playlist: {s} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    check(&first, DEFAULT_PART_TARGET);
    eprintln!("first LL playlist:\n{}", first.text);

    // 2. a strict client: blocking reload for the next part, the preload
    // hint asked for before its part exists; every listed part fetched
    let mut pl = first;
    let mut parts: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut hinted = 0;
    let mut unhinted = 0;
    for _ in 0..24 {
        let (msn, i) = pl.next();
        let Some(hint) = pl.hint.clone() else {
            // the open segment is complete: the part after its last is the
            // next segment's first, answered when it exists
            let (s, body) = playlist(format!("?_HLS_msn={msn}&_HLS_part={i}")).await;
            assert_eq!(s, 200, "{body}");
            let next = parse(&body);
            check(&next, DEFAULT_PART_TARGET);
            let closed = next.segs.iter().find(|s| s.msn == msn);
            assert!(
                closed.is_some_and(|s| s.uri.is_some() && s.parts.len() as u64 == i)
                    && next.part(msn + 1, 0).is_some_and(|p| p.independent),
                "{msn}/{i} after a playlist without a hint: {body}"
            );
            unhinted += 1;
            pl = next;
            continue;
        };
        let (hint_res, (s, body)) = tokio::join!(
            get(hint.clone()),
            playlist(format!("?_HLS_msn={msn}&_HLS_part={i}"))
        );
        assert_eq!(s, 200, "{body}");
        let next = parse(&body);
        check(&next, DEFAULT_PART_TARGET);
        // the answer holds the part asked for (or the segment after a
        // complete one)
        assert!(
            next.part(msn, i).is_some() || next.part(msn + 1, 0).is_some(),
            "{msn}/{i}: {body}"
        );
        // the hint was held until its part existed, then answered with it
        assert_eq!(hint_res.0, 200, "hint {hint}");
        let listed: Vec<&Part> = next.segs.iter().flat_map(|s| &s.parts).collect();
        let p = listed
            .iter()
            .find(|p| p.uri == hint)
            .unwrap_or_else(|| panic!("the hinted {hint} is not the next part listed: {body}"));
        let (_, _, frames, sync) = chunk_video(&hint_res.1);
        assert_eq!(sync, p.independent, "{hint}");
        assert!(frames > 0);
        parts.insert(hint, hint_res.1);
        hinted += 1;
        for p in listed {
            if !parts.contains_key(&p.uri) {
                let (s, b) = get(p.uri.clone()).await;
                assert_eq!(s, 200, "{}", p.uri);
                parts.insert(p.uri.clone(), b);
            }
        }
        pl = next;
    }
    eprintln!(
        "{hinted} hinted parts held and answered, {unhinted} playlists closing a segment; {} parts fetched",
        parts.len()
    );

    // 3. every complete segment is its parts, one after the other in time,
    // and decodes with its init segment
    let (_, body) = playlist(String::new()).await;
    let now = parse(&body);
    let mut decoded = 0;
    for s in now
        .segs
        .iter()
        .filter(|s| s.uri.is_some() && !s.parts.is_empty())
    {
        let (st, seg) = get(s.uri.clone().unwrap()).await;
        assert_eq!(st, 200);
        let mut cat = Vec::new();
        let mut at = None;
        for p in &s.parts {
            let bytes = match parts.get(&p.uri) {
                Some(b) => b.clone(),
                None => get(p.uri.clone()).await.1,
            };
            let (tfdt, dur, _, _) = chunk_video(&bytes);
            if let Some(end) = at {
                assert_eq!(tfdt, end, "{} does not follow the part before", p.uri);
            }
            // the listed duration is the media's
            assert!((dur as f64 / 90_000.0 - p.dur).abs() < 0.0005, "{p:?}");
            at = Some(tfdt + dur);
            cat.extend(bytes);
        }
        assert!(
            cat == seg,
            "{}: parts differ from the segment",
            s.uri.as_ref().unwrap()
        );
        let (st, init) = get(s.map.clone()).await;
        assert_eq!(st, 200);
        let file = d.join("seg.mp4");
        std::fs::write(&file, [init, seg].concat()).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&file)
            .output()
            .unwrap();
        let frames: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0.0);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            (frames - 30.0 * s.dur).abs() <= 1.0,
            "{frames} frames in {}",
            s.dur
        );
        decoded += 1;
    }
    assert!(decoded >= 1);
    eprintln!("{decoded} segments = their parts, decoded with their init");

    // 4. delivery directives: far future, malformed, repeated: 400 at once
    let (msn, _) = now.next();
    for q in [
        format!("?_HLS_msn={}", msn + 5),
        format!("?_HLS_msn={msn}&_HLS_part=40"),
        "?_HLS_part=1".to_string(),
        format!("?_HLS_msn=0{msn}"),
        format!("?_HLS_msn={msn}&_HLS_msn=0"),
        "?_HLS_msn=18446744073709551615".to_string(),
        "?cachebuster=1".to_string(),
    ] {
        let t = Instant::now();
        let (s, _) = playlist(q.clone()).await;
        assert_eq!(s, 400, "{q}");
        assert!(t.elapsed() < Duration::from_secs(1), "{q}");
    }
    // held requests are capped per stream: past the cap, the current
    // playlist at once, which no cache may keep
    let (msn, _) = parse(&playlist(String::new()).await.1).next();
    let t = Instant::now();
    let asks: Vec<_> = (0..HELD_PER_STREAM + 4)
        .map(|_| {
            let c = client.clone();
            let u = format!("{base}index.m3u8?_HLS_msn={}", msn + 1);
            tokio::spawn(async move {
                let r = c.get(&u).send().await.unwrap();
                let cc = r
                    .headers()
                    .get("cache-control")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), cc, t.elapsed())
            })
        })
        .collect();
    let mut quick = 0;
    for a in asks {
        let (s, cc, took) = a.await.unwrap();
        assert_eq!(s, 200);
        if cc.as_deref() == Some("no-store") {
            assert!(took < Duration::from_secs(1), "{took:?}");
            quick += 1;
        }
    }
    assert_eq!(
        quick, 4,
        "{HELD_PER_STREAM} held, the rest answered at once"
    );

    // a delta update is a valid answer (nothing to skip in 8 s: whole)
    let (s, body) = playlist("?_HLS_skip=YES".into()).await;
    assert_eq!(s, 200);
    check(&parse(&body), DEFAULT_PART_TARGET);

    // 5. the LL playlist plays as plain HLS (ffmpeg ignores the LL tags)
    let front = format!("{base}index.m3u8");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&front)
        .output()
        .unwrap();
    let codecs = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&front)
        .args(["-t", "3", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 6. publisher gone: the next part is held, then 503 after at most
    // 3 target durations (6 s); the hint too
    let (_, mut ff) = procs.0.pop().unwrap();
    let _ = ff.kill();
    let _ = ff.wait();
    // the last fragment gets listed once nginx-rtmp notices, its last part
    // once the component gives up waiting for a next fragment, and then it
    // is listed as a segment: wait for a playlist that stays the same 2 s
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = parse(&playlist(String::new()).await.1);
    let mut same = 0;
    while same < 4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let p = parse(&playlist(String::new()).await.1);
        if p.text == last.text {
            same += 1;
        } else {
            same = 0;
            last = p;
        }
        assert!(Instant::now() < deadline, "the playlist kept changing");
    }
    let (msn, i) = last.next();
    let t = Instant::now();
    let (s, _) = playlist(format!("?_HLS_msn={msn}&_HLS_part={i}")).await;
    let held = t.elapsed();
    assert_eq!(s, 503, "after {held:?}");
    eprintln!("after the publisher left: next part held {held:?}, then 503");
    // the hint: 503 in time, or 404 if nginx-rtmp's cleanup removed the
    // stream meanwhile (its files go a few seconds after the publisher)
    let t = Instant::now();
    let (s, b) = get(last.hint.clone().unwrap()).await;
    let body = String::from_utf8_lossy(&b);
    assert!(
        s == 503 || (s == 404 && body.contains("stream ended")),
        "{s} {body}"
    );
    assert!(
        t.elapsed() <= Duration::from_millis(6500),
        "{:?}",
        t.elapsed()
    );
    drop(procs);
}
