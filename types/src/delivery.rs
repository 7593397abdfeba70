//! LL-HLS delivery directives (RFC 8216bis, "Delivery Directives
//! Interface"): the query of a playlist request, `_HLS_msn`, `_HLS_part`
//! and `_HLS_skip`.
//!
//! One rule for every component that reads or keys on them (llhls, the
//! edge's cache and collapse keys): only these three, each at most once,
//! numbers in canonical decimal (no sign, no leading zero) up to
//! [`MAX_NUMBER`], `_HLS_part` only with `_HLS_msn`. Anything else is a bad
//! request, so every spelling of one request is one request, and what a
//! cache keys on is exactly what the origin is asked.

/// The largest MSN or part index a request may name (no playlist gets near
/// it; larger numbers are refused rather than wrapped).
pub const MAX_NUMBER: u64 = (1 << 53) - 1;

/// The delivery directives of one playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directives {
    pub msn: Option<u64>,
    pub part: Option<u64>,
    /// `_HLS_skip=YES` (or `v2`, answered as `YES`): a delta update.
    pub skip: bool,
}

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadQuery {
    Unknown,
    Repeated,
    Msn,
    Part,
    Skip,
    PartWithoutMsn,
}

impl BadQuery {
    /// A short, fixed ASCII message (for a JSON error body).
    pub fn as_str(&self) -> &'static str {
        match self {
            BadQuery::Unknown => "unknown query parameter (only _HLS_msn, _HLS_part, _HLS_skip)",
            BadQuery::Repeated => "repeated delivery directive",
            BadQuery::Msn => "bad _HLS_msn (canonical decimal expected)",
            BadQuery::Part => "bad _HLS_part (canonical decimal expected)",
            BadQuery::Skip => "bad _HLS_skip (YES or v2 expected)",
            BadQuery::PartWithoutMsn => "_HLS_part without _HLS_msn",
        }
    }
}

impl std::fmt::Display for BadQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for BadQuery {}

impl Directives {
    /// Parses a query string (without the `?`; empty for none). Empty
    /// pairs (`a&&b`, a trailing `&`) are refused: they are another
    /// spelling.
    pub fn parse(query: &[u8]) -> Result<Directives, BadQuery> {
        let mut d = Directives::default();
        if query.is_empty() {
            return Ok(d);
        }
        let mut skip = false;
        for pair in query.split(|&b| b == b'&') {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => return Err(BadQuery::Unknown),
            };
            match k {
                b"_HLS_msn" if d.msn.is_some() => return Err(BadQuery::Repeated),
                b"_HLS_msn" => d.msn = Some(number(v).ok_or(BadQuery::Msn)?),
                b"_HLS_part" if d.part.is_some() => return Err(BadQuery::Repeated),
                b"_HLS_part" => d.part = Some(number(v).ok_or(BadQuery::Part)?),
                b"_HLS_skip" if skip => return Err(BadQuery::Repeated),
                b"_HLS_skip" => {
                    skip = true;
                    d.skip = matches!(v, b"YES" | b"v2");
                    if !d.skip {
                        return Err(BadQuery::Skip);
                    }
                }
                _ => return Err(BadQuery::Unknown),
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err(BadQuery::PartWithoutMsn);
        }
        Ok(d)
    }

    /// A blocking reload (`_HLS_msn` given): held until the part exists.
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }

    /// The canonical query (what caches key on and what goes upstream):
    /// the directives in the spec's order, empty for none.
    pub fn canonical(&self) -> String {
        String::from_utf8_lossy(&self.canonical_bytes()).into_owned()
    }

    /// [`Directives::canonical`] without allocating (the edge computes it
    /// on every playlist request).
    pub fn canonical_bytes(&self) -> Canonical {
        let mut q = Canonical {
            buf: [0; CANONICAL_MAX],
            len: 0,
        };
        let mut num = itoa::Buffer::new();
        if let Some(m) = self.msn {
            q.push(b"_HLS_msn=");
            q.push(num.format(m).as_bytes());
        }
        if let Some(p) = self.part {
            q.push(if q.len == 0 {
                b"_HLS_part="
            } else {
                b"&_HLS_part="
            });
            q.push(num.format(p).as_bytes());
        }
        if self.skip {
            q.push(if q.len == 0 {
                b"_HLS_skip=YES"
            } else {
                b"&_HLS_skip=YES"
            });
        }
        q
    }
}

