//! The multivariant (master) playlist: one entry per rendition, from what
//! ffprobe read in that rendition's first fragment of this ladder. Pure.
//!
//! - BANDWIDTH is a peak: the encoder's maxrate plus the audio rate. No
//!   AVERAGE-BANDWIDTH: the ladder does not know the average (a still
//!   picture costs a fraction of the target rate).
//! - RESOLUTION and CODECS come from the fragment (H.264 Main profile,
//!   `avc1.4d40<level>`; `mp4a.40.2` when it has audio), not from the
//!   ladder: a rung shorter than planned (a small source) says its size.
//! - CLOSED-CAPTIONS on every variant (RFC 8216bis 4.4.6.2): NONE unless
//!   ffprobe saw CEA-608/708 in a rendition (the encoder carries the
//!   source's along), then one group, `cc` (CC1). A player that is not told
//!   either way looks for captions in the segments itself: shaka 5.2 then
//!   fetches the in-progress segment's parts-only entry as if it were a
//!   segment, and fails to load (undefined URI) while the playlist lists
//!   fewer than 3 whole segments, the first 4-6 s of every stream.
//! - Listed from the lowest rate up: players start with the first entry
//!   (hls.js with its defaults does), and one that starts above what it
//!   can assume of the network switches down before it plays, which costs
//!   that time in latency (0.4-0.7 s measured), for good; switching up
//!   once it plays costs none.
//! - Not listed: stubs (rungs that would copy a shorter one), and of
//!   renditions of one size (copies kept for a reconnect, two rungs of one
//!   height), all but the one at the lowest rate.

use rtmp_live_types::layout;
use serde::Deserialize;

use crate::ladder::{Rung, STUB_HEIGHT};

/// What ffprobe tells of a fragment
/// (`-show_entries stream=codec_type,width,height,level,closed_captions -of json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Probe {
    #[serde(default)]
    pub streams: Vec<ProbeStream>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProbeStream {
    #[serde(default)]
    pub codec_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub level: Option<i32>,
    pub closed_captions: Option<u8>,
}

/// One rendition's master entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The rung's name: its playlist is `<name>/index.m3u8`.
    pub name: String,
    /// bits/s
    pub bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub captions: bool,
}

impl Variant {
    /// The entry for `rung` from its fragment's probe; `None` when the probe
    /// has no video stream with a size and a level (not a fragment yet).
    pub fn from_probe(rung: &Rung, probe: &Probe) -> Option<Variant> {
        let video = probe.streams.iter().find(|s| s.codec_type == "video")?;
        let (width, height) = (video.width?, video.height?);
        let level = u8::try_from(video.level?).ok().filter(|&l| l > 0)?;
        let audio = probe.streams.iter().any(|s| s.codec_type == "audio");
        let mut codecs = format!("avc1.4d40{level:02x}");
        let mut kbps = u64::from(rung.max_video_kbps());
        if audio {
            codecs.push_str(",mp4a.40.2");
            kbps += u64::from(rung.audio_kbps);
        }
        Some(Variant {
            name: rung.name.clone(),
            bandwidth: kbps * 1000,
            width,
            height,
            codecs,
            captions: video.closed_captions == Some(1),
        })
    }

    fn is_stub(&self) -> bool {
        self.height == STUB_HEIGHT
    }
}

/// The master for these entries (one per rung, in ladder order).
pub fn render(variants: &[Variant]) -> String {
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&i| (variants[i].bandwidth, i));
    let listed: Vec<&Variant> = order
        .iter()
        .filter(|&&i| {
            let v = &variants[i];
            // of one size, the first in rate order (then ladder order)
            !v.is_stub()
                && !order
                    .iter()
                    .take_while(|&&j| j != i)
                    .any(|&j| (variants[j].width, variants[j].height) == (v.width, v.height))
        })
        .map(|&i| &variants[i])
        .collect();
    let captions = listed.iter().any(|v| v.captions);
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if captions {
        out.push_str(
            "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",\
             INSTREAM-ID=\"CC1\",DEFAULT=YES,AUTOSELECT=YES\n",
        );
    }
    for v in listed {
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",CLOSED-CAPTIONS={}\n{}\n",
            v.bandwidth,
            v.width,
            v.height,
            v.codecs,
            if captions { "\"cc\"" } else { "NONE" },
            layout::rendition_uri(&v.name)
        ));
    }
    out
}

