//! Load generator for measuring `rtmp-live-llhls` with many streams, without
//! running many encoders: replays one real MPEG-TS fragment as N live
//! streams the way nginx-rtmp writes them (one `write` per 188-byte packet,
//! at the media time of each frame; playlist written to `.bak` and renamed
//! after the fragment is closed), and optionally runs one LL client per
//! stream doing blocking reloads for the next part.
//!
//! usage: load <hls-dir> <streams> <seconds> <source.ts> [component-url]

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtmp_live_llhls::ts;

/// Packets of the source grouped per video frame, with the frame's offset
/// from the first frame in seconds.
fn frames(src: &[u8]) -> (Vec<u8>, Vec<(f64, Vec<u8>)>) {
    let mut header = Vec::new();
    let mut groups: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut first: Option<u64> = None;
    let mut video_pid = None;
    let mut pmt_pid = None;
    for p in src.chunks_exact(188) {
        let pk = ts::parse_packet(p).expect("source packet");
        if pk.pid == 0 && pk.pusi {
            pmt_pid = ts::pat_pmt_pid(pk.payload);
            if groups.is_empty() {
                header.extend_from_slice(p);
            }
            continue;
        }
        if Some(pk.pid) == pmt_pid && pk.pusi {
            if let Some(es) = ts::pmt_streams(pk.payload) {
                video_pid = es.iter().find(|(_, t)| ts::is_video(*t)).map(|(p, _)| *p);
            }
            if groups.is_empty() {
                header.extend_from_slice(p);
            }
            continue;
        }
        if Some(pk.pid) == pmt_pid || pk.pid == 0 {
            continue;
        }
        if Some(pk.pid) == video_pid && pk.pusi {
            let t = ts::parse_pes_header(pk.payload)
                .and_then(|h| h.decode_ts())
                .unwrap_or(0);
            let f = *first.get_or_insert(t);
            groups.push((ts::ts_diff(f, t) as f64 / ts::TS_CLOCK, Vec::new()));
        }
        match groups.last_mut() {
            Some(g) => g.1.extend_from_slice(p),
            None => header.extend_from_slice(p),
        }
    }
    (header, groups)
}

/// Moves the timestamps of one packet by `d` ticks (PES PTS/DTS and the
/// PCR), so that every replay of the source continues the one before (as a
/// live publisher's fragments do).
fn shift(p: &mut [u8], d: u64) {
    let afc = (p[3] >> 4) & 3;
    let mut at = 4;
    if afc & 2 != 0 {
        let len = usize::from(p[4]);
        if len > 0 && p[5] & 0x10 != 0 && len >= 7 {
            // PCR base: 33 bits from byte 6
            let b = &p[6..11];
            let base = (u64::from(b[0]) << 25)
                | (u64::from(b[1]) << 17)
                | (u64::from(b[2]) << 9)
                | (u64::from(b[3]) << 1)
                | u64::from(b[4] >> 7);
            let n = (base + d) & ((1 << 33) - 1);
            p[6] = (n >> 25) as u8;
            p[7] = (n >> 17) as u8;
            p[8] = (n >> 9) as u8;
            p[9] = (n >> 1) as u8;
            p[10] = (p[10] & 0x7f) | (((n & 1) as u8) << 7);
        }
        at = 5 + len;
    }
    if p[1] & 0x40 == 0 || afc & 1 == 0 || at + 14 > p.len() || p[at..at + 3] != [0, 0, 1] {
        return;
    }
    let flags = p[at + 7] >> 6;
    let put = |q: &mut [u8], o: usize| {
        let t = (u64::from((q[o] >> 1) & 7) << 30)
            | (u64::from(q[o + 1]) << 22)
            | (u64::from(q[o + 2] >> 1) << 15)
            | (u64::from(q[o + 3]) << 7)
            | u64::from(q[o + 4] >> 1);
        let n = (t + d) & ((1 << 33) - 1);
        q[o] = (q[o] & 0xf1) | ((((n >> 30) & 7) as u8) << 1);
        q[o + 1] = (n >> 22) as u8;
        q[o + 2] = ((((n >> 15) & 0x7f) as u8) << 1) | 1;
        q[o + 3] = (n >> 7) as u8;
        q[o + 4] = (((n & 0x7f) as u8) << 1) | 1;
    };
    if flags & 2 != 0 {
        put(p, at + 9);
    }
    if flags == 3 {
        put(p, at + 14);
    }
}