/// A canonical query, held inline ([`Directives::canonical_bytes`]).
#[derive(Clone, Copy)]
pub struct Canonical {
    buf: [u8; CANONICAL_MAX],
    len: usize,
}

impl Canonical {
    /// Appends `b`; every canonical query fits (numbers are at most
    /// [`MAX_NUMBER`]).
    fn push(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

impl std::ops::Deref for Canonical {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for Canonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

impl PartialEq for Canonical {
    fn eq(&self, other: &Canonical) -> bool {
        **self == **other
    }
}

/// The longest canonical query: both numbers at [`MAX_NUMBER`] and a skip.
const CANONICAL_MAX: usize = 66;

/// A canonical decimal number: `0`, or digits without a leading zero, at
/// most [`MAX_NUMBER`].
fn number(v: &[u8]) -> Option<u64> {
    let canonical = v == b"0" || (!v.is_empty() && v[0] != b'0' && v.len() <= 16);
    if !canonical || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v)
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n <= MAX_NUMBER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Directives {
        Directives::parse(q.as_bytes()).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn bad(q: &str) -> BadQuery {
        Directives::parse(q.as_bytes()).expect_err(q)
    }

    #[test]
    fn the_spec_directives_in_any_order_give_one_canonical_query() {
        assert_eq!(ok(""), Directives::default());
        assert_eq!(ok("").canonical(), "");
        for q in [
            "_HLS_msn=12&_HLS_part=3&_HLS_skip=YES",
            "_HLS_skip=YES&_HLS_part=3&_HLS_msn=12",
            "_HLS_part=3&_HLS_skip=v2&_HLS_msn=12",
        ] {
            assert_eq!(ok(q).canonical(), "_HLS_msn=12&_HLS_part=3&_HLS_skip=YES");
        }
        assert_eq!(ok("_HLS_msn=0").canonical(), "_HLS_msn=0");
        assert_eq!(ok("_HLS_skip=YES").canonical(), "_HLS_skip=YES");
        assert!(!ok("_HLS_skip=YES").is_blocking());
        assert!(ok("_HLS_msn=0").is_blocking());
        let max = format!("_HLS_msn={MAX_NUMBER}&_HLS_part={MAX_NUMBER}");
        assert_eq!(ok(&max).canonical(), max);
        let longest = format!("{max}&_HLS_skip=YES");
        assert_eq!(ok(&longest).canonical(), longest);
        assert_eq!(longest.len(), CANONICAL_MAX);
    }

    #[test]
    fn every_other_spelling_is_refused() {
        assert_eq!(bad("_HLS_msn=042"), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn=+42"), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn=-1"), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn="), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn=%34%32"), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn=4 2"), BadQuery::Msn);
        assert_eq!(bad("_HLS_msn=9007199254740992"), BadQuery::Msn);
        assert_eq!(
            bad("_HLS_msn=1&_HLS_part=18446744073709551615"),
            BadQuery::Part
        );
        assert_eq!(bad("_HLS_msn=1&_HLS_part=00"), BadQuery::Part);
        assert_eq!(bad("_HLS_msn=5&_HLS_msn=5"), BadQuery::Repeated);
        assert_eq!(bad("_HLS_msn=9&_HLS_part=1&_HLS_msn=0"), BadQuery::Repeated);
        assert_eq!(bad("_HLS_skip=YES&_HLS_skip=YES"), BadQuery::Repeated);
        assert_eq!(bad("_HLS_skip=yes"), BadQuery::Skip);
        assert_eq!(bad("_HLS_skip="), BadQuery::Skip);
        assert_eq!(bad("_hls_msn=5"), BadQuery::Unknown);
        assert_eq!(bad("_HLS%5Fmsn=5"), BadQuery::Unknown);
        assert_eq!(bad("_HLS_msn"), BadQuery::Unknown);
        assert_eq!(bad("x=1"), BadQuery::Unknown);
        assert_eq!(bad("_HLS_msn=5&"), BadQuery::Unknown);
        assert_eq!(bad("&_HLS_msn=5"), BadQuery::Unknown);
        assert_eq!(bad("_HLS_msn=5&&_HLS_part=1"), BadQuery::Unknown);
        assert_eq!(bad("_HLS_part=1"), BadQuery::PartWithoutMsn);
    }
}
