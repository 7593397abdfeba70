//! Synthetic media for tests (unit and integration): fMP4 built with
//! mp4-atom's encoders, H.264 SPS, MPEG-TS packets. Not for production use.

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::*;

use super::h264::HIGH_PROFILES;

/// Video track 1 (timescale `ts`, 1280x720 H.264 High 3.1), audio track 2
/// (48 kHz AAC-LC). Returns the whole init section.
pub fn init(ts: u32) -> Vec<u8> {
    let sps_nal = sps(100, 31, 1280, 720);
    let avcc = Avcc {
        configuration_version: 1,
        avc_profile_indication: 100,
        profile_compatibility: 0,
        avc_level_indication: 31,
        length_size: 4,
        sequence_parameter_sets: vec![sps_nal],
        picture_parameter_sets: vec![vec![0x68, 0xee, 0x3c, 0x80]],
        ext: Some(AvccExt::default()),
    };
    let video = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width: 1280,
            height: 720,
            ..Default::default()
        },
        avcc,
        ..Default::default()
    };
    let audio = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: 2,
            sample_size: 16,
            sample_rate: 48000u16.into(),
        },
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: 2,
                dec_config: DecoderConfig {
                    object_type_indication: 0x40,
                    stream_type: 5,
                    dec_specific: Some(DecoderSpecific {
                        profile: 2,
                        freq_index: 3,
                        chan_conf: 2,
                        raw: Vec::new(),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    };
    let trak = |id: u32, handler: &[u8; 4], timescale: u32, codec: Codec| Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: handler.into(),
                name: String::new(),
            },
            minf: Minf {
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            next_track_id: 3,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![
                Trex {
                    track_id: 1,
                    default_sample_description_index: 1,
                    ..Default::default()
                },
                Trex {
                    track_id: 2,
                    default_sample_description_index: 1,
                    ..Default::default()
                },
            ],
        }),
        trak: vec![
            trak(1, b"vide", ts, video.into()),
            trak(2, b"soun", 48000, audio.into()),
        ],
        ..Default::default()
    };
    let mut out = Vec::new();
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into()],
    }
    .encode(&mut out)
    .unwrap();
    moov.encode(&mut out).unwrap();
    out
}

/// One sample: duration, size, sync.
#[derive(Clone, Copy, Debug)]
pub struct S(pub u32, pub u32, pub bool);

/// A moof + mdat with one traf per `(track, tfdt, samples)`, default base
/// is moof, data offsets pointing into the mdat (sample bytes are zeros).
pub fn fragment(seq: u32, tracks: &[(u32, u64, &[S])]) -> Vec<u8> {
    let build = |offsets: &[i32]| Moof {
        mfhd: Mfhd {
            sequence_number: seq,
        },
        traf: tracks
            .iter()
            .zip(offsets)
            .map(|((id, tfdt, samples), off)| Traf {
                tfhd: Tfhd {
                    track_id: *id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: *tfdt,
                }),
                trun: vec![Trun {
                    data_offset: Some(*off),
                    samples: TrunSamples::Explicit(
                        samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.0),
                                size: Some(s.1),
                                flags: Some(if s.2 { 0x0200_0000 } else { 0x0101_0000 }),
                                cts: None,
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    let mut probe = Vec::new();
    build(&vec![0; tracks.len()]).encode(&mut probe).unwrap();
    let mut offsets = Vec::new();
    let mut at = probe.len() as i32 + 8;
    for (_, _, samples) in tracks {
        offsets.push(at);
        at += samples.iter().map(|s| s.1 as i32).sum::<i32>();
    }
    let mut out = Vec::new();
    build(&offsets).encode(&mut out).unwrap();
    let payload: usize = tracks
        .iter()
        .flat_map(|t| t.2.iter())
        .map(|s| s.1 as usize)
        .sum();
    Mdat {
        data: vec![0; payload],
    }
    .encode(&mut out)
    .unwrap();
    out
}

/// `n` video samples of `dur` ticks, the first one sync when `key`.
pub fn video(n: usize, dur: u32, key: bool) -> Vec<S> {
    (0..n).map(|i| S(dur, 100, key && i == 0)).collect()
}

/// Writes an SPS bitstream for tests (baseline or high profile).
#[derive(Default)]
pub struct Writer {
    bits: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { bits: Vec::new() }
    }
    pub fn u(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            self.bits.push(((v >> i) & 1) as u8);
        }
    }
    pub fn ue(&mut self, v: u32) {
        let x = v + 1;
        let len = 32 - x.leading_zeros();
        self.u(len - 1, 0);
        self.u(len, x);
    }
    pub fn bytes(mut self) -> Vec<u8> {
        self.u(1, 1); // rbsp stop bit
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(0);
        }
        self.bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, b| (a << 1) | b))
            .collect()
    }
}

