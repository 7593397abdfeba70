//! The master's keeper: writes `master.m3u8` once every rendition has a
//! fragment of this ladder, then keeps its modification time fresh while
//! the ladder runs (nginx-rtmp's `hls_cleanup` deletes any `*.m3u8` under
//! `hls_path` older than `hls_playlist_length`; when the ladder stops, the
//! master ages out with the renditions' files).
//!
//! After a publisher reconnects, the last session's playlists still list
//! its fragments, encoded from the last source (maybe at another size).
//! nginx-rtmp renames a new file over a playlist whenever a fragment
//! closes, so a playlist that is no longer the file it was when the ladder
//! started lists one of this ladder's fragments, last: that one is probed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtmp_live_types::layout;
use tokio::process::Command;

use crate::ladder::Rung;
use crate::master::{self, Probe, Variant};

/// How often the keeper looks for the renditions' first fragments.
const POLL: Duration = Duration::from_millis(200);
/// How often the written master's modification time is refreshed.
const TOUCH: Duration = Duration::from_secs(2);

/// The stream's folder and the files in it.
#[derive(Debug, Clone)]
pub struct Folder {
    /// `<HLS_PATH>/<name>`
    pub root: PathBuf,
}

impl Folder {
    pub fn master(&self) -> PathBuf {
        self.root.join(layout::MASTER)
    }

    fn playlist(&self, rung: &str) -> PathBuf {
        layout::rendition_playlist(&self.root, rung)
    }

    /// The identity of a rendition's playlist file now (None: no file).
    pub fn playlist_inode(&self, rung: &str) -> Option<u64> {
        std::fs::metadata(self.playlist(rung)).ok().map(|m| m.ino())
    }

    /// The newest fragment a rendition's playlist lists, when the playlist
    /// is not the file it was (`before`).
    fn new_fragment(&self, rung: &str, before: Option<u64>) -> Option<PathBuf> {
        let path = self.playlist(rung);
        let now = std::fs::metadata(&path).ok()?.ino();
        if Some(now) == before {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let last = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.starts_with('#') && l.ends_with(".ts"))?;
        // a plain fragment name, nothing that leaves the folder
        let plain = !last.starts_with('.')
            && last
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        plain.then(|| self.root.join(rung).join(last))
    }

    /// Replaces the master (a temporary file renamed over it).
    fn write_master(&self, body: &str) -> std::io::Result<()> {
        let tmp = self.root.join(".master.m3u8.tmp");
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, self.master())
    }

    fn touch_master(&self) {
        let _ = std::fs::File::options()
            .append(true)
            .open(self.master())
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }
}

/// How long one ffprobe run may take: a fragment is a 2 s file on local
/// disk, read in milliseconds; one that hangs (a stuck disk, a broken
/// file) is killed and tried again at the next poll.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What ffprobe says of `fragment` (None: it could not read it in time).
async fn probe(ffprobe: &str, fragment: &Path) -> Option<Probe> {
    let run = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height,level,closed_captions",
            "-of",
            "json",
        ])
        .arg(fragment)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(out) => out.ok()?,
        Err(_) => {
            tracing::warn!(fragment = %fragment.display(), "ffprobe took longer than {PROBE_TIMEOUT:?}; killed");
            return None;
        }
    };
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Runs until it is dropped (the ladder's end): writes the master once
/// every rung has its entry, then refreshes its time.
pub async fn keep(folder: Folder, rungs: Vec<Rung>, before: Vec<Option<u64>>, ffprobe: String) {
    let mut entries: Vec<Option<Variant>> = vec![None; rungs.len()];
    loop {
        for (i, rung) in rungs.iter().enumerate() {
            if entries[i].is_some() {
                continue;
            }
            let Some(fragment) = folder.new_fragment(&rung.name, before[i]) else {
                continue;
            };
            if let Some(p) = probe(&ffprobe, &fragment).await {
                entries[i] = Variant::from_probe(rung, &p);
            }
        }
        if entries.iter().all(Option::is_some) {
            let variants: Vec<Variant> = entries.iter().flatten().cloned().collect();
            match folder.write_master(&master::render(&variants)) {
                Ok(()) => {
                    tracing::info!(folder = %folder.root.display(), renditions = variants.len(), "master written");
                    break;
                }
                Err(e) => {
                    tracing::warn!(folder = %folder.root.display(), error = %e, "cannot write the master")
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
    loop {
        tokio::time::sleep(TOUCH).await;
        folder.touch_master();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ffprobe that never answers is killed after [`PROBE_TIMEOUT`]: the
    /// keeper goes on polling instead of waiting with it.
    #[tokio::test]
    async fn a_hung_ffprobe_is_killed() {
        let dir = std::env::temp_dir().join(format!("abr-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("ffprobe");
        let pid_file = dir.join("pid");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let started = std::time::Instant::now();
        let got = probe(fake.to_str().unwrap(), &dir.join("0.ts")).await;
        assert!(got.is_none());
        assert!(started.elapsed() >= PROBE_TIMEOUT);
        // the child went with the timed-out run (kill_on_drop)
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while proc_dir.join("stat").exists()
            && !std::fs::read_to_string(proc_dir.join("stat"))
                .unwrap_or_default()
                .contains(") Z ")
        {
            assert!(std::time::Instant::now() < deadline, "ffprobe still runs");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
