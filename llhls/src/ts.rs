//! MPEG-TS packet parsing: just what cutting parts needs (packet header,
//! adaptation-field random-access flag, PAT, PMT, PES header timestamps).

use thiserror::Error;

pub const PACKET_LEN: usize = 188;
pub const SYNC: u8 = 0x47;
/// PTS/DTS are 33-bit counters of a 90 kHz clock.
pub const TS_CLOCK: f64 = 90_000.0;
const TS_WRAP: u64 = 1 << 33;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TsError {
    #[error("packet is {0} bytes, not 188")]
    Length(usize),
    #[error("no sync byte")]
    Sync,
    #[error("adaptation field longer than the packet")]
    Adaptation,
}

/// One 188-byte transport packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub pid: u16,
    /// payload_unit_start_indicator: a PES or PSI section starts here.
    pub pusi: bool,
    /// random_access_indicator from the adaptation field (nginx-rtmp sets it,
    /// with the PCR, on the first packet of every keyframe).
    pub random_access: bool,
    pub payload: &'a [u8],
}

pub fn parse_packet(b: &[u8]) -> Result<Packet<'_>, TsError> {
    if b.len() != PACKET_LEN {
        return Err(TsError::Length(b.len()));
    }
    if b[0] != SYNC {
        return Err(TsError::Sync);
    }
    let pusi = b[1] & 0x40 != 0;
    let pid = (u16::from(b[1] & 0x1f) << 8) | u16::from(b[2]);
    let afc = (b[3] >> 4) & 0x3;
    let mut start = 4;
    let mut random_access = false;
    if afc & 0x2 != 0 {
        let len = usize::from(b[4]);
        if 5 + len > PACKET_LEN {
            return Err(TsError::Adaptation);
        }
        if len > 0 {
            random_access = b[5] & 0x40 != 0;
        }
        start = 5 + len;
    }
    let payload = if afc & 0x1 != 0 {
        &b[start..]
    } else {
        &b[PACKET_LEN..]
    };
    Ok(Packet {
        pid,
        pusi,
        random_access,
        payload,
    })
}

/// The section of a PSI packet that starts in this payload (after the
/// pointer field), cut to section_length, without the CRC. Returns
/// (table_id, body after the 8-byte long header).
fn psi_section(payload: &[u8]) -> Option<(u8, &[u8])> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    if s.len() < 3 {
        return None;
    }
    let table_id = s[0];
    let section_len = (usize::from(s[1] & 0x0f) << 8) | usize::from(s[2]);
    // 5 bytes of long header after section_length, 4 bytes of CRC at the end
    if section_len < 9 || s.len() < 3 + section_len {
        return None;
    }
    Some((table_id, &s[8..3 + section_len - 4]))
}

/// PID of the first program's PMT, from a PAT packet's payload (PUSI set).
pub fn pat_pmt_pid(payload: &[u8]) -> Option<u16> {
    let (table_id, body) = psi_section(payload)?;
    if table_id != 0x00 {
        return None;
    }
    body.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        let pid = (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]);
        (program != 0).then_some(pid)
    })
}

/// Elementary streams (pid, stream_type) from a PMT packet's payload.
pub fn pmt_streams(payload: &[u8]) -> Option<Vec<(u16, u8)>> {
    let (table_id, body) = psi_section(payload)?;
    if table_id != 0x02 || body.len() < 4 {
        return None;
    }
    let info_len = (usize::from(body[2] & 0x0f) << 8) | usize::from(body[3]);
    let mut es = body.get(4 + info_len..)?;
    let mut out = Vec::new();
    while es.len() >= 5 {
        let stream_type = es[0];
        let pid = (u16::from(es[1] & 0x1f) << 8) | u16::from(es[2]);
        let es_info = (usize::from(es[3] & 0x0f) << 8) | usize::from(es[4]);
        out.push((pid, stream_type));
        es = es.get(5 + es_info..).unwrap_or(&[]);
    }
    Some(out)
}

pub fn is_video(stream_type: u8) -> bool {
    // MPEG-1/2 video, MPEG-4 part 2, H.264, HEVC
    matches!(stream_type, 0x01 | 0x02 | 0x10 | 0x1b | 0x24)
}

