//! The platform as `make up` runs it (`rtmp-live-up`, the topology of
//! `platform/`), on free ports, plus
//! ffmpeg publishers, an HTTP client and ffprobe.

#![allow(dead_code)]

// (each test binary uses some of these)
#[allow(unused_imports)]
pub use rtmp_live_testkit::player::{self, media_playlist};
pub mod web;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rtmp_live_platform::topology::origin_dir;
use rtmp_live_platform::Ports;
use rtmp_live_testkit::{artifact, free_port_with, wait, Proc};
use serde_json::Value;

/// The registry token the platform tests run with.
pub const REPORT_TOKEN: &str = "e2e-report-token-0123456789abcdef";

/// The secret stream key that publishes as `name` in the platform tests
/// (the API refuses keys shorter than 16 characters).
pub fn key(name: &str) -> String {
    format!("{name}-e2e-key-0123456789")
}

/// `STREAM_KEYS` mapping [`key`]`(name)` to `name` for each name.
pub fn stream_keys(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{}={n}", key(n)))
        .collect::<Vec<_>>()
        .join(",")
}

pub struct Platform {
    pub up: Proc,
    pub state: tempfile::TempDir,
    /// Every port of the run: the same description `make up` uses.
    pub ports: Ports,
    pub origins: usize,
    pub http: reqwest::blocking::Client,
}

impl Platform {
    /// `rtmp-live-up` (what `make up` runs) with `origins` origins on free
    /// ports; `env` adds or overrides variables.
    pub fn start(origins: usize, abr: bool, env: &[(&str, &str)]) -> Platform {
        let state = tempfile::tempdir().expect("state dir");
        let ports = Ports::pick(origins, free_port_with);
        let mut cmd = Command::new(artifact("rtmp-live-up"));
        cmd.envs(ports.env())
            .env("STATE_DIR", state.path())
            .env("ORIGINS", origins.to_string())
            .env("ABR", if abr { "1" } else { "0" })
            .env("PUBLIC_HOST", "127.0.0.1")
            // The tests check which origin served each answer.
            .env("EDGE_DEBUG_HEADERS", "1")
            .env("API_REPORT_TOKEN", REPORT_TOKEN)
            .env("STREAM_KEYS", stream_keys(&["golive"]));
        cmd.envs(env.iter().copied());
        let up = Proc::spawn("up", cmd);
        let http = rtmp_live_testkit::http::client();
        let p = Platform {
            up,
            state,
            ports,
            origins,
            http,
        };
        // `rtmp-live-up` announces the platform once every component accepts
        // connections (a port answering earlier may be `nginx -t`'s).
        wait_until(Duration::from_secs(90), "the platform to be up", || {
            let log = p.up.log();
            assert!(
                !log.contains("[up] error:") && !log.contains("[up] stopped"),
                "platform did not start:\n{log}"
            );
            log.contains("[up] RTMP Live is up").then_some(())
        });
        wait::until_explained(
            Duration::from_secs(20),
            || {
                p.http
                    .get(p.api_url("/readyz"))
                    .send()
                    .is_ok_and(|r| r.status() == 200)
                    .then_some(())
            },
            || format!("the API to be ready:\n{}", p.up.log()),
        );
        p
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    pub fn rtmp_port(&self, origin: usize) -> u16 {
        self.ports.origin(origin).rtmp
    }

    pub fn origin_host(&self, origin: usize) -> String {
        self.ports.origin_host(origin)
    }

    pub fn origin_dir(&self, origin: usize) -> PathBuf {
        origin_dir(self.state.path(), origin)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.api)
    }

