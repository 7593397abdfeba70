//! The fMP4 boxes: an init segment (`ftyp` + `moov`) per codec
//! configuration, and one CMAF chunk (`moof` + `mdat`) per part. Built with
//! the `mp4-atom` crate; only the choice of fields is ours.

use mp4_atom::{
    Audio, Avc1, Avcc, AvccExt, Dinf, Dref, Encode, Esds, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak,
    Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

use super::aac::AudioConfig;
use super::avc::VideoConfig;

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
/// The video track keeps MPEG-TS's clock, so timestamps convert exactly.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Sample flags (ISO/IEC 14496-12 8.8.3.1): a sync sample that depends on
/// no other; a sample that depends on others and is not a sync sample.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// One sample of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    /// Composition offset (PTS - DTS), in the track's timescale.
    pub cts: u32,
    pub sync: bool,
    pub data: Vec<u8>,
}

/// The samples of one track in a chunk, from `decode_time` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub track: u32,
    pub decode_time: u64,
    pub samples: Vec<Sample>,
}

/// `ftyp` + `moov` for these tracks.
pub fn init(video: &VideoConfig, audio: Option<&AudioConfig>) -> Vec<u8> {
    let mut trak = vec![video_trak(video)];
    let mut trexs = vec![trex(VIDEO_TRACK)];
    if let Some(a) = audio {
        trak.push(audio_trak(a));
        trexs.push(trex(AUDIO_TRACK));
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: AUDIO_TRACK + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: trexs,
        }),
        trak,
        ..Default::default()
    };
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let mut out = Vec::new();
    ftyp.encode(&mut out).expect("ftyp encodes");
    moov.encode(&mut out).expect("moov encodes");
    out
}

fn trex(track_id: u32) -> Trex {
    Trex {
        track_id,
        default_sample_description_index: 1,
        ..Default::default()
    }
}

