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

use crate::blocking::{self, Decision, Request};
use crate::fragments::{self, FragmentState, IMMUTABLE};
use crate::playlist::{self, RenditionReport};
use crate::registry::{Registry, Stream};
use crate::timeline::PartLookup;

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
        Ok(Target::Playlist(key)) => playlist(&app, &key, q.as_deref()).await,
        Ok(Target::Part { key, epoch, n }) => {
            if q.is_some() {
                return error(StatusCode::BAD_REQUEST, "parts take no query");
            }
            part(&app, &key, epoch, n).await
        }
        Err(StatusCode::BAD_REQUEST) => error(StatusCode::BAD_REQUEST, "bad path"),
        Err(_) => error(StatusCode::NOT_FOUND, "not found"),
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

/// Where the other renditions of `key`'s stream are (none for a
/// single-rendition stream); each stream's lock is taken on its own.
fn rendition_reports(reg: &Registry, key: &str) -> Vec<RenditionReport> {
    reg.siblings(key)
        .into_iter()
        .filter_map(|(other, s)| {
            let (_, rendition) = other.split_once('/')?;
            let (msn, part) = s.state.lock().expect("stream lock").last_part()?;
            Some(RenditionReport {
                rendition: rendition.to_owned(),
                msn,
                part,
            })
        })
        .collect()
}

/// Where a playlist request stands.
enum Step {
    Answer(String, u64),
    Wait(u64),
    Bad(&'static str),
    NotYet,
}

async fn playlist(app: &App, key: &str, q: Option<&str>) -> Response {
    let req = match Request::parse(q.unwrap_or("").as_bytes()) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.as_str()),
    };
    let Some(stream) = app.reg.get(key) else {
        return error(StatusCode::NOT_FOUND, "no such stream");
    };
    let mut rx = stream.changed.subscribe();
    let mut held = None;
    let mut deadline = None;
    loop {
        let step = {
            let st = stream.state.lock().expect("stream lock");
            match st.view() {
                None => Step::NotYet,
                Some(view) => {
                    let td = st.target_duration();
                    match blocking::decide(req, &view) {
                        Decision::BadRequest(why) => Step::Bad(why),
                        Decision::Wait => Step::Wait(td),
                        Decision::Ready => match st.render(req.skip) {
                            Some(body) => Step::Answer(body, td),
                            None => Step::NotYet,
                        },
                    }
                }
            }
        };
        let td = match step {
            Step::Bad(why) => return error(StatusCode::BAD_REQUEST, why),
            Step::NotYet => return error(StatusCode::NOT_FOUND, "no playlist yet"),
            Step::Answer(mut body, td) => {
                playlist::push_reports(&mut body, &rendition_reports(&app.reg, key));
                return playlist_response(body, &req, td);
            }
            Step::Wait(td) => td,
        };
        if held.is_none() {
            held = Held::take(app, &stream);
            if held.is_none() {
                // too many held: the current playlist, at once, which no
                // cache may keep (under this URL it would stand for a
                // part it does not hold)
                let body = stream.state.lock().expect("stream lock").render(req.skip);
                return match body {
                    Some(mut b) => {
                        playlist::push_reports(&mut b, &rendition_reports(&app.reg, key));
                        playlist_with(b, "no-store")
                    }
                    None => error(StatusCode::SERVICE_UNAVAILABLE, "too many held requests"),
                };
            }
        }
        let until = *deadline.get_or_insert_with(|| {
            tokio::time::Instant::now() + Duration::from_secs(3 * td).min(MAX_HOLD)
        });
        match tokio::time::timeout_at(until, rx.changed()).await {
            Ok(Ok(())) => {
                if !app.reg.get(key).is_some_and(|s| Arc::ptr_eq(&s, &stream)) {
                    return error(StatusCode::NOT_FOUND, "stream ended");
                }
            }
            Ok(Err(_)) => return error(StatusCode::NOT_FOUND, "stream ended"),
            Err(_) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "requested part not available in time",
                )
            }
        }
    }
}

fn playlist_response(body: String, req: &Request, td: u64) -> Response {
    // a blocking response is for a URL naming a part: it holds that part
    // whenever it is served, so caches may keep it for longer; a plain
    // reload for a second, as the playlist file always was
    let cache = if req.msn.is_some() {
        format!("public, max-age={}", 6 * td)
    } else {
        "public, max-age=1".to_string()
    };
    playlist_with(body, &cache)
}

fn playlist_with(body: String, cache: &str) -> Response {
    (
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
                HeaderValue::from_str(cache).expect("header"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Part `n` of epoch `epoch`: its bytes once it exists; the next one (the
/// preload hint) is held until then.
async fn part(app: &App, key: &str, epoch: u64, n: u64) -> Response {
    let Some(stream) = app.reg.get(key) else {
        return error(StatusCode::NOT_FOUND, "no such stream");
    };
    let mut rx = stream.changed.subscribe();
    let mut held = None;
    let mut deadline = None;
    loop {
        let (lookup, path, td) = {
            let st = stream.state.lock().expect("stream lock");
            if st.timeline().epoch() != epoch {
                return error(StatusCode::NOT_FOUND, "no such part");
            }
            let l = st.timeline().part(n);
            let path = match l {
                PartLookup::Ready(loc) => Some((
                    loc,
                    st.part_path(loc.file, loc.complete),
                    st.part_path(loc.file, true),
                )),
                _ => None,
            };
            (l, path, st.target_duration())
        };
        match (lookup, path) {
            (PartLookup::Ready(_), Some((loc, path, done))) => {
                return match read_part(path, done, loc.offset, loc.len).await {
                    Ok(bytes) => (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, HeaderValue::from_static("video/mp4")),
                            (
                                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                                HeaderValue::from_static("*"),
                            ),
                            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
                        ],
                        bytes,
                    )
                        .into_response(),
                    Err(e) => {
                        tracing::warn!(stream = key, part = n, "reading a part: {e}");
                        error(StatusCode::NOT_FOUND, "no such part")
                    }
                };
            }
            (PartLookup::Soon, _) => {}
            _ => return error(StatusCode::NOT_FOUND, "no such part"),
        }
        if held.is_none() {
            held = Held::take(app, &stream);
            if held.is_none() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "too many held requests");
            }
        }
        let until = *deadline.get_or_insert_with(|| {
            tokio::time::Instant::now() + Duration::from_secs(3 * td).min(MAX_HOLD)
        });
        match tokio::time::timeout_at(until, rx.changed()).await {
            Ok(Ok(())) => {
                if !app.reg.get(key).is_some_and(|s| Arc::ptr_eq(&s, &stream)) {
                    return error(StatusCode::NOT_FOUND, "stream ended");
                }
            }
            Ok(Err(_)) => return error(StatusCode::NOT_FOUND, "stream ended"),
            Err(_) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "part not available in time",
                )
            }
        }
    }
}

/// Bytes `offset..offset+len` of a segment file: `path` (in progress or
/// complete), or `done` if it was renamed meanwhile.
async fn read_part(
    path: std::path::PathBuf,
    done: std::path::PathBuf,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::File::open(&done)?,
            Err(e) => return Err(e),
        };
        let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
        f.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    })
    .await
    .map_err(std::io::Error::other)?
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
