//! Recordings through the whole platform: a publish session that ends stays
//! playable as a finished playlist, listed by the API, played through the
//! edge by ffmpeg and VLC from start to end; a session cut by a crash of
//! the LL-HLS component is finished when it starts again; retention deletes
//! them, and the API forgets them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtmp_live_testkit::{artifact, Proc};
use serde_json::Value;

/// The recordings the API lists for `golive`, newest first.
fn listed(p: &Platform) -> Vec<Value> {
    let r = get(&p.http, &p.api_url("/streams/golive/recordings"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// Seconds of media ffmpeg reads from `url` (start to end).
fn ffmpeg_seconds(url: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec.mp4");
    let run = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-map", "0:v", "-c", "copy"])
        .arg(&out)
        .output()
        .expect("ffmpeg");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    ffprobe(&std::fs::read(&out).unwrap()).video_seconds
}

fn recordings_dir(p: &Platform) -> std::path::PathBuf {
    p.origin_dir(1).join("recordings/golive")
}

#[test]
fn sessions_are_recorded_played_recovered_and_expire() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = Platform::start(
        1,
        false,
        &[
            ("LLHLS", "1"),
            ("DVR_WINDOW", "20s"),
            ("RECORDING_RETENTION", "40s"),
        ],
    );
    // 1. A 10 s session ends: it is listed, and plays through the edge.
    let mut first = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, Some(10));
    first.wait_exit(Duration::from_secs(30));
    let rec = wait_until(Duration::from_secs(30), "the recording listed", || {
        listed(&p).into_iter().next()
    });
    let duration = rec["duration"].as_f64().unwrap();
    assert!((7.0..=11.0).contains(&duration), "{rec}");
    let url = rec["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("/golive~") && url.ends_with("/index.m3u8"),
        "{url}"
    );
    let playlist = p.edge_get(&url);
    assert_eq!(playlist.status, 200, "{url}");
    let text = playlist.text();
    for tag in [
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MAP:URI=",
        "#EXT-X-ENDLIST",
    ] {
        assert!(text.contains(tag), "{tag}:\n{text}");
    }
    let got = ffmpeg_seconds(&p.edge_url(&url));
    assert!(
        (got - duration).abs() < 1.0,
        "ffmpeg read {got} s of {duration} s"
    );
    let vlc = vlc_record(&p.edge_url(&url), 20);
    assert!(
        vlc.video_seconds > duration - 1.5,
        "VLC read {} s",
        vlc.video_seconds
    );
    // the edge found it through the API and caches its media per recording
    let (_, segs) = media_playlist(&text);
    let dir = url.rsplit_once('/').unwrap().0;
    let seg = format!("{dir}/{}", segs[0].1);
    p.edge_get(&seg);
    assert_eq!(p.edge_get(&seg).header("x-cache-status"), "HIT");
    // a recording that does not exist, and a malformed name
    assert_eq!(p.edge_get("/golive~1/index.m3u8").status, 404);
    assert_eq!(p.edge_get("/golive~01/index.m3u8").status, 400);

    // 2. A session cut by a crash of the LL-HLS component (SIGKILL) is
    //    finished when the component starts again, and listed.
    let _second = publish(p.rtmp_port(1), &key("golive"), "426x240", 25, None);
    wait_until(
        Duration::from_secs(30),
        "the second session recording",
        || {
            let n = std::fs::read_dir(recordings_dir(&p)).ok()?.count();
            (n >= 2).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(4)); // a few segments into it
    let pid = llhls_pid(&p).expect("rtmp-live-llhls of origin 1");
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let o = p.ports.origin(1);
    let mut again = Command::new(artifact("rtmp-live-llhls"));
    again
        .env("HLS_PATH", p.origin_dir(1).join("hls"))
        .env("LLHLS_LISTEN", format!("127.0.0.1:{}", o.llhls))
        .env("RECORDINGS_PATH", p.origin_dir(1).join("recordings"))
        .env("RECORDING_RETENTION", "40s")
        .env("DVR_WINDOW", "20s");
    let _llhls = Proc::spawn("llhls-again", again);
    let both = wait_until(
        Duration::from_secs(30),
        "the interrupted session listed",
        || {
            let l = listed(&p);
            (l.len() >= 2).then_some(l)
        },
    );
    let cut = &both[0];
    assert!(cut["duration"].as_f64().unwrap() >= 2.0, "{cut}");
    let cut_url = p.edge_url(cut["url"].as_str().unwrap());
    assert!(ffmpeg_seconds(&cut_url) >= 2.0);

    // 3. Retention (40 s after each end): the folders go, then the API
    //    forgets them; the live session's recording is not touched.
    wait_until(
        Duration::from_secs(90),
        "the first recording deleted",
        || {
            let start = rec["start"].as_u64().unwrap();
            (!recordings_dir(&p).join(start.to_string()).exists()).then_some(())
        },
    );
    wait_until(Duration::from_secs(40), "the API to forget it", || {
        let l = listed(&p);
        l.iter().all(|r| r["start"] != rec["start"]).then_some(())
    });
    let open = std::fs::read_dir(recordings_dir(&p))
        .unwrap()
        .flatten()
        .filter(|e| !e.path().join("recording.json").exists())
        .count();
    assert_eq!(open, 1, "the session being recorded stays");
}
