//! The real decoder: ffmpeg decodes init + segment (`-f framecrc`, which
//! decodes every frame) and the checker counts the video frames and reads
//! its error output. Bounded in time and output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// What ffmpeg said about one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Error lines (at most 20).
    pub errors: Vec<String>,
    /// Decoded video frames, when there is a video stream.
    pub video_frames: Option<u64>,
    pub exit_ok: bool,
}

const MAX_OUT: usize = 4 << 20;

/// Runs `ffmpeg` on `data` (`format`: `mp4` or `mpegts`).
pub async fn decode(
    ffmpeg: &str,
    format: &str,
    data: Vec<u8>,
    timeout: Duration,
) -> Result<Decoded, String> {
    let mut child = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-f",
            format,
            "-i",
            "pipe:0",
            "-map",
            "0",
            "-f",
            "framecrc",
            "pipe:1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {ffmpeg}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let run = async move {
        let writer = tokio::spawn(async move {
            // ffmpeg may stop reading early (broken pipe is not our finding).
            let _ = stdin.write_all(&data).await;
            let _ = stdin.shutdown().await;
        });
        let read_bounded = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| async move {
            let mut out = Vec::new();
            let mut buf = [0u8; 16384];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) if out.len() < MAX_OUT => out.extend_from_slice(&buf[..n]),
                    Ok(_) => {}
                }
            }
            out
        };
        let (out, err) = tokio::join!(
            read_bounded(Box::new(stdout)),
            read_bounded(Box::new(stderr))
        );
        let status = child.wait().await;
        let _ = writer.await;
        (out, err, status.map(|s| s.success()).unwrap_or(false))
    };
    let (out, err, ok) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("ffmpeg took more than {} s", timeout.as_secs()))?;
    Ok(parse(
        &String::from_utf8_lossy(&out),
        &String::from_utf8_lossy(&err),
        ok,
    ))
}

/// Reads framecrc output and ffmpeg's error lines.
pub fn parse(framecrc: &str, stderr: &str, exit_ok: bool) -> Decoded {
    let mut video_index: Option<String> = None;
    let mut frames = 0u64;
    for line in framecrc.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            if let Some((idx, kind)) = rest.split_once(": ") {
                if kind.trim() == "video" && video_index.is_none() {
                    video_index = Some(idx.trim().to_string());
                }
            }
        } else if !line.starts_with('#') {
            let idx = line.split(',').next().unwrap_or("").trim();
            if video_index.as_deref() == Some(idx) {
                frames += 1;
            }
        }
    }
    let errors = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.contains("Broken pipe") && !l.starts_with("Last message repeated")
        })
        .take(20)
        .map(str::to_string)
        .collect();
    Decoded {
        errors,
        video_frames: video_index.map(|_| frames),
        exit_ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_video_frames_and_keeps_errors() {
        let out = "#tb 0: 1/30\n#media_type 0: video\n#media_type 1: audio\n\
0, 0, 0, 1, 1382400, 0xa\n1, 0, 0, 1024, 4096, 0xb\n0, 1, 1, 1, 1382400, 0xc\n";
        let d = parse(
            out,
            "[h264 @ 0x1] error while decoding MB 3 4\nLast message repeated 1 times\n",
            true,
        );
        assert_eq!(d.video_frames, Some(2));
        assert_eq!(d.errors, vec!["[h264 @ 0x1] error while decoding MB 3 4"]);
        assert_eq!(
            parse("#media_type 0: audio\n0, 0, 0, 1, 1, 0x1\n", "", true).video_frames,
            None
        );
    }
}