struct Stream {
    dir: PathBuf,
    msn: u64,
    file: Option<File>,
    frag_start: Instant,
    next_group: usize,
    listed: Vec<(u64, f64)>,
    /// Bytes written to the fragment in progress.
    bytes: u64,
}

/// (stream, fragment) → when each frame's packets were written: frame `k`
/// on disk closes the part that ends before it.
type Written = Arc<Mutex<HashMap<(usize, u64), Vec<(u64, Instant)>>>>;

fn write_playlist(dir: &Path, listed: &[(u64, f64)]) {
    let seq = listed.first().map_or(0, |s| s.0);
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXT-X-TARGETDURATION:2\n"
    );
    for (n, d) in listed {
        s += &format!("#EXTINF:{d:.3},\n{n}.ts\n");
    }
    fs::write(dir.join("index.m3u8.bak"), s).unwrap();
    fs::rename(dir.join("index.m3u8.bak"), dir.join("index.m3u8")).unwrap();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: load <hls-dir> <streams> <seconds> <source.ts> [component-url]");
        std::process::exit(2);
    }
    let root = PathBuf::from(&a[1]);
    let n: usize = a[2].parse().unwrap();
    let secs: f64 = a[3].parse().unwrap();
    let src = fs::read(&a[4]).unwrap();
    let url = a.get(5).cloned();
    let (header, groups) = frames(&src);
    let frame = groups.get(1).map_or(1.0 / 30.0, |g| g.0);
    let frag_len = groups.last().map_or(2.0, |g| g.0) + frame;
    eprintln!(
        "source: {} frames, {:.3} s, {} bytes; {n} streams",
        groups.len(),
        frag_len,
        src.len()
    );
    let t0 = Instant::now();
    let mut streams: Vec<Stream> = (0..n)
        .map(|i| {
            let dir = root.join(format!("s{i}"));
            fs::create_dir_all(&dir).unwrap();
            Stream {
                dir,
                msn: 0,
                file: None,
                // stagger the streams over one fragment
                frag_start: t0 + Duration::from_secs_f64(frag_len * i as f64 / n as f64),
                next_group: 0,
                listed: Vec::new(),
                bytes: 0,
            }
        })
        .collect();
    let written: Written = Arc::default();
    let w = written.clone();
    let clients_thread = url.map(|url| {
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        std::thread::spawn(move || clients(url, names, secs, w, frame))
    });
    let end = t0 + Duration::from_secs_f64(secs);
    let mut writes = 0u64;
    while Instant::now() < end {
        let now = Instant::now();
        let mut next_due = now + Duration::from_millis(50);
        for (i, s) in streams.iter_mut().enumerate() {
            if now < s.frag_start {
                next_due = next_due.min(s.frag_start);
                continue;
            }
            if s.file.is_none() {
                let mut f = File::create(s.dir.join(format!("{}.ts", s.msn))).unwrap();
                for p in header.chunks(188) {
                    f.write_all(p).unwrap();
                    writes += 1;
                }
                s.file = Some(f);
                s.next_group = 0;
                s.bytes = header.len() as u64;
            }
            let el = now.duration_since(s.frag_start).as_secs_f64();
            let offset = (s.msn as f64 * frag_len * ts::TS_CLOCK).round() as u64;
            while s.next_group < groups.len() && groups[s.next_group].0 <= el {
                let f = s.file.as_mut().unwrap();
                for p in groups[s.next_group].1.chunks(188) {
                    let mut p = p.to_vec();
                    shift(&mut p, offset);
                    f.write_all(&p).unwrap();
                    writes += 1;
                }
                s.next_group += 1;
                s.bytes += groups[s.next_group - 1].1.len() as u64;
                written
                    .lock()
                    .unwrap()
                    .entry((i, s.msn))
                    .or_default()
                    .push((s.bytes, Instant::now()));
            }
            if s.next_group == groups.len() && el >= frag_len {
                s.file = None;
                s.listed.push((s.msn, frag_len));
                if s.listed.len() > 4 {
                    let old = s.listed.remove(0);
                    let _ = fs::remove_file(s.dir.join(format!("{}.ts", old.0)));
                }
                write_playlist(&s.dir, &s.listed);
                s.msn += 1;
                s.frag_start += Duration::from_secs_f64(frag_len);
            }
            let due = if s.next_group < groups.len() {
                s.frag_start + Duration::from_secs_f64(groups[s.next_group].0)
            } else {
                s.frag_start + Duration::from_secs_f64(frag_len)
            };
            next_due = next_due.min(due);
        }
        if let Some(d) = next_due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    eprintln!(
        "wrote {writes} packets in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    if let Some(t) = clients_thread {
        let _ = t.join();
    }
}

