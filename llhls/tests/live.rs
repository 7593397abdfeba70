//! End to end with the real thing: stock nginx + nginx-rtmp with the origin's
//! HLS settings, an ffmpeg publisher, `rtmp-live-llhls` tailing the HLS
//! folder, and nginx in front routing playlists to it and `.ts` (with Range)
//! to the files — the layout documented in docs/llhls-spike.md.
//!
//! Needs `nginx`, the nginx-rtmp module and `ffmpeg`/`ffprobe`; skipped (with
//! a message) when they are missing unless LLHLS_REQUIRE_LIVE=1.

use rtmp_live_llhls::DEFAULT_PART_TARGET;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
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
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let seed = std::process::id() as u64
        ^ nanos
        ^ NEXT.fetch_add(97, std::sync::atomic::Ordering::Relaxed);
    let mut p = 20_000 + (seed % 11_000) as u16;
    loop {
        if TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
        p = if p >= 31_990 { 20_000 } else { p + 7 };
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

fn nginx_conf(dir: &Path, rtmp: u16, http: u16, llhls: u16) -> String {
    let d = dir.display();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    format!(
        "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process on;\nuser {user};\nworker_processes 1;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{ worker_connections 256; }}\n\
         rtmp {{ server {{ listen 127.0.0.1:{rtmp}; chunk_size 4096;\n\
           application hls {{ live on; allow publish 127.0.0.1; deny publish all; drop_idle_publisher 10s;\n\
             hls on; hls_path {d}/hls; hls_nested on; hls_fragment 2s; hls_playlist_length 8s;\n\
             hls_fragment_slicing aligned; hls_cleanup on; }} }} }}\n\
         http {{ access_log {d}/access.log; client_body_temp_path {d}/cb; proxy_temp_path {d}/px;\n\
           fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
           types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}\n\
           server {{ listen 127.0.0.1:{http}; root {d}/hls;\n\
             location ~ \\.m3u8$ {{ proxy_pass http://127.0.0.1:{llhls}; proxy_buffering off; }}\n\
             location ~ \\.ts$ {{ add_header Access-Control-Allow-Origin \"*\" always; }}\n\
             location / {{ return 404; }} }} }}\n"
    )
}

#[derive(Debug, Clone, PartialEq)]
struct LlPart {
    uri: String,
    off: u64,
    len: u64,
    dur: f64,
    independent: bool,
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

fn parts_of(playlist: &str) -> Vec<LlPart> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .map(|l| {
            let (len, off) = attr(l, "BYTERANGE").unwrap().split_once('@').unwrap();
            LlPart {
                uri: attr(l, "URI").unwrap().to_string(),
                off: off.parse().unwrap(),
                len: len.parse().unwrap(),
                dur: attr(l, "DURATION").unwrap().parse().unwrap(),
                independent: l.contains("INDEPENDENT=YES"),
            }
        })
        .collect()
}

/// `2026-11-26T10:24:22.123Z` to seconds since the epoch.
fn parse_pdt(s: &str) -> f64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    secs as f64 + s[19..s.len() - 1].parse::<f64>().unwrap_or(0.0)
}

/// Wall clock of the live edge a playlist announces: program date-time of
/// the fragment in progress plus the duration of its listed parts.
fn live_edge(pl: &str) -> Option<f64> {
    let (msn, _) = next_part(pl);
    let uri = format!("{msn}.ts");
    // the last PDT line belongs to the fragment in progress when it has parts
    let pdt = pl
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .next_back()?;
    let parts: Vec<LlPart> = parts_of(pl).into_iter().filter(|p| p.uri == uri).collect();
    if parts.is_empty() {
        return None;
    }
    Some(parse_pdt(pdt) + parts.iter().map(|p| p.dur).sum::<f64>())
}

fn msn_of(uri: &str) -> u64 {
    uri.trim_end_matches(".ts").parse().unwrap()
}

/// (msn, index of the next part) the playlist's preload hint points at.
fn next_part(playlist: &str) -> (u64, u64) {
    let hint = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .expect("preload hint");
    let msn = msn_of(attr(hint, "URI").unwrap());
    let n = parts_of(playlist)
        .iter()
        .filter(|p| msn_of(&p.uri) == msn)
        .count() as u64;
    (msn, n)
}

/// Checks the rules the playlist must keep.
fn check_playlist(pl: &str, part_target: f64) {
    assert!(pl.starts_with("#EXTM3U\n"), "{pl}");
    assert!(
        pl.contains(&format!(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}\n",
            3.0 * part_target
        )),
        "{pl}"
    );
    assert!(
        pl.contains(&format!("#EXT-X-PART-INF:PART-TARGET={part_target:.3}\n")),
        "{pl}"
    );
    let td: f64 = pl
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap()
        .parse()
        .unwrap();
    for l in pl.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
        let d: f64 = l.trim_end_matches(',').parse().unwrap();
        assert!(d.round() <= td, "EXTINF {d} > target {td}");
    }
    let parts = parts_of(pl);
    let mut by_uri: Vec<(String, Vec<LlPart>)> = Vec::new();
    for p in parts {
        assert!(
            p.dur <= part_target + 0.001,
            "part longer than PART-TARGET: {p:?}"
        );
        match by_uri.last_mut() {
            Some((u, v)) if *u == p.uri => v.push(p),
            _ => by_uri.push((p.uri.clone(), vec![p])),
        }
    }
    for (uri, v) in &by_uri {
        // parts of one segment tile it from byte 0; the first starts at a keyframe
        assert_eq!(v[0].off, 0, "{uri}: {v:?}");
        assert!(v[0].independent, "{uri}: {v:?}");
        for w in v.windows(2) {
            assert_eq!(w[0].off + w[0].len, w[1].off, "{uri}: {v:?}");
            // every part but a segment's last is at least 85% of PART-TARGET
            assert!(w[0].dur >= 0.85 * part_target - 0.001, "{uri}: {v:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_from_a_real_nginx_rtmp() {
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
    let llhls_port = free_port_not(&[rtmp, http]);
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
        .args([
            "-t",
            "40",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "500k",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{rtmp}/hls/live"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    procs.0.push(("ffmpeg".into(), ffmpeg));

    let client = reqwest::Client::new();
    let pl_url = format!("http://127.0.0.1:{llhls_port}/live/index.m3u8");
    let get = |q: String| {
        let c = client.clone();
        let u = format!("{pl_url}{q}");
        async move {
            let r = c.get(&u).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.text().await.unwrap())
        }
    };

    // 1. parts appear for the fragment in progress
    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        let (s, body) = get(String::new()).await;
        if s == 200 && body.contains("#EXT-X-PART:") {
            break body;
        }
        assert!(Instant::now() < deadline, "no parts: {s} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    check_playlist(&first, DEFAULT_PART_TARGET);
    eprintln!("first LL playlist:\n{first}");

    // 2. blocking reloads: each returns within 50 ms of its part being
    // complete on disk (the video PES start that ends it has been written)
    let ts_url = |uri: &str| format!("http://127.0.0.1:{http}/live/{uri}");
    let mut fetched: Vec<(LlPart, Vec<u8>)> = Vec::new();
    let mut latencies = Vec::new();
    let mut edge_lag = Vec::new();
    let (mut msn, mut part) = next_part(&first);
    // 16 reloads or more: a segment's last part is complete only when nginx
    // lists the segment (no packet follows it on disk), so at most 3 in 4
    // are measurable, and fewer when the 1 ms disk poller is starved (a
    // loaded machine): then more reloads, up to 48, until 3 were measured.
    for i in 0..48 {
        if i >= 16 && latencies.len() >= 3 {
            break;
        }
        let file = d.join("hls/live").join(format!("{msn}.ts"));
        let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poller = {
            let (samples, stop, file) = (samples.clone(), stop.clone(), file.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                    samples.lock().unwrap().push((Instant::now(), size));
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let (s, body) = get(format!("?_HLS_msn={msn}&_HLS_part={part}")).await;
        let answered = Instant::now();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        poller.join().unwrap();
        assert_eq!(s, 200, "{body}");
        if let Some(edge) = live_edge(&body) {
            edge_lag.push(((wall - edge) * 1000.0).round() as i64);
        }
        check_playlist(&body, DEFAULT_PART_TARGET);
        let parts = parts_of(&body);
        let uri = format!("{msn}.ts");
        let seg_parts: Vec<&LlPart> = parts.iter().filter(|p| p.uri == uri).collect();
        let got = seg_parts.get(part as usize).copied();
        if let Some(p) = got {
            // fetch the part right away, from nginx, while the segment grows
            let r = client
                .get(ts_url(&p.uri))
                .header("Range", format!("bytes={}-{}", p.off, p.off + p.len - 1))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 206);
            let bytes = r.bytes().await.unwrap().to_vec();
            assert_eq!(bytes.len() as u64, p.len);
            fetched.push((p.clone(), bytes));
            // the part is complete once the packet after it is on disk
            let need = p.off + p.len + 188;
            let samples = samples.lock().unwrap();
            if let Some((t, _)) = samples.iter().find(|(_, sz)| *sz >= need) {
                let lat = answered.saturating_duration_since(*t);
                latencies.push(lat);
                assert!(
                    lat <= Duration::from_millis(50),
                    "answered {lat:?} after part {msn}/{part} was on disk"
                );
            }
        } else {
            // the segment was listed: the answer must hold it complete
            assert!(body.contains(&format!("\n{uri}\n")), "{body}");
        }
        (msn, part) = next_part(&body);
    }
    eprintln!("blocking reload answered after the part was on disk: {latencies:?}");
    eprintln!("answer time minus the live edge it announces (PDT + parts), ms: {edge_lag:?}");
    // A part is measurable when the 1 ms disk poller saw it complete before
    // the answer: not a segment's last part (complete only when listed),
    // and not when the poller thread was starved (a loaded machine).
    assert!(
        latencies.len() >= 3,
        "too few measured parts: {latencies:?}"
    );

    // 3. 400 for far-future requests
    let (s, _) = get(format!("?_HLS_msn={}", msn + 5)).await;
    assert_eq!(s, 400);
    let (s, _) = get(format!("?_HLS_msn={msn}&_HLS_part=40")).await;
    assert_eq!(s, 400);
    let (s, _) = get("?_HLS_part=1".into()).await;
    assert_eq!(s, 400);

    // 4. parts fetched while their segment grew = the finished segment
    let last_fetched_msn = msn_of(&fetched.last().unwrap().0.uri);
    let (s, _) = get(format!("?_HLS_msn={last_fetched_msn}")).await;
    assert_eq!(s, 200);
    let mut checked = 0;
    for (p, bytes) in &fetched {
        let whole = client
            .get(ts_url(&p.uri))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            &whole[p.off as usize..(p.off + p.len) as usize],
            &bytes[..],
            "{p:?}"
        );
        checked += 1;
    }
    // and the listed parts of the complete segments concatenate to them
    let (_, now) = get(String::new()).await;
    let parts = parts_of(&now);
    let hint_msn = next_part(&now).0;
    let mut segs_checked = 0;
    for uri in parts
        .iter()
        .map(|p| p.uri.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if msn_of(&uri) >= hint_msn {
            continue;
        }
        let whole = client
            .get(ts_url(&uri))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut cat = Vec::new();
        for p in parts.iter().filter(|p| p.uri == uri) {
            let r = client
                .get(ts_url(&uri))
                .header("Range", format!("bytes={}-{}", p.off, p.off + p.len - 1))
                .send()
                .await
                .unwrap();
            cat.extend(r.bytes().await.unwrap());
        }
        assert_eq!(cat.len(), whole.len(), "{uri}");
        assert!(
            cat == whole.to_vec(),
            "{uri}: parts differ from the segment"
        );
        segs_checked += 1;
    }
    eprintln!(
        "{checked} parts fetched in progress matched; {segs_checked} segments = concatenated parts"
    );
    assert!(segs_checked >= 1);

    // 5. the LL playlist plays (ffmpeg's HLS demuxer ignores the LL tags)
    let front = format!("http://127.0.0.1:{http}/live/index.m3u8");
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
    eprintln!("ffprobe of the LL playlist: {}", codecs.replace('\n', " "));

    // 6. publisher gone: the fragment in progress is listed, a request for
    // the next part is held and answered 503 after 3 target durations
    let (_, mut ff) = procs.0.pop().unwrap();
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(ff.id().to_string())
        .status();
    let _ = ff.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, body) = get(String::new()).await;
    let (msn, part) = next_part(&body);
    let t = Instant::now();
    let (s, _) = get(format!("?_HLS_msn={msn}&_HLS_part={part}")).await;
    let held = t.elapsed();
    assert_eq!(s, 503, "after {held:?}");
    assert!(held >= Duration::from_secs(5), "{held:?}");
    eprintln!("after the publisher left: next part held {held:?}, then 503");
    let _ = std::io::stderr().flush();
    drop(procs);
    let _: PathBuf = d;
}

fn free_port_not(not: &[u16]) -> u16 {
    loop {
        let p = free_port();
        if !not.contains(&p) && !not.contains(&(p + 1)) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}
