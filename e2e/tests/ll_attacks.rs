//! One hostile viewer against the LL-HLS request path of the platform as
//! `make up` runs it: cache poisoning of blocking reloads, spellings that
//! bypass collapsing, held requests that exhaust an origin, `Range` on
//! playlists; then all of them at once while hls.js plays in its
//! low-latency mode. The attacker sends raw requests from other loopback
//! addresses (127.0.0.2 and up: another client to the edge).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::web::*;
use common::*;
use rtmp_live_testkit::Proc;
use serde_json::json;

fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A raw request (sent byte for byte: no client normalizes it) from
/// `from`, on a connection of its own.
fn send(from: Ipv4Addr, port: u16, target: &str, headers: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut s: TcpStream = sock.into();
    // a server out of connections resets it: the answer then has status 0
    let _ = write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: rtmp-live\r\n{headers}Connection: close\r\n\r\n"
    );
    s
}

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn answer(mut s: TcpStream, limit: Duration) -> Answer {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn request(from: Ipv4Addr, port: u16, target: &str) -> Answer {
    answer(send(from, port, target, ""), Duration::from_secs(10))
}

const VIEWER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The live edge of an LL-HLS media playlist: the MSN of the segment being
/// written and how many of its parts are listed.
fn live_edge(text: &str) -> (u64, u64) {
    let (mut msn, mut parts) = (0, 0);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.trim().parse().unwrap_or(0);
        } else if line.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            parts = 0;
        }
    }
    (msn, parts)
}

/// The playlist lists part 0 of segment `msn` (or that segment whole).
fn lists_part0(text: &str, msn: u64) -> bool {
    let (cur, parts) = live_edge(text);
    msn < cur || (msn == cur && parts > 0)
}

/// LL-HLS on, `golive` published; returns once the edge lists parts.
fn ll_platform(keys: &[&str]) -> (Platform, Proc) {
    let p = Platform::start(1, false, &[("STREAM_KEYS", &stream_keys(keys))]);
    let publisher = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    wait_until(Duration::from_secs(60), "LL-HLS parts at the edge", || {
        let r = p.edge_get("/golive/index.m3u8");
        (r.status == 200 && r.text().contains("#EXT-X-PART:") && live_edge(&r.text()).0 >= 2)
            .then_some(())
    });
    (p, publisher)
}

fn edge_live_edge(p: &Platform) -> (u64, u64) {
    live_edge(&request(VIEWER, p.ports.edge, "/golive/index.m3u8").body)
}

/// Issue 24, 1: the edge keyed a blocking reload on the first `_HLS_msn`
/// and the origin answered the last one at once, so
/// `?_HLS_msn=<future>&_HLS_part=0&_HLS_msn=0` stored today's playlist
/// under the future part's key (and an encoded path did the same through
/// the file fallback): a viewer following the spec then got that copy, a
/// HIT without the part it asked for, for seconds. Now the repeated
/// directive is a 400 and the encoded path is the same request as the
/// plain one: the viewer gets its part.
#[test]
fn blocking_reloads_cannot_be_poisoned() {
    let _g = lock();
    let (p, _publisher) = ll_platform(&["golive"]);
    let edge = p.ports.edge;
    for round in 0..3 {
        let (msn, _) = edge_live_edge(&p);
        let mut held = Vec::new();
        let mut refused = Vec::new();
        for k in 1..=2 {
            let m = msn + k;
            for q in [
                format!("_HLS_msn={m}&_HLS_part=0&_HLS_msn=0"),
                format!("_HLS_msn={m}&_HLS_part=0&_HLS_MSN=0"),
            ] {
                let a = request(ATTACKER, edge, &format!("/golive/index.m3u8?{q}"));
                refused.push((q, a.status));
            }
            // legitimate once decoded: held like the viewer's own request
            // (the next segment; the one after is too far ahead, a 400)
            if k > 1 {
                continue;
            }
            held.push(send(
                ATTACKER,
                edge,
                &format!("/golive/%69ndex.m3u8?_HLS_msn={m}&_HLS_part=0"),
                "",
            ));
        }
        let t0 = Instant::now();
        let r = request(
            VIEWER,
            edge,
            &format!("/golive/index.m3u8?_HLS_msn={}&_HLS_part=0", msn + 1),
        );
        let waited = t0.elapsed();
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            lists_part0(&r.body, msn + 1),
            "round {round}: asked for part 0 of {} and got (cache {:?}, {waited:?}):\n{}",
            msn + 1,
            r.header("x-cache-status"),
            r.body
        );
        for s in held {
            let a = answer(s, Duration::from_secs(10));
            assert_eq!(a.status, 200, "{}", a.body);
        }
        assert!(
            refused.iter().all(|r| r.1 == 400),
            "round {round}: {refused:?}"
        );
    }
}