    pub fn edge_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.edge)
    }

    pub fn edge_get(&self, path: &str) -> Resp {
        get(&self.http, &self.edge_url(path))
    }

    pub fn api_stream(&self, name: &str) -> Option<Value> {
        let r = self
            .http
            .get(self.api_url(&format!("/streams/{name}")))
            .send()
            .ok()?;
        (r.status() == 200).then(|| r.json().ok()).flatten()
    }

    /// Sends SIGTERM to `rtmp-live-up` (what Ctrl-C does) and checks that it exits
    /// cleanly and leaves no process behind.
    pub fn stop_and_check_clean(&mut self) {
        self.up.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(
            self.up.wait_exit(Duration::from_secs(20)),
            Some(Some(0)),
            "{}",
            self.up.log()
        );
        // Its children go with it: wait until the last one has exited.
        wait::until_explained(
            Duration::from_secs(5),
            || self.leftovers().is_empty().then_some(()),
            || format!("no process left behind: {:?}", self.leftovers()),
        );
    }

    /// Processes (other than `rtmp-live-up` itself) whose command line mentions the
    /// state folder: what would be left behind.
    /// Processes of this run still alive: any naming its state folder, and
    /// the ABR ladders (ffmpeg reading from one of its origins' RTMP ports).
    pub fn leftovers(&self) -> Vec<String> {
        let ladders: Vec<String> = (1..=self.origins)
            .map(|k| format!("rtmp://127.0.0.1:{}/", self.ports.origin(k).packaging))
            .collect();
        leftovers(self.state.path(), &ladders)
    }
}

/// Processes whose command line names `state` or one of `also`, or whose
/// environment has `STATE_DIR=<state>`.
pub fn leftovers(state: &Path, also: &[String]) -> Vec<String> {
    let needle = state.to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let env = String::from_utf8_lossy(&env).to_string();
        let ours = cmd.contains(&needle)
            || also.iter().any(|a| cmd.contains(a.as_str()))
            || env.contains(&format!("STATE_DIR={needle}"));
        if ours && !cmd.contains("cargo") && !cmd.contains("/deps/") {
            out.push(format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                cmd.trim()
            ));
        }
    }
    out
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn get(c: &reqwest::blocking::Client, url: &str) -> Resp {
    match c.get(url).send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            Resp {
                status,
                headers,
                body: r.bytes().map(|b| b.to_vec()).unwrap_or_default(),
            }
        }
        Err(e) => {
            // reqwest's message alone does not say what failed (refused,
            // reset, timed out): its causes do
            let mut why = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                why.push_str(&format!(": {s}"));
                src = s.source();
            }
            panic!("GET {url}: {why}")
        }
    }
}

/// A real-time ffmpeg test source (video + audio) publishing over RTMP to
/// stream `key` of the origin whose RTMP port is `port`.
pub fn publish(port: u16, key: &str, size: &str, fps: u32, seconds: Option<u32>) -> Proc {
    rtmp_live_testkit::publish::test_source(
        &format!("rtmp://127.0.0.1:{port}/stream/{key}"),
        size,
        fps,
        seconds,
    )
}

/// The publisher of `scripts/bench-latency.sh`: frames that carry the
/// publisher's wall clock (`scripts/clock-frames.py`, read back by
/// `e2e/browser/latency.mjs` and `players.mjs`) encoded in real time by
/// ffmpeg (x264 veryfast/zerolatency, keyframes every 2 s, a 440 Hz AAC
/// tone) and published over RTMP. The generator and ffmpeg run in their own
/// process group, stopped as a whole when this is dropped.
pub struct ClockPublisher {
    proc: Proc,
}

impl ClockPublisher {
    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}

impl Drop for ClockPublisher {
    fn drop(&mut self) {
        if let Some(pid) = self.proc.pid() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        self.proc.stop();
    }
}