fn empty_tables(codec: mp4_atom::Codec) -> Stbl {
    Stbl {
        stsd: Stsd {
            codecs: vec![codec],
        },
        stts: Stts::default(),
        stsc: Stsc::default(),
        stsz: Stsz::default(),
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

fn dinf() -> Dinf {
    Dinf {
        dref: Dref {
            entries: vec![Url::default().into()],
        },
    }
}

fn video_trak(v: &VideoConfig) -> Trak {
    let mut avcc = Avcc::new(&v.sps, &v.pps).expect("VideoConfig checked the SPS");
    // High profiles carry chroma format and bit depths (ISO/IEC 14496-15)
    if matches!(v.sps[1], 100 | 110 | 122 | 144) {
        avcc.ext = Some(AvccExt::default());
    }
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width: v.width,
            height: v.height,
            ..Default::default()
        },
        avcc,
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: v.width.into(),
            height: v.height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: VIDEO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"vide".into(),
                name: "video".into(),
            },
            minf: Minf {
                vmhd: Some(Vmhd::default()),
                dinf: dinf(),
                stbl: empty_tables(avc1.into()),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

fn audio_trak(a: &AudioConfig) -> Trak {
    let asc = a.asc();
    let mp4a = Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(a.channels.max(1)),
            sample_size: 16,
            sample_rate: u16::try_from(a.sample_rate()).unwrap_or(0).into(),
        },
        esds: Esds {
            es_desc: mp4_atom::esds::EsDescriptor {
                es_id: AUDIO_TRACK as u16,
                dec_config: mp4_atom::esds::DecoderConfig {
                    object_type_indication: 0x40,
                    stream_type: 5,
                    up_stream: 0,
                    buffer_size_db: Default::default(),
                    max_bitrate: 0,
                    avg_bitrate: 0,
                    dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                        profile: a.object_type,
                        freq_index: a.rate_index,
                        chan_conf: a.channels,
                        raw: asc.to_vec(),
                    }),
                },
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            enabled: true,
            in_movie: true,
            alternate_group: 1,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: a.sample_rate(),
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"soun".into(),
                name: "audio".into(),
            },
            minf: Minf {
                smhd: Some(Smhd::default()),
                dinf: dinf(),
                stbl: empty_tables(mp4a.into()),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// One chunk: `moof` (sequence number `seq`, a `traf` per non-empty run)
/// and the `mdat` holding the runs' samples in order.
pub fn chunk(seq: u32, runs: &[Run]) -> Vec<u8> {
    let runs: Vec<&Run> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let moof = |offsets: &[i32]| Moof {
        mfhd: Mfhd {
            sequence_number: seq,
        },
        traf: runs
            .iter()
            .zip(offsets)
            .map(|(r, off)| Traf {
                tfhd: Tfhd {
                    track_id: r.track,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: r.decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(*off),
                    samples: TrunSamples::Explicit(
                        r.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: Some(if s.sync { SYNC } else { NON_SYNC }),
                                cts: Some(i64::from(s.cts)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // the moof's size does not depend on the offsets' values
    let mut probe = Vec::new();
    moof(&vec![0; runs.len()])
        .encode(&mut probe)
        .expect("moof encodes");
    let mut at = probe.len() as i32 + 8;
    let mut offsets = Vec::with_capacity(runs.len());
    let mut payload = 0usize;
    for r in &runs {
        offsets.push(at);
        let len: usize = r.samples.iter().map(|s| s.data.len()).sum();
        at += len as i32;
        payload += len;
    }
    let mut out = Vec::with_capacity(probe.len() + 8 + payload);
    moof(&offsets).encode(&mut out).expect("moof encodes");
    out.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for r in &runs {
        for s in &r.samples {
            out.extend_from_slice(&s.data);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::avc::tests::{PPS, SPS};
    use mp4_atom::{Decode, Header};

    fn config() -> (VideoConfig, AudioConfig) {
        (
            VideoConfig::new(SPS, PPS).unwrap(),
            AudioConfig {
                object_type: 2,
                rate_index: 3,
                channels: 2,
            },
        )
    }

    #[test]
    fn the_init_segment_describes_both_tracks() {
        let (v, a) = config();
        let bytes = init(&v, Some(&a));
        let buf = &mut std::io::Cursor::new(&bytes);
        let ftyp = Ftyp::decode(buf).unwrap();
        assert_eq!(ftyp.major_brand, b"iso6".into());
        let moov = Moov::decode(buf).unwrap();
        assert_eq!(moov.trak.len(), 2);
        let vt = &moov.trak[0];
        assert_eq!(vt.mdia.mdhd.timescale, 90_000);
        match &vt.mdia.minf.stbl.stsd.codecs[0] {
            mp4_atom::Codec::Avc1(c) => {
                assert_eq!((c.visual.width, c.visual.height), (1280, 720));
                assert_eq!(c.avcc.sequence_parameter_sets[0], SPS);
                assert_eq!(c.avcc.avc_level_indication, 0x1f);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);
        assert_eq!(moov.mvex.unwrap().trex.len(), 2);
        // video only
        let bytes = init(&v, None);
        let buf = &mut std::io::Cursor::new(&bytes);
        Ftyp::decode(buf).unwrap();
        assert_eq!(Moov::decode(buf).unwrap().trak.len(), 1);
    }

    #[test]
    fn a_chunk_points_each_run_at_its_samples() {
        let s = |d: u32, byte: u8, n: usize, sync| Sample {
            duration: d,
            cts: 0,
            sync,
            data: vec![byte; n],
        };
        let runs = [
            Run {
                track: VIDEO_TRACK,
                decode_time: 900_000,
                samples: vec![s(3000, 1, 100, true), s(3000, 2, 50, false)],
            },
            Run {
                track: AUDIO_TRACK,
                decode_time: 480_000,
                samples: vec![s(1024, 3, 10, true)],
            },
            Run {
                track: 9,
                decode_time: 0,
                samples: vec![],
            },
        ];
        let bytes = chunk(7, &runs);
        let buf = &mut std::io::Cursor::new(&bytes);
        let moof = Moof::decode(buf).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 7);
        assert_eq!(moof.traf.len(), 2, "empty runs are left out");
        let mdat_at = buf.position() as usize;
        let h = Header::decode(buf).unwrap();
        assert_eq!(h.kind, b"mdat".into());
        let v = &moof.traf[0];
        assert_eq!(v.tfdt.as_ref().unwrap().base_media_decode_time, 900_000);
        let off = v.trun[0].data_offset.unwrap() as usize;
        assert_eq!(off, mdat_at + 8);
        assert_eq!(&bytes[off..off + 100], &[1u8; 100][..]);
        let e: Vec<_> = v.trun[0].samples.iter().collect();
        assert_eq!(e[0].flags, Some(SYNC));
        assert_eq!(e[1].flags, Some(NON_SYNC));
        let a = &moof.traf[1];
        let off = a.trun[0].data_offset.unwrap() as usize;
        assert_eq!(&bytes[off..off + 10], &[3u8; 10][..]);
        assert_eq!(off + 10, bytes.len());
    }
}
