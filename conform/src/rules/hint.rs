//! Rule 8: preload hints (4.4.5.3, 6.2.6). The checker requests a hinted
//! part the moment the hint appears; these functions judge what came back
//! against the part later listed under that URI.

use super::ids_media::*;
use crate::findings::Issue;
use crate::m3u8::Pos;

/// A hinted part: its resolved URI, first byte, and the position it was
/// hinted for (the next part of the playlist that carried the hint).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hinted {
    pub uri: String,
    pub start: u64,
    pub length: Option<u64>,
    /// The hint names a byte range (BYTERANGE-START / -LENGTH).
    pub ranged: bool,
    pub expected: Pos,
}

impl Hinted {
    pub fn key(&self) -> String {
        format!("{}@{}", self.uri, self.start)
    }
}

/// A listed part, resolved: position, URI, first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub pos: Pos,
    pub uri: String,
    pub start: u64,
}

/// Whether the hint was honoured by the listing: `None` while the expected
/// position is not listed yet, `Some(issues)` once it can be judged.
pub fn position(h: &Hinted, listed: &[Listed]) -> Option<Vec<Issue>> {
    let at = listed.iter().find(|l| l.pos == h.expected);
    let same = listed.iter().find(|l| l.uri == h.uri && l.start == h.start);
    match (at, same) {
        (Some(a), _) if a.uri == h.uri && a.start == h.start => Some(Vec::new()),
        (Some(a), other) => Some(vec![Issue::new(
            &HINT_NOT_NEXT,
            h.key(),
            format!(
                "hint {} (byte {}) was for msn {} part {}, which was listed as {} (byte {}){}",
                h.uri,
                h.start,
                h.expected.msn,
                h.expected.part,
                a.uri,
                a.start,
                other
                    .map(|o| format!(
                        "; the hinted resource is listed as msn {} part {}",
                        o.pos.msn, o.pos.part
                    ))
                    .unwrap_or_default()
            ),
        )]),
        // a part index past the last part of a segment names the next
        // segment's first part (6.2.5.2): a hint given while the segment
        // seemed open, for its part k, is honoured by part 0 of the next
        // one when the segment ended with parts 0..k
        (None, Some(o))
            if o.pos.msn == h.expected.msn + 1
                && o.pos.part == 0
                && h.expected.part > 0
                && listed
                    .iter()
                    .any(|l| l.pos.msn == h.expected.msn && l.pos.part + 1 == h.expected.part) =>
        {
            Some(Vec::new())
        }
        (None, Some(o)) => Some(vec![Issue::new(
            &HINT_NOT_NEXT,
            h.key(),
            format!(
                "hint {} (byte {}) was for msn {} part {} but is listed as msn {} part {}",
                h.uri, h.start, h.expected.msn, h.expected.part, o.pos.msn, o.pos.part
            ),
        )]),
        (None, None) => None,
    }
}

/// Judges the hint response (`status`, `body`, after `secs`) against the
/// bytes of the part listed under its URI.
pub fn bytes(h: &Hinted, status: Option<u16>, body: &[u8], secs: f64, part: &[u8]) -> Vec<Issue> {
    let key = h.key();
    let what = format!("hint {} (byte {})", h.uri, h.start);
    let status = match status {
        None => {
            return vec![Issue::new(
                &HINT_ERROR,
                key,
                format!("{what}: no answer ({secs:.2} s)"),
            )];
        }
        Some(s) => s,
    };
    if status != 200 && status != 206 {
        return vec![Issue::new(
            &HINT_ERROR,
            key,
            format!("{what}: status {status} after {secs:.2} s"),
        )];
    }
    let ranged = h.ranged;
    if ranged && h.start > 0 && status == 200 {
        return vec![Issue::new(
            &HINT_BYTES,
            key,
            format!("{what}: answered 200 (the whole resource) to a range request"),
        )];
    }
    if body.len() < part.len() {
        return vec![Issue::new(
            &HINT_EARLY,
            key,
            format!(
                "{what}: answered after {secs:.2} s with {} bytes, the part has {}",
                body.len(),
                part.len()
            ),
        )];
    }
    // Without BYTERANGE-LENGTH the hinted resource runs to the end: the
    // part must be its prefix. Otherwise it is exactly the part.
    let open_ended = h.length.is_none() && ranged;
    let got = if open_ended {
        &body[..part.len()]
    } else {
        body
    };
    if got != part {
        let at = got
            .iter()
            .zip(part)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(part.len()));
        return vec![Issue::new(
            &HINT_BYTES,
            key,
            format!(
                "{what}: {} bytes differ from the listed part's {} (first difference at byte {at})",
                got.len(),
                part.len()
            ),
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(start: u64) -> Hinted {
        Hinted {
            uri: "http://h/s/1.ts".into(),
            start,
            length: None,
            ranged: true,
            expected: Pos { msn: 5, part: 2 },
        }
    }

    fn l(msn: u64, part: u64, uri: &str, start: u64) -> Listed {
        Listed {
            pos: Pos { msn, part },
            uri: uri.into(),
            start,
        }
    }

    #[test]
    fn position_of_the_hinted_part() {
        assert_eq!(position(&h(100), &[l(5, 1, "http://h/s/1.ts", 0)]), None);
        assert_eq!(
            position(&h(100), &[l(5, 2, "http://h/s/1.ts", 100)]),
            Some(vec![])
        );
        let bad = position(&h(100), &[l(5, 2, "http://h/s/1.ts", 90)]).unwrap();
        assert_eq!(bad[0].rule.id, "hint-not-next-part");
        let moved = position(&h(100), &[l(6, 0, "http://h/s/1.ts", 100)]).unwrap();
        assert_eq!(moved.len(), 1);
        // segment 5 ended with parts 0 and 1: its "part 2" is 6's part 0
        let next_segment = [
            l(5, 0, "http://h/s/a.mp4", 0),
            l(5, 1, "http://h/s/b.mp4", 0),
            l(6, 0, "http://h/s/1.ts", 100),
        ];
        assert_eq!(position(&h(100), &next_segment), Some(vec![]));
    }

    #[test]
    fn bytes_of_the_hint() {
        let part = b"0123456789";
        assert!(
            bytes(&h(100), Some(206), b"0123456789abc", 0.2, part).is_empty(),
            "open-ended: prefix"
        );
        assert_eq!(
            bytes(&h(100), Some(206), b"01234", 0.0, part)[0].rule.id,
            "hint-answered-early"
        );
        assert_eq!(
            bytes(&h(100), Some(416), b"", 0.0, part)[0].rule.id,
            "hint-error-response"
        );
        assert_eq!(
            bytes(&h(100), Some(200), part, 0.0, part)[0].rule.id,
            "hint-bytes-mismatch"
        );
        assert_eq!(
            bytes(&h(100), None, b"", 8.0, part)[0].rule.id,
            "hint-error-response"
        );
        let whole = Hinted {
            start: 0,
            ranged: false,
            ..h(0)
        };
        assert!(
            bytes(&h(0), Some(200), b"0123456789abc", 0.3, part).is_empty(),
            "range from 0 answered whole: a prefix"
        );
        assert!(bytes(&whole, Some(200), part, 0.3, part).is_empty());
        assert_eq!(
            bytes(&whole, Some(200), b"0123456789x", 0.3, part)[0]
                .rule
                .id,
            "hint-bytes-mismatch"
        );
        assert_eq!(
            bytes(&whole, Some(200), b"0123456780", 0.3, part)[0]
                .rule
                .id,
            "hint-bytes-mismatch"
        );
    }
}
