//! The ABR transcoding ladder (`rtmp-live-abr`). nginx-rtmp starts it with
//! `exec_push` for every stream published into the HLS application when
//! ABR is on (`nginx/origin-abr.conf.template`, `ABR_LADDER_BIN`):
//!
//! ```text
//! rtmp-live-abr <input url> <output folder> <renditions app url>
//! ```
//!
//! It reads the local stream, encodes each rendition with one ffmpeg and
//! publishes it back into nginx-rtmp's loopback-only renditions
//! application (e.g. `rtmp://127.0.0.1:1935/abr`) as `<name>/<rendition>`,
//! `<name>` being the output folder's. nginx-rtmp packages each rendition
//! as it does a single-rendition stream, under `<output folder>`:
//!
//! ```text
//! <rendition>/index.m3u8    one media playlist per rendition
//! <rendition>/<ms>.ts       2 s fragments: keyframes forced every 2 s and
//!                           nginx-rtmp's aligned slicing keep the
//!                           renditions' fragments aligned
//! master.m3u8               written by the keeper (keeper.rs, master.rs)
//! ```
//!
//! (ffmpeg's own HLS muxer writes each segment out whole when it closes:
//! nothing to cut parts from; docs/abr-ll-spike.md.)
//!
//! nginx-rtmp stops it with SIGTERM when the publisher leaves: it stops
//! ffmpeg (whose RTMP outputs then close, and nginx-rtmp closes each
//! rendition's last fragment) and the keeper. As a second guard (nginx-rtmp
//! does not always stop `exec_push` children when the publish was relayed
//! in), ffmpeg gives up when its input stalls for `ABR_STALL_SECS`, and the
//! ladder ends with it.

pub mod keeper;
pub mod ladder;
pub mod master;

use std::path::PathBuf;

/// Settings: the three arguments nginx-rtmp passes, and the environment
/// the origin's nginx passes on (`env ABR_*` in its configuration).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "rtmp-live-abr",
    about = "The ABR ladder of one stream (started by nginx-rtmp's exec_push)"
)]
pub struct Config {
    /// The local stream: rtmp://127.0.0.1:<port>/hls/<name>
    pub input: String,
    /// The stream's HLS folder: <HLS_PATH>/<name>
    pub output: PathBuf,
    /// The renditions application: rtmp://127.0.0.1:<port>/<app>
    pub app_url: String,
    /// The ladder: name:height:video kbit/s:audio kbit/s, space-separated.
    #[arg(long, env = "ABR_LADDER", default_value = ladder::DEFAULT_LADDER)]
    pub ladder: String,
    /// Seconds between forced keyframes: the fragment length.
    #[arg(long, env = "ABR_FRAGMENT_SECS", default_value_t = 2)]
    pub fragment_secs: u32,
    /// x264 preset.
    #[arg(long, env = "ABR_PRESET", default_value = "superfast")]
    pub preset: String,
    /// ffmpeg gives up when its input stalls this long (seconds).
    #[arg(long, env = "ABR_STALL_SECS", default_value_t = 4)]
    pub stall_secs: u32,
    /// ffmpeg's -loglevel.
    #[arg(long, env = "ABR_LOGLEVEL", default_value = "warning")]
    pub loglevel: String,
    /// The ffmpeg to run (nginx passes its workers no PATH: Debian's).
    #[arg(long, default_value = "ffmpeg")]
    pub ffmpeg: String,
    /// The ffprobe that reads each rendition's first fragment.
    #[arg(long, default_value = "ffprobe")]
    pub ffprobe: String,
}

impl Config {
    /// Settings ffmpeg's command line is built from: each must be one word
    /// (they are not the publisher's, but a typo should fail here, clearly).
    pub fn check(&self) -> Result<(), String> {
        let word = |what: &str, v: &str| {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(())
            } else {
                Err(format!("{what} {v:?} is not one word"))
            }
        };
        word("ABR_PRESET", &self.preset)?;
        word("ABR_LOGLEVEL", &self.loglevel)?;
        word("the renditions application URL", &self.app_url)?;
        let host_app = self
            .app_url
            .strip_prefix("rtmp://")
            .and_then(|rest| rest.rsplit_once('/'));
        if !host_app.is_some_and(|(host, app)| !host.is_empty() && !app.is_empty()) {
            return Err(format!(
                "the renditions application URL {:?} is not rtmp://<host>/<app>",
                self.app_url
            ));
        }
        if self.fragment_secs == 0 || self.stall_secs == 0 {
            return Err("ABR_FRAGMENT_SECS and ABR_STALL_SECS must be at least 1".into());
        }
        Ok(())
    }

    /// The stream's name, when the three arguments agree on one a client
    /// of the API could have been given. nginx-rtmp starts the ladder on
    /// every publish into the packaging application, before its own access
    /// rules refuse a publisher that is not this host (SECURITY.md): the
    /// name is whatever that client sent.
    pub fn stream_name(&self) -> Option<String> {
        let name = self.output.file_name()?.to_str()?;
        (rtmp_live_types::is_valid_name(name)
            && self.input.ends_with(&format!("/hls/{name}"))
            && self.output.to_str()?.ends_with(&format!("/{name}")))
        .then(|| name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(input: &str, output: &str) -> Config {
        Config::parse_from(["rtmp-live-abr", input, output, "rtmp://127.0.0.1:8089/abr"])
    }

    #[test]
    fn settings_that_would_not_make_one_word_are_refused() {
        let ok = config("rtmp://127.0.0.1:8089/hls/golive", "/var/lib/hls/golive");
        assert_eq!(ok.check(), Ok(()));
        let mut c = ok.clone();
        c.preset = "super fast".into();
        assert!(c.check().is_err());
        let mut c = ok.clone();
        c.preset = String::new();
        assert!(c.check().is_err());
        let mut c = ok.clone();
        c.app_url = "http://127.0.0.1/abr".into();
        assert!(c.check().is_err());
        let mut c = ok.clone();
        c.app_url = "rtmp://127.0.0.1:8089".into();
        assert!(c.check().is_err());
        let mut c = ok;
        c.fragment_secs = 0;
        assert!(c.check().is_err());
    }

    #[test]
    fn only_a_valid_name_that_all_arguments_agree_on() {
        let ok = config("rtmp://127.0.0.1:8089/hls/golive", "/var/lib/hls/golive");
        assert_eq!(ok.stream_name().as_deref(), Some("golive"));
        for (input, output) in [
            ("rtmp://127.0.0.1:8089/hls/other", "/var/lib/hls/golive"),
            (
                "rtmp://127.0.0.1:8089/hls/golive?x=1",
                "/var/lib/hls/golive",
            ),
            ("rtmp://127.0.0.1:8089/hls/a b", "/var/lib/hls/a b"),
            ("rtmp://127.0.0.1:8089/hls/..", "/var/lib/hls/.."),
            ("rtmp://127.0.0.1:8089/live/golive", "/var/lib/hls/golive"),
            ("rtmp://127.0.0.1:8089/hls/golive", "golive"),
        ] {
            assert_eq!(
                config(input, output).stream_name(),
                None,
                "{input} {output}"
            );
        }
    }
}
