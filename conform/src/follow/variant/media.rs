//! Fetching every listed part, every complete segment and every init
//! section once, and running the media rules on them (rules 2 and 3).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::VariantState;
use crate::findings::Issue;
use crate::follow::ready;
use crate::m3u8::{MapRef, MediaPlaylist, Part, Pos, Range, SegMeta, Segment};
use crate::media::decode::{self, Decoded};
use crate::media::mp4::{self, InitInfo};
use crate::media::ts::{self, Pmt};
use crate::rules::ids_media::*;
use crate::rules::master::{bit_rates, frame_rate, Observed};
use crate::rules::media::{self as mrules, Facts, Timeline};

/// Part bytes kept for segment and hint comparisons.
const MAX_KEPT_PARTS: usize = 64;
/// Segments waiting for the decoder at most (more are not decoded).
const MAX_DECODE_BACKLOG: usize = 8;

type DecodeJob = JoinHandle<(String, Result<Decoded, String>, Option<(u64, u64)>)>;

/// Media state of one playlist.
#[derive(Default)]
pub struct MediaState {
    /// Init sections by URL (+ range): bytes and parse, `None` if unusable.
    inits: HashMap<String, Option<(Vec<u8>, InitInfo)>>,
    parts_done: BTreeSet<Pos>,
    /// Bytes of recent parts (for segment and hint comparisons).
    pub part_bytes: BTreeMap<Pos, Vec<u8>>,
    segments_done: BTreeSet<u64>,
    last_part: Option<Pos>,
    part_timeline: Timeline,
    segment_timeline: Timeline,
    pmt: Option<Pmt>,
    pub format: &'static str,
    codecs: BTreeSet<String>,
    size: Option<(u32, u32)>,
    durations: Vec<u32>,
    timescale: u32,
    ts_fps: Option<f64>,
    bitrates: Vec<(u64, u64, f64)>,
    decodes: Vec<DecodeJob>,
    decode_unavailable: bool,
}

/// What the analysis of one part or segment found.
struct Analysed {
    facts: Facts,
    init_key: String,
    /// init + media for the decoder, and its container format.
    decode: Option<(&'static str, Vec<u8>)>,
}

fn successor(prev: Option<Pos>, pos: Pos) -> bool {
    prev.is_some_and(|p| {
        (pos.msn == p.msn && pos.part == p.part.saturating_add(1))
            || (pos.msn == p.msn.saturating_add(1) && pos.part == 0)
    })
}

impl VariantState {
    /// Fetches and checks everything new in `pl`.
    pub async fn fetch_media(&mut self, pl: &MediaPlaylist) {
        let parts: Vec<(Pos, Part, SegMeta)> = pl
            .parts()
            .into_iter()
            .filter(|(pos, p, _, _)| !p.gap && !self.media.parts_done.contains(pos))
            .map(|(pos, p, m, _)| (pos, p.clone(), m.clone()))
            .collect();
        for (pos, part, meta) in parts {
            self.media.parts_done.insert(pos);
            self.fetch_part(pl, pos, &part, &meta).await;
        }
        let segments: Vec<Segment> = pl
            .segments
            .iter()
            .filter(|s| !s.meta.gap && !self.media.segments_done.contains(&s.msn))
            .cloned()
            .collect();
        for s in segments {
            self.media.segments_done.insert(s.msn);
            self.fetch_segment(pl, &s).await;
        }
        let floor = pl.media_sequence.saturating_sub(4);
        let keep = Pos {
            msn: floor,
            part: 0,
        };
        self.media.part_bytes = self.media.part_bytes.split_off(&keep);
        self.media.parts_done = self.media.parts_done.split_off(&keep);
        self.media.segments_done = self.media.segments_done.split_off(&floor);
        // A hostile playlist could list many huge parts: keep the newest only.
        while self.media.part_bytes.len() > MAX_KEPT_PARTS {
            self.media.part_bytes.pop_first();
        }
    }

