//! H.264 as MPEG-TS carries it (Annex B byte stream: start codes, an access
//! unit delimiter per frame, SPS and PPS before each IDR) into what an fMP4
//! sample holds (NAL units with 4-byte lengths; parameter sets go to the
//! init segment's `avcC`).

/// NAL unit types used here.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B byte stream (start codes removed, trailing
/// zero bytes of each unit dropped). Start codes are found with `memchr`'s
/// vectorised search: this scan touches every byte of the video.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = None;
    for at in memchr::memmem::find_iter(data, &[0u8, 0, 1]) {
        if let Some(s) = start {
            if at < s {
                continue;
            }
            out.push(trim_zeros(&data[s..at]));
        }
        start = Some(at + 3);
    }
    if let Some(s) = start {
        out.push(trim_zeros(&data[s.min(data.len())..]));
    }
    out.retain(|n| !n.is_empty());
    out
}

fn trim_zeros(n: &[u8]) -> &[u8] {
    let end = n.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    &n[..end]
}

/// One access unit, converted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The sample: each NAL unit (but AUD, SPS, PPS) with a 4-byte length.
    pub sample: Vec<u8>,
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
    /// Holds an IDR slice.
    pub idr: bool,
}

impl Frame {
    /// Converts one access unit. Parameter sets equal to `current`'s (the
    /// init segment's) are left out of the sample; others stay in band as
    /// well, so that a change the init does not know yet still decodes.
    pub fn from_annexb(data: &[u8], current: Option<&VideoConfig>) -> Frame {
        let mut f = Frame {
            sample: Vec::with_capacity(data.len()),
            ..Frame::default()
        };
        for nal in nal_units(data) {
            let t = nal[0] & 0x1f;
            match t {
                NAL_SPS => f.sps = Some(nal.to_vec()),
                NAL_PPS => f.pps = Some(nal.to_vec()),
                _ => {}
            }
            let known = match (t, current) {
                (NAL_SPS, Some(c)) => c.sps == nal,
                (NAL_PPS, Some(c)) => c.pps == nal,
                (NAL_SPS | NAL_PPS, None) => true,
                _ => false,
            };
            match t {
                NAL_AUD => {}
                NAL_SPS | NAL_PPS if known => {}
                t => {
                    f.idr |= t == NAL_IDR;
                    f.sample
                        .extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    f.sample.extend_from_slice(nal);
                }
            }
        }
        f
    }
}

/// What the init segment says of the video track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

impl VideoConfig {
    /// From one SPS and PPS; `None` if the SPS cannot be read.
    pub fn new(sps: &[u8], pps: &[u8]) -> Option<VideoConfig> {
        if sps.len() < 4 || pps.is_empty() {
            return None;
        }
        let rbsp = h264_reader::rbsp::decode_nal(sps).ok()?;
        let sps_parsed = h264_reader::nal::sps::SeqParameterSet::from_bits(
            h264_reader::rbsp::BitReader::new(&rbsp[..]),
        )
        .ok()?;
        let (w, h) = sps_parsed.pixel_dimensions().ok()?;
        Some(VideoConfig {
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            width: u16::try_from(w).ok()?,
            height: u16::try_from(h).ok()?,
        })
    }

    /// RFC 6381 codec string: `avc1.PPCCLL`.
    pub fn codec(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.sps[1], self.sps[2], self.sps[3]
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// x264's SPS/PPS for 1280x720 High@3.1 (as nginx-rtmp writes them
    /// before each IDR).
    pub const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xb4, 0x02, 0x80, 0x2d, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x50,
    ];
    pub const PPS: &[u8] = &[0x68, 0xef, 0x3c, 0xb0];

    /// An access unit as nginx-rtmp writes it.
    pub fn annexb(key: bool, slice_len: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xf0];
        if key {
            v.extend([0, 0, 0, 1]);
            v.extend(SPS);
            v.extend([0, 0, 0, 1]);
            v.extend(PPS);
        }
        v.extend([0, 0, 1, if key { 0x65 } else { 0x41 }]);
        v.extend(std::iter::repeat(0x5a).take(slice_len));
        v
    }

    #[test]
    fn a_keyframe_becomes_a_sample_and_its_parameter_sets() {
        let f = Frame::from_annexb(&annexb(true, 100), None);
        assert!(f.idr);
        assert_eq!(f.sps.as_deref(), Some(SPS));
        assert_eq!(f.pps.as_deref(), Some(PPS));
        // one NAL unit: 4-byte length + header + slice
        assert_eq!(f.sample.len(), 4 + 101);
        assert_eq!(&f.sample[..5], &[0, 0, 0, 101, 0x65]);
        let p = Frame::from_annexb(&annexb(false, 10), None);
        assert!(!p.idr && p.sps.is_none());
        assert_eq!(&p.sample[..5], &[0, 0, 0, 11, 0x41]);
        // parameter sets the init does not hold stay in band
        let mut other = VideoConfig::new(SPS, PPS).unwrap();
        let k = Frame::from_annexb(&annexb(true, 100), Some(&other));
        assert_eq!(k.sample.len(), 4 + 101);
        other.pps = vec![0x68, 1];
        let k = Frame::from_annexb(&annexb(true, 100), Some(&other));
        assert_eq!(k.sample.len(), 4 + PPS.len() + 4 + 101);
    }

    #[test]
    fn nal_splitting_handles_both_start_codes_and_trailing_zeros() {
        let d = [
            0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x41, 1, 2, 0, 0, 0, 0, 1, 0x06, 5, 0,
        ];
        assert_eq!(
            nal_units(&d),
            vec![&[9u8, 0xf0][..], &[0x41, 1, 2][..], &[0x06, 5][..]]
        );
        assert!(nal_units(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn the_config_reads_size_and_codec_from_the_sps() {
        let c = VideoConfig::new(SPS, PPS).unwrap();
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!(c.codec(), "avc1.64001f");
        assert!(VideoConfig::new(&SPS[..3], PPS).is_none());
        assert!(VideoConfig::new(&[0x67, 0xff, 0xff, 0xff, 0xff], PPS).is_none());
    }
}
