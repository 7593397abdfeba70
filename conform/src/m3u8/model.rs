//! The media playlist as the checker sees it: every segment with its MSN,
//! every part with its resolved byte range, the preload hints and rendition
//! reports, plus which version-relevant features the text used.

/// A byte range with its offset resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub offset: u64,
    pub length: u64,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// An EXT-X-MAP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MapRef {
    pub uri: String,
    pub byterange: Option<Range>,
}

/// Tags applied to a (parent) segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SegMeta {
    pub discontinuity: bool,
    /// EXT-X-PROGRAM-DATE-TIME in ms since the epoch.
    pub pdt_ms: Option<i64>,
    pub map: Option<MapRef>,
    pub gap: bool,
    /// Discontinuity Sequence Number of the segment.
    pub disc_seq: u64,
}

/// An EXT-X-PART.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
    pub gap: bool,
    pub byterange: Option<Range>,
}

/// A complete segment (EXTINF + URI) with the parts listed for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub msn: u64,
    pub uri: String,
    pub duration: f64,
    pub byterange: Option<Range>,
    pub meta: SegMeta,
    pub parts: Vec<Part>,
}

/// Parts listed after the last complete segment (its parent is not complete).
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub msn: u64,
    pub meta: SegMeta,
    pub parts: Vec<Part>,
}

/// An EXT-X-PRELOAD-HINT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreloadHint {
    pub kind: String,
    pub uri: String,
    pub start: u64,
    pub length: Option<u64>,
    /// BYTERANGE-START or BYTERANGE-LENGTH present: the hinted resource is a
    /// byte range (to the end of the resource without LENGTH).
    pub ranged: bool,
}

/// An EXT-X-RENDITION-REPORT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

/// EXT-X-SERVER-CONTROL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerControl {
    pub can_block_reload: bool,
    pub can_skip_until: Option<f64>,
    pub can_skip_dateranges: bool,
    pub hold_back: Option<f64>,
    pub part_hold_back: Option<f64>,
}

/// Features that raise the required EXT-X-VERSION (section 8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub float_extinf: bool,
    pub byterange: bool,
    pub map: bool,
    pub key_format: bool,
    pub sample_aes: bool,
    pub key_iv: bool,
    pub define: bool,
    pub define_queryparam: bool,
    pub skip: bool,
    pub skip_dateranges: bool,
    pub req_attribute: bool,
}

/// A parsed media playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    pub version: Option<u64>,
    pub target_duration: Option<u64>,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub server_control: ServerControl,
    pub part_target: Option<f64>,
    pub independent_segments: bool,
    pub i_frames_only: bool,
    pub endlist: bool,
    pub playlist_type: Option<String>,
    /// EXT-X-SKIP:SKIPPED-SEGMENTS (a delta update).
    pub skipped_segments: Option<u64>,
    pub segments: Vec<Segment>,
    pub pending: Option<Pending>,
    pub hints: Vec<PreloadHint>,
    pub reports: Vec<RenditionReport>,
    pub features: Features,
    /// Whether any EXT-X-PART tag appeared.
    pub has_parts: bool,
}

/// A position in the stream: part `part` of segment `msn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub msn: u64,
    pub part: u64,
}

impl MediaPlaylist {
    /// MSN of the last complete segment.
    pub fn last_msn(&self) -> Option<u64> {
        self.segments.last().map(|s| s.msn)
    }

    /// The MSN the next complete segment will have.
    pub fn next_msn(&self) -> u64 {
        self.segments
            .last()
            .map(|s| s.msn.saturating_add(1))
            .unwrap_or(
                self.media_sequence
                    .saturating_add(self.skipped_segments.unwrap_or(0)),
            )
    }

    /// Every listed part with its position and whether it is the last part
    /// of a complete parent segment.
    pub fn parts(&self) -> Vec<(Pos, &Part, &SegMeta, bool)> {
        let mut out = Vec::new();
        for s in &self.segments {
            for (i, p) in s.parts.iter().enumerate() {
                let last = i + 1 == s.parts.len();
                out.push((pos(s.msn, i), p, &s.meta, last));
            }
        }
        if let Some(pe) = &self.pending {
            for (i, p) in pe.parts.iter().enumerate() {
                out.push((pos(pe.msn, i), p, &pe.meta, false));
            }
        }
        out
    }

    /// The last listed part, if any.
    pub fn last_part(&self) -> Option<Pos> {
        if let Some(pe) = self.pending.as_ref().filter(|p| !p.parts.is_empty()) {
            return Some(pos(pe.msn, pe.parts.len() - 1));
        }
        let s = self.segments.last()?;
        (!s.parts.is_empty()).then(|| pos(s.msn, s.parts.len() - 1))
    }

    /// The position of the next part to appear (what a client blocks on).
    pub fn next_part(&self) -> Pos {
        match &self.pending {
            Some(pe) if !pe.parts.is_empty() => pos(pe.msn, pe.parts.len()),
            _ => pos(self.next_msn(), 0),
        }
    }

    /// Segment with that MSN.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.first()?.msn;
        let s = self
            .segments
            .get(usize::try_from(msn.checked_sub(first)?).ok()?)?;
        (s.msn == msn).then_some(s)
    }

    /// Parts listed for `msn` (complete or pending).
    pub fn parts_of(&self, msn: u64) -> Option<&[Part]> {
        if let Some(s) = self.segment(msn) {
            return Some(&s.parts);
        }
        self.pending
            .as_ref()
            .filter(|p| p.msn == msn)
            .map(|p| p.parts.as_slice())
    }

    /// Total duration of complete segments.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Seconds of media listed after the end of segment `msn` (complete
    /// segments after it plus pending parts).
    pub fn seconds_after(&self, msn: u64) -> f64 {
        let after: f64 = self
            .segments
            .iter()
            .filter(|s| s.msn > msn)
            .map(|s| s.duration)
            .sum();
        let pending: f64 = self
            .pending
            .as_ref()
            .filter(|p| p.msn > msn)
            .map(|p| p.parts.iter().map(|x| x.duration).sum())
            .unwrap_or(0.0);
        after + pending
    }
}

/// Shorthand for a [`Pos`].
pub fn pos(msn: u64, part: usize) -> Pos {
    Pos {
        msn,
        part: part as u64,
    }
}
