//! nginx-rtmp's media playlist in, LL-HLS media playlist out.
//!
//! The output keeps every tag nginx-rtmp wrote (segments, EXTINF,
//! EXT-X-DISCONTINUITY, ...) so that a client ignoring the LL tags plays
//! exactly as before, and adds EXT-X-SERVER-CONTROL, EXT-X-PART-INF,
//! EXT-X-PROGRAM-DATE-TIME, EXT-X-PART (byte ranges of the parent `.ts`) and
//! EXT-X-PRELOAD-HINT.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::parts::Part;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlaylistError {
    #[error("not an M3U8 playlist")]
    NotM3u8,
    #[error("bad {0}")]
    Bad(&'static str),
}

/// A segment of nginx-rtmp's playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    pub duration: f64,
    pub uri: String,
    pub discontinuity: bool,
    /// Other tags written before the URI (kept verbatim).
    pub tags: Vec<String>,
}

/// nginx-rtmp's playlist, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Upstream {
    pub version: u32,
    pub media_sequence: u64,
    pub target_duration: u64,
    /// Header tags other than the ones this module rewrites (kept verbatim).
    pub header: Vec<String>,
    pub segments: Vec<Segment>,
    pub endlist: bool,
}

impl Upstream {
    /// Media sequence number of the segment after the last listed one: the
    /// fragment nginx-rtmp writes now (its file is `<msn>.ts`).
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    pub fn last_msn(&self) -> Option<u64> {
        self.segments.last().map(|s| s.msn)
    }

    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let i = msn.checked_sub(self.media_sequence)?;
        self.segments.get(usize::try_from(i).ok()?)
    }
}

pub fn parse(text: &str) -> Result<Upstream, PlaylistError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err(PlaylistError::NotM3u8);
    }
    let mut up = Upstream {
        version: 1,
        ..Upstream::default()
    };
    let mut duration: Option<f64> = None;
    let mut discontinuity = false;
    let mut tags = Vec::new();
    let mut in_segments = false;
    for l in lines {
        if let Some(v) = l.strip_prefix("#EXT-X-VERSION:") {
            up.version = v
                .trim()
                .parse()
                .map_err(|_| PlaylistError::Bad("EXT-X-VERSION"))?;
        } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            up.media_sequence = v
                .trim()
                .parse()
                .map_err(|_| PlaylistError::Bad("EXT-X-MEDIA-SEQUENCE"))?;
        } else if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            up.target_duration = v
                .trim()
                .parse()
                .map_err(|_| PlaylistError::Bad("EXT-X-TARGETDURATION"))?;
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("").trim();
            duration = Some(d.parse().map_err(|_| PlaylistError::Bad("EXTINF"))?);
            in_segments = true;
        } else if l == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
            in_segments = true;
        } else if l == "#EXT-X-ENDLIST" {
            up.endlist = true;
        } else if l.starts_with('#') {
            if in_segments || l.starts_with("#EXT-X-KEY") {
                in_segments = true;
                tags.push(l.to_string());
            } else if !l.starts_with("#EXT-X-PROGRAM-DATE-TIME") {
                up.header.push(l.to_string());
            }
        } else {
            let d = duration
                .take()
                .ok_or(PlaylistError::Bad("segment without EXTINF"))?;
            up.segments.push(Segment {
                msn: up.media_sequence + up.segments.len() as u64,
                duration: d,
                uri: l.to_string(),
                discontinuity: std::mem::take(&mut discontinuity),
                tags: std::mem::take(&mut tags),
            });
        }
    }
    Ok(up)
}

/// LL settings of the rendered playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct LlParams {
    pub target_duration: u64,
    pub part_target: f64,
    pub part_hold_back: f64,
}

/// Per-segment LL data the component measured.
#[derive(Debug, Clone, Default)]
pub struct SegmentLl<'a> {
    pub parts: Option<&'a [Part]>,
    pub pdt: Option<SystemTime>,
}

