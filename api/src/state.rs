//! What every request handler shares (axum's `State`).

use std::sync::Arc;

use crate::auth::{FailureLimiter, StreamKeys, Tokens};
use crate::metrics::Metrics;
use crate::store::Store;

pub struct AppState {
    pub store: Store,
    pub keys: StreamKeys,
    pub tokens: Tokens,
    pub limiter: FailureLimiter,
    pub publish_redirect: String,
    pub metrics: Arc<Metrics>,
}
