//! The rule catalogue, part 2: media, delivery (blocking reloads, preload
//! hints), rendition reports, the multivariant playlist, and the external
//! checkers. See `ids.rs` for part 1.

use super::ids::rule;
use crate::findings::{Rule, Severity};

// ---- 2. Independent parts ----
rule!(
    /// 4.4.4.9: INDEPENDENT=YES means "the Partial Segment contains an
    /// independent frame"; a part marked so without any sync sample cannot be
    /// decoded by a client joining there.
    INDEPENDENT_WITHOUT_KEYFRAME, "independent-without-keyframe", Error, "4.4.4.9",
    "INDEPENDENT=YES on a part with no sync sample / IDR"
);
rule!(
    /// 4.4.4.9: a part marked INDEPENDENT=YES whose keyframe is not its first
    /// sample: allowed by the text ("contains"), but players start decoding
    /// at the part's first byte and show garbage until the keyframe.
    INDEPENDENT_NOT_FIRST, "independent-keyframe-not-first", Warning, "4.4.4.9",
    "INDEPENDENT=YES part does not start with its keyframe"
);
rule!(
    /// 4.4.4.9: "Every Partial Segment containing an independent frame SHOULD
    /// carry it [INDEPENDENT=YES]" - clients join and switch only there.
    KEYFRAME_NOT_INDEPENDENT, "keyframe-not-independent", Warning, "4.4.4.9",
    "a part starting with a sync sample lacks INDEPENDENT=YES"
);
rule!(
    /// 6.2.1 (SHOULD divide at key frames) / 4.4.4.9: the first part of a
    /// segment should start with a keyframe and be INDEPENDENT=YES, else
    /// clients cannot start or switch at the segment. A warning: legal
    /// without EXT-X-INDEPENDENT-SEGMENTS (see the next rule).
    SEGMENT_START_NOT_INDEPENDENT, "segment-start-not-independent", Warning, "6.2.1",
    "the first part of a segment is not independent"
);
rule!(
    /// 4.4.2.1: with EXT-X-INDEPENDENT-SEGMENTS every segment MUST decode
    /// without the previous one, so it starts with a sync sample.
    INDEPENDENT_SEGMENTS_VIOLATED, "independent-segments-violated", Error, "4.4.2.1",
    "EXT-X-INDEPENDENT-SEGMENTS but a segment does not start with a keyframe"
);

