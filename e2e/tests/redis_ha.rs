//! The platform past one machine's single points (`REDIS_REPLICAS=2
//! APIS=2 make up`: a Redis master, two replicas, three sentinels, two API
//! instances), fed by real ffmpeg publishers and watched by a player-like
//! client through the edge, while its registry fails: the master is
//! SIGKILLed (the sentinels promote a replica), the new master loses
//! everything (FLUSHALL: what a failover to an empty replica or a restart
//! without persistence leaves), then an API instance is SIGKILLed. Prints
//! what the viewer saw and how long each part took to come back.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::player::Player;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A second key for `golive` (a leaked key, or a second encoder that is
/// not the owner's): it must never take the name while golive is live.
const OTHER_KEY: &str = "golive-other-key-0123456789";

fn redis_cli(p: &Platform, port: u16) -> Command {
    let pw = std::fs::read_to_string(p.state_dir().join("redis-password")).unwrap();
    let mut c = Command::new("redis-cli");
    c.args(["-p", &port.to_string()])
        .env("REDISCLI_AUTH", pw.trim());
    c
}

/// What the watcher beside the test saw after the master was killed
/// (times from the kill).
#[derive(Default, Clone)]
struct Watch {
    promoted: Option<(u16, Duration)>,
    failed: usize,
    last_failed: Option<Duration>,
    last_ok: Option<Duration>,
}

