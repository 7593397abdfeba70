//! A stream's parts: the bytes of one once it exists; the next one (the
//! preload hint) held until then.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{error, App, Held, Wait};
use crate::fragments::IMMUTABLE;
use crate::timeline::PartLookup;

/// A request this origin cannot answer while it holds back a session that
/// followed media it missed (see `stream/hold.rs`), which the other
/// origins of the stream can: 421 (Misdirected Request), which the origin
/// turns into a 502 for the edge (origin-llhls.conf.template), and the
/// edge asks the next origin.
pub(super) fn elsewhere() -> Response {
    error(
        StatusCode::MISDIRECTED_REQUEST,
        "this origin is catching up with the stream; another one has it",
    )
}

/// Part `n` of epoch `epoch`: its bytes once it exists; the next one (the
/// preload hint) is held until then.
pub(super) async fn part(app: &App, key: &str, epoch: u64, n: u64) -> Response {
    let Some(stream) = app.reg.get(key) else {
        return error(StatusCode::NOT_FOUND, "no such stream");
    };
    let mut wait = Wait::new(&stream);
    let mut held = None;
    loop {
        let (lookup, path, td) = {
            let st = stream.state.lock().expect("stream lock");
            if st.timeline().epoch() != epoch {
                return error(StatusCode::NOT_FOUND, "no such part");
            }
            let Some(l) = st.part(n) else {
                return elsewhere();
            };
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
        if let Err(answer) = wait
            .change(app, key, &stream, td, "part not available in time")
            .await
        {
            return answer;
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
