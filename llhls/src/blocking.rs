//! Blocking playlist reload (`_HLS_msn` / `_HLS_part`), the decision only.
//!
//! Per the HLS spec (RFC 8216bis, "Blocking Playlist Reload"): the server
//! holds the request until the playlist contains Media Segment `msn` (and,
//! with `_HLS_part`, Partial Segment `part` of it); it answers 400 at once
//! when `msn` is more than two segments beyond the last one, or `part` beyond
//! the last part by more than the Advance Part Limit; `_HLS_part` without
//! `_HLS_msn` is a bad request. The 503 after three target durations is the
//! caller's timeout.

/// What the client asked for: the request's delivery directives, parsed
/// by the rule every component shares (`rtmp_live_types::delivery`).
pub use rtmp_live_types::delivery::{Directives as Request, MAX_NUMBER};

/// What the playlist holds right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// MSN of the segment being written (the one whose parts are listed
    /// last); every lower MSN is a complete segment.
    pub current_msn: u64,
    /// Complete parts of the current segment.
    pub current_parts: u64,
    /// Parts listed for the last complete segment (`current_msn - 1`), if
    /// it has any.
    pub previous_parts: Option<u64>,
    pub part_target: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer now with the current playlist.
    Ready,
    /// Hold the request until the playlist changes (or time runs out: 503).
    Wait,
    /// 400 at once.
    BadRequest(&'static str),
}

/// Parts a request may run ahead: 3 / PART-TARGET if the target is under a
/// second, else 3.
pub fn advance_part_limit(part_target: f64) -> u64 {
    if part_target < 1.0 {
        (3.0 / part_target).ceil() as u64
    } else {
        3
    }
}

pub fn decide(req: Request, v: &View) -> Decision {
    let Some(msn) = req.msn else {
        return if req.part.is_some() {
            Decision::BadRequest("_HLS_part without _HLS_msn")
        } else {
            Decision::Ready
        };
    };
    // the last complete segment is current_msn - 1: allow up to two beyond it
    if msn > v.current_msn.saturating_add(1) {
        return Decision::BadRequest("_HLS_msn too far in the future");
    }
    // a part index past the last part of a complete segment means part 0
    // of the segment after it (RFC 8216bis, 6.2.5.2)
    let (msn, part) = match (req.part, v.previous_parts) {
        (Some(p), Some(n)) if msn.saturating_add(1) == v.current_msn && p >= n => {
            (v.current_msn, Some(0))
        }
        _ => (msn, req.part),
    };
    if msn < v.current_msn {
        return Decision::Ready;
    }
    let Some(part) = part else {
        // the whole segment: wait until nginx-rtmp lists it
        return Decision::Wait;
    };
    let limit = advance_part_limit(v.part_target);
    // position counted in parts from the first part of the current segment;
    // parts of the segment after it are counted from its end (unknown length:
    // take the parts expected in a segment as zero, i.e. be lenient)
    let ahead = if msn == v.current_msn {
        part
    } else {
        v.current_parts.saturating_add(part)
    };
    if ahead >= v.current_parts.saturating_add(limit) {
        return Decision::BadRequest("_HLS_part too far in the future");
    }
    if msn == v.current_msn && part < v.current_parts {
        Decision::Ready
    } else {
        Decision::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(msn: Option<u64>, part: Option<u64>) -> Request {
        Request {
            msn,
            part,
            skip: false,
        }
    }

    const V: View = View {
        current_msn: 10,
        current_parts: 2,
        previous_parts: Some(4),
        part_target: 0.5,
    };

    #[test]
    fn a_part_past_the_end_of_a_complete_segment_is_the_next_ones_first() {
        // segment 9 has parts 0..=3; segment 10 none yet
        let v = View {
            current_parts: 0,
            ..V
        };
        assert_eq!(decide(req(Some(9), Some(3)), &v), Decision::Ready);
        assert_eq!(decide(req(Some(9), Some(4)), &v), Decision::Wait);
        assert_eq!(decide(req(Some(9), Some(9)), &v), Decision::Wait);
        // once part 0 of segment 10 exists
        let v = View {
            current_parts: 1,
            ..V
        };
        assert_eq!(decide(req(Some(9), Some(4)), &v), Decision::Ready);
        // without parts listed for segment 9: the segment is complete
        let v = View {
            current_parts: 0,
            previous_parts: None,
            ..V
        };
        assert_eq!(decide(req(Some(9), Some(4)), &v), Decision::Ready);
    }

    #[test]
    fn plain_requests_are_answered_at_once() {
        assert_eq!(decide(req(None, None), &V), Decision::Ready);
        assert_eq!(
            decide(req(None, Some(1)), &V),
            Decision::BadRequest("_HLS_part without _HLS_msn")
        );
    }

    #[test]
    fn complete_segments_and_existing_parts_are_ready() {
        assert_eq!(decide(req(Some(9), None), &V), Decision::Ready);
        assert_eq!(decide(req(Some(9), Some(7)), &V), Decision::Ready);
        assert_eq!(decide(req(Some(3), Some(0)), &V), Decision::Ready);
        assert_eq!(decide(req(Some(10), Some(0)), &V), Decision::Ready);
        assert_eq!(decide(req(Some(10), Some(1)), &V), Decision::Ready);
    }

    #[test]
    fn next_part_or_segment_waits() {
        assert_eq!(decide(req(Some(10), Some(2)), &V), Decision::Wait);
        assert_eq!(decide(req(Some(10), None), &V), Decision::Wait);
        assert_eq!(decide(req(Some(11), None), &V), Decision::Wait);
        assert_eq!(decide(req(Some(11), Some(0)), &V), Decision::Wait);
        assert_eq!(decide(req(Some(10), Some(7)), &V), Decision::Wait);
    }

    #[test]
    fn far_future_is_a_bad_request() {
        assert_eq!(
            decide(req(Some(12), None), &V),
            Decision::BadRequest("_HLS_msn too far in the future")
        );
        assert_eq!(
            decide(req(Some(12), Some(0)), &V),
            Decision::BadRequest("_HLS_msn too far in the future")
        );
        // limit for 0.5 s parts: 6 parts beyond the last one
        assert_eq!(advance_part_limit(0.5), 6);
        assert_eq!(advance_part_limit(0.33), 10);
        assert_eq!(advance_part_limit(1.0), 3);
        assert_eq!(
            decide(req(Some(10), Some(8)), &V),
            Decision::BadRequest("_HLS_part too far in the future")
        );
        assert_eq!(
            decide(req(Some(11), Some(6)), &V),
            Decision::BadRequest("_HLS_part too far in the future")
        );
        assert_eq!(decide(req(Some(11), Some(5)), &V), Decision::Wait);
    }

    #[test]
    fn huge_numbers_do_not_wrap() {
        let v = V;
        assert_eq!(
            decide(req(Some(10), Some(MAX_NUMBER)), &v),
            Decision::BadRequest("_HLS_part too far in the future")
        );
        assert_eq!(
            decide(req(Some(MAX_NUMBER), Some(0)), &v),
            Decision::BadRequest("_HLS_msn too far in the future")
        );
        let top = View {
            current_msn: u64::MAX,
            current_parts: u64::MAX,
            ..V
        };
        // at the top of the range: saturates, no overflow
        assert_eq!(
            decide(req(Some(u64::MAX), Some(u64::MAX)), &top),
            Decision::Ready
        );
    }
}