    /// GETs a listed resource (or its byte range); `None` (with a finding)
    /// when it cannot be had.
    async fn fetch_bytes(&mut self, uri: &str, range: Option<Range>, key: &str) -> Option<Vec<u8>> {
        let url = self.url.join(uri).ok()?;
        let max = self.shared.opts.max_media_bytes;
        let timeout = self.shared.opts.request_timeout;
        let want = range
            .filter(|r| r.length > 0)
            .map(|r| (r.offset, r.end() - 1));
        let res = self.shared.http.get(&url, want, max, timeout).await;
        let fail = |m: String| vec![Issue::new(&MEDIA_FETCH_FAILED, key.to_string(), m)];
        match res {
            Err(e) => {
                self.counters.http_errors += 1;
                self.add_at(fail(format!("{key} ({uri}): {e}")), uri);
                None
            }
            Ok(r) if !(200..300).contains(&r.status) => {
                self.counters.http_errors += 1;
                self.add_at(fail(format!("{key} ({uri}): status {}", r.status)), uri);
                None
            }
            Ok(r) => match range {
                None => Some(r.body),
                Some(rg) if r.status == 206 && r.body.len() as u64 == rg.length => Some(r.body),
                Some(rg) => {
                    let m = format!(
                        "{key} ({uri}) bytes {}-{}: status {} with {} bytes (Content-Range {:?})",
                        rg.offset,
                        rg.end().saturating_sub(1),
                        r.status,
                        r.body.len(),
                        r.content_range
                    );
                    self.add_at(
                        vec![Issue::new(&BYTERANGE_RESPONSE, key.to_string(), m)],
                        uri,
                    );
                    let whole = r.status == 200 && r.body.len() as u64 >= rg.end();
                    whole.then(|| r.body[rg.offset as usize..rg.end() as usize].to_vec())
                }
            },
        }
    }

    /// The init section of `map`, fetched and parsed once.
    async fn init(&mut self, map: &MapRef) -> Option<(String, Vec<u8>, InitInfo)> {
        let key = format!("{}{:?}", self.url.join(&map.uri).ok()?, map.byterange);
        if !self.media.inits.contains_key(&key) {
            self.counters.init_fetches += 1;
            let bytes = self.fetch_bytes(&map.uri, map.byterange, "EXT-X-MAP").await;
            let parsed = match bytes {
                Some(b) => match mp4::parse_init(&b) {
                    Ok(info) => Some((b, info)),
                    Err(e) => {
                        let i = Issue::new(
                            &INIT_INVALID,
                            key.clone(),
                            format!("init section {}: {e}", map.uri),
                        );
                        self.add_at(vec![i], &map.uri);
                        None
                    }
                },
                None => None,
            };
            if let Some((_, info)) = &parsed {
                for t in &info.tracks {
                    self.media.codecs.insert(t.codec.clone());
                    if t.handler == "vide" {
                        self.media.size = t
                            .sps
                            .map(|s| (s.width, s.height))
                            .or(t.entry_size.map(|(w, h)| (u32::from(w), u32::from(h))));
                        self.media.timescale = t.timescale;
                    }
                }
            }
            self.media.inits.insert(key.clone(), parsed);
        }
        let (b, info) = self.media.inits.get(&key)?.as_ref()?;
        Some((key, b.clone(), info.clone()))
    }