pub fn is_audio(stream_type: u8) -> bool {
    // MPEG-1/2 audio, AAC ADTS, AAC LATM, AC-3
    matches!(stream_type, 0x03 | 0x04 | 0x0f | 0x11 | 0x81)
}

/// Timestamps of a PES header at the start of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    pub stream_id: u8,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
}

impl PesHeader {
    /// Decode time: DTS if present, else PTS.
    pub fn decode_ts(&self) -> Option<u64> {
        self.dts.or(self.pts)
    }
}

fn read_ts(b: &[u8]) -> u64 {
    (u64::from((b[0] >> 1) & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

pub fn parse_pes_header(payload: &[u8]) -> Option<PesHeader> {
    if payload.len() < 9 || payload[0..3] != [0, 0, 1] {
        return None;
    }
    let stream_id = payload[3];
    let flags = payload[7];
    let header_len = usize::from(payload[8]);
    let opt = payload.get(9..9 + header_len)?;
    let mut pts = None;
    let mut dts = None;
    if flags & 0x80 != 0 && opt.len() >= 5 {
        pts = Some(read_ts(&opt[0..5]));
        if flags & 0x40 != 0 && opt.len() >= 10 {
            dts = Some(read_ts(&opt[5..10]));
        }
    }
    Some(PesHeader {
        stream_id,
        pts,
        dts,
    })
}

/// `t` moved by `d` ticks, wrapping like the 33-bit timestamps.
pub fn ts_add(t: u64, d: i64) -> u64 {
    t.wrapping_add(d as u64) & (TS_WRAP - 1)
}

/// `b - a` on the 33-bit timestamp circle, as a signed number of ticks.
pub fn ts_diff(a: u64, b: u64) -> i64 {
    let d = b.wrapping_sub(a) & (TS_WRAP - 1);
    if d >= TS_WRAP / 2 {
        d as i64 - TS_WRAP as i64
    } else {
        d as i64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// nginx-rtmp's fragment header: PAT (PMT on 0x1001) and PMT (H.264 on
    /// 0x100, AAC on 0x101, PCR on 0x100), as written at offset 0 of every
    /// fragment.
    pub fn nginx_pat_pmt() -> Vec<u8> {
        let mut pat = vec![0x47, 0x40, 0x00, 0x10, 0x00];
        pat.extend([
            0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x01, 0x2e, 0x70,
            0x19, 0x05,
        ]);
        pat.resize(188, 0xff);
        let mut pmt = vec![0x47, 0x50, 0x01, 0x10, 0x00];
        pmt.extend([
            0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1,
            0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00, 0x2f, 0x44, 0xb9, 0x9b,
        ]);
        pmt.resize(188, 0xff);
        pat.extend(pmt);
        pat
    }

    fn put_ts(fb: u8, ts: u64) -> [u8; 5] {
        [
            (fb << 4) | ((((ts >> 30) & 7) as u8) << 1) | 1,
            (ts >> 22) as u8,
            ((((ts >> 15) & 0x7f) as u8) << 1) | 1,
            (ts >> 7) as u8,
            (((ts & 0x7f) as u8) << 1) | 1,
        ]
    }

    /// Packets of one PES the way nginx-rtmp's mpegts writer lays them out
    /// (PCR + random access on keyframes, stuffing in the last packet).
    pub fn pes_packets(
        pid: u16,
        cc: &mut u8,
        pts: u64,
        dts: Option<u64>,
        key: bool,
        body: usize,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut left = body;
        let mut first = true;
        while first || left > 0 {
            let mut p = vec![
                0x47,
                ((pid >> 8) as u8) | if first { 0x40 } else { 0 },
                pid as u8,
                0x10 | (*cc & 0x0f),
            ];
            *cc = cc.wrapping_add(1);
            let mut af: Vec<u8> = Vec::new();
            if first && key {
                af = vec![0x50, 0, 0, 0, 0, 0x7e, 0];
            }
            let mut pes = Vec::new();
            if first {
                let hdr = if dts.is_some() { 10 } else { 5 };
                // PES_packet_length as nginx-rtmp writes it: what follows
                // it, or 0 when that does not fit
                let len = 3 + usize::from(hdr) + body;
                let len = if len > 0xffff { 0 } else { len as u16 };
                pes.extend([0, 0, 1, if pid == 0x100 { 0xe0 } else { 0xc0 }]);
                pes.extend(len.to_be_bytes());
                pes.push(0x80);
                pes.push(if dts.is_some() { 0xc0 } else { 0x80 });
                pes.push(hdr);
                pes.extend(put_ts(if dts.is_some() { 3 } else { 2 }, pts));
                if let Some(d) = dts {
                    pes.extend(put_ts(1, d));
                }
                first = false;
            }
            let room = 184 - pes.len() - if af.is_empty() { 0 } else { af.len() + 1 };
            let take = room.min(left);
            left -= take;
            let stuff = room - take;
            if !af.is_empty() || stuff > 0 {
                p[3] |= 0x20;
                let af_len = af.len() + stuff;
                if af.is_empty() && stuff > 0 {
                    // the adaptation length byte itself takes one byte
                    p.push((stuff - 1) as u8);
                    if stuff >= 2 {
                        p.push(0);
                        p.extend(std::iter::repeat(0xff).take(stuff - 2));
                    }
                } else {
                    p.push(af_len as u8);
                    p.extend(&af);
                    p.extend(std::iter::repeat(0xff).take(stuff));
                }
            }
            p.extend(pes);
            p.extend(std::iter::repeat(0xAB).take(take));
            assert_eq!(p.len(), 188, "test packet builder");
            out.extend(p);
        }
        out
    }

    #[test]
    fn parses_nginx_pat_and_pmt() {
        let h = nginx_pat_pmt();
        let pat = parse_packet(&h[..188]).unwrap();
        assert_eq!(pat.pid, 0);
        assert!(pat.pusi);
        assert_eq!(pat_pmt_pid(pat.payload), Some(0x1001));
        let pmt = parse_packet(&h[188..376]).unwrap();
        assert_eq!(pmt.pid, 0x1001);
        assert_eq!(
            pmt_streams(pmt.payload),
            Some(vec![(0x100, 0x1b), (0x101, 0x0f)])
        );
        assert!(is_video(0x1b) && is_audio(0x0f) && !is_video(0x0f));
    }

    #[test]
    fn pes_start_timestamps_and_random_access() {
        let mut cc = 0;
        let key = pes_packets(0x100, &mut cc, 63_000 + 3000, Some(63_000), true, 1000);
        let p = parse_packet(&key[..188]).unwrap();
        assert!(p.pusi && p.random_access);
        assert_eq!(p.pid, 0x100);
        let h = parse_pes_header(p.payload).unwrap();
        assert_eq!(h.stream_id, 0xe0);
        assert_eq!(h.pts, Some(66_000));
        assert_eq!(h.dts, Some(63_000));
        assert_eq!(h.decode_ts(), Some(63_000));
        // continuation packets: no PUSI, no PES header
        let c = parse_packet(&key[188..376]).unwrap();
        assert!(!c.pusi && !c.random_access);

        let audio = pes_packets(0x101, &mut cc, 8_589_934_000, None, false, 300);
        let a = parse_packet(&audio[..188]).unwrap();
        let h = parse_pes_header(a.payload).unwrap();
        assert_eq!(
            (h.pts, h.dts, h.decode_ts()),
            (Some(8_589_934_000), None, Some(8_589_934_000))
        );
        // last packet is stuffed through the adaptation field
        let last = parse_packet(&audio[188..376]).unwrap();
        assert_eq!(last.payload.len(), 300 - (184 - 14));
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(parse_packet(&[0x47; 10]), Err(TsError::Length(10)));
        let mut p = [0u8; 188];
        assert_eq!(parse_packet(&p), Err(TsError::Sync));
        p[0] = 0x47;
        p[3] = 0x30;
        p[4] = 200;
        assert_eq!(parse_packet(&p), Err(TsError::Adaptation));
        assert_eq!(
            parse_pes_header(&[0, 0, 2, 0xe0, 0, 0, 0x80, 0x80, 5]),
            None
        );
    }

    #[test]
    fn timestamp_difference_wraps_at_33_bits() {
        assert_eq!(ts_diff(100, 190), 90);
        assert_eq!(ts_diff(190, 100), -90);
        assert_eq!(ts_diff((1 << 33) - 10, 20), 30);
        assert_eq!(ts_diff(20, (1 << 33) - 10), -30);
    }
}
