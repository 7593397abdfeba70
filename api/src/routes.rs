//! HTTP routes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rtmp_live_types::{
    recording, Host, PlaybackName, StreamInfo, StreamName, StreamReport, ValidReport,
};
use serde::{Deserialize, Serialize};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::{key_hash, Writer};
use crate::error::ApiError;
use crate::extract::{ApiForm, ApiJson, ApiPath, ApiQuery};
use crate::metrics;
use crate::state::{AppState, Shared};
use crate::store::Claim;
use crate::viewer_snapshot::Snapshot;
use crate::{playback, recordings, viewers};

/// Largest accepted request body.
pub const MAX_BODY: usize = 4 * 1024;
/// Most streams one `GET /streams` answers with.
pub const MAX_LIST: usize = 1000;

pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            // The path only (the query of /authorize holds a stream key),
            // Debug-formatted so control characters are escaped.
            tracing::info_span!("http", method = %req.method(), path = ?req.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO));
    Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/streams", get(list_streams).post(report_stream))
        .route("/streams/{name}", get(get_stream).delete(delete_stream))
        .route("/streams/{name}/playback-tokens", post(playback::issue))
        .route("/streams/{name}/recordings", get(recordings::list))
        .route(
            "/recordings/{host}",
            put(recordings::report).layer(DefaultBodyLimit::max(recordings::MAX_BODY)),
        )
        .route(
            "/edges/{edge}/viewers",
            // A report may name 10,000 streams: its own body limit.
            put(viewers::report).layer(DefaultBodyLimit::max(viewers::MAX_BODY)),
        )
        .route("/live", get(live_names))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { ApiError::NotFound("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(request_timeout, timeout))
        .layer(trace)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Bounds the whole request (handler included): 408 with a JSON body.
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}

async fn readyz(State(s): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    s.store.ping().await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

/// Prometheus scrape target. Needs no token: keep it off public networks.
/// Viewer counts come from the snapshot, one series per live stream.
async fn metrics_text(State(s): Shared) -> Response {
    let viewers = s.viewers.snapshot();
    s.metrics
        .viewer_report_edges
        .set(i64::try_from(viewers.edges()).unwrap_or(i64::MAX));
    let per_stream = match s.store.count().await {
        Ok(census) => {
            s.metrics.live_streams.set(census.streams);
            s.metrics.live_origins.set(census.origins);
            let v: Vec<(String, u64)> = census
                .names
                .into_iter()
                .map(|n| {
                    let c = viewers.viewers(&n);
                    (n, c)
                })
                .collect();
            Some(v)
        }
        Err(_) => None,
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(per_stream.as_deref()),
    )
        .into_response()
}

/// Adds what the API knows without Redis: the signed flag (stream keys)
/// and the viewers (the snapshot).
fn annotate(s: &AppState, mut info: StreamInfo, viewers: &Snapshot) -> StreamInfo {
    info.signed = s.keys.is_signed(&info.name);
    info.viewers = viewers.viewers(&info.name);
    info
}

/// The parameters nginx-rtmp sends with `on_publish` (`name` is the key the
/// publisher typed, `addr` its address). They reach the API through the
/// origin's discovery, which adds the origin's token: `/authorize` answers
/// only callers with a registry token ([`Writer`], 401 otherwise), so
/// `addr` is what an origin reported, never what anyone else claims.
#[derive(Debug, Deserialize)]
pub struct PublishParams {
    name: Option<String>,
    addr: Option<String>,
    app: Option<String>,
}

async fn authorize_get(
    State(s): Shared,
    _origin: Writer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiQuery(p): ApiQuery<PublishParams>,
) -> Result<Response, ApiError> {
    authorize(&s, peer, p).await
}

async fn authorize_post(
    State(s): Shared,
    _origin: Writer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiForm(p): ApiForm<PublishParams>,
) -> Result<Response, ApiError> {
    authorize(&s, peer, p).await
}

async fn authorize(s: &AppState, peer: SocketAddr, p: PublishParams) -> Result<Response, ApiError> {
    // nginx-rtmp passes the publisher's address (trusted: the caller holds
    // an origin's token); failures are counted per publisher, not per origin
    // (which would let one guesser lock out every publisher of that origin).
    // Without it, the caller's address counts.
    let client: IpAddr = p
        .addr
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| peer.ip());
    let app = p.app.as_deref().unwrap_or("-");
    if let Err(e) = s.limiter.check(client) {
        tracing::warn!(%peer, %client, ?app, "publish refused: too many failed attempts");
        s.metrics.authorize_result("rate_limited");
        return Err(e);
    }
    let key = p.name.unwrap_or_default();
    let Some(name) = s.keys.public_name(&key) else {
        s.limiter.record_failure(client);
        tracing::warn!(%peer, %client, ?app, "publish denied: unknown stream key");
        s.metrics.authorize_result("unknown_key");
        return Err(ApiError::Forbidden("unknown stream key".into()));
    };
    match s.store.claim(name, &key_hash(&key)).await {
        Ok(Claim::Granted) => {
            let location = s.publish_redirect.replace("{name}", name);
            tracing::info!(%peer, %client, ?app, stream = %name, "publish allowed");
            s.metrics.authorize_result("allowed");
            Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        Ok(Claim::Taken) => {
            tracing::warn!(%peer, %client, ?app, stream = %name, "publish refused: the stream is live under another key");
            s.metrics.authorize_result("name_taken");
            Err(ApiError::Forbidden(format!(
                "stream {name} is live under another key"
            )))
        }
        Ok(Claim::Recovering) => {
            tracing::warn!(%peer, %client, ?app, stream = %name,
                "publish refused for now: the registry is recovering and the name has no owner record yet");
            s.metrics.authorize_result("recovering");
            Err(ApiError::Unavailable(
                "the registry is recovering: retry in a few seconds",
            ))
        }
        Err(e) => {
            tracing::warn!(%peer, %client, ?app, stream = %name, "publish refused: cannot check the stream's owner");
            s.metrics.authorize_result("error");
            Err(e)
        }
    }
}

async fn report_stream(
    State(s): Shared,
    writer: Writer,
    ApiJson(report): ApiJson<ValidReport>,
) -> Result<StatusCode, ApiError> {
    writer.refuse_host(&report.host, "report")?;
    let report = StreamReport::from(report);
    let since = s.store.report(&report).await?;
    tracing::debug!(stream = %report.name, host = %report.host, since, "report");
    Ok(StatusCode::NO_CONTENT)
}

async fn get_stream(
    State(s): Shared,
    ApiPath(name): ApiPath<PlaybackName>,
) -> Result<Json<StreamInfo>, ApiError> {
    if let Some((stream, start)) = recording::parse_name(&name) {
        return recordings::lookup(&s, stream, start)
            .await?
            .map(Json)
            .ok_or(ApiError::NotFound("recording not found"));
    }
    let info = s
        .store
        .lookup(&name)
        .await?
        .ok_or(ApiError::NotFound("stream not found"))?;
    Ok(Json(annotate(&s, info, &s.viewers.snapshot())))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    /// 1..=1000 (larger values are capped).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<StreamName>,
}

#[derive(Debug, Serialize)]
struct StreamList {
    streams: Vec<StreamInfo>,
    /// More streams follow: ask again with `cursor=next_cursor`.
    truncated: bool,
    next_cursor: Option<String>,
}

/// `GET /live`: the names of the live streams and their viewers, nothing
/// else (no origin addresses), for public listings such as the edge's
/// player page.
#[derive(Debug, Serialize)]
struct LiveNames {
    streams: Vec<String>,
    truncated: bool,
    /// Every listed name, with 0 when no edge reports viewers of it.
    viewers: BTreeMap<String, u64>,
}

async fn live_names(State(s): Shared) -> Result<Json<LiveNames>, ApiError> {
    let (streams, next_cursor) = s.store.list(None, MAX_LIST).await?;
    let snapshot = s.viewers.snapshot();
    let streams: Vec<String> = streams.into_iter().map(|i| i.name).collect();
    let viewers = streams
        .iter()
        .map(|n| (n.clone(), snapshot.viewers(n)))
        .collect();
    Ok(Json(LiveNames {
        streams,
        truncated: next_cursor.is_some(),
        viewers,
    }))
}

async fn list_streams(
    State(s): Shared,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<StreamList>, ApiError> {
    let limit = match p.limit {
        Some(0) => return Err(ApiError::BadRequest("limit must be at least 1".into())),
        Some(n) => n.min(MAX_LIST),
        None => MAX_LIST,
    };
    let (streams, next_cursor) = s.store.list(p.cursor.as_deref(), limit).await?;
    let snapshot = s.viewers.snapshot();
    Ok(Json(StreamList {
        streams: streams
            .into_iter()
            .map(|i| annotate(&s, i, &snapshot))
            .collect(),
        truncated: next_cursor.is_some(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize)]
struct DeleteParams {
    host: Option<Host>,
}

async fn delete_stream(
    State(s): Shared,
    writer: Writer,
    ApiPath(name): ApiPath<StreamName>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    match &q.host {
        Some(h) => writer.refuse_host(h, "delete")?,
        None if writer.is_per_origin() => {
            tracing::warn!(stream = %name, "delete refused: a per-origin token must name its host");
            return Err(ApiError::Forbidden(
                "this token may only delete its own hosts' registrations: pass ?host=".into(),
            ));
        }
        None => {}
    }
    s.store.remove(&name, q.host.as_deref()).await?;
    tracing::info!(stream = %name, host = q.host.as_deref().unwrap_or("*"), "stream removed");
    Ok(StatusCode::NO_CONTENT)
}
