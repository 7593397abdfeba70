//! A stream's labels (see [`crate::labels`]): the media sequence number a
//! segment takes, and taking another origin's labels, files renamed.

use std::path::PathBuf;

use super::StreamState;
use crate::labels::{Adoption, Labels};
use crate::timeline::shift_time;

impl StreamState {
    /// The media sequence number of nginx-rtmp's fragment `nginx_msn` in
    /// this timeline: nginx-rtmp's count moved by what this origin adopted.
    /// A segment that `begins` never takes a number at or below one
    /// already listed (nginx-rtmp starts counting again when it cannot
    /// read its last playlist): names stay unique.
    pub(super) fn segment_msn(&mut self, nginx_msn: u64, begins: bool) -> u64 {
        let msn = nginx_msn.saturating_add_signed(self.msn_offset);
        if !begins {
            return msn;
        }
        let last = self
            .timeline
            .segments()
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn);
        match last {
            Some(last) if msn <= last => {
                self.msn_offset += (last + 1 - msn) as i64;
                last + 1
            }
            _ => msn,
        }
    }

    /// What this origin calls its last segments.
    pub fn labels(&self) -> Labels {
        self.timeline.labels()
    }

    /// The same, with the segments that start at `at` (see
    /// [`crate::timeline::Timeline::labels_at`]).
    pub fn labels_at(&self, at: &[u64]) -> Labels {
        self.timeline.labels_at(at)
    }

    /// Takes another origin's labels: the timeline's numbers, the
    /// date-times to come, and the files' names (hard links; the old names
    /// are deleted after the grace period, as files that left the
    /// playlist are).
    pub fn adopt(&mut self, a: &Adoption) {
        let (files, dropped) = self.timeline.relabel(a);
        for old in dropped {
            self.discard(self.dir.join(format!("{old}.m4s")));
        }
        self.msn_offset += a.msn;
        if let Some((wall, at)) = self.session.anchor {
            self.session.anchor = Some((shift_time(wall, a.pdt_ms), at));
        }
        self.session.wall = self.session.wall.map(|w| shift_time(w, a.pdt_ms));
        let growing = self.timeline.in_progress().map(|s| s.file);
        self.rename(files, growing);
        tracing::info!(dir = %self.dir.display(), epoch = a.epoch, msn = a.msn, part = a.part,
            "took another origin's labels");
    }

    /// Stops listing what precedes the segment that starts at `start` (see
    /// [`crate::labels::Verdict::Forget`]).
    pub fn forget_before(&mut self, start: u64) {
        let dropped = self.timeline.forget_before(start);
        if dropped.is_empty() {
            return;
        }
        for old in &dropped {
            self.discard(self.dir.join(format!("{old}.m4s")));
        }
        tracing::info!(dir = %self.dir.display(), segments = dropped.len(),
            "no longer lists the media before what it missed (the other origins have no discontinuity there)");
    }

    /// Links each segment file under its new name. Every id moved by the
    /// same amount, so the renames go from the far end: a new name is
    /// never one still to be moved.
    fn rename(&mut self, ids: Vec<(u64, u64)>, growing: Option<u64>) {
        let mut pairs: Vec<(String, String)> = ids
            .iter()
            .filter(|(o, n)| o != n)
            .map(|(old, new)| {
                if Some(*new) == growing {
                    (format!(".{old}.m4s"), format!(".{new}.m4s"))
                } else {
                    (format!("{old}.m4s"), format!("{new}.m4s"))
                }
            })
            .collect();
        if ids.first().is_some_and(|(o, n)| n > o) {
            pairs.reverse();
        }
        let new: Vec<String> = pairs.iter().map(|(_, n)| n.clone()).collect();
        for (old, name) in &pairs {
            let (from, to): (PathBuf, PathBuf) = (self.dir.join(old), self.dir.join(name));
            let _ = std::fs::remove_file(&to);
            if let Err(e) = std::fs::hard_link(&from, &to) {
                tracing::warn!(dir = %self.dir.display(), "renaming {old} to {name}: {e}");
                continue;
            }
            if !new.contains(old) {
                self.discard(from);
            }
        }
    }
}