// ---- 3. Media ----
rule!(
    /// 6.2.1: a segment (and a part) "MUST be available for immediate
    /// download" when listed; the init section likewise.
    MEDIA_FETCH_FAILED, "media-fetch-failed", Error, "6.2.1",
    "a listed part, segment or init section could not be fetched"
);
rule!(
    /// 4.4.4.2 / RFC 9110 14: a BYTERANGE resource answered with the wrong
    /// status, Content-Range or length.
    BYTERANGE_RESPONSE, "byterange-response-wrong", Error, "4.4.4.2",
    "a byte-range request answered with wrong status, range or length"
);
rule!(
    /// 3.3 / 4.4.4.5: the Media Initialization Section must parse (ftyp,
    /// moov with tracks, timescales, sample entries, mvex).
    INIT_INVALID, "init-invalid", Error, "3.3",
    "EXT-X-MAP init section does not parse"
);
rule!(
    /// 3.3 (fMP4 per ISO/IEC 14496-12 / CMAF): each part and segment is a
    /// series of moof + mdat with tfhd, tfdt and trun boxes.
    FMP4_STRUCTURE, "fmp4-structure", Error, "3.3",
    "part or segment is not a valid moof + mdat sequence"
);
rule!(
    /// 3.3: every traf's track_ID must exist in the init section it uses.
    FMP4_UNKNOWN_TRACK, "fmp4-unknown-track", Error, "3.3",
    "a traf names a track that the init section does not declare"
);
rule!(
    /// ISO/IEC 14496-12 8.8.8: trun data_offset must point into the mdat,
    /// and the sample sizes must add up to the mdat payload.
    FMP4_SAMPLE_DATA, "fmp4-sample-data", Error, "3.3",
    "sample data outside the mdat, or sample sizes != mdat payload"
);
rule!(
    /// 3.3 / 6.2.1: each fragment's tfdt equals the previous fragment's tfdt
    /// plus its sample durations (exact), across segment boundaries too.
    TFDT_NOT_CONTIGUOUS, "tfdt-not-contiguous", Error, "3.3",
    "tfdt != previous tfdt + sample durations"
);
rule!(
    /// 4.4.4.9: DURATION is the part's duration: sum of its video sample
    /// durations / timescale, within 1 ms.
    PART_DURATION_MISMATCH, "part-duration-mismatch", Error, "4.4.4.9",
    "part DURATION differs from its media duration by more than 1 ms"
);
rule!(
    /// 4.4.4.1 / 4.4.4.9: a segment's EXTINF equals the sum of its parts'
    /// durations within 1 ms (the parts are the segment).
    EXTINF_PARTS_MISMATCH, "extinf-parts-mismatch", Error, "4.4.4.9",
    "EXTINF differs from the sum of the segment's part DURATIONs by more than 1 ms"
);
rule!(
    /// 4.4.4.1: EXTINF is the segment's duration; off by more than 1 ms from
    /// its media it accumulates into drift.
    EXTINF_MEDIA_MISMATCH, "extinf-media-mismatch", Warning, "4.4.4.1",
    "EXTINF differs from the segment's media duration by more than 1 ms"
);
rule!(
    /// 3.1 / 4.4.4.9: a Parent Segment contains the same media as its parts:
    /// its bytes are the concatenation of the parts' bytes.
    SEGMENT_NOT_PARTS, "segment-not-parts-concat", Error, "4.4.4.9",
    "segment bytes differ from the concatenation of its parts"
);
rule!(
    /// 4.4.4.9: byte-range parts of one resource tile it: each starts where
    /// the previous one ended, the first at the segment's start.
    PARTS_NOT_TILING, "parts-byterange-not-contiguous", Error, "4.4.4.9",
    "byte-range parts of a segment do not follow each other"
);
rule!(
    /// 3 (segments decodable with the declared initialization): ffmpeg
    /// decoding init + segment reports errors.
    DECODE_ERROR, "decode-error", Error, "3",
    "the real decoder (ffmpeg) reports errors on init + segment"
);
rule!(
    /// 3: decoded frame count consistent with the segment (fMP4: its video
    /// samples; MPEG-TS: EXTINF x frame rate, +-1).
    DECODE_FRAMES, "decode-frame-count", Error, "3",
    "decoded frame count inconsistent with the segment"
);
rule!(
    /// 3.2: each MPEG-TS Media Segment MUST contain a PAT and PMT at its start
    /// or have an EXT-X-MAP applied; clients (hls.js) demux parts on their own.
    TS_NO_PAT_PMT, "ts-part-without-pat-pmt", Error, "3.2",
    "MPEG-TS part or segment without PAT+PMT at its start and no EXT-X-MAP"
);
rule!(
    /// 3.2 (ISO/IEC 13818-1): 188-byte packets starting with 0x47.
    TS_SYNC, "ts-packet-sync", Error, "3.2",
    "MPEG-TS data not made of whole 188-byte packets with sync bytes"
);

// ---- 8. Preload hints ----
rule!(
    /// 6.2.6: "A hinted resource MUST be available for request when its
    /// EXT-X-PRELOAD-HINT tag is added": the request blocks, never fails.
    HINT_ERROR, "hint-error-response", Error, "6.2.6",
    "the hinted resource was answered with an error"
);
rule!(
    /// 6.2.6: the server MUST NOT send any byte of a part until all its bytes
    /// can be sent: a hint answered before the part exists is short.
    HINT_EARLY, "hint-answered-early", Error, "6.2.6",
    "the hint request was answered before the part existed (short or empty body)"
);
rule!(
    /// 4.4.5.3 / 6.2.6: the hinted bytes are the part later listed under that URI.
    HINT_BYTES, "hint-bytes-mismatch", Error, "4.4.5.3",
    "the hint's bytes differ from the part later listed"
);
rule!(
    /// 4.4.5.3: the hint URI "MUST match the URI that will be subsequently
    /// added to the Playlist" as the next part.
    HINT_NOT_NEXT, "hint-not-next-part", Error, "4.4.5.3",
    "a hinted part was listed as something other than the next part"
);

