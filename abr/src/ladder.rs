//! The ladder: which renditions to encode, at what size, and the ffmpeg
//! command that encodes them. Pure: no files, no processes.
//!
//! A rung is never taller than the source: upscaling would cost a larger
//! encode for no detail. The shortest rung taller than the source is
//! encoded at the source's height, and the ones above it (which would be
//! copies of it at a higher rate) as stubs of [`STUB_HEIGHT`] pixels that
//! the master does not list: a 360p publisher gets 480p at 640x360 and
//! 240p at 426x240. Only ffmpeg knows the source's size once it has
//! started, and the ladder's outputs are fixed before that, so the choice
//! is an expression in ffmpeg's scale filter. After a reconnect, rungs the
//! last session's master listed are copies, not stubs: players still
//! holding that master go on playing them.

use std::collections::HashSet;
use std::fmt;

/// The height of a rung that would only copy a shorter one.
pub const STUB_HEIGHT: u32 = 16;

/// The ladder when `ABR_LADDER` is not set.
pub const DEFAULT_LADDER: &str = "720p:720:2500:128 480p:480:1000:96 240p:240:400:64";

/// One rendition of the ladder: `name:height:video kbit/s:audio kbit/s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// The rendition's folder under the stream's, and its RTMP name.
    pub name: String,
    pub height: u32,
    pub video_kbps: u32,
    pub audio_kbps: u32,
}

impl Rung {
    /// The peak video rate the encoder is held to (`-maxrate`), kbit/s.
    pub fn max_video_kbps(&self) -> u32 {
        self.video_kbps * 107 / 100
    }
}

/// Why a ladder description was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLadder(pub String);

impl fmt::Display for BadLadder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad ABR ladder: {} (expected name:height:video kbit/s:audio kbit/s, space-separated)",
            self.0
        )
    }
}

impl std::error::Error for BadLadder {}

/// Parses `ABR_LADDER`: rungs separated by white space, each
/// `name:height:video kbit/s:audio kbit/s`. Names are stream-name-like
/// (they become folders and RTMP names) and unique; numbers are positive.
pub fn parse_ladder(text: &str) -> Result<Vec<Rung>, BadLadder> {
    let mut rungs: Vec<Rung> = Vec::new();
    for item in text.split_whitespace() {
        let fields: Vec<&str> = item.split(':').collect();
        let [name, height, video, audio] = fields[..] else {
            return Err(BadLadder(format!("{item:?} has not 4 fields")));
        };
        if !rtmp_live_types::is_valid_name(name) {
            return Err(BadLadder(format!("{name:?} is not a valid rendition name")));
        }
        if rungs.iter().any(|r| r.name == name) {
            return Err(BadLadder(format!("{name:?} appears twice")));
        }
        let number = |what: &str, v: &str, max: u32| match v.parse::<u32>() {
            Ok(n) if n > 0 && n <= max => Ok(n),
            _ => Err(BadLadder(format!("{what} of {name:?} is {v:?}"))),
        };
        rungs.push(Rung {
            name: name.to_string(),
            height: number("the height", height, 8192)?,
            video_kbps: number("the video rate", video, 1_000_000)?,
            audio_kbps: number("the audio rate", audio, 10_000)?,
        });
    }
    if rungs.is_empty() {
        return Err(BadLadder("no rung".into()));
    }
    Ok(rungs)
}

/// A rung with the height below which the source gets a stub instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub rung: Rung,
    /// The next shorter rung's height (0 when there is none, or when the
    /// last session's master listed this rung): a source no taller than
    /// this gets a stub.
    pub stub_at_or_below: u32,
}

/// Plans every rung. `listed`: the renditions the last session's master
/// lists (empty on a first publish).
pub fn plan(rungs: &[Rung], listed: &HashSet<String>) -> Vec<Planned> {
    rungs
        .iter()
        .map(|rung| {
            let below = rungs
                .iter()
                .map(|o| o.height)
                .filter(|&h| h < rung.height)
                .max()
                .unwrap_or(0);
            Planned {
                rung: rung.clone(),
                stub_at_or_below: if listed.contains(&rung.name) {
                    0
                } else {
                    below
                },
            }
        })
        .collect()
}

/// What the ffmpeg command needs besides the plan.
#[derive(Debug, Clone)]
pub struct Encode<'a> {
    /// The local stream to read (`rtmp://127.0.0.1:<port>/hls/<name>`).
    pub input: &'a str,
    /// The stream's name: renditions are published as `<name>/<rung>`.
    pub name: &'a str,
    /// The renditions application, `rtmp://<host>:<port>/<app>`.
    pub app_url: &'a str,
    /// Seconds between forced keyframes (the fragment length).
    pub fragment_secs: u32,
    /// x264 preset.
    pub preset: &'a str,
    /// ffmpeg gives up when its input stalls this long.
    pub stall_secs: u32,
    /// ffmpeg's `-loglevel`.
    pub loglevel: &'a str,
}

