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

/// The metric names of `text` (labels dropped; a histogram's or summary's
/// `_bucket`, `_count`, `_sum` and `_created` samples under its own name)
/// that `doc` does not mention: a metric added without its line in the
/// reference.
pub fn undocumented(text: &str, doc: &str) -> Vec<String> {
    let mut names: Vec<String> = parse(text)
        .into_iter()
        .map(|(series, _)| series.split('{').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| {
            let base = ["_bucket", "_count", "_sum", "_created"]
                .iter()
                .find_map(|suffix| n.strip_suffix(suffix))
                .unwrap_or(n);
            !doc.contains(n.as_str()) && !doc.contains(base)
        })
        .collect()
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

    #[test]
    fn finds_names_the_doc_does_not_mention() {
        let text = "a_total 1\nh_bucket{le=\"1\"} 2\nh_count 2\nh_sum 0.5\nnew_one{x=\"y\"} 3\n";
        assert_eq!(
            undocumented(text, "`a_total` and `h` are here"),
            ["new_one"]
        );
    }
}
