//! The rules: pure functions over parsed playlists and media, each finding
//! naming a catalogue entry (`ids`, `ids_media`).

pub mod blocking;
pub mod delta;
pub mod hint;
pub mod history;
pub mod ids;
pub mod ids_media;
pub mod master;
pub mod media;
pub mod playlist;
pub mod rendition;

use crate::findings::Rule;

/// Every rule of the catalogue, for `--list-rules` and the report.
pub fn catalogue() -> Vec<&'static Rule> {
    use ids::*;
    use ids_media::*;
    vec![
        &PART_OVER_TARGET,
        &PART_UNDER_85,
        &INDEPENDENT_WITHOUT_KEYFRAME,
        &INDEPENDENT_NOT_FIRST,
        &KEYFRAME_NOT_INDEPENDENT,
        &SEGMENT_START_NOT_INDEPENDENT,
        &INDEPENDENT_SEGMENTS_VIOLATED,
        &MEDIA_FETCH_FAILED,
        &BYTERANGE_RESPONSE,
        &INIT_INVALID,
        &FMP4_STRUCTURE,
        &FMP4_UNKNOWN_TRACK,
        &FMP4_SAMPLE_DATA,
        &TFDT_NOT_CONTIGUOUS,
        &PART_DURATION_MISMATCH,
        &EXTINF_PARTS_MISMATCH,
        &EXTINF_MEDIA_MISMATCH,
        &SEGMENT_NOT_PARTS,
        &PARTS_NOT_TILING,
        &DECODE_ERROR,
        &DECODE_FRAMES,
        &TS_NO_PAT_PMT,
        &TS_SYNC,
        &PART_HOLD_BACK_MISSING,
        &PART_HOLD_BACK_2X,
        &PART_HOLD_BACK_3X,
        &HOLD_BACK_3X,
        &EXTINF_OVER_TARGET,
        &TARGET_DURATION_CHANGED,
        &PART_INF_MISSING,
        &MEDIA_SEQUENCE_DECREASED,
        &SEGMENT_CHANGED,
        &PART_CHANGED,
        &PARTS_NOT_APPENDED,
        &PARTS_REMOVED_OUT_OF_ORDER,
        &DISCONTINUITY_SEQUENCE,
        &TIMELINE_JUMP,
        &STALE_RELOAD,
        &PART_REMOVED_EARLY,
        &PART_KEPT_TOO_LONG,
        &PDT_NOT_CONTINUOUS,
        &PDT_BACKWARDS,
        &PDT_CHANGED,
        &HINT_ERROR,
        &HINT_EARLY,
        &HINT_BYTES,
        &HINT_NOT_NEXT,
        &HINT_WITH_ENDLIST,
        &HINT_DUPLICATE_TYPE,
        &BLOCKING_TOO_OLD,
        &BLOCKING_HELD_TOO_LONG,
        &BLOCKING_UNAVAILABLE,
        &BLOCKING_STATUS,
        &MSN_TOO_FAR_ACCEPTED,
        &PART_TOO_FAR_ACCEPTED,
        &PART_WITHOUT_MSN_ACCEPTED,
        &BAD_REQUEST_SLOW,
        &PART_CADENCE,
        &SEGMENT_CADENCE,
        &CAN_SKIP_UNTIL_SMALL,
        &SKIP_WITHOUT_CAN_SKIP,
        &DELTA_NOT_PROVIDED,
        &DELTA_MISMATCH,
        &DELTA_SKIPPED_RECENT,
        &REPORT_UNKNOWN_URI,
        &REPORT_AHEAD,
        &REPORT_BEHIND,
        &REPORT_NO_LAST_PART,
        &REPORT_MISSING,
        &MASTER_CODECS,
        &MASTER_CODECS_MISSING,
        &MASTER_RESOLUTION,
        &MASTER_BANDWIDTH,
        &MASTER_AVERAGE_BANDWIDTH,
        &MASTER_FRAME_RATE,
        &VARIANTS_DIFFER,
        &VERSION_TOO_LOW,
        &SYNTAX_EXTM3U,
        &SYNTAX_ENCODING,
        &SYNTAX_WHITESPACE,
        &SYNTAX_LINE_ENDINGS,
        &SYNTAX_UNKNOWN_TAG,
        &SYNTAX_ATTRIBUTE,
        &SYNTAX_VALUE,
        &SYNTAX_MISSING,
        &SYNTAX_DUPLICATE,
        &SYNTAX_PLACEMENT,
        &SYNTAX_URI,
        &SYNTAX_MIXED,
        &PLAYLIST_FETCH_FAILED,
        &EXT_HLS_PARSER,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_kebab_case() {
        let all = super::catalogue();
        let mut ids: Vec<_> = all.iter().map(|r| r.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule id");
        for id in ids {
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{id}"
            );
        }
    }

    #[test]
    fn the_readme_lists_every_rule() {
        let readme = include_str!("../../README.md");
        for r in super::catalogue() {
            let id = format!("`{}`", r.id);
            assert!(readme.contains(&id), "{id} missing from conform/README.md");
        }
    }
}
