//! Holding back a new publish session of a replicated stream until this
//! origin has compared its labels with the others' (see [`crate::labels`]).
//!
//! A session that begins after media this origin missed (its relay broke,
//! its nginx froze) is first numbered from this origin's own count, which
//! fell behind; a new session's date-times are this origin's clock. The
//! other origins' labels arrive within a second ([`crate::sync`] compares a
//! new session at once). Until then, or [`HOLD`], viewers see the stream as
//! it was before the session began: the playlist and blocking reloads
//! answer as then, its parts are "not yet"; then everything at once, under
//! the names every origin gives it. A viewer that moves here from another
//! origin is never handed numbers that do not continue the ones it had.

use std::time::{Duration, Instant};

use super::StreamState;
use crate::blocking::View;
use crate::timeline::PartLookup;

/// The longest a session is held back (its peers do not answer).
pub const HOLD: Duration = Duration::from_millis(1500);

/// What viewers see while a session is held back.
#[derive(Debug)]
pub(super) struct Held {
    until: Instant,
    view: Option<View>,
    rendered: [Option<String>; 2],
    last_part: Option<(u64, Option<u64>)>,
    /// The first part of the session: this and later ones are not yet.
    first_part: u64,
}

impl StreamState {
    /// A new session's first segment is about to begin: what viewers see
    /// stays as it is now (only for a stream other origins carry too).
    pub(super) fn hold_back(&mut self) {
        if !self.settings.replicated || self.held.is_some() {
            return;
        }
        let rendered = [self.render(false), self.render(true)];
        self.held = Some(Held {
            until: Instant::now() + HOLD,
            view: self.timeline.view(self.settings.part_target),
            rendered,
            last_part: self.timeline.last_part(),
            first_part: self.timeline.next_part(),
        });
    }

    /// The labels were compared (or the hold is over): viewers see the
    /// session. Whether anything was held.
    pub fn release(&mut self) -> bool {
        self.held.take().is_some()
    }

    /// Releases a hold that lasted [`HOLD`]. Whether it did.
    pub(super) fn release_due(&mut self, now: Instant) -> bool {
        if self.held.as_ref().is_some_and(|h| now >= h.until) {
            return self.release();
        }
        false
    }

    pub fn held(&self) -> bool {
        self.held.is_some()
    }

    /// This origin is behind another one of the same session (see
    /// `sync.rs`): what its viewers ask for is there. Returns whether that
    /// changed.
    pub fn set_lagging(&mut self, lagging: bool) -> bool {
        std::mem::replace(&mut self.lagging, lagging) != lagging
    }

    /// Whether requests for this stream are better answered by another
    /// origin.
    pub fn lagging(&self) -> bool {
        self.lagging
    }

    pub(super) fn held_view(&self) -> Option<Option<View>> {
        self.held.as_ref().map(|h| h.view)
    }

    pub(super) fn held_render(&self, skip: bool) -> Option<Option<String>> {
        self.held
            .as_ref()
            .map(|h| h.rendered[usize::from(skip)].clone())
    }

    pub(super) fn held_last_part(&self) -> Option<Option<(u64, Option<u64>)>> {
        self.held.as_ref().map(|h| h.last_part)
    }

    /// What asking for part `n` gets now (see
    /// [`crate::timeline::Timeline::part`]); while a session is held, its
    /// first part is "soon" (the hint viewers of this origin were given)
    /// and the later ones are known elsewhere: `None`.
    pub fn part(&self, n: u64) -> Option<PartLookup> {
        match &self.held {
            Some(h) if n == h.first_part => Some(PartLookup::Soon),
            Some(h) if n > h.first_part => None,
            _ => match self.timeline.part(n) {
                // behind: only what is here is served from here
                PartLookup::Soon if self.lagging => None,
                l => Some(l),
            },
        }
    }

    /// Whether a blocking reload for `(msn, part)` asks for more than the
    /// next part of what this origin shows while it holds a session: a
    /// viewer that saw more on another origin, which has it. (`None`: no
    /// session held.)
    pub fn ahead_of_held(&self, msn: u64, part: Option<u64>) -> bool {
        let Some(Some(v)) = self.held.as_ref().map(|h| h.view) else {
            return false;
        };
        (msn, part.unwrap_or(0)) > (v.current_msn, v.current_parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Settings;
    use crate::timeline::Segment;

    fn seg(msn: u64, disc: bool) -> Segment {
        crate::timeline::test_segment(msn, 1_000 + msn, disc)
    }

    fn state(dir: &std::path::Path, replicated: bool) -> StreamState {
        let settings = Settings {
            part_target: 0.36,
            min_target_duration: 2,
            pace: crate::pace::Pace::new(Duration::from_millis(10)),
            window: Duration::from_secs(8),
            recordings: None,
            replicated,
        };
        let mut st = StreamState::new("s", dir.to_path_buf(), settings);
        for msn in 0..2 {
            st.timeline.begin(seg(msn, false));
            for k in 0..3 {
                st.timeline.add_part(k * 10, 10, 30_000, k == 0);
            }
            st.timeline.complete();
        }
        st.timeline.announce();
        st
    }

    #[test]
    fn a_held_session_is_not_seen_until_released() {
        let d = tempfile::tempdir().unwrap();
        let mut st = state(d.path(), true);
        let before = st.render(false).unwrap();
        let view = st.view().unwrap();
        assert_eq!((view.current_msn, view.current_parts), (2, 0));
        // a new session begins after media this origin missed
        st.hold_back();
        st.timeline.begin(seg(9, true));
        st.timeline.add_part(0, 10, 30_000, true);
        st.timeline.add_part(10, 10, 30_000, false);
        assert!(st.held());
        // viewers see what they saw, and wait for the hinted part...
        assert_eq!(st.render(false).unwrap(), before);
        assert_eq!(st.view().unwrap().current_msn, 2);
        assert_eq!(st.part(6), Some(PartLookup::Soon));
        // ...and one that saw more elsewhere is sent elsewhere
        assert_eq!(st.part(7), None);
        assert!(st.ahead_of_held(2, Some(1)));
        assert!(st.ahead_of_held(3, Some(0)));
        assert!(!st.ahead_of_held(2, Some(0)));
        assert!(!st.ahead_of_held(1, Some(2)));
        // compared: everything at once
        assert!(st.release());
        assert!(!st.held());
        assert_ne!(st.render(false).unwrap(), before);
        assert!(matches!(st.part(7), Some(PartLookup::Ready(_))));
        assert!(!st.ahead_of_held(3, Some(0)));
    }

    #[test]
    fn an_origin_behind_another_serves_only_what_it_has() {
        let d = tempfile::tempdir().unwrap();
        let mut st = state(d.path(), true);
        assert!(st.set_lagging(true));
        assert!(!st.set_lagging(true));
        assert!(st.lagging());
        assert!(matches!(st.part(5), Some(PartLookup::Ready(_))));
        // the hinted part: another origin has it
        assert_eq!(st.part(6), None);
        assert!(st.set_lagging(false));
        assert_eq!(st.part(6), Some(PartLookup::Soon));
    }

    #[test]
    fn a_hold_ends_by_itself_and_only_replicated_streams_are_held() {
        let d = tempfile::tempdir().unwrap();
        let mut st = state(d.path(), true);
        st.hold_back();
        assert!(!st.release_due(Instant::now()));
        assert!(st.release_due(Instant::now() + HOLD));
        let mut alone = state(d.path(), false);
        alone.hold_back();
        assert!(!alone.held());
    }
}
