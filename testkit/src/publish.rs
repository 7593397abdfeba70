//! A real publisher: ffmpeg encoding a test pattern and a tone in real time
//! (x264, keyframes every 2 s, AAC) and publishing it over RTMP.

use std::process::{Command, Stdio};

use crate::Proc;

/// ffmpeg publishing `size` (`WxH`) at `fps` to `url` (`rtmp://...`), for
/// `seconds` or until the handle drops.
pub fn test_source(url: &str, size: &str, fps: u32, seconds: Option<u32>) -> Proc {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate={fps}"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    if let Some(s) = seconds {
        cmd.args(["-t", &s.to_string()]);
    }
    let gop = (fps * 2).to_string();
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
    ])
    .args(["-pix_fmt", "yuv420p", "-g", &gop, "-keyint_min", &gop])
    .args([
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "flv",
        url,
    ])
    .stdout(Stdio::null());
    let name = url.rsplit('/').next().unwrap_or("stream");
    Proc::spawn(&format!("ffmpeg-{name}"), cmd)
}
