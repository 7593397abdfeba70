//! PES reassembly: the elementary-stream units of one fragment, with the
//! byte offset where each PES starts, so that a part `[a, b)` of the file
//! can take exactly the units that start inside it.
//!
//! nginx-rtmp writes every PES contiguously (one `write` per TS packet, all
//! packets of a PES in a row), so a PES is complete once its declared length
//! is reached, or once another PES of its PID starts (video PES of unbounded
//! length), or once the fragment ends.

use crate::ts::{self, Packet};

/// What a unit carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// One PES: for video one access unit (nginx-rtmp writes a frame per PES),
/// for audio one or more ADTS frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub kind: Kind,
    /// Byte offset of the PES's first packet in the fragment file.
    pub offset: u64,
    /// 33-bit 90 kHz timestamps.
    pub pts: u64,
    pub dts: u64,
    /// The random-access flag on the first packet (nginx-rtmp: keyframes).
    pub random_access: bool,
    /// The PES payload after its header.
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct Open {
    unit: Unit,
    /// Payload bytes the PES header announced (0: unbounded).
    expected: usize,
}

/// Reassembles the PES of the video and audio PIDs.
#[derive(Debug, Default)]
pub struct Demux {
    video_pid: Option<u16>,
    audio_pid: Option<u16>,
    open_video: Option<Open>,
    open_audio: Option<Open>,
    done: Vec<Unit>,
    /// A PES whose header could not be read: its packets are skipped.
    broken: Option<u16>,
}

/// Bounds a unit (a hostile or corrupt file must not grow memory): 8 MB.
const MAX_UNIT: usize = 8 << 20;

impl Demux {
    pub fn set_pids(&mut self, video: Option<u16>, audio: Option<u16>) {
        self.video_pid = video;
        self.audio_pid = audio;
    }

    pub fn has_pids(&self) -> bool {
        self.video_pid.is_some() || self.audio_pid.is_some()
    }

    /// Feeds one packet found at byte `offset` of the file.
    pub fn packet(&mut self, offset: u64, p: &Packet<'_>) {
        let kind = if Some(p.pid) == self.video_pid {
            Kind::Video
        } else if Some(p.pid) == self.audio_pid {
            Kind::Audio
        } else {
            return;
        };
        if p.pusi {
            self.close(kind);
            self.broken = None;
            let Some((h, body)) = ts::parse_pes_header(p.payload).zip(pes_body(p.payload)) else {
                self.broken = Some(p.pid);
                return;
            };
            let Some(pts) = h.pts else {
                self.broken = Some(p.pid);
                return;
            };
            let len = usize::from(u16::from_be_bytes([p.payload[4], p.payload[5]]));
            // PES_packet_length counts the bytes after itself: 3 bytes of
            // flags and header length, then the optional header
            let header = 3 + usize::from(p.payload[8]);
            let expected = len.saturating_sub(header);
            let open = Open {
                unit: Unit {
                    kind,
                    offset,
                    pts,
                    dts: h.dts.unwrap_or(pts),
                    random_access: p.random_access,
                    data: body.to_vec(),
                },
                expected,
            };
            match kind {
                Kind::Video => self.open_video = Some(open),
                Kind::Audio => self.open_audio = Some(open),
            }
        } else if self.broken == Some(p.pid) {
            return;
        } else {
            let open = match kind {
                Kind::Video => self.open_video.as_mut(),
                Kind::Audio => self.open_audio.as_mut(),
            };
            let Some(o) = open else {
                // the rest of a PES that started before (a fragment read
                // from its middle): nothing to attach it to
                return;
            };
            if o.unit.data.len() + p.payload.len() > MAX_UNIT {
                self.broken = Some(p.pid);
                match kind {
                    Kind::Video => self.open_video = None,
                    Kind::Audio => self.open_audio = None,
                }
                return;
            }
            o.unit.data.extend_from_slice(p.payload);
        }
        let open = match kind {
            Kind::Video => &self.open_video,
            Kind::Audio => &self.open_audio,
        };
        if open
            .as_ref()
            .is_some_and(|o| o.expected > 0 && o.unit.data.len() >= o.expected)
        {
            self.close(kind);
        }
    }

    fn close(&mut self, kind: Kind) {
        let open = match kind {
            Kind::Video => self.open_video.take(),
            Kind::Audio => self.open_audio.take(),
        };
        if let Some(mut o) = open {
            if o.expected > 0 {
                o.unit.data.truncate(o.expected);
            }
            self.done.push(o.unit);
        }
    }

    /// The end of the fragment: what is open is complete.
    pub fn finish(&mut self) {
        self.close(Kind::Audio);
        self.close(Kind::Video);
    }

    /// Completed units that start before byte `end`, in file order.
    pub fn take_before(&mut self, end: u64) -> Vec<Unit> {
        let (mut take, keep): (Vec<Unit>, Vec<Unit>) =
            self.done.drain(..).partition(|u| u.offset < end);
        self.done = keep;
        take.sort_by_key(|u| u.offset);
        take
    }
}

/// The payload after a PES header.
fn pes_body(payload: &[u8]) -> Option<&[u8]> {
    payload.get(9 + usize::from(*payload.get(8)?)..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::tests::{nginx_pat_pmt, pes_packets};
    use crate::ts::{parse_packet, PACKET_LEN};

    fn feed(d: &mut Demux, bytes: &[u8]) {
        for (i, p) in bytes.chunks_exact(PACKET_LEN).enumerate() {
            d.packet((i * PACKET_LEN) as u64, &parse_packet(p).unwrap());
        }
    }

    #[test]
    fn units_with_their_offsets_and_payloads() {
        let mut f = nginx_pat_pmt();
        let (mut vcc, mut acc) = (0u8, 0u8);
        let a0 = f.len() as u64;
        f.extend(pes_packets(0x101, &mut acc, 1000, None, false, 700));
        let v0 = f.len() as u64;
        f.extend(pes_packets(0x100, &mut vcc, 9000, Some(6000), true, 5000));
        let v1 = f.len() as u64;
        // longer than PES_packet_length can say: unbounded
        f.extend(pes_packets(0x100, &mut vcc, 12000, None, false, 70_000));
        let mut d = Demux::default();
        d.set_pids(Some(0x100), Some(0x101));
        feed(&mut d, &f);
        // the second video PES is still open (unbounded: it ends where the
        // next one starts, or with the fragment)
        let u = d.take_before(v1);
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].kind, u[0].offset, u[0].pts), (Kind::Audio, a0, 1000));
        assert_eq!(u[0].data.len(), 700);
        assert_eq!((u[1].kind, u[1].offset), (Kind::Video, v0));
        assert_eq!((u[1].pts, u[1].dts, u[1].random_access), (9000, 6000, true));
        assert_eq!(u[1].data.len(), 5000);
        assert!(u[1].data.iter().all(|b| *b == 0xab));
        assert!(d.take_before(u64::MAX).is_empty());
        d.finish();
        let u = d.take_before(u64::MAX);
        assert_eq!((u.len(), u[0].offset, u[0].data.len()), (1, v1, 70_000));
    }

    #[test]
    fn a_pes_without_its_start_is_dropped() {
        let mut vcc = 0u8;
        let pes = pes_packets(0x100, &mut vcc, 9000, None, true, 1000);
        let mut d = Demux::default();
        d.set_pids(Some(0x100), None);
        // from its second packet on
        feed(&mut d, &pes[PACKET_LEN..]);
        d.finish();
        assert!(d.take_before(u64::MAX).is_empty());
    }
}
