//! MPEG-TS (ISO/IEC 13818-1) scanning: packet sync, PAT/PMT at the start,
//! the video PES that carry an IDR / IRAP, the SPS and the ADTS profile.

use super::h264;

const PKT: usize = 188;
/// Bytes of one PES kept for NAL scanning.
const PES_KEEP: usize = 256 * 1024;

/// Elementary streams found in a PMT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pmt {
    pub pmt_pid: u16,
    pub video: Option<(u16, u8)>,
    pub audio: Option<(u16, u8)>,
}

/// What a scan of a part or segment found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TsScan {
    /// Whole 188-byte packets, each starting with 0x47.
    pub aligned: bool,
    /// The data starts with a PAT, and a PMT comes before the first PES.
    pub starts_with_pat_pmt: bool,
    pub pmt: Option<Pmt>,
    /// Whether the first video PES holds an IDR (or has random_access_indicator).
    pub first_video_sync: Option<bool>,
    pub any_video_sync: bool,
    pub video_pes: usize,
    /// Video PTS in 90 kHz ticks, in stream order.
    pub video_pts: Vec<u64>,
    pub sps: Option<h264::Sps>,
    /// AAC audio object type from the first ADTS header.
    pub adts_aot: Option<u8>,
}

struct Pes {
    data: Vec<u8>,
    rai: bool,
}

/// Scans `b`; `known` is the PMT seen earlier in the stream, used when the
/// data carries none (a part in the middle of a segment).
pub fn scan(b: &[u8], known: Option<Pmt>) -> TsScan {
    let mut s = TsScan {
        aligned: !b.is_empty() && b.len().is_multiple_of(PKT),
        ..Default::default()
    };
    let mut pmt_pid: Option<u16> = known.map(|k| k.pmt_pid);
    let mut pmt = known;
    let mut first_pat = false;
    let mut pmt_before_pes = false;
    let mut seen_pes = false;
    let mut video: Option<Pes> = None;
    let mut audio_done = false;
    for (n, p) in b.chunks(PKT).enumerate() {
        if p.len() < PKT || p[0] != 0x47 {
            s.aligned = false;
            break;
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        let mut rai = false;
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            rai = len > 0 && p[5] & 0x40 != 0;
            off = 5 + len;
        }
        if afc & 1 == 0 || off >= PKT {
            continue;
        }
        let payload = &p[off..];
        if pid == 0 {
            if n == 0 && pusi {
                first_pat = true;
            }
            if let Some(pp) = pat_pmt_pid(payload, pusi) {
                pmt_pid = Some(pp);
            }
            continue;
        }
        if Some(pid) == pmt_pid {
            if let Some(found) = parse_pmt(payload, pusi, pid) {
                pmt = Some(found);
                if !seen_pes {
                    pmt_before_pes = true;
                }
            }
            continue;
        }
        if pusi {
            seen_pes = true;
        }
        let vpid = pmt.and_then(|m| m.video);
        let apid = pmt.and_then(|m| m.audio);
        if let Some((_, vtype)) = vpid.filter(|(v, _)| *v == pid) {
            if pusi {
                if let Some(done) = video.take() {
                    finish_video(&mut s, done, vtype);
                }
                video = Some(Pes {
                    data: Vec::new(),
                    rai,
                });
            }
            if let Some(pes) = video.as_mut() {
                if pes.data.len() < PES_KEEP {
                    pes.data.extend_from_slice(payload);
                }
            }
        } else if apid.is_some_and(|(a, t)| a == pid && t == 0x0f) && pusi && !audio_done {
            if let Some(es) = pes_payload(payload) {
                if es.len() >= 3 && es[0] == 0xff && es[1] & 0xf0 == 0xf0 {
                    s.adts_aot = Some(((es[2] >> 6) & 3) + 1);
                    audio_done = true;
                }
            }
        }
    }
    if let (Some(done), Some((_, vtype))) = (video.take(), pmt.and_then(|m| m.video)) {
        finish_video(&mut s, done, vtype);
    }
    s.starts_with_pat_pmt = first_pat && pmt_before_pes;
    s.pmt = pmt;
    s
}