    /// Reduces a part or segment to facts, reporting format problems.
    async fn analyse(&mut self, key: &str, bytes: &[u8], map: Option<&MapRef>) -> Option<Analysed> {
        if bytes.first() == Some(&0x47) {
            self.media.format = "mpegts";
            let scan = ts::scan(bytes, self.media.pmt);
            self.media.pmt = scan.pmt.or(self.media.pmt);
            self.add(mrules::ts_start(key, &scan, map.is_some()));
            if let Some(sps) = scan.sps {
                self.media.codecs.insert(sps.codec());
                self.media.size = Some((sps.width, sps.height));
            }
            if let Some(aot) = scan.adts_aot {
                self.media.codecs.insert(format!("mp4a.40.{aot}"));
            }
            // Mean frame interval from the first to the last video PTS.
            if let (Some(first), Some(last)) = (scan.video_pts.first(), scan.video_pts.last()) {
                let n = scan.video_pts.len() as f64 - 1.0;
                if *last > *first && n > 0.0 {
                    self.media.ts_fps = Some(90_000.0 * n / (*last - *first) as f64);
                }
            }
            return Some(Analysed {
                facts: mrules::facts_ts(&scan),
                init_key: String::new(),
                decode: Some(("mpegts", bytes.to_vec())),
            });
        }
        let Some(map) = map else {
            let looks_mp4 = mp4::boxes(bytes).is_ok_and(|b| b.iter().any(|x| &x.kind == b"moof"));
            let m = if looks_mp4 {
                "fMP4 media but no EXT-X-MAP applies"
            } else {
                "neither MPEG-TS nor fMP4"
            };
            self.add(vec![Issue::new(
                &FMP4_STRUCTURE,
                format!("{key} format"),
                format!("{key}: {m}"),
            )]);
            return None;
        };
        let (init_key, init_bytes, init) = self.init(map).await?;
        self.media.format = "fmp4";
        let (info, issues) = mp4::parse_fragments(bytes, &init, key);
        self.add(issues);
        if let Some(main) = init.main_track().filter(|t| t.handler == "vide") {
            if let Some(t) = info.tracks.get(&main.id) {
                let room = 20_000usize.saturating_sub(self.media.durations.len());
                self.media.durations.extend(t.durations.iter().take(room));
            }
        }
        let mut data = init_bytes;
        data.extend_from_slice(bytes);
        Some(Analysed {
            facts: mrules::facts_fmp4(&info, &init),
            init_key,
            decode: Some(("mp4", data)),
        })
    }

    async fn fetch_part(&mut self, pl: &MediaPlaylist, pos: Pos, part: &Part, meta: &SegMeta) {
        let key = format!("msn {} part {}", pos.msn, pos.part);
        let Some(bytes) = self.fetch_bytes(&part.uri, part.byterange, &key).await else {
            self.media.part_timeline.reset();
            return;
        };
        self.counters.parts_fetched += 1;
        self.counters.part_bytes += bytes.len() as u64;
        if !successor(self.media.last_part, pos) {
            self.media.part_timeline.reset();
        }
        self.media.last_part = Some(pos);
        if let Some(a) = self.analyse(&key, &bytes, meta.map.as_ref()).await {
            let first = pos.part == 0;
            let mut issues =
                mrules::independent(&key, part, &a.facts, first, pl.independent_segments);
            issues.extend(mrules::part_duration(&key, part, &a.facts));
            issues.extend(self.media.part_timeline.check(
                &key,
                &a.facts,
                first && meta.discontinuity,
                &a.init_key,
            ));
            self.add_at(issues, &part.uri);
        }
        self.media.part_bytes.insert(pos, bytes);
    }

