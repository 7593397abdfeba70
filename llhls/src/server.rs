//! HTTP: `GET /<name>/index.m3u8` (and an ABR rendition's
//! `/<name>/<rendition>/index.m3u8`) as LL-HLS, with blocking reloads; and
//! `GET /fragment-state`, the origin's question before it serves a fragment.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::blocking::{self, Decision};
use crate::fragments::{self, FragmentState};
use crate::registry::Registry;

/// Longest hold of a blocking reload: 3 target durations (the spec), but
/// never more than this, so that proxies in front (the edge waits 8 s for a
/// playlist before it counts the origin as failed) see the 503 first.
pub const MAX_HOLD: Duration = Duration::from_secs(6);

/// How long an answer may wait for the next fragment's file to appear, so
/// that the playlist carries its preload hint: nginx-rtmp opens the next
/// fragment a fraction of a millisecond after it lists the previous one.
/// Without the hint, a playlist whose parts all belong to complete segments
/// made hls.js 1.7 misplace its live edge by seconds.
pub const HINT_WAIT: Duration = Duration::from_millis(100);

pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/{name}/index.m3u8", get(playlist))
        .route("/{name}/{rendition}/index.m3u8", get(rendition_playlist))
        .route("/fragment-state", get(fragment_state))
        .with_state(reg)
}

/// An error: a short JSON body (the messages are fixed ASCII text).
fn text(status: StatusCode, msg: &'static str) -> Response {
    (
        status,
        [
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        format!("{{\"error\":\"{}\"}}\n", msg.trim_end()),
    )
        .into_response()
}

/// The origin's question before it serves one of nginx-rtmp's fragments
/// (`X-Fragment: <stream>/<number>`, `<stream>` with its rendition for ABR, and the viewer's `Range` if any):
/// answered with how that answer may be cached (see [`fragments`]):
/// `X-Fragment-Cache` (the viewers' `Cache-Control`) and, when no cache may
/// keep it, `X-Fragment-Accel-Expires: 0` (the edges'). Always 204, so that
/// the origin's `auth_request` lets the request through; a question it
/// cannot parse is about an unknown fragment.
async fn fragment_state(State(reg): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let state = headers
        .get("x-fragment")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(name, num)| Some((name, num.parse::<u64>().ok()?)))
        .and_then(|(name, num)| {
            let s = reg.get(name)?;
            let st = s.state.lock().expect("stream lock");
            Some(st.fragment_state(num))
        })
        .unwrap_or(FragmentState::Unknown);
    let c = fragments::caching(state, headers.contains_key(header::RANGE));
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert("x-fragment-cache", HeaderValue::from_static(c.viewers));
    if let Some(e) = c.edges {
        h.insert("x-fragment-accel-expires", HeaderValue::from_static(e));
    }
    res
}

/// An ABR rendition's playlist (`<name>/<rendition>/index.m3u8`): the same,
/// with rendition reports of its siblings.
async fn rendition_playlist(
    State(reg): State<Arc<Registry>>,
    Path((name, rendition)): Path<(String, String)>,
    q: RawQuery,
) -> Response {
    playlist(State(reg), Path(format!("{name}/{rendition}")), q).await
}

/// `EXT-X-RENDITION-REPORT` lines for the other renditions of `key`'s
/// stream (nothing for a single-rendition stream).
fn rendition_reports(reg: &Registry, key: &str) -> String {
    let mut out = String::new();
    for (other, s) in reg.siblings(key) {
        let Some((_, rendition)) = other.split_once('/') else {
            continue;
        };
        let Some((msn, part)) = s.state.lock().expect("stream lock").last_part() else {
            continue;
        };
        out.push_str(&format!(
            "#EXT-X-RENDITION-REPORT:URI=\"../{rendition}/index.m3u8\",LAST-MSN={msn}"
        ));
        if let Some(p) = part {
            out.push_str(&format!(",LAST-PART={p}"));
        }
        out.push('\n');
    }
    out
}

async fn playlist(
    State(reg): State<Arc<Registry>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match blocking::parse_query(q.as_deref()) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(stream) = reg.get(&name) else {
        return text(StatusCode::NOT_FOUND, "no such stream\n");
    };
    let mut rx = stream.changed.subscribe();
    let mut deadline = None;
    let mut hint_deadline = None;
    loop {
        let (decision, body, td, next_known) = {
            let st = stream.state.lock().expect("stream lock");
            let Some(view) = st.view() else {
                return text(StatusCode::NOT_FOUND, "no playlist yet\n");
            };
            let d = blocking::decide(req, &view);
            let body = if d == Decision::Ready {
                st.render()
            } else {
                None
            };
            (d, body, st.target_duration(), st.next_known())
        };
        if decision == Decision::Ready && !next_known {
            let until =
                *hint_deadline.get_or_insert_with(|| tokio::time::Instant::now() + HINT_WAIT);
            if tokio::time::Instant::now() < until {
                let _ = tokio::time::timeout_at(until, rx.changed()).await;
                continue;
            }
            // no next fragment after all (the publisher left): answer as is
        }
        match decision {
            Decision::Ready => {
                let Some(mut body) = body else {
                    return text(StatusCode::NOT_FOUND, "no playlist yet\n");
                };
                body.push_str(&rendition_reports(&reg, &name));
                // a blocking response is for a unique URL: cacheable for
                // longer; a plain reload for a second, as the playlist file
                // always was (edges and players reuse it for that long)
                let cache = if req.msn.is_some() {
                    format!("public, max-age={}", 6 * td)
                } else {
                    "public, max-age=1".to_string()
                };
                return (
                    StatusCode::OK,
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/vnd.apple.mpegurl"),
                        ),
                        (
                            header::ACCESS_CONTROL_ALLOW_ORIGIN,
                            HeaderValue::from_static("*"),
                        ),
                        (
                            header::CACHE_CONTROL,
                            HeaderValue::from_str(&cache).expect("header"),
                        ),
                    ],
                    body,
                )
                    .into_response();
            }
            Decision::BadRequest(why) => return text(StatusCode::BAD_REQUEST, why),
            Decision::Wait => {}
        }
        let deadline = *deadline.get_or_insert_with(|| {
            tokio::time::Instant::now() + Duration::from_secs(3 * td).min(MAX_HOLD)
        });
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {
                if !reg.get(&name).is_some_and(|s| Arc::ptr_eq(&s, &stream)) {
                    return text(StatusCode::NOT_FOUND, "stream ended\n");
                }
            }
            Ok(Err(_)) => return text(StatusCode::NOT_FOUND, "stream ended\n"),
            Err(_) => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "requested part not available in time\n",
                )
            }
        }
    }
}
