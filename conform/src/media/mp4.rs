//! fMP4 / CMAF: the init section (moov) and media fragments (moof + mdat),
//! decoded with `mp4-atom`. The top-level box walk is done here so that byte
//! offsets (trun data_offset relative to the moof) can be checked.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mp4_atom::{Codec, Decode, Moof, Moov};

use super::h264::{self, Sps};
use crate::findings::{Issue, Rule};
use crate::rules::ids_media::*;

/// One track of the init section.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackInfo {
    pub id: u32,
    /// hdlr handler type: `vide`, `soun`, ...
    pub handler: String,
    pub timescale: u32,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`) or the sample
    /// entry's four-character code for other codecs.
    pub codec: String,
    pub sps: Option<Sps>,
    /// Sample entry width x height (video).
    pub entry_size: Option<(u16, u16)>,
    /// trex defaults: duration, size, flags.
    pub trex: (u32, u32, u32),
}

/// The parsed init section.
#[derive(Clone, Debug, PartialEq)]
pub struct InitInfo {
    pub tracks: Vec<TrackInfo>,
}

impl InitInfo {
    pub fn track(&self, id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// The first video track, else the first track.
    pub fn main_track(&self) -> Option<&TrackInfo> {
        self.tracks
            .iter()
            .find(|t| t.handler == "vide")
            .or(self.tracks.first())
    }
}

/// A top-level box: type, start, payload start, end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxAt {
    pub kind: [u8; 4],
    pub start: usize,
    pub payload: usize,
    pub end: usize,
}

/// Walks the top-level boxes of `b`.
pub fn boxes(b: &[u8]) -> Result<Vec<BoxAt>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let head = b
            .get(i..i + 8)
            .ok_or_else(|| format!("truncated box header at byte {i}"))?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, payload) = match size32 {
            0 => ((b.len() - i) as u64, i + 8),
            1 => {
                let l = b.get(i + 8..i + 16).ok_or("truncated largesize")?;
                (
                    u64::from_be_bytes(l.try_into().map_err(|_| "largesize")?),
                    i + 16,
                )
            }
            s => (s, i + 8),
        };
        let end = (i as u64)
            .checked_add(size)
            .filter(|e| *e <= b.len() as u64 && size >= (payload - i) as u64);
        let end = end.ok_or_else(|| {
            format!(
                "box {} at byte {i} has size {size} beyond the {} bytes",
                String::from_utf8_lossy(&kind),
                b.len()
            )
        })? as usize;
        out.push(BoxAt {
            kind,
            start: i,
            payload,
            end,
        });
        i = end;
    }
    Ok(out)
}

fn decode<T: Decode>(b: &[u8]) -> Result<T, String> {
    let mut slice = b;
    match catch_unwind(AssertUnwindSafe(|| T::decode(&mut slice))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the box decoder panicked".into()),
    }
}

fn codec_of(c: &Codec) -> (String, Option<Sps>) {
    match c {
        Codec::Avc1(a) => avc(&a.avcc),
        Codec::Avc3(a) => avc(&a.avcc),
        Codec::Mp4a(m) => {
            let dc = &m.esds.es_desc.dec_config;
            match (dc.object_type_indication, &dc.dec_specific) {
                (0x40, Some(ds)) => (format!("mp4a.40.{}", ds.profile), None),
                (oti, _) => (format!("mp4a.{oti:02X}"), None),
            }
        }
        other => {
            let name = format!("{other:?}");
            (name.split('(').next().unwrap_or("").to_lowercase(), None)
        }
    }
}

fn avc(c: &mp4_atom::Avcc) -> (String, Option<Sps>) {
    let codec = format!(
        "avc1.{:02x}{:02x}{:02x}",
        c.avc_profile_indication, c.profile_compatibility, c.avc_level_indication
    );
    let sps = c
        .sequence_parameter_sets
        .first()
        .and_then(|s| h264::parse_sps(s));
    (codec, sps)
}

/// Parses an init section: the moov's tracks, timescales and codecs.
pub fn parse_init(b: &[u8]) -> Result<InitInfo, String> {
    let list = boxes(b)?;
    let moov = list
        .iter()
        .find(|x| &x.kind == b"moov")
        .ok_or("no moov box")?;
    let moov: Moov = decode(&b[moov.start..moov.end])?;
    let mut tracks = Vec::new();
    for t in &moov.trak {
        let id = t.tkhd.track_id;
        let entry = t.mdia.minf.stbl.stsd.codecs.first();
        let (codec, sps) = entry.map(codec_of).unwrap_or_default();
        let trex = moov
            .mvex
            .as_ref()
            .and_then(|m| m.trex.iter().find(|x| x.track_id == id))
            .map(|x| {
                (
                    x.default_sample_duration,
                    x.default_sample_size,
                    x.default_sample_flags,
                )
            })
            .unwrap_or_default();
        tracks.push(TrackInfo {
            id,
            handler: t.mdia.hdlr.handler.to_string(),
            timescale: t.mdia.mdhd.timescale,
            codec,
            sps,
            entry_size: entry.and_then(|e| e.visual()).map(|v| (v.width, v.height)),
            trex,
        });
    }
    if tracks.is_empty() {
        return Err("moov has no track".into());
    }
    if moov.mvex.is_none() {
        return Err("moov has no mvex (not a fragmented MP4 init section)".into());
    }
    if let Some(t) = tracks.iter().find(|t| t.timescale == 0) {
        return Err(format!("track {} has timescale 0", t.id));
    }
    Ok(InitInfo { tracks })
}

/// What one track's samples in a part or segment add up to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrackMedia {
    pub first_tfdt: Option<u64>,
    /// tfdt of the last fragment plus its sample durations.
    pub end: Option<u64>,
    pub duration: u64,
    pub samples: u64,
    /// Whether the first sample is a sync sample.
    pub first_sync: Option<bool>,
    pub any_sync: bool,
    /// Sample durations (for the frame rate), at most [`MAX_KEPT`].
    pub durations: Vec<u32>,
}

/// The fragments of one part or segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaInfo {
    pub tracks: BTreeMap<u32, TrackMedia>,
    pub fragments: usize,
}

const MAX_KEPT: usize = 10_000;
/// Samples per trun beyond which a run is refused (a hostile count).
const MAX_SAMPLES: usize = 1_000_000;

/// sample_is_non_sync_sample = 0 and sample_depends_on != 1 (ISO/IEC
/// 14496-12 8.8.3.1).
pub fn is_sync(flags: u32) -> bool {
    flags & 0x0001_0000 == 0 && (flags >> 24) & 3 != 1
}

/// Parses the moof + mdat pairs of a part or segment. Problems come back
/// as issues under `key`.
pub fn parse_fragments(b: &[u8], init: &InitInfo, key: &str) -> (MediaInfo, Vec<Issue>) {
    let mut info = MediaInfo::default();
    let mut out = Vec::new();
    let mut bad = |rule: &'static Rule, m: String| {
        out.push(Issue::new(
            rule,
            format!("{key} {}", rule.id),
            format!("{key}: {m}"),
        ))
    };
    let list = match boxes(b) {
        Ok(l) => l,
        Err(e) => {
            bad(&FMP4_STRUCTURE, e);
            return (info, out);
        }
    };
    let mut i = 0;
    while i < list.len() {
        let bx = list[i];
        i += 1;
        match &bx.kind {
            b"moof" => {}
            b"styp" | b"sidx" | b"prft" | b"emsg" | b"free" | b"skip" | b"ftyp" => continue,
            other => {
                bad(
                    &FMP4_STRUCTURE,
                    format!(
                        "unexpected top-level box {:?}",
                        String::from_utf8_lossy(other)
                    ),
                );
                continue;
            }
        }
        let mdat = match list.get(i) {
            Some(m) if &m.kind == b"mdat" => *m,
            _ => {
                bad(&FMP4_STRUCTURE, "a moof not followed by an mdat".into());
                continue;
            }
        };
        i += 1;
        let moof: Moof = match decode(&b[bx.start..bx.end]) {
            Ok(m) => m,
            Err(e) => {
                bad(&FMP4_STRUCTURE, format!("moof does not decode: {e}"));
                continue;
            }
        };
        info.fragments += 1;
        let mut used = 0u64;
        let mut skipped = false;
        let mut implicit_base = bx.start as u64;
        for traf in &moof.traf {
            let h = &traf.tfhd;
            let Some(track) = init.track(h.track_id) else {
                bad(
                    &FMP4_UNKNOWN_TRACK,
                    format!(
                        "traf for track {} which the init section does not declare",
                        h.track_id
                    ),
                );
                skipped = true;
                continue;
            };
            let base = match (h.default_base_is_moof, h.base_data_offset) {
                (true, _) => bx.start as u64,
                (false, Some(abs)) => abs,
                (false, None) => implicit_base,
            };
            let Some(tfdt) = traf.tfdt.as_ref().map(|t| t.base_media_decode_time) else {
                bad(
                    &FMP4_STRUCTURE,
                    format!("track {}: traf without tfdt", h.track_id),
                );
                skipped = true;
                continue;
            };
            let tm = info.tracks.entry(h.track_id).or_default();
            if let Some(end) = tm.end {
                if end != tfdt {
                    bad(
                        &TFDT_NOT_CONTIGUOUS,
                        format!(
                            "track {}: tfdt {tfdt} but the previous fragment ended at {end}",
                            h.track_id
                        ),
                    );
                }
            }
            tm.first_tfdt.get_or_insert(tfdt);
            let dur_default = h.default_sample_duration.unwrap_or(track.trex.0);
            let size_default = h.default_sample_size.unwrap_or(track.trex.1);
            let flags_default = h.default_sample_flags.unwrap_or(track.trex.2);
            let mut traf_dur = 0u64;
            let mut run_end: Option<u64> = None;
            for run in &traf.trun {
                if run.samples.len() > MAX_SAMPLES {
                    bad(
                        &FMP4_STRUCTURE,
                        format!("trun with {} samples", run.samples.len()),
                    );
                    break;
                }
                let start = match run.data_offset {
                    Some(off) => base.checked_add_signed(i64::from(off)).unwrap_or(0),
                    None => run_end.unwrap_or(base),
                };
                let mut size = 0u64;
                for (k, s) in run.samples.iter().enumerate() {
                    let d = s.duration.unwrap_or(dur_default);
                    size += u64::from(s.size.unwrap_or(size_default));
                    traf_dur += u64::from(d);
                    let sync = is_sync(s.flags.unwrap_or(flags_default));
                    if tm.samples == 0 && k == 0 {
                        tm.first_sync = Some(sync);
                    }
                    tm.any_sync |= sync;
                    if tm.durations.len() < MAX_KEPT {
                        tm.durations.push(d);
                    }
                }
                tm.samples += run.samples.len() as u64;
                let end = start.saturating_add(size);
                if start < mdat.payload as u64 || end > mdat.end as u64 {
                    bad(&FMP4_SAMPLE_DATA, format!(
                        "track {}: sample data at bytes {start}..{end} is outside the mdat payload {}..{}",
                        h.track_id, mdat.payload, mdat.end
                    ));
                }
                used += size;
                run_end = Some(end);
            }
            implicit_base = run_end.unwrap_or(implicit_base);
            tm.duration += traf_dur;
            tm.end = Some(tfdt.saturating_add(traf_dur));
        }
        let payload = (mdat.end - mdat.payload) as u64;
        if used != payload && !skipped {
            bad(
                &FMP4_SAMPLE_DATA,
                format!("sample sizes add up to {used} bytes but the mdat payload is {payload}"),
            );
        }
    }
    if info.fragments == 0 && list.iter().all(|x| &x.kind != b"moof") {
        bad(&FMP4_STRUCTURE, "no moof + mdat".into());
    }
    (info, out)
}

#[cfg(test)]
#[path = "mp4_tests.rs"]
mod tests;
