//! Discovery benchmark (ignored by default; run by scripts/bench-discovery.sh):
//! appearance-to-registered latency over many streams, then discovery's CPU
//! and memory while they are all live.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rtmp_live_testkit::{artifact, free_port, http, metrics, wait, Api, Proc, Redis};

fn write_playlist(dir: &Path, seq: u64) {
    fs::create_dir_all(dir).unwrap();
    let body = format!(
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{seq}\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000,\n{seq}.ts\n"
    );
    fs::write(dir.join("index.m3u8.bak"), body).unwrap();
    fs::rename(dir.join("index.m3u8.bak"), dir.join("index.m3u8")).unwrap();
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "benchmark: scripts/bench-discovery.sh"]
fn bench_many_streams() {
    let streams: usize = std::env::var("BENCH_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let live_secs: u64 = std::env::var("BENCH_LIVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let redis = Redis::start();
    let api = Api::start(&redis.url(), &[("STREAM_TTL_SECS", "30")]);
    let hls = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(artifact("rtmp-live-discovery"));
    cmd.env_clear()
        .env("RUST_LOG", "warn")
        .env("HLS_PATH", hls.path())
        .env("RECORDINGS_PATH", hls.path().join(".recordings"))
        .env("DISCOVERY_API_URL", api.url())
        .env("ADVERTISE_HOST", "127.0.0.1:8080")
        .env("DISCOVERY_LISTEN", format!("127.0.0.1:{port}"));
    let d = Proc::spawn("discovery", cmd);
    // Watching the folder: its start-up scan is done.
    let scans = format!("http://127.0.0.1:{port}/metrics");
    wait::until_explained(
        Duration::from_secs(10),
        || {
            metrics::value(&metrics::scrape(&scans), "discovery_rescans_total")
                .filter(|n| *n >= 1.0)
        },
        || format!("discovery to start:\n{}", d.log()),
    );
    let c = http::client();

    // Appearance -> registered, one stream at a time, polling the API.
    let mut lat = Vec::with_capacity(streams);
    for i in 0..streams {
        let name = format!("s{i}");
        let t = Instant::now();
        write_playlist(&hls.path().join(&name), 0);
        loop {
            let r = c
                .get(format!("{}/streams/{name}", api.url()))
                .send()
                .unwrap();
            if r.status() == 200 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{name} never registered"
            );
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "appearance -> registered over {streams} streams: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    );

    // All live: every playlist rewritten every 2 s (like nginx-rtmp with 2 s
    // fragments) for `live_secs`, heartbeats every 5 s.
    let pid = d.pid().unwrap();
    let ticks = clock_ticks_per_sec();
    let c0 = cpu_ticks(pid);
    let start = Instant::now();
    let mut seq = 1;
    let mut max_rss = 0;
    while start.elapsed() < Duration::from_secs(live_secs) {
        let round = Instant::now();
        for i in 0..streams {
            write_playlist(&hls.path().join(format!("s{i}")), seq);
        }
        seq += 1;
        max_rss = max_rss.max(rss_kb(pid));
        std::thread::sleep(Duration::from_secs(2).saturating_sub(round.elapsed()));
    }
    let cpu = (cpu_ticks(pid) - c0) as f64 / ticks as f64 / start.elapsed().as_secs_f64() * 100.0;
    let live: serde_json::Value = c
        .get(format!("{}/streams", api.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let n = live["streams"].as_array().unwrap().len();
    println!(
        "{streams} live streams for {live_secs} s: discovery CPU {cpu:.2}% of one core, max RSS {:.1} MB, {n} registered",
        max_rss as f64 / 1024.0
    );
    assert_eq!(n, streams);
}

fn clock_ticks_per_sec() -> u64 {
    // Linux reports /proc CPU times in USER_HZ, which is 100 on every
    // mainstream architecture; confirm with getconf when available.
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}