// ---- 9. Blocking reloads ----
rule!(
    /// 6.2.5.2: the answer MUST contain the requested MSN / part or later.
    BLOCKING_TOO_OLD, "blocking-answer-too-old", Error, "6.2.5.2",
    "blocking reload answered without the requested segment or part"
);
rule!(
    /// 6.2.5.2: a server that cannot answer after 3 target durations SHOULD
    /// return 503; holding longer stalls players.
    BLOCKING_HELD_TOO_LONG, "blocking-held-too-long", Error, "6.2.5.2",
    "blocking reload held more than 3 target durations"
);
rule!(
    /// 6.2.5.2: 503 after 3 target durations is allowed, but on a live stream
    /// it means no new part for that long.
    BLOCKING_UNAVAILABLE, "blocking-unavailable", Warning, "6.2.5.2",
    "blocking reload answered 503"
);
rule!(
    /// 6.2.5.2: any other error status on a blocking reload.
    BLOCKING_STATUS, "blocking-unexpected-status", Error, "6.2.5.2",
    "blocking reload answered with an unexpected status"
);
rule!(
    /// 6.2.5.2: _HLS_msn more than the last MSN + 2 SHOULD get 400 at once.
    MSN_TOO_FAR_ACCEPTED, "msn-too-far-not-rejected", Warning, "6.2.5.2",
    "_HLS_msn more than 2 segments ahead not answered with 400"
);
rule!(
    /// 6.2.5.2: _HLS_part past the Advance Part Limit SHOULD get 400 at once.
    PART_TOO_FAR_ACCEPTED, "part-too-far-not-rejected", Warning, "6.2.5.2",
    "_HLS_part past the Advance Part Limit not answered with 400"
);
rule!(
    /// 6.2.5.2: "If the Playlist URI contains an _HLS_part directive but no
    /// _HLS_msn directive, the Server MUST return Bad Request".
    PART_WITHOUT_MSN_ACCEPTED, "part-without-msn-not-rejected", Error, "6.2.5.2",
    "_HLS_part without _HLS_msn not answered with 400"
);
rule!(
    /// 6.2.5.2: the 400 SHOULD come "immediately" (within 1 s here).
    BAD_REQUEST_SLOW, "bad-request-slow", Warning, "6.2.5.2",
    "a 400 for an invalid blocking request took more than 1 s"
);
rule!(
    /// 6.2.1: "the Server MUST add a new Partial Segment to the Playlist
    /// within one Part Target Duration after it added the previous" (measured
    /// on blocking reloads that waited; 100 ms tolerance).
    PART_CADENCE, "part-cadence-late", Error, "6.2.1",
    "a new part appeared more than one PART-TARGET after the previous one"
);
rule!(
    /// 6.2.1: a new segment MUST be listed "no later than 1.5 times the Target
    /// Duration after the previous time the Playlist was updated with a Media Segment".
    SEGMENT_CADENCE, "segment-cadence-late", Error, "6.2.1",
    "a new segment appeared more than 1.5 target durations after the previous one"
);

