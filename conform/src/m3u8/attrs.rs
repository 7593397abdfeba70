//! Attribute lists (RFC 8216bis 4.2), parsed strictly.
//!
//! The checker keeps the raw text of every value and validates its type
//! only when the tag's schema asks for it, so that a leading `+`, a space,
//! an exponent or an unquoted URI is reported rather than silently accepted.

use crate::findings::Issue;
use crate::rules::ids;

/// A raw attribute value: quoted (without the quotes) or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Quoted(String),
    Unquoted(String),
}

/// A parsed attribute list, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrList {
    pub tag: String,
    pub pairs: Vec<(String, Value)>,
}

/// Parses `s` (the text after `TAG:`), reporting syntax problems.
pub fn parse(tag: &str, s: &str, issues: &mut Vec<Issue>) -> AttrList {
    let mut list = AttrList {
        tag: tag.to_string(),
        pairs: Vec::new(),
    };
    let bad = |issues: &mut Vec<Issue>, what: String| {
        issues.push(Issue::new(
            &ids::SYNTAX_ATTRIBUTE,
            format!("{tag}: {what}"),
            format!("{tag}: {what}"),
        ))
    };
    if s.is_empty() {
        bad(issues, "empty attribute list".into());
        return list;
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let name_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = &s[name_start..i];
        if i >= bytes.len() || bytes[i] != b'=' {
            bad(issues, format!("attribute {name:?} has no '='"));
            if i < bytes.len() {
                i += 1;
                continue;
            }
            break;
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        {
            bad(issues, format!("attribute name {name:?} is not [A-Z0-9-]+"));
        }
        i += 1; // '='
        let value = if i < bytes.len() && bytes[i] == b'"' {
            let start = i + 1;
            let end = match s[start..].find('"') {
                Some(off) => start + off,
                None => {
                    bad(issues, format!("{name}: unterminated quoted-string"));
                    list.pairs
                        .push((name.to_string(), Value::Quoted(s[start..].into())));
                    break;
                }
            };
            i = end + 1;
            if i < bytes.len() && bytes[i] != b',' {
                bad(issues, format!("{name}: text after the closing quote"));
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
            }
            Value::Quoted(s[start..end].to_string())
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            let v = &s[start..i];
            if v.is_empty() {
                bad(issues, format!("{name}: empty value"));
            }
            if v.bytes().any(|b| b.is_ascii_whitespace() || b == b'"') {
                bad(
                    issues,
                    format!("{name}: unquoted value {v:?} contains whitespace or '\"'"),
                );
            }
            Value::Unquoted(v.to_string())
        };
        if list.pairs.iter().any(|(n, _)| n == name) {
            bad(issues, format!("attribute {name} appears twice"));
        } else {
            list.pairs.push((name.to_string(), value));
        }
        if i < bytes.len() {
            i += 1; // ','
            if i == bytes.len() {
                bad(issues, "trailing comma".into());
            }
        }
    }
    list
}

impl AttrList {
    fn raw(&self, name: &str) -> Option<&Value> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    fn bad(&self, issues: &mut Vec<Issue>, name: &str, what: &str) {
        let m = format!("{}: {name} {what}", self.tag);
        issues.push(Issue::new(&ids::SYNTAX_ATTRIBUTE, m.clone(), m));
    }

    /// A quoted-string attribute.
    pub fn quoted(&self, name: &str, issues: &mut Vec<Issue>) -> Option<String> {
        match self.raw(name)? {
            Value::Quoted(s) => Some(s.clone()),
            Value::Unquoted(s) => {
                self.bad(issues, name, "must be a quoted-string");
                Some(s.clone())
            }
        }
    }

    /// An unquoted value checked by `valid`, described as `kind` when not.
    fn unquoted(
        &self,
        name: &str,
        kind: &str,
        valid: fn(&str) -> bool,
        issues: &mut Vec<Issue>,
    ) -> Option<String> {
        match self.raw(name)? {
            Value::Unquoted(s) => {
                if !valid(s) {
                    self.bad(issues, name, &format!("value {s:?} is not a {kind}"));
                }
                Some(s.clone())
            }
            Value::Quoted(s) => {
                self.bad(issues, name, &format!("must be an unquoted {kind}"));
                Some(s.clone())
            }
        }
    }

    /// A decimal-integer.
    pub fn int(&self, name: &str, issues: &mut Vec<Issue>) -> Option<u64> {
        let s = self.unquoted(name, "decimal-integer", is_decimal_integer, issues)?;
        s.parse().ok()
    }

    /// A decimal-floating-point (no sign, no exponent).
    pub fn float(&self, name: &str, issues: &mut Vec<Issue>) -> Option<f64> {
        let s = self.unquoted(name, "decimal-floating-point", is_decimal_float, issues)?;
        parse_lenient_float(&s)
    }

    /// An enumerated-string.
    pub fn enumerated(&self, name: &str, issues: &mut Vec<Issue>) -> Option<String> {
        self.unquoted(name, "enumerated-string", |s| !s.is_empty(), issues)
    }

    /// A YES/NO enumerated-string (only YES when `yes_only`).
    pub fn yes(&self, name: &str, yes_only: bool, issues: &mut Vec<Issue>) -> bool {
        match self.enumerated(name, issues).as_deref() {
            None => false,
            Some("YES") => true,
            Some("NO") if !yes_only => false,
            Some(other) => {
                self.bad(issues, name, &format!("value {other:?} is not YES/NO"));
                false
            }
        }
    }

    /// A decimal-resolution `WxH`.
    pub fn resolution(&self, name: &str, issues: &mut Vec<Issue>) -> Option<(u32, u32)> {
        let s = self.unquoted(name, "decimal-resolution", is_resolution, issues)?;
        let (w, h) = s.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    }

    /// Reports a REQUIRED attribute that is missing.
    pub fn require(&self, name: &str, issues: &mut Vec<Issue>) {
        if !self.has(name) {
            let m = format!("{}: REQUIRED attribute {name} missing", self.tag);
            issues.push(Issue::new(&ids::SYNTAX_MISSING, m.clone(), m));
        }
    }
}

/// 4.2: decimal-integer: [0-9]{1,20}, in 0..2^64.
pub fn is_decimal_integer(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

/// 4.2: decimal-floating-point: [0-9] and '.', at least one digit, no sign.
pub fn is_decimal_float(s: &str) -> bool {
    let mut dots = 0;
    let mut digits = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

/// 4.2: signed-decimal-floating-point: an optional '-' then a decimal float.
pub fn is_signed_decimal_float(s: &str) -> bool {
    is_decimal_float(s.strip_prefix('-').unwrap_or(s))
}

fn is_resolution(s: &str) -> bool {
    match s.split_once('x') {
        Some((w, h)) => is_decimal_integer(w) && is_decimal_integer(h),
        None => false,
    }
}

/// Parses a number that may violate the syntax (so that the rules still
/// see its value); `None` for garbage.
pub fn parse_lenient_float(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (AttrList, Vec<Issue>) {
        let mut issues = Vec::new();
        let l = parse("EXT-X-TEST", s, &mut issues);
        (l, issues)
    }

    #[test]
    fn parses_quoted_and_unquoted_values() {
        let (l, issues) = p(r#"DURATION=0.333,URI="a,b.ts",INDEPENDENT=YES"#);
        assert!(issues.is_empty(), "{issues:?}");
        let mut i = Vec::new();
        assert_eq!(l.float("DURATION", &mut i), Some(0.333));
        assert_eq!(l.quoted("URI", &mut i).as_deref(), Some("a,b.ts"));
        assert!(l.yes("INDEPENDENT", false, &mut i));
        assert!(i.is_empty());
    }

    #[test]
    fn flags_signs_spaces_duplicates_and_bad_names() {
        for bad in [
            "DURATION=+0.5",
            "DURATION= 0.5",
            "A=1,A=2",
            "lower=1",
            "A=1,",
            "A=\"x\"y",
            "A",
            "DURATION=1e3",
        ] {
            let (l, mut issues) = p(bad);
            l.float("DURATION", &mut issues);
            assert!(!issues.is_empty(), "{bad} should be flagged");
        }
    }

    #[test]
    fn typed_accessors_flag_wrong_kinds() {
        let (l, _) = p(r#"URI=x.ts,N="3",RES=1280x720"#);
        let mut i = Vec::new();
        l.quoted("URI", &mut i);
        l.int("N", &mut i);
        assert_eq!(i.len(), 2);
        assert_eq!(l.resolution("RES", &mut i), Some((1280, 720)));
    }

    #[test]
    fn number_grammars() {
        assert!(is_decimal_integer("0"));
        assert!(!is_decimal_integer("-1"));
        assert!(!is_decimal_integer("18446744073709551616"));
        assert!(is_decimal_float("2"));
        assert!(is_decimal_float("2.000"));
        assert!(is_decimal_float(".5"));
        assert!(!is_decimal_float("1.2.3"));
        assert!(is_signed_decimal_float("-1.5"));
    }
}