fn finish_video(s: &mut TsScan, pes: Pes, stream_type: u8) {
    let Some(es) = pes_payload(&pes.data) else {
        return;
    };
    if let Some(pts) = pes_pts(&pes.data) {
        s.video_pts.push(pts);
    }
    let mut sync = pes.rai;
    for nal in nals(es) {
        let Some(&h) = nal.first() else { continue };
        match stream_type {
            0x24 => sync |= (16..=23).contains(&((h >> 1) & 0x3f)),
            _ => {
                let t = h & 0x1f;
                sync |= t == 5;
                if t == 7 && s.sps.is_none() {
                    s.sps = h264::parse_sps(nal);
                }
            }
        }
    }
    if s.video_pes == 0 {
        s.first_video_sync = Some(sync);
    }
    s.any_video_sync |= sync;
    s.video_pes += 1;
}

/// The PMT PID of the first program of a PAT section.
fn pat_pmt_pid(payload: &[u8], pusi: bool) -> Option<u16> {
    let sec = section(payload, pusi, 0x00)?;
    let end = sec.len().checked_sub(4)?;
    let mut i = 8;
    while i + 4 <= end {
        let program = u16::from_be_bytes([sec[i], sec[i + 1]]);
        let pid = (u16::from(sec[i + 2] & 0x1f) << 8) | u16::from(sec[i + 3]);
        if program != 0 {
            return Some(pid);
        }
        i += 4;
    }
    None
}

fn parse_pmt(payload: &[u8], pusi: bool, pmt_pid: u16) -> Option<Pmt> {
    let sec = section(payload, pusi, 0x02)?;
    let end = sec.len().checked_sub(4)?;
    let info_len = usize::from(u16::from_be_bytes([*sec.get(10)?, *sec.get(11)?]) & 0x0fff);
    let mut i = 12 + info_len;
    let mut pmt = Pmt {
        pmt_pid,
        ..Default::default()
    };
    while i + 5 <= end {
        let st = sec[i];
        let pid = (u16::from(sec[i + 1] & 0x1f) << 8) | u16::from(sec[i + 2]);
        let es_len = usize::from(u16::from_be_bytes([sec[i + 3], sec[i + 4]]) & 0x0fff);
        match st {
            0x1b | 0x24 | 0x02 if pmt.video.is_none() => pmt.video = Some((pid, st)),
            0x0f | 0x03 | 0x04 | 0x81 if pmt.audio.is_none() => pmt.audio = Some((pid, st)),
            _ => {}
        }
        i += 5 + es_len;
    }
    Some(pmt)
}

/// A PSI section starting in this packet (pointer field honoured), bounded
/// by its section_length and the packet.
fn section(payload: &[u8], pusi: bool, table: u8) -> Option<&[u8]> {
    if !pusi {
        return None;
    }
    let ptr = usize::from(*payload.first()?);
    let sec = payload.get(1 + ptr..)?;
    if *sec.first()? != table {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*sec.get(1)?, *sec.get(2)?]) & 0x0fff);
    sec.get(..(3 + len).min(sec.len()))
}

/// The elementary stream bytes after a PES header.
fn pes_payload(pes: &[u8]) -> Option<&[u8]> {
    if pes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let hdr = usize::from(*pes.get(8)?);
    pes.get(9 + hdr..)
}

fn pes_pts(pes: &[u8]) -> Option<u64> {
    if pes.get(..3)? != [0, 0, 1] || pes.get(7)? & 0x80 == 0 {
        return None;
    }
    let p = pes.get(9..14)?;
    Some(
        (u64::from(p[0] >> 1) & 0x07) << 30
            | u64::from(p[1]) << 22
            | (u64::from(p[2]) >> 1) << 15
            | u64::from(p[3]) << 7
            | u64::from(p[4]) >> 1,
    )
}

/// NAL units of an Annex B byte stream (without start codes).
pub fn nals(es: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map(|n| n - 3).unwrap_or(es.len());
        while e > s && es[e - 1] == 0 {
            e -= 1;
        }
        out.push(&es[s..e]);
    }
    out
}

#[cfg(test)]
#[path = "ts_tests.rs"]
mod tests;
