//! AAC as MPEG-TS carries it (ADTS frames, several per PES) into fMP4
//! samples (raw frames) and the init segment's AudioSpecificConfig.

/// Samples per AAC frame (AAC-LC; HE-AAC's core runs at the same count).
pub const FRAME_SAMPLES: u32 = 1024;

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What the init segment says of the audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioConfig {
    /// MPEG-4 audio object type (2: AAC-LC).
    pub object_type: u8,
    pub rate_index: u8,
    pub channels: u8,
}

impl AudioConfig {
    pub fn sample_rate(&self) -> u32 {
        RATES[usize::from(self.rate_index)]
    }

    /// The 2-byte AudioSpecificConfig.
    pub fn asc(&self) -> [u8; 2] {
        [
            (self.object_type << 3) | (self.rate_index >> 1),
            ((self.rate_index & 1) << 7) | (self.channels << 3),
        ]
    }

    /// RFC 6381 codec string: `mp4a.40.<object type>`.
    pub fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// The raw AAC frames of a run of ADTS frames, with their config (from the
/// first header). Stops at the first malformed header.
pub fn frames(mut data: &[u8]) -> (Option<AudioConfig>, Vec<&[u8]>) {
    let mut config = None;
    let mut out = Vec::new();
    while data.len() >= 7 {
        if data[0] != 0xff || data[1] & 0xf6 != 0xf0 {
            break;
        }
        let protection_absent = data[1] & 1 == 1;
        let object_type = ((data[2] >> 6) & 3) + 1;
        let rate_index = (data[2] >> 2) & 0x0f;
        let channels = ((data[2] & 1) << 2) | (data[3] >> 6);
        let len = (usize::from(data[3] & 3) << 11)
            | (usize::from(data[4]) << 3)
            | usize::from(data[5] >> 5);
        let header = if protection_absent { 7 } else { 9 };
        if usize::from(rate_index) >= RATES.len() || len < header || len > data.len() {
            break;
        }
        config.get_or_insert(AudioConfig {
            object_type,
            rate_index,
            channels,
        });
        out.push(&data[header..len]);
        data = &data[len..];
    }
    (config, out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ADTS frame: AAC-LC, 48 kHz, stereo, `payload` bytes.
    pub fn adts(payload: usize) -> Vec<u8> {
        let len = payload + 7;
        let mut v = vec![
            0xff,
            0xf1,
            (1 << 6) | (3 << 2),
            (2 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len & 7) as u8) << 5 | 0x1f,
            0xfc,
        ];
        v.extend(std::iter::repeat(0x21).take(payload));
        v
    }

    #[test]
    fn splits_adts_frames_and_reads_the_config() {
        let mut d = adts(10);
        d.extend(adts(20));
        let (c, f) = frames(&d);
        let c = c.unwrap();
        assert_eq!((c.object_type, c.sample_rate(), c.channels), (2, 48000, 2));
        assert_eq!(c.asc(), [0x11, 0x90]);
        assert_eq!(c.codec(), "mp4a.40.2");
        assert_eq!(f.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![10, 20]);
        // a truncated frame ends the run
        let (_, f) = frames(&d[..d.len() - 1]);
        assert_eq!(f.len(), 1);
        assert_eq!(frames(&[0x12; 40]).1.len(), 0);
    }
}
