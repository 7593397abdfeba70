//! What an API subrequest's result means for the stream: found (with its
//! origins), not found, or a failed lookup with a typed reason. The module
//! gathers the raw facts (status, content type, body); the judgement is here.

use crate::api::{parse_api_body, ApiError};
use crate::route::RouteOrigin;

/// Largest API answer accepted; larger ones are a failed lookup.
pub const MAX_API_BODY: usize = 64 * 1024;

/// The raw result of one API subrequest.
#[derive(Debug, Clone, Copy)]
pub struct ApiAnswer<'a> {
    /// nginx could not complete the subrequest (connect error, timeout, the
    /// proxy's own error page).
    pub transport_failed: bool,
    pub status: u16,
    /// The answer's content type is `application/json[; ...]`.
    pub json: bool,
    pub body: &'a [u8],
    /// The body exceeded [`MAX_API_BODY`] (and was not kept).
    pub too_big: bool,
}

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No answer (API down, slow, refused the connection).
    Transport,
    /// An answer larger than [`MAX_API_BODY`].
    TooBig,
    /// A status other than 200 or the API's own 404.
    Status(u16),
    /// A 404 that is not the API's JSON: the edge's API location points at
    /// something that is not the API.
    PlainNotFound,
    /// A 200 whose body is not a usable route.
    Body(ApiError),
    /// nginx could not even start the subrequest.
    Internal,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Transport => f.write_str("API request failed (no answer)"),
            LookupError::TooBig => write!(f, "API response larger than {MAX_API_BODY} bytes"),
            LookupError::Status(s) => write!(f, "API answered status {s}"),
            LookupError::PlainNotFound => f.write_str(
                "404 without a JSON body: does the edge_router_api location proxy to the API?",
            ),
            LookupError::Body(e) => e.fmt(f),
            LookupError::Internal => f.write_str("cannot create the API subrequest"),
        }
    }
}

/// The result of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The origins, and whether playback needs a signed link.
    Found(Vec<RouteOrigin>, bool),
    NotFound,
    Failed(LookupError),
}

/// Classifies the answer to the lookup of stream `name`.
pub fn classify(name: &str, a: &ApiAnswer<'_>) -> Outcome {
    if a.too_big {
        return Outcome::Failed(LookupError::TooBig);
    }
    if a.transport_failed {
        return Outcome::Failed(LookupError::Transport);
    }
    match a.status {
        200 => match parse_api_body(name, a.body) {
            Ok((origins, signed)) => Outcome::Found(origins, signed),
            Err(e) => Outcome::Failed(LookupError::Body(e)),
        },
        // Only the API's own JSON 404 means "no such stream".
        404 if a.json => Outcome::NotFound,
        404 => Outcome::Failed(LookupError::PlainNotFound),
        s => Outcome::Failed(LookupError::Status(s)),
    }
}

/// Whether a content type is JSON (`application/json[; ...]`).
pub fn is_json_content_type(ct: &[u8]) -> bool {
    ct.len() >= 16
        && ct[..16].eq_ignore_ascii_case(b"application/json")
        && (ct.len() == 16 || matches!(ct[16], b';' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, json: bool, body: &[u8]) -> ApiAnswer<'_> {
        ApiAnswer {
            transport_failed: false,
            status,
            json,
            body,
            too_big: false,
        }
    }

    #[test]
    fn found_and_not_found() {
        let body = br#"{"name":"a","manifest":"index.m3u8","host":"10.0.0.5:8080"}"#;
        assert_eq!(
            classify("a", &answer(200, true, body)),
            Outcome::Found(vec![RouteOrigin::new("10.0.0.5:8080", 0)], false)
        );
        assert_eq!(classify("a", &answer(404, true, b"{}")), Outcome::NotFound);
        let signed =
            br#"{"name":"a","manifest":"index.m3u8","host":"10.0.0.5:8080","signed":true}"#;
        assert_eq!(
            classify("a", &answer(200, true, signed)),
            Outcome::Found(vec![RouteOrigin::new("10.0.0.5:8080", 0)], true)
        );
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            classify("a", &answer(404, false, b"<html>")),
            Outcome::Failed(LookupError::PlainNotFound)
        );
        assert_eq!(
            classify("a", &answer(503, true, b"{}")),
            Outcome::Failed(LookupError::Status(503))
        );
        assert!(matches!(
            classify("a", &answer(200, true, b"garbage")),
            Outcome::Failed(LookupError::Body(ApiError::Malformed(_)))
        ));
        let too_big = ApiAnswer {
            too_big: true,
            ..answer(200, true, b"")
        };
        assert_eq!(
            classify("a", &too_big),
            Outcome::Failed(LookupError::TooBig)
        );
        let down = ApiAnswer {
            transport_failed: true,
            ..answer(502, false, b"")
        };
        assert_eq!(
            classify("a", &down),
            Outcome::Failed(LookupError::Transport)
        );
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(b"application/json"));
        assert!(is_json_content_type(b"Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type(b"application/jsonx"));
        assert!(!is_json_content_type(b"text/html"));
    }
}
