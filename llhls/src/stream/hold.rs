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
            _ => Some(self.timeline.part(n)),
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