/// ffmpeg's arguments (without the program): one input, a split into one
/// scaled branch per rung, one RTMP output per rung.
pub fn ffmpeg_args(e: &Encode<'_>, planned: &[Planned]) -> Vec<String> {
    let (server, app) = match e.app_url.rsplit_once('/') {
        Some((server, app)) => (server, app),
        None => (e.app_url, ""),
    };
    let mut filter = format!("[0:v]split={}", planned.len());
    for i in 0..planned.len() {
        filter.push_str(&format!("[s{i}]"));
    }
    for (i, p) in planned.iter().enumerate() {
        // the source's height up to the rung's, or a stub when the source
        // is no taller than the next shorter rung
        filter.push_str(&format!(
            ";[s{i}]scale=w=-2:h=if(gt(ih\\,{below})\\,min(ih\\,{h})\\,{STUB_HEIGHT})[v{i}]",
            below = p.stub_at_or_below,
            h = p.rung.height,
        ));
    }
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        e.loglevel,
        "-rw_timeout",
        &(u64::from(e.stall_secs) * 1_000_000).to_string(),
        "-i",
        e.input,
        "-filter_complex",
        &filter,
    ]
    .map(String::from)
    .to_vec();
    for (i, p) in planned.iter().enumerate() {
        let r = &p.rung;
        // every value is one word: names are checked, and so are the
        // preset and the URL (`Config::check`)
        let output = format!(
            "-map [v{i}] -map 0:a:0? \
             -c:v libx264 -preset {preset} -tune zerolatency -profile:v main -pix_fmt yuv420p \
             -force_key_frames expr:gte(t,n_forced*{fragment}) -sc_threshold 0 \
             -b:v {v}k -maxrate:v {max}k -bufsize:v {buf}k \
             -c:a aac -ac 2 -ar 44100 -b:a {a}k \
             -f flv -rtmp_app {app} -rtmp_playpath {name}/{rung} {server}",
            preset = e.preset,
            fragment = e.fragment_secs,
            v = r.video_kbps,
            max = r.max_video_kbps(),
            buf = r.video_kbps * 3 / 2,
            a = r.audio_kbps,
            name = e.name,
            rung = r.name,
        );
        args.extend(output.split_whitespace().map(String::from));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Vec<Rung> {
        parse_ladder(DEFAULT_LADDER).unwrap()
    }

    #[test]
    fn parses_the_default_and_refuses_what_is_not_a_ladder() {
        let l = default();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[1],
            Rung {
                name: "480p".into(),
                height: 480,
                video_kbps: 1000,
                audio_kbps: 96
            }
        );
        assert_eq!(l[0].max_video_kbps(), 2675);
        for bad in [
            "",
            "  ",
            "720p:720:2500",
            "720p:720:2500:128:1",
            "../x:720:2500:128",
            "a b:720:2500:128",
            "720p:0:2500:128",
            "720p:-1:2500:128",
            "720p:720:lots:128",
            "720p:9000:2500:128",
            "a:720:2500:128 a:480:1000:96",
        ] {
            assert!(parse_ladder(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn each_rung_stubs_a_source_no_taller_than_the_next_shorter_rung() {
        let p = plan(&default(), &HashSet::new());
        let below: Vec<u32> = p.iter().map(|p| p.stub_at_or_below).collect();
        assert_eq!(below, [480, 240, 0]);
        // the order of the ladder does not matter
        let mut l = default();
        l.reverse();
        let p = plan(&l, &HashSet::new());
        let below: Vec<(String, u32)> = p
            .iter()
            .map(|p| (p.rung.name.clone(), p.stub_at_or_below))
            .collect();
        assert_eq!(
            below,
            [
                ("240p".into(), 0),
                ("480p".into(), 240),
                ("720p".into(), 480)
            ]
        );
    }

    #[test]
    fn a_rung_the_last_master_listed_is_never_a_stub() {
        let listed: HashSet<String> = ["720p".to_string()].into();
        let p = plan(&default(), &listed);
        let below: Vec<u32> = p.iter().map(|p| p.stub_at_or_below).collect();
        assert_eq!(below, [0, 240, 0]);
    }

    #[test]
    fn two_rungs_of_one_height_both_encode_at_it() {
        let l = parse_ladder("hi:480:1500:96 lo:480:800:64 240p:240:400:64").unwrap();
        let p = plan(&l, &HashSet::new());
        let below: Vec<u32> = p.iter().map(|p| p.stub_at_or_below).collect();
        assert_eq!(below, [240, 240, 0]);
    }

    #[test]
    fn the_ffmpeg_command_has_one_scaled_output_per_rung() {
        let e = Encode {
            input: "rtmp://127.0.0.1:8089/hls/golive",
            name: "golive",
            app_url: "rtmp://127.0.0.1:8089/abr",
            fragment_secs: 2,
            preset: "superfast",
            stall_secs: 4,
            loglevel: "warning",
        };
        let args = ffmpeg_args(&e, &plan(&default(), &HashSet::new()));
        let at = |flag: &str| {
            args.iter()
                .enumerate()
                .filter(|(_, a)| *a == flag)
                .map(|(i, _)| args[i + 1].as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(at("-i"), ["rtmp://127.0.0.1:8089/hls/golive"]);
        assert_eq!(at("-rw_timeout"), ["4000000"]);
        assert_eq!(
            at("-filter_complex"),
            ["[0:v]split=3[s0][s1][s2]\
              ;[s0]scale=w=-2:h=if(gt(ih\\,480)\\,min(ih\\,720)\\,16)[v0]\
              ;[s1]scale=w=-2:h=if(gt(ih\\,240)\\,min(ih\\,480)\\,16)[v1]\
              ;[s2]scale=w=-2:h=if(gt(ih\\,0)\\,min(ih\\,240)\\,16)[v2]"]
        );
        assert_eq!(
            at("-rtmp_playpath"),
            ["golive/720p", "golive/480p", "golive/240p"]
        );
        assert_eq!(at("-rtmp_app"), ["abr", "abr", "abr"]);
        assert_eq!(at("-maxrate:v"), ["2675k", "1070k", "428k"]);
        assert_eq!(at("-bufsize:v"), ["3750k", "1500k", "600k"]);
        assert_eq!(at("-b:a"), ["128k", "96k", "64k"]);
        assert_eq!(at("-force_key_frames"), ["expr:gte(t,n_forced*2)"; 3]);
        assert_eq!(args.last().unwrap(), "rtmp://127.0.0.1:8089");
    }
}