/// One LL client per stream: blocking reload for the next part, again and
/// again; prints how many answers arrived, how many were not 200, and how
/// long after its bytes were on disk the newest part of each answer to a
/// blocking reload was received (the packet after a part closes it).
fn clients(url: String, names: Vec<String>, secs: f64, written: Written, frame: f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c = reqwest::Client::new();
        let end = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let (c, u) = (c.clone(), format!("{url}/{name}/index.m3u8"));
            let written = written.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut other) = (0u64, 0u64);
                let mut delays = Vec::new();
                let mut q = String::new();
                while tokio::time::Instant::now() < end {
                    let Ok(r) = c.get(format!("{u}{q}")).send().await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    if r.status() == 404 && ok == 0 {
                        // no playlist before nginx-rtmp lists the first fragment
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    if r.status() != 200 {
                        other += 1;
                        q.clear();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    ok += 1;
                    let body = r.text().await.unwrap_or_default();
                    let received = Instant::now();
                    if !q.is_empty() {
                        if let Some(d) = part_delay(&body, &written, i, received, frame) {
                            delays.push(d);
                        }
                    }
                    let (msn, parts) = next_part(&body);
                    q = format!("?_HLS_msn={msn}&_HLS_part={parts}");
                }
                (ok, other, delays)
            }));
        }
        let (mut ok, mut other, mut delays) = (0, 0, Vec::new());
        for t in tasks {
            let (a, b, d) = t.await.unwrap();
            ok += a;
            other += b;
            delays.extend(d);
        }
        eprintln!("clients: {ok} playlist answers (200), {other} other (503 at the end: the writer stopped)");
        delays.sort_by(f64::total_cmp);
        let q = |p: f64| delays.get(((delays.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN) * 1000.0;
        eprintln!(
            "clients: part on disk -> received in a blocking reload: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} parts",
            q(0.5),
            q(0.99),
            q(1.0),
            delays.len()
        );
    });
}

/// The next part a client asks for: (MSN of the segment in progress, its
/// parts so far).
fn next_part(body: &str) -> (u64, usize) {
    let mut msn = 0;
    let mut parts = 0;
    for l in body.lines() {
        if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap_or(0);
        } else if l.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !l.starts_with('#') && !l.is_empty() {
            msn += 1;
            parts = 0;
        }
    }
    (msn, parts)
}

/// Seconds between the newest part of `body` being on disk (the frame
/// after it written) and `received`.
fn part_delay(
    body: &str,
    written: &Written,
    stream: usize,
    received: Instant,
    frame: f64,
) -> Option<f64> {
    let (msn, parts) = next_part(body);
    if parts == 0 {
        return None;
    }
    // the frames of the segment in progress's parts
    let mut dur = 0.0;
    let mut seen = 0;
    for l in body.lines().rev() {
        if !l.starts_with('#') && !l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("#EXT-X-PART:DURATION=") {
            dur += v.split(',').next()?.parse::<f64>().ok()?;
            seen += 1;
        }
    }
    if seen != parts {
        return None;
    }
    let closing = (dur / frame).round() as usize;
    let w = written.lock().unwrap();
    let &(_, at) = w.get(&(stream, msn))?.get(closing)?;
    Some(received.saturating_duration_since(at).as_secs_f64())
}
