//! Reports this origin's finished recordings to the API every heartbeat:
//! the whole list (`PUT /recordings/{host}`), so that the API forgets a
//! recording retention deleted (it keeps each report for a few
//! heartbeats) and one a wiped Redis lost comes back at the next beat.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rtmp_live_types::recording::{self, Recording, RecordingReport};

use crate::apis::Apis;

/// What the reporting task needs.
pub struct RecordingReporter {
    pub http: reqwest::Client,
    pub apis: Arc<Apis>,
    pub token: Option<String>,
    pub host: String,
    pub root: PathBuf,
    pub every: Duration,
}

impl RecordingReporter {
    /// Reports forever, every `every`.
    pub async fn run(self) {
        let mut last_empty = true;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let root = self.root.clone();
            let found = tokio::task::spawn_blocking(move || finished(&root))
                .await
                .unwrap_or_default();
            // nothing to say twice: an empty list only once after others
            if found.is_empty() && last_empty {
                continue;
            }
            let empty = found.is_empty();
            match self.send(found).await {
                Ok(()) => last_empty = empty,
                Err(e) => tracing::warn!("reporting recordings: {e}"),
            }
        }
    }

    async fn send(&self, recordings: Vec<Recording>) -> Result<(), String> {
        let report = RecordingReport { recordings };
        let make = |base: &str| {
            let req = self
                .http
                .put(format!("{base}/recordings/{}", self.host))
                .timeout(Duration::from_secs(5))
                .json(&report);
            match &self.token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        let r = self.apis.send(make).await.map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
    }
}

/// The finished recordings under `root` (`<name>/<start>/recording.json`),
/// at most [`recording::MAX_PER_REPORT`], newest first.
pub fn finished(root: &Path) -> Vec<Recording> {
    let mut out = Vec::new();
    for name in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for session in std::fs::read_dir(name.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let meta = std::fs::read(session.path().join(recording::META))
                .ok()
                .and_then(|b| serde_json::from_slice::<Recording>(&b).ok());
            if let Some(r) = meta.filter(Recording::is_valid) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.end));
    out.truncate(recording::MAX_PER_REPORT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_finished_recordings_only() {
        let d = tempfile::tempdir().unwrap();
        let r = Recording {
            name: "golive".into(),
            start: 10,
            end: 20,
            duration: 0.01,
            bytes: 1,
            manifest: "index.m3u8".into(),
        };
        let s = recording::session_dir(d.path(), "golive", 10);
        std::fs::create_dir_all(&s).unwrap();
        std::fs::write(s.join(recording::META), serde_json::to_vec(&r).unwrap()).unwrap();
        // in progress, and garbage
        std::fs::create_dir_all(recording::session_dir(d.path(), "golive", 30)).unwrap();
        let g = recording::session_dir(d.path(), "other", 1);
        std::fs::create_dir_all(&g).unwrap();
        std::fs::write(g.join(recording::META), b"{").unwrap();
        assert_eq!(finished(d.path()), vec![r]);
        assert!(finished(&d.path().join("missing")).is_empty());
    }
}
