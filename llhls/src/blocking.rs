//! Blocking playlist reload (`_HLS_msn` / `_HLS_part`), the decision only.
//!
//! Per the HLS spec (RFC 8216bis, "Blocking Playlist Reload"): the server
//! holds the request until the playlist contains Media Segment `msn` (and,
//! with `_HLS_part`, Partial Segment `part` of it); it answers 400 at once
//! when `msn` is more than two segments beyond the last one, or `part` beyond
//! the last part by more than the Advance Part Limit; `_HLS_part` without
//! `_HLS_msn` is a bad request. The 503 after three target durations is the
//! caller's timeout.

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    pub msn: Option<u64>,
    pub part: Option<u64>,
    /// `_HLS_skip=YES` (or `v2`): a delta update.
    pub skip: bool,
}

impl Request {
    /// The canonical query string of this request (what caches key on):
    /// the directives in the spec's order, decimal without leading zeros.
    pub fn canonical(&self) -> String {
        let mut q = Vec::new();
        if let Some(m) = self.msn {
            q.push(format!("_HLS_msn={m}"));
        }
        if let Some(p) = self.part {
            q.push(format!("_HLS_part={p}"));
        }
        if self.skip {
            q.push("_HLS_skip=YES".to_string());
        }
        q.join("&")
    }
}

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

/// The largest MSN or part index a request may name (no playlist gets
/// near it; larger numbers are refused rather than wrapped).
pub const MAX_NUMBER: u64 = (1 << 53) - 1;

/// Parses the delivery directives of a playlist request. Only the spec's
/// (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) are accepted, each at most once,
/// numbers in canonical decimal (no sign, no leading zero) up to
/// [`MAX_NUMBER`]: every spelling of one request is then one request, for
/// this component and for the caches in front of it.
pub fn parse_query(q: Option<&str>) -> Result<Request, &'static str> {
    let mut r = Request::default();
    let (mut msn, mut part, mut skip) = (false, false, false);
    for kv in q.unwrap_or("").split('&') {
        if kv.is_empty() {
            continue;
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "_HLS_msn" if !msn => {
                msn = true;
                r.msn = Some(number(v).ok_or("bad _HLS_msn")?);
            }
            "_HLS_part" if !part => {
                part = true;
                r.part = Some(number(v).ok_or("bad _HLS_part")?);
            }
            "_HLS_skip" if !skip => {
                skip = true;
                r.skip = match v {
                    "YES" | "v2" => true,
                    _ => return Err("bad _HLS_skip"),
                };
            }
            "_HLS_msn" | "_HLS_part" | "_HLS_skip" => return Err("repeated delivery directive"),
            _ => return Err("unknown query parameter"),
        }
    }
    if r.part.is_some() && r.msn.is_none() {
        return Err("_HLS_part without _HLS_msn");
    }
    Ok(r)
}

/// A canonical decimal number: `0`, or digits without a leading zero.
fn number(v: &str) -> Option<u64> {
    let canonical = v == "0" || (!v.is_empty() && !v.starts_with('0') && v.len() <= 16);
    if !canonical || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n <= MAX_NUMBER)
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
    fn query_parsing() {
        assert_eq!(parse_query(None), Ok(req(None, None)));
        assert_eq!(
            parse_query(Some("_HLS_msn=12&_HLS_part=3")),
            Ok(req(Some(12), Some(3)))
        );
        assert_eq!(
            parse_query(Some("_HLS_skip=YES&_HLS_msn=5")),
            Ok(Request {
                msn: Some(5),
                part: None,
                skip: true
            })
        );
        assert_eq!(parse_query(Some("_HLS_msn=0")), Ok(req(Some(0), None)));
        assert_eq!(parse_query(Some("_HLS_msn=-1")), Err("bad _HLS_msn"));
        assert_eq!(
            parse_query(Some("_HLS_part=a&_HLS_msn=1")),
            Err("bad _HLS_part")
        );
        assert_eq!(
            parse_query(Some("_HLS_part=1")),
            Err("_HLS_part without _HLS_msn")
        );
    }

    #[test]
    fn one_spelling_per_request() {
        // leading zeros, signs, spaces, huge numbers: refused, not read as
        // another spelling of a number
        for bad in [
            "0042",
            "+42",
            " 42",
            "42 ",
            "4e2",
            "0x2a",
            "",
            "18446744073709551615",
            "9007199254740992",
        ] {
            assert_eq!(
                parse_query(Some(&format!("_HLS_msn={bad}"))),
                Err("bad _HLS_msn"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_query(Some("_HLS_msn=9007199254740991")).unwrap().msn,
            Some(MAX_NUMBER)
        );
        // a directive twice (the cache would key on one, the origin read
        // the other)
        assert_eq!(
            parse_query(Some("_HLS_msn=50&_HLS_part=1&_HLS_msn=0")),
            Err("repeated delivery directive")
        );
        assert_eq!(parse_query(Some("_HLS_skip=NO")), Err("bad _HLS_skip"));
        assert_eq!(parse_query(Some("x=1")), Err("unknown query parameter"));
        assert_eq!(
            parse_query(Some("_hls_msn=1")),
            Err("unknown query parameter")
        );
        // the canonical form
        let r = parse_query(Some("_HLS_skip=v2&_HLS_part=2&_HLS_msn=7")).unwrap();
        assert_eq!(r.canonical(), "_HLS_msn=7&_HLS_part=2&_HLS_skip=YES");
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
