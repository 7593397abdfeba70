//! A stream's playlist: blocking reloads held until the part they ask for
//! exists (or answered at once past the held-request limits), delta
//! updates, rendition reports.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{error, App, Held, Wait};
use crate::blocking::{self, Decision, Request};
use crate::playlist::{self, RenditionReport};
use crate::registry::Registry;

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
    Elsewhere,
}

pub(super) async fn playlist(app: &App, key: &str, q: Option<&str>) -> Response {
    let req = match Request::parse(q.unwrap_or("").as_bytes()) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.as_str()),
    };
    let Some(stream) = app.reg.get(key) else {
        return error(StatusCode::NOT_FOUND, "no such stream");
    };
    let mut wait = Wait::new(&stream);
    let mut held = None;
    loop {
        let step = {
            let mut st = stream.state.lock().expect("stream lock");
            match st.view() {
                _ if st.lagging() || req.msn.is_some_and(|m| st.ahead_of_held(m, req.part)) => {
                    Step::Elsewhere
                }
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
            Step::Elsewhere => return super::part::elsewhere(),
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
        if let Err(answer) = wait
            .change(
                app,
                key,
                &stream,
                td,
                "requested part not available in time",
            )
            .await
        {
            return answer;
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
