//! HTTP: a stream's LL-HLS playlist (`/<name>/index.m3u8`, an ABR
//! rendition's `/<name>/<rendition>/index.m3u8`) with blocking reloads and
//! delta updates; its parts (`/<name>/<E>-<n>.m4s`), the next one held
//! until it exists (the preload hint); and `GET /fragment-state`, the
//! origin's question before it serves one of nginx-rtmp's fragments.
//! Segments and init segments are files the origin serves itself.
//!
//! Every request is hostile until parsed: the path is percent-decoded once
//! and must name a valid stream and file, the query may hold only the
//! spec's delivery directives in canonical form, and the requests held at
//! once are bounded ([`Limits`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

mod part;
mod playlist;

use crate::fragments::{self, FragmentState};
use crate::registry::{Registry, Stream};

/// Longest hold of a blocking reload or a hinted part: 3 target durations
/// (the spec), but never more than this, so that proxies in front (the
/// edge waits 8 s before it counts the origin as failed) see the 503 first.
pub const MAX_HOLD: Duration = Duration::from_secs(6);

/// Caps on requests held at once: past them a playlist request is answered
/// at once with the current playlist, a part request with 503.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub held_total: usize,
    pub held_per_stream: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            held_total: 4096,
            held_per_stream: 512,
        }
    }
}

#[derive(Clone)]
struct App {
    reg: Arc<Registry>,
    limits: Limits,
    held: Arc<AtomicUsize>,
}

pub fn router(reg: Arc<Registry>) -> Router {
    router_with(reg, Limits::default())
}

pub fn router_with(reg: Arc<Registry>, limits: Limits) -> Router {
    let app = App {
        reg,
        limits,
        held: Arc::new(AtomicUsize::new(0)),
    };
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/fragment-state", get(fragment_state))
        .route("/.sync/{name}", get(labels))
        .route("/.sync/{name}/{rendition}", get(labels))
        .fallback(get(media))
        .with_state(app)
}