/// The renditions a master lists, for the ladder of a publisher that
/// reconnects.
pub fn listed(master: &str) -> Vec<String> {
    layout::master_renditions(master)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{parse_ladder, DEFAULT_LADDER};

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    fn v(name: &str, bandwidth: u64, w: u32, h: u32) -> Variant {
        Variant {
            name: name.into(),
            bandwidth,
            width: w,
            height: h,
            codecs: "avc1.4d401f,mp4a.40.2".into(),
            captions: false,
        }
    }

    #[test]
    fn an_entry_from_ffprobe_json() {
        let l = parse_ladder(DEFAULT_LADDER).unwrap();
        let p = probe(
            r#"{"programs":[],"streams":[
              {"codec_type":"video","width":854,"height":480,"closed_captions":0,"level":31},
              {"codec_type":"audio"}]}"#,
        );
        assert_eq!(
            Variant::from_probe(&l[1], &p),
            Some(Variant {
                name: "480p".into(),
                bandwidth: (1070 + 96) * 1000,
                width: 854,
                height: 480,
                codecs: "avc1.4d401f,mp4a.40.2".into(),
                captions: false,
            })
        );
        // no audio: no mp4a, no audio rate
        let p =
            probe(r#"{"streams":[{"codec_type":"video","width":426,"height":240,"level":21}]}"#);
        let e = Variant::from_probe(&l[2], &p).unwrap();
        assert_eq!((e.codecs.as_str(), e.bandwidth), ("avc1.4d4015", 428_000));
        // captions
        let p = probe(
            r#"{"streams":[{"codec_type":"video","width":1280,"height":720,"level":31,"closed_captions":1}]}"#,
        );
        assert!(Variant::from_probe(&l[0], &p).unwrap().captions);
        // not a fragment (yet)
        for bad in [
            r#"{}"#,
            r#"{"streams":[{"codec_type":"audio"}]}"#,
            r#"{"streams":[{"codec_type":"video","width":1280,"height":720}]}"#,
            r#"{"streams":[{"codec_type":"video","width":1280,"height":720,"level":-99}]}"#,
        ] {
            assert_eq!(Variant::from_probe(&l[0], &probe(bad)), None, "{bad}");
        }
    }

    #[test]
    fn lowest_rate_first_and_no_captions_said_so() {
        let m = render(&[
            v("720p", 2_803_000, 1280, 720),
            v("480p", 1_166_000, 854, 480),
            v("240p", 492_000, 428, 240),
        ]);
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=492000,RESOLUTION=428x240,CODECS=\"avc1.4d401f,mp4a.40.2\",CLOSED-CAPTIONS=NONE\n240p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1166000,RESOLUTION=854x480,CODECS=\"avc1.4d401f,mp4a.40.2\",CLOSED-CAPTIONS=NONE\n480p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2803000,RESOLUTION=1280x720,CODECS=\"avc1.4d401f,mp4a.40.2\",CLOSED-CAPTIONS=NONE\n720p/index.m3u8\n"
        );
        assert_eq!(listed(&m), ["240p", "480p", "720p"]);
    }

    #[test]
    fn stubs_and_copies_of_a_size_are_not_listed() {
        // a 360p source: 720p is a stub, 480p encodes at 640x360
        let m = render(&[
            v("720p", 2_803_000, 28, 16),
            v("480p", 1_166_000, 640, 360),
            v("240p", 492_000, 426, 240),
        ]);
        assert_eq!(listed(&m), ["240p", "480p"]);
        // a reconnect at 360p after 720p: 720p and 480p both at 640x360;
        // the cheaper one is listed
        let m = render(&[
            v("720p", 2_803_000, 640, 360),
            v("480p", 1_166_000, 640, 360),
            v("240p", 492_000, 426, 240),
        ]);
        assert_eq!(listed(&m), ["240p", "480p"]);
        // equal rates: the first in the ladder
        let m = render(&[v("a", 1_000, 640, 360), v("b", 1_000, 640, 360)]);
        assert_eq!(listed(&m), ["a"]);
    }

    #[test]
    fn captions_in_any_rendition_give_every_variant_the_group() {
        let mut with = v("480p", 1_166_000, 854, 480);
        with.captions = true;
        let m = render(&[with, v("240p", 492_000, 428, 240)]);
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(
            lines[3],
            "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\",DEFAULT=YES,AUTOSELECT=YES"
        );
        let infs: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
            .collect();
        assert_eq!(infs.len(), 2);
        assert!(infs.iter().all(|l| l.ends_with("CLOSED-CAPTIONS=\"cc\"")));
    }
}