    async fn fetch_segment(&mut self, pl: &MediaPlaylist, s: &Segment) {
        let key = format!("msn {} segment", s.msn);
        let Some(bytes) = self.fetch_bytes(&s.uri, s.byterange, &key).await else {
            self.media.segment_timeline.reset();
            return;
        };
        self.counters.segments_fetched += 1;
        self.counters.segment_bytes += bytes.len() as u64;
        self.media
            .bitrates
            .push((s.msn, bytes.len() as u64, s.duration));
        if !s.parts.is_empty() {
            let parts: Option<Vec<&Vec<u8>>> = (0..s.parts.len())
                .map(|i| self.media.part_bytes.get(&crate::m3u8::pos(s.msn, i)))
                .collect();
            if let Some(parts) = parts {
                let joined: Vec<u8> = parts.into_iter().flatten().copied().collect();
                self.add_at(mrules::concat(&key, &bytes, &joined), &s.uri);
            }
        }
        let Some(a) = self.analyse(&key, &bytes, s.meta.map.as_ref()).await else {
            return;
        };
        let mut issues = mrules::segment_duration(&key, s.duration, &a.facts);
        issues.extend(self.media.segment_timeline.check(
            &key,
            &a.facts,
            s.meta.discontinuity,
            &a.init_key,
        ));
        if pl.independent_segments && a.facts.first_sync == Some(false) {
            issues.push(Issue::new(
                &INDEPENDENT_SEGMENTS_VIOLATED,
                key.clone(),
                format!(
                    "{key}: EXT-X-INDEPENDENT-SEGMENTS but it does not start with a sync sample"
                ),
            ));
        }
        self.add_at(issues, &s.uri);
        let expected = match (a.facts.video_samples, self.media.ts_fps) {
            (Some(n), _) => Some((n, 0)),
            (None, Some(fps)) if self.media.format == "mpegts" => {
                Some(((s.duration * fps).round() as u64, 1))
            }
            _ => None,
        };
        if let Some((format, data)) = a.decode {
            self.spawn_decode(key, format, data, expected);
        }
    }

    fn spawn_decode(
        &mut self,
        key: String,
        format: &'static str,
        data: Vec<u8>,
        expected: Option<(u64, u64)>,
    ) {
        let Some(ffmpeg) = self.shared.opts.ffmpeg.clone() else {
            return;
        };
        if self.media.decode_unavailable || self.media.decodes.len() >= MAX_DECODE_BACKLOG {
            return;
        }
        let shared = self.shared.clone();
        self.media.decodes.push(tokio::spawn(async move {
            let _permit = shared.decoder.acquire().await;
            let r = decode::decode(&ffmpeg, format, data, Duration::from_secs(30)).await;
            (key, r, expected)
        }));
    }

    fn decode_done(
        &mut self,
        key: String,
        r: Result<Decoded, String>,
        expected: Option<(u64, u64)>,
    ) {
        match r {
            Ok(d) => {
                self.counters.decodes += 1;
                self.counters.decoded_frames += d.video_frames.unwrap_or(0);
                self.add(mrules::decoded(&key, &d, expected));
            }
            Err(e) if e.starts_with("cannot run") => {
                if !self.media.decode_unavailable {
                    eprintln!("rtmp-live-conform: decode check disabled: {e}");
                }
                self.media.decode_unavailable = true;
            }
            Err(e) => self.add(vec![Issue::new(
                &DECODE_ERROR,
                key.clone(),
                format!("{key}: {e}"),
            )]),
        }
    }

    /// Collects finished decodes.
    pub fn poll_decodes(&mut self) {
        let jobs = std::mem::take(&mut self.media.decodes);
        for job in jobs {
            if job.is_finished() {
                if let Some(Ok((k, r, e))) = ready(job) {
                    self.decode_done(k, r, e);
                }
            } else {
                self.media.decodes.push(job);
            }
        }
    }

    /// Waits for every decode still running.
    pub async fn wait_decodes(&mut self) {
        for job in std::mem::take(&mut self.media.decodes) {
            if let Ok((k, r, e)) = job.await {
                self.decode_done(k, r, e);
            }
        }
    }

    /// What the run measured on this playlist (for the master checks).
    pub fn observed(&self) -> Observed {
        let (peak_bps, average_bps) = bit_rates(&self.media.bitrates, self.td());
        Observed {
            codecs: self.media.codecs.iter().cloned().collect(),
            size: self.media.size,
            frame_rate: frame_rate(&self.media.durations, self.media.timescale)
                .or(self.media.ts_fps),
            peak_bps,
            average_bps,
            segments: self.media.bitrates.len(),
        }
    }
}