/// [`ClockPublisher`] of `width`x`height` at `fps` to `port` with `key`;
/// the video rate is sized to the frame (about 2.7 bits a pixel a second:
/// 2.5 Mbit/s at 720p30, the top rung of the ABR ladder).
pub fn publish_clock(port: u16, key: &str, width: u32, height: u32, fps: u32) -> ClockPublisher {
    use std::os::unix::process::CommandExt;
    let script = rtmp_live_testkit::workspace_root().join("scripts/clock-frames.py");
    let kbps = (u64::from(width) * u64::from(height) * u64::from(fps) / 11_000).max(300);
    let pipeline = format!(
        "python3 \"$0\" {fps} {width} {height} | ffmpeg -hide_banner -nostdin -loglevel error \
         -f rawvideo -pix_fmt gray -s {width}x{height} -framerate {fps} -i - \
         -re -f lavfi -i sine=frequency=440:sample_rate=44100 \
         -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p \
         -b:v {kbps}k -maxrate {kbps}k -bufsize {}k \
         -g {g} -keyint_min {g} -sc_threshold 0 -c:a aac -b:a 64k \
         -f flv rtmp://127.0.0.1:{port}/stream/{key}",
        kbps * 2,
        g = fps * 2,
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(pipeline).arg(script).process_group(0);
    ClockPublisher {
        proc: Proc::spawn(&format!("clock-{key}-{port}"), cmd),
    }
}

/// The bytes of segment `uri` of the media playlist `playlist` (served at
/// `dir`, e.g. `/golive`), through the edge, that decode on their own: a
/// CMAF segment with the init segment its `EXT-X-MAP` names in front.
pub fn segment_media(p: &Platform, dir: &str, playlist: &str, uri: &str) -> Vec<u8> {
    let mut map = None;
    for line in playlist.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = rest.split('"').next().map(str::to_string);
        } else if line == uri {
            break;
        }
    }
    let seg = p.edge_get(&format!("{dir}/{uri}"));
    assert_eq!(seg.status, 200, "{dir}/{uri}");
    match map {
        Some(init) => {
            let i = p.edge_get(&format!("{dir}/{init}"));
            assert_eq!(i.status, 200, "{dir}/{init}");
            [i.body, seg.body].concat()
        }
        None => seg.body,
    }
}

/// ffprobe's view of a media file: streams (codec_type, codec_name, width,
/// height) and the video duration (decoded frames / frame rate).
pub struct Probe {
    pub streams: Vec<(String, String, u64, u64)>,
    pub video_seconds: f64,
}

pub fn ffprobe(bytes: &[u8]) -> Probe {
    let fmp4 = bytes.get(4..8) == Some(b"ftyp");
    let f = tempfile::Builder::new()
        .suffix(if fmp4 { ".mp4" } else { ".ts" })
        .tempfile()
        .unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_type,codec_name,width,height,nb_read_frames,avg_frame_rate")
        .args(["-of", "json"])
        .arg(f.path())
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let video = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video");
    let video_seconds = video
        .and_then(|s| {
            let frames: f64 = s["nb_read_frames"].as_str()?.parse().ok()?;
            let (n, d) = s["avg_frame_rate"].as_str()?.split_once('/')?;
            let fps = n.parse::<f64>().ok()? / d.parse::<f64>().ok()?;
            (fps > 0.0).then(|| frames / fps)
        })
        .unwrap_or(0.0);
    Probe {
        streams,
        video_seconds,
    }
}

/// Polls `f` until it gives a value; panics naming `what` after `limit`
/// (the testkit's [`wait::until`]).
pub fn wait_until<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait::until(limit, what, f)
}

/// The platform tests run one after another: each needs the CPU for
/// real-time encoding.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `cvlc` without an interface, exiting at the end of its input, with
/// `home` (world-writable) as its home: as `nobody` when root (VLC refuses
/// to run as root).
pub fn cvlc_command(home: &std::path::Path) -> Command {
    let mut cmd = if nix::unistd::Uid::effective().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "env"]);
        c
    } else {
        Command::new("env")
    };
    cmd.arg(format!("HOME={}", home.display())).args([
        "cvlc",
        "-I",
        "dummy",
        "--no-video-title-show",
        "--play-and-exit",
    ]);
    cmd
}

/// VLC's HLS client (`cvlc`, Debian's `vlc-bin`) reads `url` for `secs`
/// seconds, writing what it demuxed unchanged to a file (`--sout std`, no
/// transcoding): ffprobe's view of that file. VLC refuses to run as root, so
/// as root it runs as `nobody`.
pub fn vlc_record(url: &str, secs: u32) -> Probe {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.path().join("vlc.ts");
    let mut cmd = cvlc_command(dir.path());
    cmd.arg(format!("--run-time={secs}")).arg(url).arg(format!(
        "--sout=#std{{access=file,mux=ts,dst={}}}",
        out.display()
    ));
    let run = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cvlc (Debian's vlc-bin; scripts/deps.sh installs it)");
    let bytes = std::fs::read(&out).unwrap_or_default();
    assert!(
        !bytes.is_empty(),
        "VLC wrote nothing ({}): {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    ffprobe(&bytes)
}

/// PID of origin 1's `rtmp-live-llhls` (started by `rtmp-live-up`).
pub fn llhls_pid(p: &Platform) -> Option<i32> {
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
