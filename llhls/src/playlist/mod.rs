//! nginx-rtmp's media playlist in (what it lists, and where a publish
//! session starts); the LL-HLS media playlist out, all of it written here:
//! the CMAF segments and parts this component packaged ([`Timeline`]),
//! with EXT-X-MAP, EXT-X-PROGRAM-DATE-TIME, EXT-X-PART, EXT-X-PRELOAD-HINT,
//! EXT-X-SERVER-CONTROL (blocking reloads, delta updates) and rendition
//! reports. Clients that ignore the LL tags play the segments.

use std::fmt::Write as _;
use std::time::SystemTime;

use thiserror::Error;

use crate::timeline::{self, Timeline, CLOCK};

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

/// What the rendered playlist declares besides the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct LlParams {
    pub target_duration: u64,
    pub part_target: f64,
    pub part_hold_back: f64,
    /// CAN-SKIP-UNTIL (seconds): segments older than this from the end may
    /// be skipped in delta updates.
    pub skip_until: f64,
}

/// `2026-11-26T10:24:22.123Z`
pub fn format_pdt(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Seconds of 90 kHz ticks: three decimals when exact (RTMP's timestamps
/// are whole milliseconds), else five, so that the sum of listed durations
/// stays within a millisecond of the media's own timestamps.
pub fn seconds(ticks: u64) -> String {
    if ticks % (CLOCK / 1000) == 0 {
        format!("{}.{:03}", ticks / CLOCK, ticks % CLOCK / (CLOCK / 1000))
    } else {
        format!("{:.5}", ticks as f64 / CLOCK as f64)
    }
}

fn segment_uri(s: &timeline::Segment) -> String {
    format!("{}.m4s", s.file)
}

pub fn part_uri(epoch: u64, n: u64) -> String {
    format!("{epoch}-{n}.m4s")
}

pub fn init_uri(init: u64) -> String {
    format!("init-{init}.mp4")
}

/// How many of the first segments a delta update skips: the complete ones
/// that end `skip_until` seconds or more before the end of the playlist.
pub fn skippable(t: &Timeline, skip_until: f64) -> usize {
    let segs = t.segments();
    let total: u64 = segs.iter().map(timeline::Segment::duration).sum();
    let boundary = total.saturating_sub((skip_until * CLOCK as f64) as u64);
    let mut end = 0;
    let mut n = 0;
    for s in segs {
        end += s.duration();
        if !(s.complete && s.announced) || end > boundary {
            break;
        }
        n += 1;
    }
    n
}

/// Renders the playlist. `skip`: a delta update (`_HLS_skip=YES`), which
/// leaves out the segments [`skippable`] says. Parts are listed for the
/// segment in progress and the complete segments that end within three
/// target durations of the end (RFC 8216bis 4.4.4.9). `ended`: the stream
/// ended (EXT-X-ENDLIST, no preload hint). Rendition reports, which need
/// the other renditions' state, are appended with [`push_reports`].
pub fn render(t: &Timeline, p: &LlParams, skip: bool, ended: bool) -> String {
    let segs = t.segments();
    let skipped = if skip { skippable(t, p.skip_until) } else { 0 };
    let mut out = String::with_capacity(256 + 160 * segs.len());
    out.push_str("#EXTM3U\n");
    // EXT-X-MAP in a media playlist needs version 6, EXT-X-SKIP 9
    let _ = writeln!(out, "#EXT-X-VERSION:{}", if skipped > 0 { 9 } else { 6 });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", p.target_duration);
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}",
        p.skip_until, p.part_hold_back
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", p.part_target);
    let first = segs.front().map_or(0, |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    if t.discontinuity_sequence() > 0 {
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            t.discontinuity_sequence()
        );
    }
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let total: u64 = segs.iter().map(timeline::Segment::duration).sum();
    let parts_from = total.saturating_sub(3 * p.target_duration * CLOCK);
    let dated_from = total.saturating_sub((p.skip_until * CLOCK as f64) as u64);
    let mut end = 0u64;
    let mut map = None;
    for (i, s) in segs.iter().enumerate() {
        end += s.duration();
        if i < skipped {
            continue;
        }
        if !s.complete && s.parts.is_empty() {
            break;
        }
        if s.discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(s.init) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", init_uri(s.init));
            map = Some(s.init);
        }
        // the date of the first segment, of each discontinuity and of the
        // segments a delta update holds: the rest follow from EXTINF
        // (RFC 8216bis 4.4.4.6), and a 30-minute window is half the size
        if i == skipped || s.discontinuity || end > dated_from {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", format_pdt(s.pdt));
        }
        let listed = s.complete && s.announced;
        if !listed || end > parts_from {
            for part in &s.parts {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{}\"",
                    seconds(part.duration),
                    part_uri(t.epoch(), part.n)
                );
                if part.independent {
                    out.push_str(",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if listed {
            let _ = writeln!(
                out,
                "#EXTINF:{},\n{}",
                seconds(s.duration()),
                segment_uri(s)
            );
        }
    }
    // A segment complete but not yet listed as one (its last part is
    // listed, the next segment's first is not there yet: see
    // `Timeline::complete`) gets no hint: a client takes the hinted part for
    // the next part of the last segment listed, the open one. shaka-player
    // 5 fetched it as such, then, once the segment was listed, fetched its
    // real last part again and appended it after the hinted one (the next
    // segment's keyframe): its decode time went backwards, the browser
    // dropped every frame until the following keyframe, and about one
    // part in six was shown (half of its runs on a ladder rendition). A
    // blocking reload for the part after the last answers as soon as the
    // next segment's first part exists (RFC 8216bis 6.2.5.2), then with a
    // hint again.
    let closing = segs
        .iter()
        .rev()
        .find(|s| s.complete || !s.parts.is_empty())
        .is_some_and(|s| s.complete && !s.announced);
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    } else if !closing {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            part_uri(t.epoch(), t.next_part())
        );
    }
    out
}

/// Where another rendition of the stream is (RFC 8216bis 4.4.5.4).
pub struct RenditionReport {
    /// The rendition's folder name, beside this one's.
    pub rendition: String,
    pub msn: u64,
    pub part: Option<u64>,
}

/// Appends `EXT-X-RENDITION-REPORT` lines for `reports` to a rendered
/// playlist.
pub fn push_reports(out: &mut String, reports: &[RenditionReport]) {
    for r in reports {
        let _ = write!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"../{}/index.m3u8\",LAST-MSN={}",
            r.rendition, r.msn
        );
        if let Some(p) = r.part {
            let _ = write!(out, ",LAST-PART={p}");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests;
