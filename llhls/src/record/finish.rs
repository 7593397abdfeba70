//! Finishing a recording from what is in its folder only, so that the end
//! of a session and the recovery after a crash are the same code: the
//! in-progress playlist becomes `index.m3u8` (a VOD playlist), then the
//! session's `recording.json` is written, then the in-progress playlist
//! goes. Each step is atomic and may be repeated.

use std::io;
use std::path::Path;

use rtmp_live_types::{layout, recording};

/// Turns `dir`'s in-progress playlist (if any) into its `index.m3u8`.
pub(super) fn finish_media(dir: &Path) -> io::Result<()> {
    let progress = dir.join(recording::IN_PROGRESS);
    let body = match std::fs::read_to_string(&progress) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // whole lines only: a crash may have cut the last append short
    let body = match body.rfind(".m4s\n") {
        Some(i) => &body[..i + 5],
        None => "",
    };
    if !body.is_empty() {
        let target = body
            .lines()
            .filter_map(|l| {
                l.strip_prefix("#EXTINF:")?
                    .trim_end_matches(',')
                    .parse::<f64>()
                    .ok()
            })
            .fold(1.0f64, f64::max)
            .round() as u64;
        let text = format!(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n{body}#EXT-X-ENDLIST\n",
            target.max(1)
        );
        write_atomic(&dir.join(layout::INDEX), text.as_bytes())?;
    }
    std::fs::remove_file(progress)
}

/// Seconds of media `dir`'s finished playlist lists (`None`: it has none).
pub fn media_duration(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(layout::INDEX)).ok()?;
    text.contains("#EXT-X-ENDLIST").then(|| {
        text.lines()
            .filter_map(|l| {
                l.strip_prefix("#EXTINF:")?
                    .trim_end_matches(',')
                    .parse::<f64>()
                    .ok()
            })
            .sum()
    })
}

/// Finishes every media folder of session folder `session` (stream `name`,
/// started at `start`) and writes its `recording.json`. A session with no
/// media is removed (`Ok(None)`).
pub fn finish_session(
    session: &Path,
    name: &str,
    start: u64,
) -> io::Result<Option<recording::Recording>> {
    let mut dirs = vec![session.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(session) {
        dirs.extend(
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    let mut duration: Option<f64> = None;
    let mut renditions = 0;
    for d in &dirs {
        finish_media(d)?;
        if let Some(s) = media_duration(d) {
            duration = Some(duration.map_or(s, |x| x.max(s)));
            renditions += usize::from(d != session);
        }
    }
    let Some(duration) = duration else {
        std::fs::remove_dir_all(session)?;
        return Ok(None);
    };
    let manifest = if renditions > 0 && session.join(layout::MASTER).is_file() {
        layout::MASTER
    } else {
        layout::INDEX
    };
    let r = recording::Recording {
        name: name.to_string(),
        start,
        end: start + (duration * 1000.0).round() as u64,
        duration: (duration * 1000.0).round() / 1000.0,
        bytes: folder_bytes(session),
        manifest: manifest.to_string(),
    };
    let json = serde_json::to_vec(&r).map_err(io::Error::other)?;
    write_atomic(&session.join(recording::META), &json)?;
    Ok(Some(r))
}

/// Bytes of the files under `dir`.
pub(super) fn folder_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_session_finishes_from_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let s = root.path().join("golive/1000");
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join("init-5.mp4"), b"init").unwrap();
        std::fs::write(s.join("5.m4s"), b"12345").unwrap();
        std::fs::write(s.join("7.m4s"), b"1234567").unwrap();
        // the last append was cut short by the crash
        std::fs::write(
            s.join(recording::IN_PROGRESS),
            "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T10:00:00.000Z\n#EXT-X-MAP:URI=\"init-5.mp4\"\n\
             #EXTINF:2.000,\n5.m4s\n#EXTINF:1.960,\n7.m4s\n#EXTINF:2.0",
        )
        .unwrap();
        let r = finish_session(&s, "golive", 1000).unwrap().unwrap();
        assert_eq!((r.start, r.end, r.duration), (1000, 4960, 3.96));
        assert_eq!(r.manifest, "index.m3u8");
        let index = std::fs::read_to_string(s.join("index.m3u8")).unwrap();
        assert!(index.starts_with(
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        ));
        assert!(
            index.ends_with("#EXTINF:1.960,\n7.m4s\n#EXT-X-ENDLIST\n"),
            "{index}"
        );
        assert!(!s.join(recording::IN_PROGRESS).exists());
        let meta: recording::Recording =
            serde_json::from_slice(&std::fs::read(s.join(recording::META)).unwrap()).unwrap();
        assert_eq!(meta, r);
        assert_eq!(
            r.bytes,
            std::fs::read(s.join("index.m3u8")).unwrap().len() as u64 + 16
        );
        // again: the same
        assert_eq!(
            finish_session(&s, "golive", 1000).unwrap().unwrap().end,
            4960
        );
        // a session that recorded nothing is removed
        let empty = root.path().join("golive/2000");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join(recording::IN_PROGRESS), "").unwrap();
        assert!(finish_session(&empty, "golive", 2000).unwrap().is_none());
        assert!(!empty.exists());
    }

    #[test]
    fn an_abr_session_is_its_master_and_renditions() {
        let root = tempfile::tempdir().unwrap();
        let s = root.path().join("golive/1000");
        for (r, d) in [("720p", "2.000"), ("240p", "2.040")] {
            std::fs::create_dir_all(s.join(r)).unwrap();
            std::fs::write(s.join(r).join("1.m4s"), b"x").unwrap();
            std::fs::write(
                s.join(r).join(recording::IN_PROGRESS),
                format!("#EXTINF:{d},\n1.m4s\n"),
            )
            .unwrap();
        }
        std::fs::write(s.join("master.m3u8"), "#EXTM3U\n").unwrap();
        let r = finish_session(&s, "golive", 1000).unwrap().unwrap();
        assert_eq!(r.manifest, "master.m3u8");
        assert_eq!(r.duration, 2.04);
        assert!(s.join("240p/index.m3u8").is_file());
    }
}
