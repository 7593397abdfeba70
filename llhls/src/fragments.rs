//! Which answers for a stream's fragments a cache may keep.
//!
//! nginx-rtmp writes the fragment in progress under its final name, and
//! LL-HLS publishes that name (its parts) long before the fragment is
//! complete. A plain GET of it, or a range reaching past the published
//! parts, returns the bytes written so far: a cache that kept such an answer
//! would serve a truncated segment for as long as it keeps it. The origin
//! asks this component (`GET /fragment-state`, see `server.rs`) before it
//! serves one of nginx-rtmp's fragments, and sends the `Cache-Control` it
//! gets back.

/// A complete fragment, or a range whose bytes are final: never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Bytes that may still grow (or a fragment this component cannot vouch
/// for): nobody keeps them.
pub const NO_STORE: &str = "no-store";

/// What this component knows about one fragment of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentState {
    /// Listed in nginx-rtmp's playlist, or older than the listed ones.
    Complete,
    /// Being written; its first `published` bytes are listed as parts.
    Growing { published: u64 },
    /// Not known (a stream or fragment this component has not seen).
    Unknown,
}

/// A single closed byte range `bytes=<first>-<last>` (inclusive).
pub fn closed_range(header: &str) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    (first <= last).then_some((first, last))
}

/// The `Cache-Control` of an answer for a fragment in `state`, asked with
/// the `Range` header `range` (if any).
pub fn cache_control(state: FragmentState, range: Option<&str>) -> &'static str {
    match state {
        FragmentState::Complete => IMMUTABLE,
        FragmentState::Growing { published } => match range.and_then(closed_range) {
            // the bytes of published parts are written once and never change
            Some((_, last)) if last < published => IMMUTABLE,
            _ => NO_STORE,
        },
        FragmentState::Unknown => NO_STORE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_fragments_are_immutable_whatever_the_range() {
        for range in [None, Some("bytes=0-"), Some("bytes=10-20"), Some("junk")] {
            assert_eq!(cache_control(FragmentState::Complete, range), IMMUTABLE);
        }
    }

    #[test]
    fn a_growing_fragment_is_cacheable_only_within_its_published_parts() {
        let g = FragmentState::Growing { published: 1000 };
        assert_eq!(cache_control(g, None), NO_STORE, "plain GET: bytes so far");
        assert_eq!(cache_control(g, Some("bytes=0-")), NO_STORE, "open range");
        assert_eq!(cache_control(g, Some("bytes=0-999")), IMMUTABLE);
        assert_eq!(cache_control(g, Some("bytes=500-999")), IMMUTABLE);
        assert_eq!(cache_control(g, Some("bytes=500-1000")), NO_STORE);
        assert_eq!(cache_control(g, Some("bytes=0-99999999")), NO_STORE);
        assert_eq!(cache_control(g, Some("bytes=0-10,20-30")), NO_STORE);
        assert_eq!(cache_control(g, Some("bytes=-500")), NO_STORE, "suffix");
        let nothing = FragmentState::Growing { published: 0 };
        assert_eq!(cache_control(nothing, Some("bytes=0-0")), NO_STORE);
    }

    #[test]
    fn unknown_fragments_are_not_kept() {
        assert_eq!(cache_control(FragmentState::Unknown, None), NO_STORE);
        assert_eq!(
            cache_control(FragmentState::Unknown, Some("bytes=0-10")),
            NO_STORE
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(closed_range("bytes=0-0"), Some((0, 0)));
        assert_eq!(closed_range(" bytes=5-10 "), Some((5, 10)));
        assert_eq!(closed_range("bytes=10-5"), None);
        assert_eq!(closed_range("bytes=5-"), None);
        assert_eq!(closed_range("items=0-1"), None);
        assert_eq!(closed_range("bytes=1-2,3-4"), None);
    }
}
