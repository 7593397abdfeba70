//! The local HTTP listener: `POST /authorize` for nginx-rtmp's `on_publish`,
//! `GET /metrics` for Prometheus, `GET /healthz`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Authorizer;
use crate::metrics::Metrics;

/// nginx-rtmp's `on_publish` form is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

#[derive(Clone)]
struct Shared {
    auth: Arc<Authorizer>,
    metrics: Arc<Metrics>,
}

pub fn router(auth: Arc<Authorizer>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/authorize", post(authorize))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Shared { auth, metrics })
}

async fn authorize(State(s): State<Shared>, body: Bytes) -> Response {
    let answer = s.auth.authorize(body).await;
    match answer.location {
        Some(loc) => (answer.status, [(header::LOCATION, loc)]).into_response(),
        None => answer.status.into_response(),
    }
}

async fn metrics_text(State(s): State<Shared>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}
