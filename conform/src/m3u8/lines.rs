//! Line-level syntax (RFC 8216bis 4.1): encoding, line endings, whitespace,
//! and the split into tag / URI lines that both playlist parsers share.

use crate::findings::Issue;
use crate::rules::ids;

/// One meaningful line of a playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `#EXT...`: the tag name and what follows the first ':' (if any).
    Tag {
        name: &'a str,
        value: Option<&'a str>,
    },
    /// A URI line.
    Uri(&'a str),
}

/// Splits a playlist body into lines, reporting encoding, line ending and
/// whitespace problems. Comments and blank lines are dropped.
pub fn split(body: &[u8], issues: &mut Vec<Issue>) -> Vec<(usize, String)> {
    let mut text = match std::str::from_utf8(body) {
        Ok(t) => t.to_string(),
        Err(e) => {
            issues.push(Issue::new(
                &ids::SYNTAX_ENCODING,
                "utf8",
                format!("playlist is not UTF-8 ({e})"),
            ));
            String::from_utf8_lossy(body).into_owned()
        }
    };
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        issues.push(Issue::new(
            &ids::SYNTAX_ENCODING,
            "bom",
            "playlist starts with a byte order mark",
        ));
        text = rest.to_string();
    }
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count();
    if crlf > 0 && crlf < lf {
        issues.push(Issue::new(
            &ids::SYNTAX_LINE_ENDINGS,
            "mixed",
            format!("mixed line endings: {crlf} CRLF and {} LF", lf - crlf),
        ));
    }
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.contains('\r') {
            issues.push(Issue::new(
                &ids::SYNTAX_LINE_ENDINGS,
                "bare-cr",
                "a bare CR inside a line",
            ));
        }
        if line
            .chars()
            .any(|c| (c.is_control() && c != '\r') || ('\u{80}'..='\u{9f}').contains(&c))
        {
            issues.push(Issue::new(
                &ids::SYNTAX_ENCODING,
                "control",
                format!("line {n} contains control characters"),
            ));
        }
        if line.trim().is_empty() {
            if !line.is_empty() {
                issues.push(Issue::new(
                    &ids::SYNTAX_WHITESPACE,
                    "blank-ws",
                    "a blank line made of whitespace",
                ));
            }
            continue;
        }
        if line.starts_with(char::is_whitespace) || line.ends_with(char::is_whitespace) {
            let what = if line.trim_start().starts_with('#') {
                tag_name(line.trim_start())
            } else {
                "URI line"
            };
            issues.push(Issue::new(
                &ids::SYNTAX_WHITESPACE,
                format!("edge-ws {what}"),
                format!("{what}: leading or trailing whitespace"),
            ));
        }
        out.push((n, line.trim().to_string()));
    }
    out
}

fn tag_name(line: &str) -> &str {
    let body = line.strip_prefix('#').unwrap_or(line);
    body.split(':').next().unwrap_or(body)
}

/// Classifies a trimmed, non-blank line; `None` for comments.
pub fn classify(line: &str) -> Option<Line<'_>> {
    if let Some(body) = line.strip_prefix('#') {
        if !body.starts_with("EXT") {
            return None;
        }
        return Some(match body.split_once(':') {
            Some((name, value)) => Line::Tag {
                name,
                value: Some(value),
            },
            None => Line::Tag {
                name: body,
                value: None,
            },
        });
    }
    Some(Line::Uri(line))
}

/// Checks that the first line is exactly `#EXTM3U`.
pub fn check_header(lines: &[(usize, String)], issues: &mut Vec<Issue>) {
    match lines.first() {
        Some((1, l)) if l == "#EXTM3U" => {}
        _ => issues.push(Issue::new(
            &ids::SYNTAX_EXTM3U,
            "extm3u",
            "the first line is not #EXTM3U",
        )),
    }
}

/// Tags of the multivariant playlist (4.4.6).
pub const MASTER_TAGS: &[&str] = &[
    "EXT-X-MEDIA",
    "EXT-X-STREAM-INF",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-CONTENT-STEERING",
];

/// Whether a playlist body is a multivariant playlist.
pub fn is_master(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("#EXT-X-STREAM-INF") || l.starts_with("#EXT-X-MEDIA:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_bom_crlf_mix_and_whitespace() {
        let mut issues = Vec::new();
        let body = "\u{feff}#EXTM3U\r\n#EXT-X-VERSION:3 \n\n  \nseg.ts\n";
        let lines = split(body.as_bytes(), &mut issues);
        let ids: Vec<_> = issues.iter().map(|i| i.rule.id).collect();
        assert!(ids.contains(&"syntax-encoding"));
        assert!(ids.contains(&"syntax-line-endings"));
        assert!(ids.contains(&"syntax-whitespace"));
        assert_eq!(lines.len(), 3);
        check_header(&lines, &mut issues);
        assert!(!issues.iter().any(|i| i.rule.id == "syntax-extm3u"));
    }

    #[test]
    fn crlf_only_is_fine() {
        let mut issues = Vec::new();
        split(b"#EXTM3U\r\n#EXT-X-VERSION:3\r\n", &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn classifies_tags_comments_and_uris() {
        assert_eq!(
            classify("#EXTINF:2.0,"),
            Some(Line::Tag {
                name: "EXTINF",
                value: Some("2.0,")
            })
        );
        assert_eq!(classify("# comment"), None);
        assert_eq!(classify("a.ts"), Some(Line::Uri("a.ts")));
    }
}
