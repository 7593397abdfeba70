//! What happens with every playlist received: revision bookkeeping, the
//! single-revision rules, the history (rules across reloads), then hints
//! and media.

use super::variant::VariantState;
use crate::findings::Issue;
use crate::m3u8::MediaPlaylist;
use crate::rules::playlist;

impl VariantState {
    /// Handles one playlist answer (`kind`: `blocking`, `plain`, ...).
    /// `waited`: the request was held (the answer tells when the newest
    /// part appeared).
    pub async fn on_playlist(
        &mut self,
        body: Vec<u8>,
        parsed: (MediaPlaylist, Vec<Issue>),
        kind: &str,
        waited: bool,
    ) {
        let (pl, syntax) = parsed;
        if body != self.last_body {
            self.revision += 1;
            self.counters.playlist_revisions += 1;
            self.shared.save(&self.url, self.revision, kind, &body);
            self.last_body = body;
        }
        self.add(syntax);
        self.add(playlist::check(&pl));
        let uris = playlist::uris(&pl, &self.url);
        self.add(uris);
        if self.history.is_stale(&pl) {
            self.counters.stale_reloads += 1;
            let stale = self.history.absorb(&pl);
            self.add(stale);
            return;
        }
        let changes = self.history.absorb(&pl);
        self.add(changes);
        let prev = self.last.take();
        self.cadence(prev.as_ref(), &pl, waited);
        self.last = Some(pl.clone());
        self.schedule_hints(&pl);
        if kind == "blocking" {
            // Right away: the reports are as fresh as this answer.
            self.check_reports(&pl).await;
        }
        self.fetch_media(&pl).await;
        self.hints.poll();
        self.judge_hints(&pl);
    }
}
