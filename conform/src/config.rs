//! Command line (clap), each flag with an environment fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use url::Url;

use crate::error::Error;
use crate::follow::Options;

/// Follows one LL-HLS stream for N seconds as a strict RFC 8216bis client
/// and reports every violation found. Exit status: 0 no finding, 1
/// findings, 2 usage or setup error.
#[derive(Debug, Parser)]
#[command(name = "rtmp-live-conform", version)]
pub struct Config {
    /// Media or multivariant playlist, e.g. http://127.0.0.1:8081/golive/index.m3u8
    #[arg(long, env = "CONFORM_URL")]
    pub url: Option<String>,
    /// How long to follow the stream, seconds.
    #[arg(long, env = "CONFORM_SECONDS", default_value_t = 30.0)]
    pub seconds: f64,
    /// Write the full JSON report here.
    #[arg(long, env = "CONFORM_REPORT")]
    pub report: Option<PathBuf>,
    /// Save every playlist revision here (<dir>/<playlist>/<rev>-<kind>.m3u8).
    #[arg(long, env = "CONFORM_SAVE_DIR")]
    pub save_dir: Option<PathBuf>,
    /// At the end, run conform/hls-parser-check.mjs (npm hls-parser, strict
    /// mode) over the saved revisions (needs `npm ci --prefix conform`).
    #[arg(long, env = "CONFORM_HLS_PARSER")]
    pub hls_parser: bool,
    #[arg(long, env = "CONFORM_HLS_PARSER_SCRIPT", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/hls-parser-check.mjs"))]
    pub hls_parser_script: PathBuf,
    #[arg(long, env = "CONFORM_NODE", default_value = "node")]
    pub node: String,
    /// At the end, run `media-doctor check-hls` (crates.io media-doctor) over
    /// the saved revisions.
    #[arg(long, env = "CONFORM_MEDIA_DOCTOR")]
    pub media_doctor: bool,
    #[arg(long, env = "CONFORM_MEDIA_DOCTOR_BIN", default_value = "media-doctor")]
    pub media_doctor_bin: String,
    /// ffmpeg used to decode every segment.
    #[arg(long, env = "CONFORM_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: String,
    /// Skip the ffmpeg decode of segments.
    #[arg(long, env = "CONFORM_NO_DECODE")]
    pub no_decode: bool,
    /// Do not send the deliberate invalid blocking requests (400 checks).
    #[arg(long, env = "CONFORM_NO_PROBES")]
    pub no_probes: bool,
    #[arg(long, env = "CONFORM_MAX_PLAYLIST_BYTES", default_value_t = 1 << 20)]
    pub max_playlist_bytes: usize,
    #[arg(long, env = "CONFORM_MAX_MEDIA_BYTES", default_value_t = 64 << 20)]
    pub max_media_bytes: usize,
    /// Time limit of each non-blocking request, seconds.
    #[arg(long, env = "CONFORM_REQUEST_TIMEOUT_SECS", default_value_t = 10.0)]
    pub request_timeout_secs: f64,
    /// Print the rule catalogue and exit.
    #[arg(long)]
    pub list_rules: bool,
}

impl Config {
    /// The URL and run options, validated.
    pub fn options(&self) -> Result<(Url, Options), Error> {
        let raw = self
            .url
            .as_deref()
            .ok_or_else(|| Error::Usage("--url (or CONFORM_URL) is required".into()))?;
        let url = Url::parse(raw).map_err(|e| Error::Usage(format!("--url {raw:?}: {e}")))?;
        if url.scheme() != "http" {
            return Err(Error::Usage(format!(
                "--url {raw:?}: only http:// is supported (built without TLS)"
            )));
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0 && self.seconds <= 86_400.0) {
            return Err(Error::Usage("--seconds must be in (0, 86400]".into()));
        }
        if !(self.request_timeout_secs.is_finite()
            && self.request_timeout_secs > 0.0
            && self.request_timeout_secs <= 600.0)
        {
            return Err(Error::Usage(
                "--request-timeout-secs must be in (0, 600]".into(),
            ));
        }
        if self.max_playlist_bytes == 0 || self.max_media_bytes == 0 {
            return Err(Error::Usage("size limits must be positive".into()));
        }
        let save_dir = match (&self.save_dir, self.hls_parser || self.media_doctor) {
            (Some(d), _) => Some(d.clone()),
            (None, true) => {
                Some(std::env::temp_dir().join(format!("rtmp-live-conform-{}", std::process::id())))
            }
            (None, false) => None,
        };
        Ok((
            url,
            Options {
                seconds: self.seconds,
                save_dir,
                ffmpeg: (!self.no_decode).then(|| self.ffmpeg.clone()),
                probes: !self.no_probes,
                max_playlist_bytes: self.max_playlist_bytes,
                max_media_bytes: self.max_media_bytes,
                request_timeout: Duration::from_secs_f64(self.request_timeout_secs),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(Url, Options), Error> {
        let mut all = vec!["rtmp-live-conform"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap().options()
    }

    #[test]
    fn validates_flags() {
        let (u, o) = parse(&[
            "--url",
            "http://127.0.0.1:8081/golive/index.m3u8",
            "--seconds",
            "5",
        ])
        .unwrap();
        assert_eq!(u.port(), Some(8081));
        assert_eq!(o.seconds, 5.0);
        assert!(o.save_dir.is_none() && o.probes && o.ffmpeg.is_some());
        assert!(parse(&["--url", "https://h/x.m3u8"]).is_err());
        assert!(parse(&["--url", "nope"]).is_err());
        assert!(parse(&["--url", "http://h/x.m3u8", "--seconds=-1"]).is_err());
        let (_, o) = parse(&["--url", "http://h/x.m3u8", "--hls-parser", "--no-decode"]).unwrap();
        assert!(o.save_dir.is_some() && o.ffmpeg.is_none());
    }
}