/// An error: a short JSON body (the messages are fixed ASCII text).
fn error(status: StatusCode, msg: &'static str) -> Response {
    let mut res = (
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
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        format!("{{\"error\":\"{msg}\"}}\n"),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

/// The origin's question before it serves one of nginx-rtmp's fragments
/// (`X-Fragment: <stream>/<number>`, `<stream>` with its rendition for ABR, and the viewer's `Range` if any):
/// answered with how that answer may be cached (see [`fragments`]):
/// `X-Fragment-Cache` (the viewers' `Cache-Control`) and, when no cache may
/// keep it, `X-Fragment-Accel-Expires: 0` (the edges'). Always 204, so that
/// the origin's `auth_request` lets the request through; a question it
/// cannot parse is about an unknown fragment.
async fn fragment_state(State(app): State<App>, headers: HeaderMap) -> Response {
    let state = headers
        .get("x-fragment")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(name, num)| Some((name, num.parse::<u64>().ok()?)))
        .and_then(|(name, num)| {
            let s = app.reg.get(name)?;
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

/// What this origin calls a stream's last segments, for the other origins
/// of the stream (see [`crate::labels`]).
async fn labels(
    State(app): State<App>,
    axum::extract::Path(parts): axum::extract::Path<Vec<(String, String)>>,
    RawQuery(q): RawQuery,
) -> Response {
    let names: Vec<&str> = parts.iter().map(|(_, v)| v.as_str()).collect();
    if !names.iter().all(|n| rtmp_live_types::is_valid_name(n)) {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let at = crate::sync::parse_at(q.as_deref());
    match crate::sync::answer(&app.reg, &names.join("/"), &at) {
        Some(v) => axum::Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such stream"),
    }
}

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Playlist(String),
    Part { key: String, epoch: u64, n: u64 },
}

/// `/<name>/<file>` or `/<name>/<rendition>/<file>`, percent-decoded once;
/// names as the platform allows them, files `index.m3u8` or `<E>-<n>.m4s`.
fn target(uri: &Uri) -> Result<Target, StatusCode> {
    let raw = uri.path();
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let comps: Vec<&str> = path
        .strip_prefix('/')
        .ok_or(StatusCode::BAD_REQUEST)?
        .split('/')
        .collect();
    let (key, file) = match comps[..] {
        [name, file] if rtmp_live_types::is_valid_name(name) => (name.to_string(), file),
        [name, rendition, file]
            if rtmp_live_types::is_valid_name(name)
                && rtmp_live_types::is_valid_name(rendition) =>
        {
            (format!("{name}/{rendition}"), file)
        }
        _ => return Err(StatusCode::NOT_FOUND),
    };
    if file == crate::stream::PLAYLIST {
        return Ok(Target::Playlist(key));
    }
    let (epoch, n) = file
        .strip_suffix(".m4s")
        .and_then(|f| f.split_once('-'))
        .ok_or(StatusCode::NOT_FOUND)?;
    let num = |s: &str| {
        (s == "0" || (!s.starts_with('0') && !s.is_empty() && s.len() <= 16))
            .then(|| s.parse::<u64>().ok())
            .flatten()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
    };
    match (num(epoch), num(n)) {
        (Some(epoch), Some(n)) => Ok(Target::Part { key, epoch, n }),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

async fn media(State(app): State<App>, uri: Uri, RawQuery(q): RawQuery) -> Response {
    match target(&uri) {
        Ok(Target::Playlist(key)) => playlist::playlist(&app, &key, q.as_deref()).await,
        Ok(Target::Part { key, epoch, n }) => {
            if q.is_some() {
                return error(StatusCode::BAD_REQUEST, "parts take no query");
            }
            part::part(&app, &key, epoch, n).await
        }
        Err(StatusCode::BAD_REQUEST) => error(StatusCode::BAD_REQUEST, "bad path"),
        Err(_) => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// What a held request waits for: its stream to change (a new part or
/// playlist), up to 3 target durations from when it began to wait (the
/// spec), [`MAX_HOLD`] at most.
struct Wait {
    rx: tokio::sync::watch::Receiver<u64>,
    until: Option<tokio::time::Instant>,
}

impl Wait {
    fn new(stream: &Stream) -> Wait {
        Wait {
            rx: stream.changed.subscribe(),
            until: None,
        }
    }

    /// The next change of `stream` (still the stream registered as `key`);
    /// else the answer: 404 when it ended, 503 (`late`) past the deadline.
    async fn change(
        &mut self,
        app: &App,
        key: &str,
        stream: &Arc<Stream>,
        td: u64,
        late: &'static str,
    ) -> Result<(), Response> {
        let until = *self.until.get_or_insert_with(|| {
            tokio::time::Instant::now() + Duration::from_secs(3 * td).min(MAX_HOLD)
        });
        match tokio::time::timeout_at(until, self.rx.changed()).await {
            Ok(Ok(())) if app.reg.get(key).is_some_and(|s| Arc::ptr_eq(&s, stream)) => Ok(()),
            Ok(_) => Err(error(StatusCode::NOT_FOUND, "stream ended")),
            Err(_) => Err(error(StatusCode::SERVICE_UNAVAILABLE, late)),
        }
    }
}

/// A slot among the requests held at once, given back when dropped.
struct Held<'a> {
    total: &'a AtomicUsize,
    stream: &'a AtomicUsize,
}

impl<'a> Held<'a> {
    fn take(app: &'a App, s: &'a Stream) -> Option<Held<'a>> {
        let total = &*app.held;
        if total.fetch_add(1, Ordering::AcqRel) >= app.limits.held_total {
            total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        if s.held.fetch_add(1, Ordering::AcqRel) >= app.limits.held_per_stream {
            s.held.fetch_sub(1, Ordering::AcqRel);
            total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Held {
            total,
            stream: &s.held,
        })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        self.stream.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> Result<Target, StatusCode> {
        target(&path.parse::<Uri>().unwrap())
    }

    #[test]
    fn paths_are_decoded_once_and_must_name_a_stream_file() {
        assert_eq!(
            t("/golive/index.m3u8"),
            Ok(Target::Playlist("golive".into()))
        );
        assert_eq!(
            t("/golive/%69ndex.m3u8"),
            Ok(Target::Playlist("golive".into()))
        );
        assert_eq!(
            t("/golive/720p/index.m3u8"),
            Ok(Target::Playlist("golive/720p".into()))
        );
        assert_eq!(
            t("/golive/17000-42.m4s"),
            Ok(Target::Part {
                key: "golive".into(),
                epoch: 17000,
                n: 42
            })
        );
        for bad in [
            "/golive/017000-42.m4s",
            "/golive/1-+2.m4s",
            "/golive/1-2.mp4",
            "/golive/x.m4s",
            "/go.live/index.m3u8",
            "/golive/../x/index.m3u8",
            "/index.m3u8",
            "/a/b/c/index.m3u8",
        ] {
            assert_eq!(t(bad), Err(StatusCode::NOT_FOUND), "{bad}");
        }
        assert_eq!(t("/golive/%ff.m3u8"), Err(StatusCode::BAD_REQUEST));
        // double encoding is not undone twice
        assert_eq!(t("/golive/%2569ndex.m3u8"), Err(StatusCode::NOT_FOUND));
    }
}