/// An SPS NAL (header 0x67) for `w`x`h` (multiples of 2) at `profile`.
pub fn sps(profile: u8, level: u8, w: u32, h: u32) -> Vec<u8> {
    let mut b = Writer::new();
    b.u(8, u32::from(profile));
    b.u(8, 0);
    b.u(8, u32::from(level));
    b.ue(0);
    if HIGH_PROFILES.contains(&profile) {
        b.ue(1); // 4:2:0
        b.ue(0);
        b.ue(0);
        b.u(1, 0);
        b.u(1, 0);
    }
    b.ue(0); // log2_max_frame_num_minus4
    b.ue(2); // poc type 2
    b.ue(1);
    b.u(1, 0);
    let (mw, mh) = (w.div_ceil(16), h.div_ceil(16));
    b.ue(mw - 1);
    b.ue(mh - 1);
    b.u(1, 1); // frame_mbs_only
    b.u(1, 1);
    let (cr, cb) = (mw * 16 - w, mh * 16 - h);
    if cr + cb > 0 {
        b.u(1, 1);
        b.ue(0);
        b.ue(cr / 2);
        b.ue(0);
        b.ue(cb / 2);
    } else {
        b.u(1, 0);
    }
    b.u(1, 0); // no VUI
    let mut nal = vec![0x67];
    nal.extend(b.bytes());
    nal
}

// ---- MPEG-TS ----

/// A 188-byte packet; payloads shorter than 184 bytes are padded with an
/// adaptation field (which carries random_access_indicator when `rai`).
pub fn packet(pid: u16, pusi: bool, payload: &[u8], rai: bool) -> Vec<u8> {
    let mut p = vec![
        0x47,
        ((pid >> 8) as u8 & 0x1f) | if pusi { 0x40 } else { 0 },
        pid as u8,
    ];
    let room = 184 - payload.len();
    if room > 0 || rai {
        let af_len = room.max(2) - 1;
        p.push(0x30);
        p.push(af_len as u8);
        if af_len > 0 {
            p.push(if rai { 0x40 } else { 0 });
            p.extend(std::iter::repeat_n(0xff, af_len - 1));
        }
    } else {
        p.push(0x10);
    }
    p.extend_from_slice(&payload[..payload.len().min(188 - p.len())]);
    assert_eq!(p.len(), 188);
    p
}

fn psi(table: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() + 5 + 4;
    let mut s = vec![
        0,
        table,
        0xb0 | (len >> 8) as u8,
        len as u8,
        0,
        1,
        0xc1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    s.extend([0; 4]); // CRC, not checked
    s
}

pub fn pat() -> Vec<u8> {
    packet(0, true, &psi(0, &[0, 1, 0xf0, 0x00]), false)
}

pub fn pmt() -> Vec<u8> {
    let body = [
        0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00,
    ];
    packet(0x1000, true, &psi(2, &body), false)
}

/// A video PES (one access unit) in as many packets as needed.
pub fn video_pes(pts: u64, idr: bool) -> Vec<u8> {
    let mut es = vec![0, 0, 0, 1, 0x09, 0xf0];
    if idr {
        es.extend([0, 0, 0, 1]);
        es.extend(sps(100, 31, 1280, 720));
        es.extend([0, 0, 0, 1, 0x65, 0x88, 0x84]);
    } else {
        es.extend([0, 0, 0, 1, 0x41, 0x9a, 0x02]);
    }
    es.extend(std::iter::repeat_n(0x55, 300));
    let p = [
        0x21 | (((pts >> 30) & 7) << 1) as u8,
        (pts >> 22) as u8,
        ((pts >> 14) as u8) | 1,
        (pts >> 7) as u8,
        ((pts << 1) as u8) | 1,
    ];
    let mut pes = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
    pes.extend(p);
    pes.extend(es);
    let mut out = Vec::new();
    for (i, chunk) in pes.chunks(184).enumerate() {
        out.extend(packet(0x100, i == 0, chunk, false));
    }
    out
}

pub fn audio_pes() -> Vec<u8> {
    let mut pes = vec![0, 0, 1, 0xc0, 0, 0, 0x80, 0x00, 0];
    pes.extend([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]);
    packet(0x101, true, &pes, false)
}