/// What the sentinels call the master now (its port).
fn master_port(p: &Platform) -> Option<u16> {
    (0..3).find_map(|i| {
        let out = redis_cli(p, p.ports.sentinel(i))
            .args(["SENTINEL", "get-master-addr-by-name", "rtmp-live"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    })
}

fn redis_pid(p: &Platform, port: u16) -> i32 {
    let out = redis_cli(p, port)
        .args(["INFO", "server"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
        .expect("redis process_id")
}

/// Publishes `key` as an encoder with automatic reconnection does (OBS
/// retries a refused publish): a new attempt every 500 ms until one stays
/// up. Returns the publisher and when it was accepted.
fn publish_until_accepted(
    p: &Platform,
    key: &str,
    limit: Duration,
) -> (rtmp_live_testkit::Proc, Instant) {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < limit,
            "{key} not accepted within {limit:?}:\n{}",
            p.up.log()
        );
        let mut pubr = publish(p.rtmp_port(1), key, "320x180", 25, None);
        let t = Instant::now();
        // a refused publish ends within a second or two; an accepted one
        // runs on
        while t.elapsed() < Duration::from_secs(3) && pubr.is_running() {
            std::thread::sleep(Duration::from_millis(100));
        }
        if pubr.is_running() {
            return (pubr, t);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn registry_failover_and_loss_under_a_live_stream() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let heartbeat = Duration::from_secs(2);
    let keys = format!(
        "{},{OTHER_KEY}=golive",
        stream_keys(&["golive", "late", "third"])
    );
    let mut p = Platform::start(
        1,
        false,
        &[
            ("REDIS_REPLICAS", "2"),
            ("APIS", "2"),
            ("STREAM_KEYS", &keys),
            ("DISCOVERY_HEARTBEAT_SECS", "2"),
            ("STREAM_TTL_SECS", "10"),
            ("REGISTRY_RECOVERY_SECS", "6"),
        ],
    );
    let first_master = master_port(&p).expect("sentinels name a master");
    assert_eq!(first_master, p.ports.redis);
    // right after the start a publish may be refused until the replicas
    // have synced (claims wait for one): the encoder retries
    let (_golive, _) = publish_until_accepted(&p, &key("golive"), Duration::from_secs(20));
    wait_until(Duration::from_secs(30), "golive registered", || {
        p.api_stream("golive").map(|_| ())
    });
    let player = Player::start(p.ports.edge, "golive", "198.51.100.7");
    wait_until(Duration::from_secs(20), "the viewer to play", || {
        (player.snapshot().segments >= 2).then_some(())
    });

    // 1. The master is SIGKILLed, as when its machine dies. Beside the
    // test, every 100 ms: which master the sentinels name, and whether the
    // API answers a lookup of golive.
    let killed = Instant::now();
    let watch = std::sync::Arc::new(std::sync::Mutex::new(Watch::default()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    kill(Pid::from_raw(redis_pid(&p, first_master)), Signal::SIGKILL).unwrap();
    // kept running until the test ends
    let mut late_pub = None;
    std::thread::scope(|scope| {
        let (w, stop2, pr) = (watch.clone(), stop.clone(), &p);
        scope.spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let t = killed.elapsed();
                let m = master_port(pr).filter(|m| *m != first_master);
                let ok = pr.api_stream("golive").is_some();
                let mut w = w.lock().unwrap();
                if let (Some(m), None) = (m, w.promoted) {
                    w.promoted = Some((m, t));
                }
                if ok {
                    w.last_ok = Some(t);
                } else {
                    w.failed += 1;
                    w.last_failed = Some(t);
                }
                drop(w);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // A new stream starts while the sentinels fail over: its encoder
        // retries until the API, on the new master, allows it.
        let (late, late_accepted) =
            publish_until_accepted(&p, &key("late"), Duration::from_secs(40));
        late_pub = Some(late);
        let late_playable = playable(&p, "late", killed);
        wait_until(
            Duration::from_secs(30),
            "a replica promoted, lookups back",
            || {
                let w = watch.lock().unwrap();
                (w.promoted.is_some() && w.last_ok > w.last_failed).then_some(())
            },
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let w = watch.lock().unwrap().clone();
        let seen = player.snapshot();
        println!(
            "[redis master killed] sentinels named :{} after {:?}; lookups of golive at the \
             API: {} of them failed, the last at {:?}; new publish accepted after {:?}, \
             playable through the edge after {late_playable:?}; viewer: {}",
            w.promoted.unwrap().0,
            w.promoted.unwrap().1,
            w.failed,
            w.last_failed,
            late_accepted - killed,
            seen.summary()
        );
    });
    let promoted = watch.lock().unwrap().promoted.unwrap();
    assert!(late_pub.is_some());
    let seen = player.snapshot();
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    player.reset();

    // 2. The new master loses everything.
    let flush = redis_cli(&p, promoted.0).arg("FLUSHALL").output().unwrap();
    assert!(flush.status.success());
    let wiped = Instant::now();
    // The other key for golive is refused while the registry recovers (no
    // owner record yet), and after it (the heartbeat brought the owner
    // back): the encoder's publish never stays up.
    let mut other = publish(p.rtmp_port(1), OTHER_KEY, "320x180", 25, None);
    // within a heartbeat (and the time a report takes)
    let back = wait_until(
        heartbeat * 3,
        "golive registered again by its origin's heartbeat",
        || p.api_stream("golive").map(|_| wiped.elapsed()),
    );
    let late_back = wait_until(Duration::from_secs(20), "late registered again", || {
        p.api_stream("late").map(|_| wiped.elapsed())
    });
    wait_until(
        Duration::from_secs(10),
        "the other key's publish refused",
        || (!other.is_running()).then_some(()),
    );
    // once the recovery is over too (the API's mark is gone)
    wait_until(Duration::from_secs(20), "the recovery to end", || {
        let out = redis_cli(&p, promoted.0)
            .args(["EXISTS", "rl:recovering"])
            .output()
            .ok()?;
        (String::from_utf8_lossy(&out.stdout).trim() == "0").then_some(())
    });
    let mut again = publish(p.rtmp_port(1), OTHER_KEY, "320x180", 25, None);
    wait_until(
        Duration::from_secs(10),
        "the other key refused again",
        || (!again.is_running()).then_some(()),
    );
    let log = p.up.log();
    assert!(
        log.contains("the registry is recovering and the name has no owner record yet"),
        "the other key was not held off by the recovery:\n{log}"
    );
    assert!(
        log.contains("live under another key"),
        "the other key was not refused as the name's non-owner:\n{log}"
    );
    let seen = player.finish();
    println!(
        "[registry wiped] golive registered again after {back:?}, late after {late_back:?} \
         (heartbeat {heartbeat:?}); the other key refused during and after the recovery; \
         viewer: {}",
        seen.summary()
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    other.stop();
    again.stop();

    // 3. The first API instance is SIGKILLed: discovery (reports,
    // /authorize) and the edge (lookups) go to the second.
    let player = Player::start(p.ports.edge, "golive", "198.51.100.7");
    wait_until(Duration::from_secs(20), "the viewer to play again", || {
        (player.snapshot().segments >= 1).then_some(())
    });
    let api1 = api_pid(&p, p.ports.api_instance(1));
    let log_at_kill = p.up.log().len();
    kill(Pid::from_raw(api1), Signal::SIGKILL).unwrap();
    let api_killed = Instant::now();
    let (_third, third_accepted) =
        publish_until_accepted(&p, &key("third"), Duration::from_secs(20));
    // the edge looks streams up at the instance that is left
    let third_playable = playable(&p, "third", api_killed);
    // the origin's reports (golive's heartbeats) land at the second
    wait_until(
        Duration::from_secs(10),
        "a report at the second instance",
        || {
            p.up.log()[log_at_kill..]
                .lines()
                .any(|l| {
                    l.starts_with("[api-2]")
                        && l.contains("method=POST path=\"/streams\"")
                        && l.contains("status=204")
                })
                .then_some(())
        },
    );
    let seen = player.finish();
    println!(
        "[API instance 1 killed] new publish accepted after {:?}, playable through the \
         edge after {third_playable:?}; reports at the second instance; viewer: {}",
        third_accepted - api_killed,
        seen.summary()
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    p.stop_and_check_clean();
}

/// Waits until `name` plays through the edge (its playlist and newest
/// segment answer 200); returns how long after `since`.
fn playable(p: &Platform, name: &str, since: Instant) -> Duration {
    wait_until(
        Duration::from_secs(30),
        &format!("{name} to play through the edge"),
        || {
            let r = p.edge_get(&format!("/{name}/index.m3u8"));
            let (_, segs) = media_playlist(&r.text());
            let seg = segs.last()?;
            (r.status == 200 && p.edge_get(&format!("/{name}/{}", seg.1)).status == 200)
                .then(|| since.elapsed())
        },
    )
}

/// The API instance listening on `port` (from its environment).
fn api_pid(p: &Platform, port: u16) -> i32 {
    let listen = format!("API_LISTEN=127.0.0.1:{port}\0");
    p.leftovers()
        .iter()
        .filter_map(|l| l.split(':').next()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| String::from_utf8_lossy(&e).contains(&listen))
        })
        .expect("the API instance's process")
}
