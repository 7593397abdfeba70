//! The HLS folder, as nginx-rtmp (nested) and the ABR ladder write it and
//! discovery and the LL-HLS component read it:
//!
//! ```text
//! <HLS_PATH>/<name>/index.m3u8              a single-rendition stream
//! <HLS_PATH>/<name>/<ms>.ts                 its fragments
//! <HLS_PATH>/<name>/master.m3u8             an ABR stream's master (the ladder)
//! <HLS_PATH>/<name>/<rendition>/index.m3u8  each rendition, packaged by
//! <HLS_PATH>/<name>/<rendition>/<ms>.ts     nginx-rtmp like a stream
//! ```
//!
//! Names and renditions are stream names (`is_valid_name`).

use std::path::{Path, PathBuf};

use crate::is_valid_name;

/// The master playlist of an ABR stream.
pub const MASTER: &str = "master.m3u8";
/// The media playlist of a stream or of a rendition.
pub const INDEX: &str = "index.m3u8";

/// `<root>/<name>/<rendition>/index.m3u8`
pub fn rendition_playlist(stream_dir: &Path, rendition: &str) -> PathBuf {
    stream_dir.join(rendition).join(INDEX)
}

/// The master's entry for a rendition: `<rendition>/index.m3u8`.
pub fn rendition_uri(rendition: &str) -> String {
    format!("{rendition}/{INDEX}")
}

/// The renditions a master lists, in its order: its `<rendition>/index.m3u8`
/// lines (anything else, such as a path that leaves the folder, is not one).
pub fn master_renditions(master: &str) -> Vec<String> {
    master
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_suffix(INDEX)?.strip_suffix('/'))
        .filter(|r| is_valid_name(r))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_lists_its_renditions_and_nothing_else() {
        let m = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n480p/index.m3u8\n\
                 ../etc/index.m3u8\nhttp://x/y/index.m3u8\n/index.m3u8\n\
                 index.m3u8\n  240p/index.m3u8  \n#720p/index.m3u8\n";
        assert_eq!(master_renditions(m), ["480p", "240p"]);
        assert_eq!(rendition_uri("480p"), "480p/index.m3u8");
        assert_eq!(
            rendition_playlist(Path::new("/hls/golive"), "480p"),
            Path::new("/hls/golive/480p/index.m3u8")
        );
    }
}
