//! ISO 8601 date-times of EXT-X-PROGRAM-DATE-TIME (RFC 8216bis 4.4.4.6),
//! to milliseconds since the Unix epoch. Hand-written: only the
//! `YYYY-MM-DDThh:mm:ss[.f][Z|+hh:mm|+hhmm|+hh]` profile HLS uses.

/// Parses a date-time; `None` if it is not of the profile above.
pub fn parse_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds from the first three digits, rounded on the fourth.
        let frac = &s[start..i];
        let mut digits: Vec<i64> = frac.bytes().map(|c| i64::from(c - b'0')).collect();
        digits.resize(4.max(digits.len()), 0);
        ms = digits[0] * 100 + digits[1] * 10 + digits[2] + i64::from(digits[3] >= 5);
    }
    let offset_min = match &s[i..] {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let rest = tz[1..].replace(':', "");
            if rest.len() != 2 && rest.len() != 4 || !rest.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let hh: i64 = rest[..2].parse().ok()?;
            let mm: i64 = if rest.len() == 4 {
                rest[2..].parse().ok()?
            } else {
                0
            };
            sign * (hh * 60 + mm)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_hls_profile() {
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_ms("2026-12-06T17:47:19.779Z"),
            Some(1_796_579_239_779)
        );
        assert_eq!(
            parse_ms("2010-02-19T14:54:23.031+08:00"),
            parse_ms("2010-02-19T06:54:23.031Z")
        );
        assert_eq!(
            parse_ms("2010-02-19T14:54:23+0800"),
            parse_ms("2010-02-19T06:54:23Z")
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "2010-02-19",
            "2010-02-19 14:54:23Z",
            "2010-13-19T14:54:23Z",
            "x",
            "2010-02-19T14:54:23.Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad}");
        }
    }
}
