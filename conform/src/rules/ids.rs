//! The rule catalogue, part 1: playlist rules (RFC 8216bis sections as in
//! draft-pantos-hls-rfc8216bis-22). Part 2 (media and delivery) is
//! `ids_media.rs`. Every finding names one of these ids; ids are stable.

use crate::findings::{Rule, Severity};

/// Declares one catalogue entry.
macro_rules! rule {
    ($(#[$doc:meta])* $name:ident, $id:literal, $sev:ident, $sec:literal, $summary:literal) => {
        $(#[$doc])*
        pub const $name: Rule = Rule {
            id: $id,
            severity: Severity::$sev,
            section: $sec,
            summary: $summary,
        };
    };
}
pub(crate) use rule;

// ---- 1. Part durations ----
rule!(
    /// 4.4.4.9: "The duration of a Partial Segment MUST be less than or equal
    /// to the Part Target Duration."
    PART_OVER_TARGET, "part-over-target", Error, "4.4.4.9",
    "part DURATION exceeds PART-TARGET"
);
rule!(
    /// 4.4.4.9: every part MUST be at least 85 % of PART-TARGET, except
    /// INDEPENDENT=YES or GAP=YES parts, a part followed by a GAP=YES part,
    /// and the final part of its Parent Segment. Apple's player rejects
    /// streams that break it.
    PART_UNDER_85, "part-under-85pct", Error, "4.4.4.9",
    "part shorter than 85 % of PART-TARGET (not independent, not the segment's last)"
);

// ---- 4. Hold-backs and target duration ----
rule!(
    /// 4.4.3.8: PART-HOLD-BACK is REQUIRED if the playlist has EXT-X-PART-INF.
    PART_HOLD_BACK_MISSING, "part-hold-back-missing", Error, "4.4.3.8",
    "EXT-X-PART-INF without PART-HOLD-BACK"
);
rule!(
    /// 4.4.3.8: PART-HOLD-BACK "MUST be at least twice the Part Target Duration".
    PART_HOLD_BACK_2X, "part-hold-back-below-2x", Error, "4.4.3.8",
    "PART-HOLD-BACK < 2 x PART-TARGET"
);
rule!(
    /// 4.4.3.8: PART-HOLD-BACK "SHOULD be at least three times the Part Target Duration".
    PART_HOLD_BACK_3X, "part-hold-back-below-3x", Warning, "4.4.3.8",
    "PART-HOLD-BACK < 3 x PART-TARGET"
);
rule!(
    /// 4.4.3.8: HOLD-BACK "MUST be at least three times the Target Duration".
    HOLD_BACK_3X, "hold-back-below-3x", Error, "4.4.3.8",
    "HOLD-BACK < 3 x TARGETDURATION"
);
rule!(
    /// 4.4.3.1: every EXTINF, rounded to the nearest integer, MUST be <= the
    /// Target Duration.
    EXTINF_OVER_TARGET, "extinf-over-target", Error, "4.4.3.1",
    "EXTINF (rounded) exceeds TARGETDURATION"
);
rule!(
    /// 6.2.1: "The value of the EXT-X-TARGETDURATION tag in the Media
    /// Playlist MUST NOT change."
    TARGET_DURATION_CHANGED, "target-duration-changed", Error, "6.2.1",
    "TARGETDURATION changed across reloads"
);
rule!(
    /// 4.4.3.7: EXT-X-PART-INF is REQUIRED if a playlist contains EXT-X-PART.
    PART_INF_MISSING, "part-inf-missing", Error, "4.4.3.7",
    "EXT-X-PART without EXT-X-PART-INF"
);

// ---- 5. Monotonic playlist updates ----
rule!(
    /// 6.2.2: EXT-X-MEDIA-SEQUENCE "MUST NOT decrease or wrap".
    MEDIA_SEQUENCE_DECREASED, "media-sequence-decreased", Error, "6.2.2",
    "MEDIA-SEQUENCE decreased"
);
rule!(
    /// 6.2.1: the server MUST NOT change the playlist except to append, remove
    /// from the front, remove parts, bump sequence numbers: a segment's URI,
    /// duration and tags never change once listed.
    SEGMENT_CHANGED, "segment-changed", Error, "6.2.1",
    "a listed segment changed (URI, EXTINF or DISCONTINUITY) across reloads"
);
rule!(
    /// 6.2.1: a listed part (URI, DURATION, INDEPENDENT, BYTERANGE) never changes.
    PART_CHANGED, "part-changed", Error, "6.2.1",
    "a listed part changed across reloads"
);
rule!(
    /// 6.2.1 / 6.2.2: parts of a segment are only appended; they leave only all
    /// together, in playlist order.
    PARTS_NOT_APPENDED, "parts-not-appended", Error, "6.2.1",
    "parts of a segment were removed or reordered while the segment kept parts"
);
rule!(
    /// 6.2.2: "Media Segments and EXT-X-PART tags MUST be removed from the
    /// Playlist in the order that they appear".
    PARTS_REMOVED_OUT_OF_ORDER, "parts-removed-out-of-order", Error, "6.2.2",
    "parts removed from a segment while an older segment keeps its parts"
);
rule!(
    /// 6.2.2: when an EXT-X-DISCONTINUITY leaves the playlist the
    /// DISCONTINUITY-SEQUENCE MUST be incremented so that the remaining
    /// segments keep their Discontinuity Sequence Numbers; never decrease.
    DISCONTINUITY_SEQUENCE, "discontinuity-sequence-wrong", Error, "6.2.2",
    "DISCONTINUITY-SEQUENCE does not match the discontinuities that left"
);
rule!(
    /// 4.4.4.3 / 6.2.1: a change of timestamp sequence (a restart, a jump, an
    /// init change with time going back) MUST be signalled by EXT-X-DISCONTINUITY.
    TIMELINE_JUMP, "timeline-jump-without-discontinuity", Error, "4.4.4.3",
    "media timestamps restart or jump without EXT-X-DISCONTINUITY"
);
rule!(
    /// 6.2.1 (changes MUST be atomic and only move forward): a reload answered
    /// with a playlist older than one already received (a stale cache) makes
    /// the live edge go backwards for the client.
    STALE_RELOAD, "reload-older-than-seen", Warning, "6.2.1",
    "a reload returned a playlist older than one already received"
);

// ---- 6. Part retention ----
rule!(
    /// 6.2.2: "EXT-X-PART tags SHOULD be removed from the Playlist after they
    /// are greater than three Target Durations from the end of the Playlist"
    /// - and not before: players joining at PART-HOLD-BACK need them.
    PART_REMOVED_EARLY, "part-removed-early", Warning, "6.2.2",
    "parts removed while within 3 target durations of the playlist end"
);

rule!(
    /// 6.2.2: parts "SHOULD be removed from the Playlist after they are
    /// greater than three Target Durations from the end" (judged on each
    /// segment's last part; hls-parser's strict mode rejects such playlists).
    PART_KEPT_TOO_LONG, "part-kept-too-long", Warning, "6.2.2",
    "parts still listed more than 3 target durations from the playlist end"
);

// ---- 7. Program date-time ----
rule!(
    /// 4.4.4.6 / 6.2.1: PDT maps each segment's first sample to a date; for
    /// consecutive segments without a discontinuity PDT(n+1) = PDT(n) + EXTINF(n)
    /// (1 ms tolerance), or clients misplace them.
    PDT_NOT_CONTINUOUS, "pdt-not-continuous", Warning, "4.4.4.6",
    "PROGRAM-DATE-TIME does not follow the previous segment's PDT + EXTINF"
);
rule!(
    /// 6.2.1: the server MUST NOT add a PDT that makes the date mapping
    /// ambiguous; a later segment may only partially overlap the previous one.
    PDT_BACKWARDS, "pdt-backwards", Error, "6.2.1",
    "PROGRAM-DATE-TIME goes backwards within a discontinuity sequence"
);
rule!(
    /// 6.2.1: the date of a listed segment never changes across reloads.
    PDT_CHANGED, "pdt-changed", Error, "6.2.1",
    "a segment's PROGRAM-DATE-TIME changed across reloads"
);

// ---- 10. Delta updates ----
rule!(
    /// 4.4.3.8: the Skip Boundary (CAN-SKIP-UNTIL) "MUST be at least six
    /// times the Target Duration".
    CAN_SKIP_UNTIL_SMALL, "can-skip-until-below-6x", Error, "4.4.3.8",
    "CAN-SKIP-UNTIL < 6 x TARGETDURATION"
);
rule!(
    /// 6.2.5.1: a server MUST ignore _HLS_skip without CAN-SKIP-UNTIL; an
    /// EXT-X-SKIP in such a playlist cannot be reconstructed by a client.
    SKIP_WITHOUT_CAN_SKIP, "skip-without-can-skip-until", Error, "6.2.5.1",
    "EXT-X-SKIP in a playlist that does not advertise CAN-SKIP-UNTIL"
);
rule!(
    /// 6.2.5.1: with CAN-SKIP-UNTIL and no ENDLIST, a request with
    /// _HLS_skip=YES MUST be answered with a Playlist Delta Update.
    DELTA_NOT_PROVIDED, "delta-not-provided", Error, "6.2.5.1",
    "_HLS_skip=YES answered without EXT-X-SKIP although segments were skippable"
);
rule!(
    /// 6.2.5.1 / 4.4.5.2: the delta plus the skipped segments the client has
    /// MUST give the full playlist (same MSNs, URIs, durations, parts).
    DELTA_MISMATCH, "delta-mismatch", Error, "6.2.5.1",
    "delta update does not reconstruct the full playlist"
);
rule!(
    /// 6.2.5.1: only segments further from the end than the Skip Boundary are
    /// replaced by EXT-X-SKIP.
    DELTA_SKIPPED_RECENT, "delta-skipped-inside-boundary", Error, "6.2.5.1",
    "delta update skipped segments newer than the Skip Boundary"
);

// ---- 13. Version and syntax ----
rule!(
    /// 4.4.1.2 / 8: EXT-X-VERSION MUST be at least what the features need
    /// (3 float EXTINF, 4 BYTERANGE / I-FRAMES-ONLY, 5 KEYFORMAT / SAMPLE-AES,
    /// 6 EXT-X-MAP without I-FRAMES-ONLY, 8 EXT-X-DEFINE, 9 EXT-X-SKIP,
    /// 10 skipped date ranges, 11 QUERYPARAM, 12 REQ- attributes).
    VERSION_TOO_LOW, "version-too-low", Error, "8",
    "EXT-X-VERSION lower than the features used require"
);
rule!(
    /// 4.4.1.1: EXTM3U MUST be the first line.
    SYNTAX_EXTM3U, "syntax-extm3u", Error, "4.4.1.1",
    "first line is not #EXTM3U"
);
rule!(
    /// 4.1: UTF-8, no BOM, no control characters other than CR and LF.
    SYNTAX_ENCODING, "syntax-encoding", Error, "4.1",
    "not UTF-8, a BOM, or control characters"
);
rule!(
    /// 4.1: "Whitespace MUST NOT be present, except for elements in which it
    /// is explicitly specified."
    SYNTAX_WHITESPACE, "syntax-whitespace", Error, "4.1",
    "whitespace where the syntax allows none"
);
rule!(
    /// 4.1: lines end in LF or CRLF; a bare CR, or a mix of both, breaks
    /// line-oriented parsers.
    SYNTAX_LINE_ENDINGS, "syntax-line-endings", Warning, "4.1",
    "bare CR or mixed LF / CRLF line endings"
);
rule!(
    /// 4.1 (clients MUST ignore unknown tags): an unknown EXT tag is allowed
    /// but often a typo of a known one.
    SYNTAX_UNKNOWN_TAG, "syntax-unknown-tag", Warning, "4.1",
    "unknown #EXT tag"
);
rule!(
    /// 4.2: attribute lists: names [A-Z0-9-], no duplicates, typed values
    /// (decimal-integer, decimal-floating-point without sign or spaces,
    /// quoted-string, enumerated-string, resolution).
    SYNTAX_ATTRIBUTE, "syntax-attribute", Error, "4.2",
    "malformed attribute list or attribute value"
);
rule!(
    /// 4.4: a tag value that does not parse (EXTINF, integers, dates, ranges).
    SYNTAX_VALUE, "syntax-value", Error, "4.4",
    "malformed tag value"
);
rule!(
    /// 4.4: a REQUIRED tag or attribute is missing.
    SYNTAX_MISSING, "syntax-missing-required", Error, "4.4",
    "a REQUIRED tag or attribute is missing"
);
rule!(
    /// 4.4.2 / 4.4.3: media playlist tags and EXT-X-VERSION MUST NOT appear
    /// more than once.
    SYNTAX_DUPLICATE, "syntax-duplicate-tag", Error, "4.4.3",
    "a tag that may appear once appears more than once"
);
rule!(
    /// 4.4.3.2 / 4.4.3.3 / 4.4.4.9 / 4.4.5.2: MEDIA-SEQUENCE and
    /// DISCONTINUITY-SEQUENCE before the first segment; DISCONTINUITY, KEY,
    /// MAP and PDT before the first EXT-X-PART of their parent segment;
    /// EXTINF followed by a URI.
    SYNTAX_PLACEMENT, "syntax-tag-placement", Error, "4.4.4.9",
    "a tag in a position the spec forbids"
);
rule!(
    /// 4.1 / 4.2: URIs must resolve (RFC 3986) against the playlist URI.
    SYNTAX_URI, "syntax-uri", Error, "4.1",
    "a URI that does not resolve"
);
rule!(
    /// 4.4.6: clients MUST fail to parse a playlist mixing multivariant tags
    /// with media playlist or media segment tags.
    SYNTAX_MIXED, "syntax-master-media-mixed", Error, "4.4.6",
    "multivariant and media playlist tags in one playlist"
);
rule!(
    /// 4.4.5.3: "A Playlist containing an EXT-X-ENDLIST tag MUST NOT contain
    /// an EXT-X-PRELOAD-HINT tag."
    HINT_WITH_ENDLIST, "hint-with-endlist", Error, "4.4.5.3",
    "EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST"
);
rule!(
    /// 6.2.6: "The Server SHOULD NOT add more than one EXT-X-PRELOAD-HINT tag
    /// with the same TYPE to a Playlist."
    HINT_DUPLICATE_TYPE, "hint-duplicate-type", Warning, "6.2.6",
    "more than one EXT-X-PRELOAD-HINT of one TYPE"
);
