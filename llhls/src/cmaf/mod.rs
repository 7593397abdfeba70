//! MPEG-TS fragments into CMAF: the init segment and one fMP4 chunk per
//! part. Every part is then a resource of its own that a player can append
//! with the init the playlist declares (`EXT-X-MAP`): players that
//! transmux or probe each part alone (shaka-player, video.js) could not
//! read byte ranges of a TS fragment, which carry no PAT/PMT and no
//! parameter sets after the first (RFC 8216bis asks every part to be usable
//! with the declared initialization).
//!
//! A [`Packager`] follows one publish session: its timestamps run on
//! without a break (33-bit wraps unwrapped), so each chunk's `tfdt` is the
//! previous one's plus its duration. A new session (a discontinuity) gets a
//! new packager.

pub mod aac;
pub mod avc;
pub mod mux;

use crate::demux::{Kind, Unit};
use crate::ts;
use aac::AudioConfig;
use avc::VideoConfig;
use mux::{Run, Sample, AUDIO_TRACK, VIDEO_TRACK};

/// One part, packaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// Decode time of its first video sample (90 kHz, unwrapped).
    pub start: u64,
    /// Sum of its video samples' durations (90 kHz ticks).
    pub duration: u64,
    /// Starts with a sync sample.
    pub independent: bool,
    /// A new init segment applies from this chunk on (the first chunk of a
    /// session, or a segment whose keyframe carries new parameter sets).
    pub init: Option<Vec<u8>>,
}

/// The session's codecs, for a master playlist's CODECS and RESOLUTION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codecs {
    pub video: String,
    pub audio: Option<String>,
    pub width: u16,
    pub height: u16,
}

#[derive(Debug, Default)]
pub struct Packager {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Last video decode time: (33-bit value, unwrapped value).
    last: Option<(u64, u64)>,
    /// Where the audio track continues (its timescale).
    audio_next: Option<u64>,
    /// Mean frame duration seen (90 kHz), for a last frame with no
    /// successor.
    frame: u32,
}

/// Where the audio clock (re)starts for a frame at `at` (audio timescale):
/// the nearest multiple of a frame's length, whatever the encoder's own
/// first frame was, so that an origin that starts its clock later than
/// another (it missed media, or its component restarted) lands on the
/// other's clock, which goes on in whole frames: the same bytes on both.
/// Audio moves by half a frame at most (11.6 ms at 44.1 kHz, well under
/// what is heard as out of sync).
fn on_frame_grid(at: u64) -> u64 {
    let f = u64::from(aac::FRAME_SAMPLES);
    (at + f / 2) / f * f
}

/// A chunk's `mfhd` sequence number: its start in 10 ms units (plus one),
/// not a count, so that every origin that packages the same stream writes
/// the same bytes, whenever its component started. It increases from chunk
/// to chunk (parts are 100 ms at least) and wraps after 497 days of one
/// stream's timestamps (the media clock's base, 2^31 s, is 50 * 2^32 of
/// these units: a stream's numbers start near 1).
fn sequence_number(start: u64) -> u32 {
    (start / 900 + 1) as u32
}

/// Where the media clock starts: 2^31 s (90 kHz ticks), plus the
/// stream's own timestamps. Far enough from zero that audio written before
/// the first video frame stays positive; and chosen for shaka-player 5,
/// which sets a SourceBuffer's negative timestampOffset 1 ms higher than
/// it computed (a workaround for an old Edge) and, before each append,
/// compares it with the offset it computes again: when the difference
/// rounds to 1 ms or more it resets the SourceBuffer (abort()), and the
/// browser then drops every frame of a part that does not start with a
/// keyframe. Whether it does depends on the binary exponent of the offset
/// (about minus the media time): media times from 2^30 to 2^32 s never do,
/// which those near nginx-rtmp's (from 0 at the publish) or 2^33 s
/// (observed: every part after the first of a segment dropped) do not
/// guarantee. The clock stays well within 2^53 ticks (exact in
/// JavaScript) and 2^63 ns (GStreamer).
const BASE: u64 = (1 << 31) * 90_000;

/// Audio timestamps within this of the running audio clock are taken as
/// continuous (RTMP's millisecond timestamps jitter); beyond, it jumps.
const AUDIO_SLACK_MS: u64 = 50;

impl Packager {
    pub fn codecs(&self) -> Option<Codecs> {
        let v = self.video.as_ref()?;
        Some(Codecs {
            video: v.codec(),
            audio: self.audio.map(|a| a.codec()),
            width: v.width,
            height: v.height,
        })
    }

