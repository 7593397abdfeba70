//! The local HTTP listener: `POST /authorize` for nginx-rtmp's `on_publish`,
//! `GET /metrics` for Prometheus (with per-stream ingest facts read from
//! nginx-rtmp's statistics page when configured), `GET /healthz`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Authorizer;
use crate::ingest;
use crate::metrics::Metrics;

/// nginx-rtmp's `on_publish` form is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// Where `/metrics` reads nginx-rtmp's statistics for per-stream ingest
/// facts (`DISCOVERY_RTMP_STAT_URL`).
#[derive(Clone)]
pub struct RtmpStat {
    pub client: reqwest::Client,
    pub url: String,
}

#[derive(Clone)]
struct Shared {
    auth: Arc<Authorizer>,
    metrics: Arc<Metrics>,
    stat: Option<RtmpStat>,
}

pub fn router(auth: Arc<Authorizer>, metrics: Arc<Metrics>, stat: Option<RtmpStat>) -> Router {
    Router::new()
        .route("/authorize", post(authorize))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Shared {
            auth,
            metrics,
            stat,
        })
}

async fn authorize(State(s): State<Shared>, body: Bytes) -> Response {
    let answer = s.auth.authorize(body).await;
    match answer.location {
        Some(loc) => (answer.status, [(header::LOCATION, loc)]).into_response(),
        None => answer.status.into_response(),
    }
}

async fn metrics_text(State(s): State<Shared>) -> Response {
    if let Some(stat) = &s.stat {
        match ingest::fetch(&stat.client, &stat.url).await {
            Ok(facts) => s.metrics.set_ingest(&facts),
            Err(e) => {
                tracing::warn!("{e}; per-stream ingest metrics left out");
                s.metrics.rtmp_stat_errors.inc();
                s.metrics.set_ingest(&[]);
            }
        }
    }
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