// ---- 11. Rendition reports ----
rule!(
    /// 4.4.5.4: the URI names the Media Playlist of an associated rendition
    /// (a sibling in the multivariant playlist).
    REPORT_UNKNOWN_URI, "rendition-report-unknown-uri", Error, "4.4.5.4",
    "EXT-X-RENDITION-REPORT URI is not a sibling rendition of the master"
);
rule!(
    /// 4.4.5.4: the report is "as up-to-date as the Playlist that contains
    /// it" - never ahead of the rendition itself.
    REPORT_AHEAD, "rendition-report-ahead", Error, "4.4.5.4",
    "LAST-MSN / LAST-PART ahead of the rendition's own playlist"
);
rule!(
    /// 4.4.5.4: ... nor behind it by more than a part plus a target duration.
    REPORT_BEHIND, "rendition-report-behind", Error, "4.4.5.4",
    "LAST-MSN / LAST-PART far behind the rendition's own playlist"
);
rule!(
    /// 4.4.5.4: LAST-PART is REQUIRED if the rendition contains parts.
    REPORT_NO_LAST_PART, "rendition-report-no-last-part", Error, "4.4.5.4",
    "rendition report without LAST-PART for a rendition with parts"
);
rule!(
    /// 4.4.5.4 (and Apple's LL-HLS authoring rules): an LL variant of a
    /// multivariant playlist reports every other rendition, so clients can
    /// switch with one blocking request.
    REPORT_MISSING, "rendition-report-missing", Warning, "4.4.5.4",
    "an LL media playlist lacks a rendition report for a sibling"
);

// ---- 12. Multivariant playlist ----
rule!(
    /// 4.4.6.2 / 6.2.4: CODECS MUST list every media format present
    /// (avc1.PPCCLL from avcC/SPS, mp4a.40.AOT from the AudioSpecificConfig).
    MASTER_CODECS, "master-codecs-mismatch", Error, "4.4.6.2",
    "CODECS does not match the media"
);
rule!(
    /// 4.4.6.2: every EXT-X-STREAM-INF SHOULD include CODECS.
    MASTER_CODECS_MISSING, "master-codecs-missing", Warning, "4.4.6.2",
    "EXT-X-STREAM-INF without CODECS"
);
rule!(
    /// 4.4.6.2: RESOLUTION is the video's pixel size (SPS, cropped).
    MASTER_RESOLUTION, "master-resolution-mismatch", Error, "4.4.6.2",
    "RESOLUTION differs from the video's coded size"
);
rule!(
    /// 4.4.6.2: BANDWIDTH is the peak segment bit rate (any run of segments
    /// lasting 0.5-1.5 target durations).
    MASTER_BANDWIDTH, "master-bandwidth-below-peak", Error, "4.4.6.2",
    "measured peak segment bit rate exceeds BANDWIDTH"
);
rule!(
    /// 4.4.6.2: AVERAGE-BANDWIDTH is the average segment bit rate; flagged
    /// outside 0.5x-1.1x of the measured average.
    MASTER_AVERAGE_BANDWIDTH, "master-average-bandwidth-off", Warning, "4.4.6.2",
    "AVERAGE-BANDWIDTH far from the measured average bit rate"
);
rule!(
    /// 4.4.6.2: FRAME-RATE is the maximum frame rate, rounded to 3 decimals.
    MASTER_FRAME_RATE, "master-frame-rate-mismatch", Error, "4.4.6.2",
    "FRAME-RATE differs from the video's frame rate"
);
rule!(
    /// 6.2.4: each Media Playlist of a presentation MUST have the same Target
    /// Duration and the same EXT-X-SERVER-CONTROL attributes.
    VARIANTS_DIFFER, "variants-inconsistent", Error, "6.2.4",
    "variants differ in TARGETDURATION or EXT-X-SERVER-CONTROL"
);

// ---- Transport ----
rule!(
    /// 6.2.1: the playlist must stay available while the stream is live.
    PLAYLIST_FETCH_FAILED, "playlist-fetch-failed", Error, "6.2.1",
    "a playlist request failed (status, timeout, size)"
);

// ---- External checkers (their own rule ids go into the message) ----
rule!(
    /// hls-parser (npm) in strict mode rejected a saved playlist revision.
    EXT_HLS_PARSER, "hls-parser-strict", Error, "external",
    "hls-parser (strict mode) could not parse a playlist revision"
);
