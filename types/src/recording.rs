//! Recordings: a stream's publish sessions, kept as finished (VOD)
//! playlists after they end. The folder the LL-HLS component writes them
//! to, discovery reads and the origin serves, the name viewers and the
//! edge use for one, and what discovery reports to the API:
//!
//! ```text
//! <RECORDINGS_PATH>/<name>/<start>/index.m3u8          a finished recording
//! <RECORDINGS_PATH>/<name>/<start>/<n>.m4s, init-<i>.mp4  its media
//! <RECORDINGS_PATH>/<name>/<start>/recording.json      its facts (Recording)
//! <RECORDINGS_PATH>/<name>/<start>/.recording.m3u8     the session still being recorded
//! <RECORDINGS_PATH>/<name>/<start>/master.m3u8 + <rendition>/…  an ABR stream's
//! ```
//!
//! `<start>` is the session's first date (unix milliseconds). A recording
//! is played as `/<name>~<start>/<manifest>`: `~` is not a stream-name
//! character, so a recording name never collides with a live stream's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{is_valid_manifest, is_valid_name, is_valid_name_bytes};

/// Between the stream name and the session in a recording's name.
pub const SEPARATOR: char = '~';
/// A finished recording's facts, beside its playlist.
pub const META: &str = "recording.json";
/// The playlist of a session being recorded (segments appended as they
/// complete); `index.m3u8` replaces it when the session ends.
pub const IN_PROGRESS: &str = ".recording.m3u8";
/// Most recordings one report may carry.
pub const MAX_PER_REPORT: usize = 10_000;

/// `<name>~<start>`: how viewers, the edge and the API name a recording.
pub fn playback_name(name: &str, start: u64) -> String {
    format!("{name}{SEPARATOR}{start}")
}

/// The stream and session of a recording's name (`<name>~<start>`, the
/// start canonical decimal), or `None`.
pub fn parse_name(s: &str) -> Option<(&str, u64)> {
    let (name, start) = s.split_once(SEPARATOR)?;
    let canonical = !start.is_empty()
        && start.len() <= 20
        && start.bytes().all(|b| b.is_ascii_digit())
        && (start == "0" || !start.starts_with('0'));
    if !canonical || !is_valid_name(name) {
        return None;
    }
    Some((name, start.parse().ok()?))
}

/// A live stream's name or a recording's: what may be played.
pub fn is_valid_playback_name_bytes(b: &[u8]) -> bool {
    is_valid_name_bytes(b) || std::str::from_utf8(b).is_ok_and(|s| parse_name(s).is_some())
}

/// A size in bytes: plain (`1048576`) or with a binary unit (`10G`,
/// `500M`, `64K`, `1T`; `B` after it optional).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{text:?}: unknown unit (K, M, G, T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 10G or 1048576"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?}: too large"))
}

/// `<root>/<name>/<start>`.
pub fn session_dir(root: &Path, name: &str, start: u64) -> PathBuf {
    root.join(name).join(start.to_string())
}

/// One finished recording, as `recording.json` holds it and discovery
/// reports it (with its origin) to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub name: String,
    /// Unix milliseconds of its first frame (its folder's name).
    pub start: u64,
    /// Unix milliseconds of the end of its last frame.
    pub end: u64,
    /// Seconds of media.
    pub duration: f64,
    /// Bytes of its files.
    pub bytes: u64,
    /// Its playlist in its folder: `index.m3u8`, or `master.m3u8` for an
    /// ABR stream.
    pub manifest: String,
}

impl Recording {
    pub fn is_valid(&self) -> bool {
        is_valid_name(&self.name)
            && is_valid_manifest(&self.manifest)
            && self.end >= self.start
            && self.duration.is_finite()
            && self.duration >= 0.0
    }

    /// Its name for playback (`<name>~<start>`).
    pub fn playback_name(&self) -> String {
        playback_name(&self.name, self.start)
    }
}

/// What an origin's discovery sends to `PUT /recordings/{host}`: every
/// finished recording it holds (the API forgets those not reported again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingReport {
    pub recordings: Vec<Recording>,
}

impl RecordingReport {
    /// The first invalid recording's name, if any.
    pub fn invalid(&self) -> Option<&str> {
        self.recordings
            .iter()
            .find(|r| !r.is_valid())
            .map(|r| r.name.as_str())
    }
}

/// One recording in `GET /streams/{name}/recordings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub start: u64,
    pub end: u64,
    pub duration: f64,
    pub bytes: u64,
    /// Where viewers play it, through the edge: `/<name>~<start>/<manifest>`.
    pub url: String,
}

impl Listed {
    pub fn of(r: &Recording) -> Listed {
        Listed {
            start: r.start,
            end: r.end,
            duration: r.duration,
            bytes: r.bytes,
            url: format!("/{}/{}", r.playback_name(), r.manifest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_names() {
        assert_eq!(
            playback_name("golive", 1_765_000_000_123),
            "golive~1765000000123"
        );
        assert_eq!(
            parse_name("golive~1765000000123"),
            Some(("golive", 1_765_000_000_123))
        );
        assert_eq!(parse_name("a-b_c~0"), Some(("a-b_c", 0)));
        for bad in [
            "golive",
            "golive~",
            "~1",
            "golive~01",
            "golive~1x",
            "go.live~1",
            "a~1~2",
            "a~-1",
            "a~+1",
            "a~123456789012345678901",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
        assert!(is_valid_playback_name_bytes(b"golive"));
        assert!(is_valid_playback_name_bytes(b"golive~17"));
        assert!(!is_valid_playback_name_bytes(b"golive~"));
        assert!(!is_valid_playback_name_bytes(b"../x"));
        assert!(!is_valid_playback_name_bytes(b"a~\xff"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("10G"), Ok(10 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500 << 20));
        assert_eq!(parse_bytes("64k"), Ok(64 << 10));
        assert!(parse_bytes("10X").is_err());
        assert!(parse_bytes("G").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }

    #[test]
    fn listed_url_and_validation() {
        let r = Recording {
            name: "golive".into(),
            start: 5,
            end: 9,
            duration: 4.0,
            bytes: 10,
            manifest: "index.m3u8".into(),
        };
        assert!(r.is_valid());
        assert_eq!(Listed::of(&r).url, "/golive~5/index.m3u8");
        let bad = Recording {
            end: 1,
            ..r.clone()
        };
        assert!(!bad.is_valid());
        let report = RecordingReport {
            recordings: vec![r, bad],
        };
        assert_eq!(report.invalid(), Some("golive"));
        assert_eq!(
            session_dir(Path::new("/rec"), "golive", 5),
            Path::new("/rec/golive/5")
        );
    }
}
