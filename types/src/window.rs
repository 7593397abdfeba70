//! How far back a live stream can be played: the DVR window (`DVR_WINDOW`),
//! read the same way by the LL-HLS component, `make up` and the origin
//! container's renderer, so that the playlist the component serves and the
//! one nginx-rtmp writes (without the component) hold the same span.

use std::time::Duration;

/// The playlist of a stream without a DVR window (`DVR_WINDOW=0`), and the
/// shortest with one: four 2 s fragments, as nginx-rtmp's
/// `hls_playlist_length` always was.
pub const LIVE: Duration = Duration::from_secs(8);

/// The default DVR window: 30 minutes.
pub const DEFAULT: &str = "30m";

/// The longest accepted window (a day): the component keeps every listed
/// segment's bookkeeping in memory (about 150 bytes each past the last
/// minute).
pub const MAX: Duration = Duration::from_secs(86_400);

/// Parses a window: `0` (none), plain seconds (`1800`), or a duration with
/// units (`30m`, `90s`, `1h30m`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = parse_duration(t)?;
    if d > MAX {
        return Err(format!("{t:?}: longer than a day"));
    }
    Ok(d)
}

/// A duration: plain seconds (`1800`) or with units (`30m`, `24h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("{t:?}: {e} (expected e.g. 30m, 1800, 0)")),
    }
}

/// How much a stream's playlist spans: the window, or [`LIVE`] when it is
/// shorter (or off).
pub fn playlist_span(window: Duration) -> Duration {
    window.max(LIVE)
}

/// nginx-rtmp's `hls_playlist_length` for a span (whole seconds).
pub fn nginx_length(span: Duration) -> String {
    format!("{}s", span.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1800"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse(DEFAULT), Ok(Duration::from_secs(1800)));
        assert_eq!(parse(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("2d").is_err());
        assert!(parse("-5").is_err());
        assert!(parse("soon").unwrap_err().contains("expected"));
    }

    #[test]
    fn span_never_below_the_live_playlist() {
        assert_eq!(playlist_span(Duration::ZERO), LIVE);
        assert_eq!(playlist_span(Duration::from_secs(5)), LIVE);
        assert_eq!(playlist_span(Duration::from_secs(1800)).as_secs(), 1800);
        assert_eq!(nginx_length(LIVE), "8s");
        assert_eq!(nginx_length(Duration::from_secs(1800)), "1800s");
    }
}
