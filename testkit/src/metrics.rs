//! Prometheus text exposition, as the services and the edge module write
//! it: parsed into (series, value) samples.

/// The samples of `text` (comments and blank lines skipped): the series
/// with its labels as written, and its value.
pub fn parse(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series` (exactly as written, labels included) in `text`.
pub fn value(text: &str, series: &str) -> Option<f64> {
    parse(text)
        .into_iter()
        .find_map(|(s, v)| (s == series).then_some(v))
}

/// `GET url` (a `/metrics` endpoint) as text; empty if it cannot be read.
pub fn scrape(url: &str) -> String {
    crate::http::client()
        .get(url)
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP a An a\n# TYPE a counter\na 3\nb{x=\"1 2\"} 0.5\n\nc NaN\n";
        let s = parse(text);
        assert_eq!(s[0], ("a".to_string(), 3.0));
        assert_eq!(s[1], ("b{x=\"1 2\"}".to_string(), 0.5));
        assert!(s[2].1.is_nan());
        assert_eq!(value(text, "b{x=\"1 2\"}"), Some(0.5));
        assert_eq!(value(text, "d"), None);
    }
}