/// Issue 24, 2: `_HLS_msn=0042` and `+42` were distinct edge keys but one
/// number to the origin, so every spelling held its own origin connection;
/// `_HLS_part=18446744073709551615` wrapped and was held. Now every other
/// spelling is a 400 at once, and 40 viewers asking for one part make at
/// most one origin request per edge worker.
#[test]
fn spellings_are_refused_and_one_part_is_one_origin_request() {
    let _g = lock();
    let (p, _publisher) = ll_platform(&["golive"]);
    let edge = p.ports.edge;
    let (msn, _) = edge_live_edge(&p);
    let next = msn + 1;
    let t0 = Instant::now();
    let spellings: Vec<String> = (1..=20)
        .map(|z| format!("{}{next}", "0".repeat(z)))
        .chain(
            ["+".to_string(), "%2B".into(), "%30".into(), " ".into()].map(|p| format!("{p}{next}")),
        )
        .chain((0..16).map(|i| format!("{next}&_HLS_part=0&x{i}=1")))
        .collect();
    let refused: Vec<TcpStream> = spellings
        .iter()
        .map(|s| {
            send(
                ATTACKER,
                edge,
                &format!("/golive/index.m3u8?_HLS_msn={s}"),
                "",
            )
        })
        .collect();
    for (s, spelling) in refused.into_iter().zip(&spellings) {
        let a = answer(s, Duration::from_secs(5));
        assert_eq!(a.status, 400, "_HLS_msn={spelling}: {}", a.body);
    }
    let huge = request(
        ATTACKER,
        edge,
        &format!("/golive/index.m3u8?_HLS_msn={msn}&_HLS_part=18446744073709551615"),
    );
    assert_eq!(huge.status, 400, "{}", huge.body);
    let refused_in = t0.elapsed();
    assert!(
        refused_in < Duration::from_secs(3),
        "41 refusals took {refused_in:?}: some were held"
    );

    // 40 viewers, one part: collapsed
    let query = format!("_HLS_msn={next}&_HLS_part=0");
    let viewers: Vec<TcpStream> = (0..40)
        .map(|i| {
            send(
                Ipv4Addr::new(127, 0, 1, i as u8 + 1),
                edge,
                &format!("/golive/index.m3u8?{query}"),
                "",
            )
        })
        .collect();
    for s in viewers {
        let a = answer(s, Duration::from_secs(10));
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(lists_part0(&a.body, next), "{}", a.body);
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let access = std::fs::read_to_string(p.origin_dir(1).join("access.log")).unwrap();
    let upstream = access.lines().filter(|l| l.contains(&query)).count();
    assert!(
        (1..=workers).contains(&upstream),
        "40 viewers of one part made {upstream} origin requests ({workers} edge workers)"
    );
    let spelled = access
        .lines()
        .filter(|l| l.contains(&format!("_HLS_msn=0{next}")) || l.contains("_HLS_msn=+"))
        .count();
    assert_eq!(spelled, 0, "a refused spelling reached the origin");
}

/// Issue 24, 2: nothing bounded held reloads; 600 of them took the
/// origin's 1024 connections, which RTMP ingest shares: every new
/// publisher was refused. Now a client holds at most 64 at an edge (429
/// past them, at once), and an origin flooded with 3000 held requests by
/// a neighbour on its network (its HTTP is not for viewers) still takes a
/// new publisher, whose stream plays through the edge.
#[test]
fn held_requests_are_bounded_and_ingest_keeps_accepting() {
    let _g = lock();
    let (p, _publisher) = ll_platform(&["golive", "late"]);
    let edge = p.ports.edge;

    // a neighbour floods the origin's HTTP with held reloads
    let origin_http = p.ports.origin(1).http;
    let (msn, _) = edge_live_edge(&p);
    let flood_target = format!("/golive/index.m3u8?_HLS_msn={}", msn + 1);
    let mut flood = Vec::new();
    for i in 0..3000u32 {
        let from = Ipv4Addr::new(127, 0, 2 + (i / 250) as u8, (i % 250) as u8 + 1);
        flood.push(send(from, origin_http, &flood_target, ""));
    }
    // ingest: a new publisher, accepted and playing through the edge
    let t1 = Instant::now();
    let _late = publish(p.rtmp_port(1), &key("late"), "320x180", 25, None);
    wait_until(
        Duration::from_secs(30),
        "the new publisher to play through the edge during the flood",
        || {
            let r = p.edge_get("/late/index.m3u8");
            (r.status == 200 && !media_playlist(&r.text()).1.is_empty()).then_some(())
        },
    );
    println!(
        "new publisher playing {:.1} s after it started, 3000 held requests at the origin",
        t1.elapsed().as_secs_f64()
    );
    // one client, 100 held reloads of the next segment
    let (msn, _) = edge_live_edge(&p);
    let target = format!("/golive/index.m3u8?_HLS_msn={}", msn + 1);
    let t0 = Instant::now();
    let held: Vec<TcpStream> = (0..100)
        .map(|_| send(ATTACKER, edge, &target, ""))
        .collect();
    // the viewer (another address) is not affected
    let r = request(
        VIEWER,
        edge,
        &format!("/golive/index.m3u8?_HLS_msn={}&_HLS_part=0", msn + 1),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answers: Vec<(u16, Duration, Option<String>)> = held
        .into_iter()
        .map(|s| {
            let a = answer(s, Duration::from_secs(10));
            let ra = a.header("retry-after").map(str::to_string);
            (a.status, t0.elapsed(), ra)
        })
        .collect();
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!((ok, limited.len()), (64, 36), "{answers:?}");
    assert!(
        limited.iter().all(|a| a.2.as_deref() == Some("1")),
        "{limited:?}"
    );

    // and the viewers of the running stream too
    let r = p.edge_get("/golive/index.m3u8");
    assert_eq!(r.status, 200);
    drop(flood);
}

/// Issue 24, 3: the playlist location passed `Range` upstream and cached
/// the 206 under the playlist's key: a few `Range: bytes=0-24` requests a
/// second served a 25-byte playlist to every viewer. Now playlists are
/// always whole, at the edge and at the origin, from the LL-HLS component
/// and from files.
#[test]
fn range_requests_cannot_truncate_playlists() {
    let _g = lock();
    for llhls in ["1", "0"] {
        let p = Platform::start(1, false, &[("LLHLS", llhls)]);
        let _publisher = publish(p.rtmp_port(1), &key("golive"), "320x180", 25, None);
        wait_until(Duration::from_secs(60), "a playlist at the edge", || {
            let r = p.edge_get("/golive/index.m3u8");
            (r.status == 200 && media_playlist(&r.text()).1.len() >= 2).then_some(())
        });
        let origin_http = p.ports.origin(1).http;
        for port in [p.ports.edge, origin_http] {
            for _ in 0..10 {
                let a = answer(
                    send(
                        ATTACKER,
                        port,
                        "/golive/index.m3u8",
                        "Range: bytes=0-24\r\n",
                    ),
                    Duration::from_secs(5),
                );
                assert_eq!(a.status, 200, "LLHLS={llhls}, port {port}: {}", a.head);
                assert!(a.body.contains("#EXTINF:"), "LLHLS={llhls}: {}", a.body);
            }
        }
        for _ in 0..10 {
            let r = p.edge_get("/golive/index.m3u8");
            assert!(r.text().contains("#EXTINF:"), "LLHLS={llhls}: {}", r.text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Issue 24: hls.js plays in its low-latency mode through the edge while an
/// attacker mixes the attacks above (about 100 requests a second from 8
/// addresses: poisoning spellings, other spellings, `Range` on playlists,
/// held reloads up to its limit) and a new publisher starts meanwhile:
/// the viewer never stalls and the publisher is taken.
#[test]
fn hls_js_plays_through_a_mixed_attack() {
    let _g = lock();
    let t = tools();
    let p = Platform::start(
        1,
        false,
        &[("STREAM_KEYS", &stream_keys(&["golive", "late"]))],
    );
    let (w, h, fps) = (640, 360, 30);
    let _publisher = publish_clock(p.rtmp_port(1), &key("golive"), w, h, fps);
    wait_until(Duration::from_secs(60), "LL-HLS parts at the edge", || {
        let r = p.edge_get("/golive/index.m3u8");
        (r.status == 200 && live_edge(&r.text()).0 >= 3 && r.text().contains("#EXT-X-PART:"))
            .then_some(())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let edge = p.ports.edge;
    let attackers: Vec<_> = (0..8u8)
        .map(|i| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let from = Ipv4Addr::new(127, 0, 3, i + 1);
                let mut n = 0u64;
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let (msn, _) = live_edge(&request(from, edge, "/golive/index.m3u8").body);
                    let m = msn + 1;
                    let target = match n % 4 {
                        0 => format!("/golive/index.m3u8?_HLS_msn={m}&_HLS_part=0&_HLS_msn=0"),
                        1 => format!("/golive/index.m3u8?_HLS_msn=0{m}&_HLS_part=0"),
                        2 => format!("/golive/%69ndex.m3u8?_HLS_msn={m}&_HLS_part={}", n % 3),
                        _ => "/golive/index.m3u8".to_string(),
                    };
                    let range = if n % 4 == 3 {
                        "Range: bytes=0-24\r\n"
                    } else {
                        ""
                    };
                    held.push(send(from, edge, &target, range));
                    // the held ones are answered within a segment; the
                    // refused at once: keep up to 80 open, past the
                    // per-client limit
                    if held.len() > 80 {
                        held.remove(0);
                    }
                    sent.fetch_add(2, Ordering::Relaxed);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(150));
                }
            })
        })
        .collect();
    let late_publisher = std::thread::spawn({
        let port = p.rtmp_port(1);
        move || {
            std::thread::sleep(Duration::from_secs(12));
            publish(port, &key("late"), "320x180", 25, None)
        }
    });
    let name = "hlsjs-ll-under-attack";
    let r = play(
        &t,
        &p.edge_url("/golive/index.m3u8"),
        "hlsjs",
        "ll",
        name,
        h,
        json!({}),
    );
    let _late = late_publisher.join().unwrap();
    let late_ok = wait_until(
        Duration::from_secs(20),
        "the new publisher's stream at the edge",
        || {
            let r = p.edge_get("/late/index.m3u8");
            (r.status == 200).then_some(true)
        },
    );
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    println!("{}", summary(name, &r));
    println!(
        "attack: {} requests in {} s",
        sent.load(Ordering::Relaxed),
        t.warmup + t.seconds
    );
    assert!(late_ok);
    let why = problems(&r, fps);
    assert!(why.is_empty(), "hls.js under attack: {why:?}");
}
