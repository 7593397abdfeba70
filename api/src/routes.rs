//! HTTP routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rtmp_live_types::{is_valid_host, is_valid_name, StreamInfo, StreamReport};
use serde::Deserialize;

use crate::auth::{bearer_matches, StreamKeys};
use crate::error::ApiError;
use crate::store::Store;

/// Largest accepted request body.
pub const MAX_BODY: usize = 4 * 1024;

pub struct AppState {
    pub store: Store,
    pub keys: StreamKeys,
    pub token: Option<String>,
    pub publish_redirect: String,
}

type Shared = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/streams", get(list_streams).post(report_stream))
        .route("/streams/{name}", get(get_stream).delete(delete_stream))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn readyz(State(s): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    s.store.ping().await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// The parameters nginx-rtmp sends with `on_publish` (only `name` matters).
#[derive(Debug, Deserialize)]
pub struct PublishParams {
    name: Option<String>,
    addr: Option<String>,
    app: Option<String>,
}

async fn authorize_get(
    State(s): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    q: Result<Query<PublishParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    authorize(&s, peer, p)
}

async fn authorize_post(
    State(s): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let p: PublishParams = serde_urlencoded::from_bytes(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid form body: {e}")))?;
    authorize(&s, peer, p)
}

fn authorize(s: &AppState, peer: SocketAddr, p: PublishParams) -> Result<Response, ApiError> {
    let key = p.name.unwrap_or_default();
    let client = p.addr.unwrap_or_else(|| "-".into());
    let app = p.app.unwrap_or_else(|| "-".into());
    match s.keys.public_name(&key) {
        Some(name) => {
            let location = s.publish_redirect.replace("{name}", name);
            tracing::info!(%peer, client = %client, app = %app, stream = %name, "publish allowed");
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        None => {
            tracing::warn!(%peer, client = %client, app = %app, "publish denied: unknown stream key");
            Err(ApiError::Forbidden)
        }
    }
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(e.body_text())
    }
}

fn check_token(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &s.token {
        None => Ok(()),
        Some(t) => {
            let h = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if bearer_matches(h, t) {
                Ok(())
            } else {
                Err(ApiError::Unauthorized)
            }
        }
    }
}

async fn report_stream(
    State(s): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    check_token(&s, &headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(body_error)?;
    let report: StreamReport = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    report
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    s.store.report(&report).await?;
    tracing::debug!(stream = %report.name, host = %report.host, "report");
    Ok(StatusCode::NO_CONTENT)
}

async fn get_stream(
    State(s): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamInfo>, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !is_valid_name(&name) {
        return Err(ApiError::BadRequest(
            rtmp_live_types::Invalid::Name.to_string(),
        ));
    }
    s.store
        .lookup(&name)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("stream not found"))
}

async fn list_streams(State(s): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    let streams = s.store.list().await?;
    Ok(Json(serde_json::json!({ "streams": streams })))
}

#[derive(Debug, Deserialize)]
struct DeleteParams {
    host: Option<String>,
}

async fn delete_stream(
    State(s): Shared,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    q: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    check_token(&s, &headers)?;
    let Path(name) = name.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !is_valid_name(&name) {
        return Err(ApiError::BadRequest(
            rtmp_live_types::Invalid::Name.to_string(),
        ));
    }
    if let Some(h) = &q.host {
        if !is_valid_host(h) {
            return Err(ApiError::BadRequest(
                rtmp_live_types::Invalid::Host.to_string(),
            ));
        }
    }
    s.store.remove(&name, q.host.as_deref()).await?;
    tracing::info!(stream = %name, host = q.host.as_deref().unwrap_or("*"), "stream removed");
    Ok(StatusCode::NO_CONTENT)
}
