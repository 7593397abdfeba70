//! What every request handler shares (axum's `State`).

use std::sync::Arc;

use axum::extract::State;

use crate::auth::{StreamKeys, Tokens};
use crate::limiter::FailureLimiter;
use crate::metrics::Metrics;
use crate::roles::RoleToken;
use crate::secret::PlaybackSecret;
use crate::store::Store;
use crate::viewer_snapshot::ViewerCounts;

pub struct AppState {
    pub store: Store,
    pub keys: StreamKeys,
    pub tokens: Tokens,
    pub limiter: FailureLimiter,
    pub publish_redirect: String,
    pub metrics: Arc<Metrics>,
    /// May issue playback tokens.
    pub operator: RoleToken,
    /// May report viewer counts.
    pub edge: RoleToken,
    /// Signs playback tokens; `None`: issuing answers 503.
    pub playback_secret: Option<PlaybackSecret>,
    /// The viewer counts answered with (refreshed in the background).
    pub viewers: Arc<ViewerCounts>,
}

/// What every handler gets: the shared state.
pub type Shared = State<Arc<AppState>>;
