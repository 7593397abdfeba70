//! The chaos suite: the whole platform (`make up` on free ports: Redis, the
//! API, two nginx-rtmp origins with discovery, the edge) fed by real ffmpeg
//! publishers and watched by player-like clients, through the faults a
//! platform meets in production. Each scenario prints what a viewer saw.
//!
//! `make test` runs it shortened; `make chaos` (CHAOS_FULL=1) at full length:
//! a 5-minute API outage, a 60-second API freeze.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtmp_live_testkit::Proc;

fn full() -> bool {
    std::env::var("CHAOS_FULL").is_ok_and(|v| v == "1")
}

/// What a player-like client saw: it reloads the playlist every second and
/// fetches every new segment, through the edge.
#[derive(Default, Debug, Clone)]
struct Seen {
    requests: usize,
    errors: Vec<String>,
    first_seq: Option<u64>,
    last_seq: u64,
    segments: usize,
    times: Vec<Duration>,
}

impl Seen {
    fn p99(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get((t.len() * 99 / 100).min(t.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    fn summary(&self) -> String {
        format!(
            "{} requests, {} errors, {} segments, media sequence {} -> {}, p99 {:?}",
            self.requests,
            self.errors.len(),
            self.segments,
            self.first_seq.unwrap_or(0),
            self.last_seq,
            self.p99()
        )
    }
}

struct Player {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Player {
    fn start(edge: u16, stream: &str, viewer: &str) -> Player {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s2, seen2) = (stop.clone(), seen.clone());
        let base = format!("http://127.0.0.1:{edge}/{stream}");
        let viewer = viewer.to_string();
        let thread = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut fetched: Vec<String> = Vec::new();
            while !s2.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                let one = |url: &str| -> Option<Vec<u8>> {
                    let t = Instant::now();
                    let r = c.get(url).header("X-Forwarded-For", &viewer).send();
                    let mut s = seen2.lock().unwrap();
                    s.requests += 1;
                    s.times.push(t.elapsed());
                    match r {
                        Ok(r) if r.status() == 200 => r.bytes().ok().map(|b| b.to_vec()),
                        Ok(r) => {
                            s.errors.push(format!("{url}: {}", r.status()));
                            None
                        }
                        Err(e) => {
                            s.errors.push(format!("{url}: {e}"));
                            None
                        }
                    }
                };
                if let Some(body) = one(&format!("{base}/index.m3u8")) {
                    let (seq, segs) = media_playlist(&String::from_utf8_lossy(&body));
                    {
                        let mut s = seen2.lock().unwrap();
                        s.first_seq.get_or_insert(seq);
                        s.last_seq = s.last_seq.max(seq);
                    }
                    for (_, uri) in segs {
                        if !fetched.contains(&uri) {
                            if one(&format!("{base}/{uri}")).is_some() {
                                seen2.lock().unwrap().segments += 1;
                            }
                            fetched.push(uri);
                        }
                    }
                }
                let spent = t0.elapsed();
                if spent < Duration::from_secs(1) {
                    std::thread::sleep(Duration::from_secs(1) - spent);
                }
            }
        });
        Player {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn snapshot(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    fn reset(&self) {
        let mut s = self.seen.lock().unwrap();
        let last = s.last_seq;
        *s = Seen {
            first_seq: Some(last),
            last_seq: last,
            ..Seen::default()
        };
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

/// PIDs of processes of this platform whose command line contains `what`.
fn pids_of(p: &Platform, what: &str) -> Vec<i32> {
    p.leftovers()
        .iter()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect()
}

/// The environment and program of a running process, to start it again.
fn respawn_like(pid: i32, name: &str) -> impl Fn() -> Proc {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<(String, String)> = env
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let name = name.to_string();
    move || {
        let mut cmd = std::process::Command::new(&exe);
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(&name, cmd)
    }
}

fn registered(p: &Platform, name: &str) -> bool {
    p.api_stream(name).is_some()
}

#[test]
fn chaos_suite() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (outage, freeze) = if full() { (300, 60) } else { (20, 8) };
    let heartbeat = 2;
    let mut p = Platform::start(
        2,
        false,
        &[
            ("STREAM_KEYS", &stream_keys(&["golive", "late"])),
            ("DISCOVERY_HEARTBEAT_SECS", "2"),
            ("STREAM_TTL_SECS", "10"),
        ],
    );
    // golive on both origins; "late" published once briefly, so that its key
    // was accepted before the outage.
    let _g1 = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    let _g2 = publish(p.rtmp_port(2), &key("golive"), "426x240", 25, None);
    let mut late = publish(p.rtmp_port(1), &key("late"), "320x180", 25, None);
    wait_until(
        Duration::from_secs(30),
        "golive and late registered",
        || (registered(&p, "golive") && registered(&p, "late")).then_some(()),
    );
    late.stop();
    let player = Player::start(p.edge, "golive", "198.51.100.7");
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        player.snapshot().errors.is_empty(),
        "{:?}",
        player.snapshot().errors
    );
    player.reset();

    // 1. The API is killed for `outage` seconds.
    let api_pid = pids_of(&p, "rtmp-live-api")[0];
    let respawn = respawn_like(api_pid, "rtmp-live-api");
    kill(Pid::from_raw(api_pid), Signal::SIGKILL).unwrap();
    let t0 = Instant::now();
    let late_start = Duration::from_secs(outage * 60 / 300);
    std::thread::sleep(late_start);
    let _late2 = publish(p.rtmp_port(1), &key("late"), "320x180", 25, None);
    let late_playable = wait_until(
        Duration::from_secs(30),
        "the stream started during the outage to play through the edge",
        || {
            let r = p.edge_get("/late/index.m3u8");
            (r.status == 200 && !media_playlist(&r.text()).1.is_empty()).then(|| t0.elapsed())
        },
    );
    let rest = Duration::from_secs(outage).saturating_sub(t0.elapsed());
    std::thread::sleep(rest);
    let seen = player.snapshot();
    println!(
        "[api killed {outage} s] viewer of golive: {}; stream published {:?} into the outage playable at {:?}",
        seen.summary(),
        late_start,
        late_playable
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(
        seen.last_seq > seen.first_seq.unwrap_or(0),
        "media sequence must advance"
    );
    let mut api = respawn();
    let back = Instant::now();
    wait_until(
        Duration::from_secs(3 * heartbeat + 5),
        "registry complete",
        || (registered(&p, "golive") && registered(&p, "late")).then_some(()),
    );
    let took = back.elapsed();
    println!("[api back] golive and late registered {took:?} after the API returned");
    player.reset();

    // 2. The API freezes while 16 clients ask for unknown streams.
    let api_pid = api.pid().unwrap() as i32;
    kill(Pid::from_raw(api_pid), Signal::SIGSTOP).unwrap();
    let edge = p.edge;
    let unknown: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .unwrap();
                let mut out = Vec::new();
                let end = Instant::now() + Duration::from_secs(freeze);
                let mut n = 0;
                while Instant::now() < end {
                    let t = Instant::now();
                    let s = c
                        .get(format!("http://127.0.0.1:{edge}/nosuch{i}x{n}/index.m3u8"))
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    out.push((s, t.elapsed()));
                    n += 1;
                }
                out
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(freeze));
    let unknown: Vec<(u16, Duration)> = unknown
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    kill(Pid::from_raw(api_pid), Signal::SIGCONT).unwrap();
    let seen = player.snapshot();
    let worst = unknown.iter().map(|(_, t)| *t).max().unwrap_or_default();
    println!(
        "[api frozen {freeze} s, 16 clients asking unknown streams] viewer: {}; unknown: {} answers, statuses {:?}, slowest {worst:?}",
        seen.summary(),
        unknown.len(),
        unknown.iter().map(|(s, _)| *s).collect::<std::collections::BTreeSet<_>>()
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(
        seen.p99() <= Duration::from_millis(200),
        "cached p99 {:?}",
        seen.p99()
    );
    assert!(unknown
        .iter()
        .all(|(s, _)| matches!(s, 404 | 502 | 503 | 504)));
    assert!(
        worst < Duration::from_secs(10),
        "an unknown stream hung {worst:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    player.reset();

    // 3. Redis loses everything (FLUSHALL), then is killed and restarted.
    let redis_pid = pids_of(&p, "redis-server")[0];
    let flush = std::process::Command::new("redis-cli")
        .args(["-p", &redis_port(redis_pid).to_string(), "FLUSHALL"])
        .output()
        .unwrap();
    assert!(flush.status.success());
    std::thread::sleep(Duration::from_secs(3));
    let respawn_redis = respawn_cmd(redis_pid, "redis-server");
    kill(Pid::from_raw(redis_pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut redis = respawn_redis();
    let back = Instant::now();
    wait_until(
        Duration::from_secs(3 * heartbeat + 5),
        "registrations back",
        || (registered(&p, "golive") && registered(&p, "late")).then_some(()),
    );
    println!(
        "[redis flushed, killed, restarted] registrations back after {:?}",
        back.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    let seen = player.snapshot();
    println!("[redis] viewer: {}", seen.summary());
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    player.reset();

    // 4. The viewer's origin is killed; then the other one freezes.
    let seen = player.finish();
    assert!(seen.errors.is_empty());
    let o1_pid: i32 = std::fs::read_to_string(p.origin_dir(1).join("nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let player = Player::start(p.edge, "golive", "203.0.113.9");
    std::thread::sleep(Duration::from_secs(4));
    // The master and its workers, as when the machine dies.
    let children = std::fs::read_to_string(format!("/proc/{o1_pid}/task/{o1_pid}/children"))
        .unwrap_or_default();
    kill(Pid::from_raw(o1_pid), Signal::SIGKILL).unwrap();
    for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        let _ = kill(Pid::from_raw(c), Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_secs(8));
    let seen = player.finish();
    println!("[origin 1 killed] viewer: {}", seen.summary());
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);

    api.stop();
    redis.stop();
    p.stop_and_check_clean();
}

fn redis_port(pid: i32) -> u16 {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let i = args.iter().position(|a| a == "--port").unwrap();
    args[i + 1].parse().unwrap()
}

/// Starts a process again with the same command line and environment.
fn respawn_cmd(pid: i32, name: &str) -> impl Fn() -> Proc {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let env = respawn_env(pid);
    let name = name.to_string();
    move || {
        let mut c = std::process::Command::new(&exe);
        c.args(&args[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(&name, c)
    }
}

fn respawn_env(pid: i32) -> Vec<(String, String)> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    env.split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}
