//! How the answers for a stream's fragments may be cached.
//!
//! nginx-rtmp writes the fragment in progress under its final name, and
//! LL-HLS publishes that name (its parts) long before the fragment is
//! complete. A plain GET of it returns the bytes written so far: an edge
//! that kept that answer would serve a truncated segment for as long as it
//! keeps it. And a viewer's browser must not store any byte range of a
//! fragment: while the file grows its length and ETag change, so a stored
//! part turns the next part's request into a conditional range (`If-Range`)
//! that no longer matches and gets the whole file, which the browser hands
//! to the player as the part (hls.js then stalled).
//!
//! The origin asks this component (`GET /fragment-state`, see `server/mod.rs`)
//! before it serves one of nginx-rtmp's fragments, and sends what it gets
//! back: a `Cache-Control` for viewers and, for edges (which cache byte
//! ranges by their own rule: exactly the closed range asked for, whose bytes
//! exist and never change), an `X-Accel-Expires: 0` on the whole-file
//! answers no cache may keep.

/// A complete fragment: never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Not to be stored.
pub const NO_STORE: &str = "no-store";

/// What this component knows about one fragment of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentState {
    /// Listed in nginx-rtmp's playlist, or older than the listed ones.
    Complete,
    /// Being written.
    Growing,
    /// Not known (a stream or fragment this component has not seen).
    Unknown,
}

/// How one answer may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caching {
    /// `Cache-Control`, for viewers.
    pub viewers: &'static str,
    /// `X-Accel-Expires` for the edge's cache (`"0"`: never keep it), or
    /// nothing: the edge's own rules apply.
    pub edges: Option<&'static str>,
}

/// How the answer for a fragment in `state` may be cached, when asked with
/// (`ranged`) or without a `Range` header.
pub fn caching(state: FragmentState, ranged: bool) -> Caching {
    match (state, ranged) {
        (_, true) => Caching {
            viewers: NO_STORE,
            edges: None,
        },
        (FragmentState::Complete, false) => Caching {
            viewers: IMMUTABLE,
            edges: None,
        },
        (FragmentState::Growing | FragmentState::Unknown, false) => Caching {
            viewers: NO_STORE,
            edges: Some("0"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_fragment_is_immutable_as_a_whole() {
        let c = caching(FragmentState::Complete, false);
        assert_eq!((c.viewers, c.edges), (IMMUTABLE, None));
    }

    #[test]
    fn the_growing_fragment_as_a_whole_is_kept_by_nobody() {
        for s in [FragmentState::Growing, FragmentState::Unknown] {
            let c = caching(s, false);
            assert_eq!((c.viewers, c.edges), (NO_STORE, Some("0")), "{s:?}");
        }
    }

    #[test]
    fn byte_ranges_are_never_stored_by_viewers_and_left_to_the_edge() {
        for s in [
            FragmentState::Complete,
            FragmentState::Growing,
            FragmentState::Unknown,
        ] {
            let c = caching(s, true);
            assert_eq!((c.viewers, c.edges), (NO_STORE, None), "{s:?}");
        }
    }
}