/// The fragment being written.
#[derive(Debug, Clone)]
pub struct Current<'a> {
    pub msn: u64,
    /// The fragment's file name; `None` until nginx-rtmp has created it (its
    /// name is not known in advance with `hls_fragment_naming system`).
    pub uri: Option<String>,
    pub parts: &'a [Part],
    pub next_part_start: u64,
    pub pdt: Option<SystemTime>,
    pub discontinuity: bool,
}

/// `2026-11-26T10:24:22.123Z`
pub fn format_pdt(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let ms = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn part_line(out: &mut String, uri: &str, p: &Part) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={:.3},URI=\"{uri}\",BYTERANGE=\"{}@{}\"",
        p.duration, p.len, p.offset
    );
    if p.independent {
        out.push_str(",INDEPENDENT=YES");
    }
    out.push('\n');
}

/// Renders the LL-HLS playlist. `ll(msn)` gives what the component knows of
/// a listed segment (parts only for the most recent ones).
pub fn render<'a>(
    up: &Upstream,
    params: &LlParams,
    ll: impl Fn(u64) -> SegmentLl<'a>,
    current: Option<&Current<'_>>,
) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("#EXTM3U\n");
    // byte ranges need version 4; EXT-X-PART-INF/PRELOAD-HINT need none more
    let _ = writeln!(out, "#EXT-X-VERSION:{}", up.version.max(6));
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", params.target_duration);
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
        params.part_hold_back
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", params.part_target);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", up.media_sequence);
    for h in &up.header {
        out.push_str(h);
        out.push('\n');
    }
    for s in &up.segments {
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        for t in &s.tags {
            out.push_str(t);
            out.push('\n');
        }
        let info = ll(s.msn);
        if let Some(t) = info.pdt {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_pdt(t));
        }
        for p in info.parts.unwrap_or(&[]) {
            part_line(&mut out, &s.uri, p);
        }
        let _ = writeln!(out, "#EXTINF:{:.3},\n{}", s.duration, s.uri);
    }
    if up.endlist {
        out.push_str("#EXT-X-ENDLIST\n");
        return out;
    }
    if let Some(c) = current {
        if c.discontinuity && !c.parts.is_empty() {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if let (Some(t), false) = (c.pdt, c.parts.is_empty()) {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_pdt(t));
        }
        if let Some(uri) = &c.uri {
            for p in c.parts {
                part_line(&mut out, uri, p);
            }
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\",BYTERANGE-START={}",
                uri, c.next_part_start
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NGINX: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-TARGETDURATION:2\n\
#EXTINF:0.300,\n4.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n5.ts\n#EXTINF:2.000,\n6.ts\n#EXTINF:1.988,\n7.ts\n";

    #[test]
    fn parses_nginx_rtmp_playlist() {
        let up = parse(NGINX).unwrap();
        assert_eq!(up.version, 3);
        assert_eq!(up.media_sequence, 4);
        assert_eq!(up.target_duration, 2);
        assert_eq!(up.segments.len(), 4);
        assert_eq!(up.segments[1].msn, 5);
        assert!(up.segments[1].discontinuity && !up.segments[2].discontinuity);
        assert_eq!(up.segments[3].duration, 1.988);
        assert_eq!(up.next_msn(), 8);
        assert_eq!(up.last_msn(), Some(7));
        assert_eq!(up.segment(6).unwrap().uri, "6.ts");
        assert!(up.segment(3).is_none() && up.segment(8).is_none());
        assert!(!up.endlist);
        assert_eq!(parse("#EXT-X-VERSION:3\n"), Err(PlaylistError::NotM3u8));
        assert_eq!(
            parse("#EXTM3U\nfoo.ts\n"),
            Err(PlaylistError::Bad("segment without EXTINF"))
        );
        let ev = parse("#EXTM3U\n#EXT-X-PLAYLIST-TYPE: EVENT\n#EXT-X-TARGETDURATION:2\n").unwrap();
        assert_eq!(ev.header, vec!["#EXT-X-PLAYLIST-TYPE: EVENT".to_string()]);
        assert_eq!(ev.next_msn(), 0);
    }

    fn part(offset: u64, len: u64, d: f64, i: bool) -> Part {
        Part {
            offset,
            len,
            duration: d,
            independent: i,
        }
    }

    #[test]
    fn renders_legacy_tags_plus_ll_tags() {
        let up = parse(NGINX).unwrap();
        let p7 = [
            part(0, 1000, 0.5, true),
            part(1000, 800, 0.5, false),
            part(1800, 700, 0.988, false),
        ];
        let p8 = vec![part(0, 900, 0.5, true)];
        let t0 = UNIX_EPOCH + Duration::from_millis(1_795_688_771_478);
        let cur = Current {
            msn: 8,
            uri: Some("8.ts".into()),
            parts: &p8,
            next_part_start: 900,
            pdt: Some(t0 + Duration::from_millis(2000)),
            discontinuity: false,
        };
        let params = LlParams {
            target_duration: 2,
            part_target: 0.5,
            part_hold_back: 1.5,
        };
        let out = render(
            &up,
            &params,
            |msn| SegmentLl {
                parts: (msn == 7).then_some(&p7[..]),
                pdt: (msn == 7).then_some(t0),
            },
            Some(&cur),
        );
        let want = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n#EXT-X-PART-INF:PART-TARGET=0.500\n\
#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:0.300,\n4.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\n5.ts\n#EXTINF:2.000,\n6.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-26T10:26:11.478Z\n\
#EXT-X-PART:DURATION=0.500,URI=\"7.ts\",BYTERANGE=\"1000@0\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.500,URI=\"7.ts\",BYTERANGE=\"800@1000\"\n\
#EXT-X-PART:DURATION=0.988,URI=\"7.ts\",BYTERANGE=\"700@1800\"\n\
#EXTINF:1.988,\n7.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-26T10:26:13.478Z\n\
#EXT-X-PART:DURATION=0.500,URI=\"8.ts\",BYTERANGE=\"900@0\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.ts\",BYTERANGE-START=900\n";
        assert_eq!(out, want);
        // the legacy view of it: same segments, same order, same durations
        let legacy = parse(&out).unwrap();
        let key = |u: &Upstream| -> Vec<(u64, String, f64, bool)> {
            u.segments
                .iter()
                .map(|s| (s.msn, s.uri.clone(), s.duration, s.discontinuity))
                .collect()
        };
        assert_eq!(key(&legacy), key(&up));
    }

    #[test]
    fn in_progress_fragment_after_a_reconnect_is_a_discontinuity() {
        let up = parse(
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:0.300,\n3.ts\n",
        )
        .unwrap();
        let p = vec![part(0, 10, 0.5, true)];
        let params = LlParams {
            target_duration: 4,
            part_target: 0.5,
            part_hold_back: 1.5,
        };
        let cur = Current {
            msn: 4,
            uri: Some("4.ts".into()),
            parts: &p,
            next_part_start: 10,
            pdt: None,
            discontinuity: true,
        };
        let out = render(&up, &params, |_| SegmentLl::default(), Some(&cur));
        assert!(out.contains("#EXT-X-TARGETDURATION:4\n"));
        assert!(out.ends_with("3.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=0.500,URI=\"4.ts\",BYTERANGE=\"10@0\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.ts\",BYTERANGE-START=10\n"), "{out}");
        // no parts yet: only the hint, no dangling discontinuity
        let cur = Current {
            parts: &[],
            next_part_start: 0,
            ..cur
        };
        let out = render(&up, &params, |_| SegmentLl::default(), Some(&cur));
        assert!(
            out.ends_with("3.ts\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.ts\",BYTERANGE-START=0\n"),
            "{out}"
        );
    }

    #[test]
    fn program_date_time_format() {
        assert_eq!(format_pdt(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_pdt(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_pdt(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
            "2099-12-31T23:59:59.000Z"
        );
    }
}