    /// `t` (33-bit) on the session's unwrapped clock, relative to the last
    /// video decode time.
    fn unwrap(&self, t: u64) -> u64 {
        match self.last {
            Some((raw, un)) => un.saturating_add_signed(ts::ts_diff(raw, t)),
            None => t + BASE,
        }
    }

    /// Packages the units of one part. `end`: the decode time (33-bit) of
    /// the first video frame after the part, when known; `segment_start`:
    /// the part opens a segment (new parameter sets take effect there).
    /// `None` while no keyframe with parameter sets has been seen (nothing
    /// to decode yet) or when the part holds no video.
    pub fn package(
        &mut self,
        units: &[Unit],
        end: Option<u64>,
        segment_start: bool,
    ) -> Option<Chunk> {
        let mut init_changed = false;
        // video frames, converted
        let mut frames = Vec::new();
        for u in units.iter().filter(|u| u.kind == Kind::Video) {
            let f = avc::Frame::from_annexb(&u.data, self.video.as_ref());
            if let (Some(sps), Some(pps)) = (&f.sps, &f.pps) {
                let changed = self
                    .video
                    .as_ref()
                    .map_or(true, |c| c.sps != *sps || c.pps != *pps);
                if changed && (self.video.is_none() || (segment_start && frames.is_empty())) {
                    if let Some(c) = VideoConfig::new(sps, pps) {
                        self.video = Some(c);
                        init_changed = true;
                    }
                }
            }
            if self.video.is_none() || f.sample.is_empty() {
                continue;
            }
            let dts = self.unwrap(u.dts);
            let pts = dts.saturating_add_signed(ts::ts_diff(u.dts, u.pts));
            self.last = Some((u.dts, dts));
            frames.push((dts, pts, f.idr || u.random_access, f.sample));
        }
        let video = self.video.as_ref()?;
        let first = frames.first()?;
        let start = first.0;
        let independent = first.2;
        // durations: to the next frame, the last one to `end`
        let end = end.map(|e| self.unwrap(e));
        let mut samples = Vec::with_capacity(frames.len());
        for i in 0..frames.len() {
            let next = frames.get(i + 1).map(|f| f.0).or(end);
            let d = match next {
                Some(n) if n > frames[i].0 => n - frames[i].0,
                _ => u64::from(self.frame.max(1)),
            };
            let d = u32::try_from(d).unwrap_or(u32::MAX);
            samples.push(d);
        }
        if frames.len() > 1 {
            let span = frames[frames.len() - 1].0 - frames[0].0;
            self.frame = (span / (frames.len() as u64 - 1)).clamp(1, 90_000) as u32;
        } else if self.frame == 0 {
            self.frame = samples[0];
        }
        let duration: u64 = samples.iter().map(|d| u64::from(*d)).sum();
        let video_run = Run {
            track: VIDEO_TRACK,
            decode_time: start,
            samples: frames
                .into_iter()
                .zip(samples)
                .map(|((dts, pts, sync, data), duration)| Sample {
                    duration,
                    cts: u32::try_from(pts.saturating_sub(dts)).unwrap_or(0),
                    sync,
                    data,
                })
                .collect(),
        };
        // audio: the ADTS frames of the part's audio PES, on a continuous clock
        let mut audio_run = None;
        for u in units.iter().filter(|u| u.kind == Kind::Audio) {
            let (config, raw) = aac::frames(&u.data);
            if let Some(c) = config {
                if self.audio.is_none() || (segment_start && self.audio != Some(c)) {
                    init_changed |= self.audio != Some(c);
                    self.audio = Some(c);
                    self.audio_next = None;
                }
            }
            let Some(a) = self.audio else { continue };
            if raw.is_empty() {
                continue;
            }
            let rate = u64::from(a.sample_rate());
            let at = self.unwrap(u.pts) * rate / 90_000;
            let slack = rate * AUDIO_SLACK_MS / 1000;
            let t = match self.audio_next {
                Some(n) if n.abs_diff(at) <= slack => n,
                _ => on_frame_grid(at),
            };
            let run = audio_run.get_or_insert_with(|| Run {
                track: AUDIO_TRACK,
                decode_time: t,
                samples: Vec::new(),
            });
            for f in raw {
                run.samples.push(Sample {
                    duration: aac::FRAME_SAMPLES,
                    cts: 0,
                    sync: true,
                    data: f.to_vec(),
                });
            }
            // the run's clock goes on from its start (a jump inside a part
            // is absorbed; the next part starts on time again)
            self.audio_next =
                Some(run.decode_time + run.samples.len() as u64 * u64::from(aac::FRAME_SAMPLES));
        }
        let init = init_changed.then(|| mux::init(video, self.audio.as_ref()));
        let mut runs = vec![video_run];
        runs.extend(audio_run);
        Some(Chunk {
            bytes: mux::chunk(sequence_number(start), &runs),
            start,
            duration,
            independent,
            init,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_started_apart_meet_on_the_frame_grid() {
        let f = u64::from(aac::FRAME_SAMPLES);
        assert_eq!(on_frame_grid(10 * f + 100), 10 * f);
        assert_eq!(on_frame_grid(10 * f + 600), 11 * f);
        // the media clock's base is on the grid at the usual rates
        for rate in [44_100u64, 48_000] {
            assert_eq!(BASE / 90_000 * rate % f, 0, "{rate}");
        }
    }

    #[test]
    fn sequence_numbers_follow_the_media_clock() {
        assert_eq!(sequence_number(BASE), 1);
        let a = sequence_number(BASE + 90_000);
        assert_eq!(a, 101);
        assert!(sequence_number(BASE + 99_000) > a);
    }
    use crate::cmaf::aac::tests::adts;
    use crate::cmaf::avc::tests::annexb;
    use mp4_atom::{Decode, Moof};

    fn video(offset: u64, dts: u64, key: bool) -> Unit {
        Unit {
            kind: Kind::Video,
            offset,
            pts: dts + 3000,
            dts,
            random_access: key,
            data: annexb(key, 50),
        }
    }

    fn audio(offset: u64, pts: u64, frames: usize) -> Unit {
        Unit {
            kind: Kind::Audio,
            offset,
            pts,
            dts: pts,
            random_access: false,
            data: (0..frames).flat_map(|_| adts(20)).collect(),
        }
    }

    fn tfdts(bytes: &[u8]) -> Vec<(u32, u64)> {
        let moof = Moof::decode(&mut std::io::Cursor::new(bytes)).unwrap();
        moof.traf
            .iter()
            .map(|t| {
                (
                    t.tfhd.track_id,
                    t.tfdt.as_ref().unwrap().base_media_decode_time,
                )
            })
            .collect()
    }

    #[test]
    fn parts_follow_each_other_on_one_clock() {
        let mut p = Packager::default();
        let t0 = (1u64 << 33) - 6000; // wraps in the second part
        let part1 = [
            audio(0, t0 - 1800, 2),
            video(1, t0, true),
            video(2, t0 + 3000, false),
        ];
        let c1 = p
            .package(&part1, Some((t0 + 6000) % (1 << 33)), true)
            .unwrap();
        assert!(c1.init.is_some() && c1.independent);
        assert_eq!(c1.duration, 6000);
        let part2 = [
            video(3, (t0 + 6000) % (1 << 33), false),
            audio(4, (t0 - 1800 + 2 * 1920) % (1 << 33), 1),
            video(5, (t0 + 9000) % (1 << 33), false),
        ];
        let c2 = p.package(&part2, None, false).unwrap();
        assert!(c2.init.is_none() && !c2.independent);
        assert_eq!(c2.start, c1.start + c1.duration, "no gap across the wrap");
        // the last frame without a successor lasts a mean frame
        assert_eq!(c2.duration, 6000);
        let a1 = tfdts(&c1.bytes)[1];
        let a2 = tfdts(&c2.bytes)[1];
        assert_eq!(a1.0, AUDIO_TRACK);
        assert_eq!(a2.1, a1.1 + 2 * 1024, "audio continues sample-exact");
        assert_eq!(tfdts(&c2.bytes)[0], (VIDEO_TRACK, c2.start));
    }

    #[test]
    fn nothing_before_a_keyframe_with_parameter_sets() {
        let mut p = Packager::default();
        assert!(p.package(&[video(0, 9000, false)], None, true).is_none());
        assert!(p.codecs().is_none());
        assert!(p.package(&[video(1, 12000, true)], None, true).is_some());
        let c = p.codecs().unwrap();
        assert_eq!(
            (c.video.as_str(), c.width, c.height),
            ("avc1.64001f", 1280, 720)
        );
    }
}
