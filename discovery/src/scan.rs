//! Pure rules about the HLS folder: which paths belong to which stream,
//! which playlist is a stream's manifest, and whether a playlist says the
//! stream ended. nginx-rtmp (nested) writes `<root>/<name>/index.m3u8`
//! through a temporary `index.m3u8.bak` renamed over it; the ABR ladder
//! writes `<root>/<name>/master.m3u8` once and nginx-rtmp each
//! `<root>/<name>/<rendition>/index.m3u8` (`rtmp_live_types::layout`).

use std::path::Path;

use rtmp_live_types::is_valid_name;
pub use rtmp_live_types::layout::{INDEX, MASTER};

/// What a changed path means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// A playlist of stream `.0` (directly in its folder or one level below).
    Playlist(String),
    /// The stream folder `.0` itself (created or removed).
    StreamDir(String),
    /// A folder inside stream `.0` (an ABR rendition).
    StreamSubdir(String),
    /// Anything else: segments, temporary files, stray files.
    Other,
}

/// Whether `file` is a finished playlist (not a temporary, backup or hidden file).
pub fn is_playlist(file: &str) -> bool {
    !file.starts_with('.') && file.len() > ".m3u8".len() && file.ends_with(".m3u8")
}

/// Classifies `path` relative to the HLS root.
pub fn classify(root: &Path, path: &Path) -> Touched {
    let Ok(rel) = path.strip_prefix(root) else {
        return Touched::Other;
    };
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let Some(&name) = parts.first() else {
        return Touched::Other;
    };
    if !is_valid_name(name) {
        return Touched::Other;
    }
    match parts.len() {
        1 => Touched::StreamDir(name.to_string()),
        2 | 3
            if is_playlist(parts[parts.len() - 1])
                && (parts.len() == 2 || is_valid_name(parts[1])) =>
        {
            Touched::Playlist(name.to_string())
        }
        2 if is_valid_name(parts[1]) => Touched::StreamSubdir(name.to_string()),
        _ => Touched::Other,
    }
}

/// The manifest to report, given the playlist names directly in the stream
/// folder: the master playlist if there is one, else `index.m3u8`, else the
/// first playlist by name.
pub fn choose_manifest<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut playlists: Vec<&str> = files.into_iter().filter(|f| is_playlist(f)).collect();
    playlists.sort_unstable();
    if playlists.contains(&MASTER) {
        return Some(MASTER.into());
    }
    if playlists.contains(&INDEX) {
        return Some(INDEX.into());
    }
    playlists.first().map(|s| s.to_string())
}

/// Whether a media playlist says the stream is over.
pub fn has_endlist(playlist: &str) -> bool {
    playlist.lines().any(|l| l.trim() == "#EXT-X-ENDLIST")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let root = Path::new("/hls");
        let c = |p: &str| classify(root, Path::new(p));
        assert_eq!(
            c("/hls/golive/index.m3u8"),
            Touched::Playlist("golive".into())
        );
        assert_eq!(
            c("/hls/golive/720p/index.m3u8"),
            Touched::Playlist("golive".into())
        );
        assert_eq!(c("/hls/golive"), Touched::StreamDir("golive".into()));
        assert_eq!(
            c("/hls/golive/720p"),
            Touched::StreamSubdir("golive".into())
        );
        for other in [
            "/hls/golive/index.m3u8.bak",
            "/hls/golive/720p/index.m3u8.tmp",
            "/hls/golive/.index.m3u8",
            "/hls/golive/3.ts",
            "/hls/golive/notes.txt",
            "/hls/golive/a.b",
            "/hls/index.m3u8",
            "/hls/bad.name/index.m3u8",
            "/hls/golive/a/b/index.m3u8",
            "/elsewhere/golive/index.m3u8",
            "/hls",
        ] {
            assert_eq!(c(other), Touched::Other, "{other}");
        }
    }

    #[test]
    fn manifest_choice() {
        assert_eq!(
            choose_manifest(["index.m3u8", "3.ts"]),
            Some("index.m3u8".into())
        );
        assert_eq!(
            choose_manifest(["index.m3u8", "master.m3u8"]),
            Some("master.m3u8".into())
        );
        assert_eq!(
            choose_manifest(["live.m3u8", "b.m3u8"]),
            Some("b.m3u8".into())
        );
        assert_eq!(choose_manifest(["index.m3u8.bak", "x.ts"]), None);
    }

    #[test]
    fn endlist() {
        assert!(has_endlist("#EXTM3U\n#EXTINF:2,\n1.ts\n#EXT-X-ENDLIST\n"));
        assert!(!has_endlist("#EXTM3U\n#EXTINF:2,\n1.ts\n"));
    }
}
