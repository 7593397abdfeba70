//! Issuing signed playback links: `POST /streams/{name}/playback-tokens`
//! with the operator token. The operator's site asks for a link per viewer
//! (optionally bound to the viewer's address); the edges check it. The
//! token format is defined once, in `rtmp_live_types::playback`.
//!
//! The stream need not be live: a link may be handed out before the show.
//! Tokens are credentials: never logged, and answered with `no-store`.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rtmp_live_types::{playback, PlaybackName};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{ApiPath, Operator, OptionalJson};
use crate::state::Shared;

/// A token's lifetime when the request names none.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// The longest lifetime a token may be given (a week).
pub const MAX_TTL_SECS: u64 = 604_800;

/// The request body (optional: an empty body takes the defaults). Unknown
/// fields are refused: a misspelt `address` must not silently give a link
/// that plays from anywhere.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1..=[`MAX_TTL_SECS`], default [`DEFAULT_TTL_SECS`].
    ttl_secs: Option<u64>,
    /// Only a viewer at this IP address may play.
    address: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IssuedToken {
    token: String,
    /// Unix seconds.
    expires: u64,
    /// The playlist's path on an edge.
    path: String,
}

/// The checked lifetime and the address in its canonical text form (the
/// form the edge compares: `IpAddr`'s Display).
fn validate(req: &TokenRequest) -> Result<(u64, Option<String>), ApiError> {
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::BadRequest(format!(
            "ttl_secs must be 1..={MAX_TTL_SECS}"
        )));
    }
    let address = match req.address.as_deref() {
        None => None,
        Some(a) => Some(
            a.parse::<IpAddr>()
                .map_err(|_| ApiError::BadRequest("address must be an IP address".into()))?
                .to_string(),
        ),
    };
    Ok((ttl, address))
}

/// `POST /streams/{name}/playback-tokens`: 201 with the token, its expiry
/// and the playlist path. 503 when no secret is configured, whatever the
/// body.
pub async fn issue(
    State(s): Shared,
    _operator: Operator,
    ApiPath(name): ApiPath<PlaybackName>,
    body: Result<OptionalJson<TokenRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let Some(secret) = &s.playback_secret else {
        return Err(ApiError::Unavailable("playback signing is not configured"));
    };
    let OptionalJson(req) = body?;
    let (ttl, address) = validate(&req)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires = now + ttl;
    let token = playback::sign(secret.bytes(), name.as_str(), expires, address.as_deref());
    tracing::info!(stream = %name, expires, bound = address.is_some(), "playback token issued");
    let path = format!("/t/{token}/{name}/index.m3u8");
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(IssuedToken {
            token,
            expires,
            path,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ttl: Option<u64>, address: Option<&str>) -> TokenRequest {
        TokenRequest {
            ttl_secs: ttl,
            address: address.map(str::to_string),
        }
    }

    #[test]
    fn lifetimes_and_addresses() {
        assert_eq!(validate(&req(None, None)).unwrap(), (3600, None));
        assert_eq!(validate(&req(Some(1), None)).unwrap().0, 1);
        assert_eq!(validate(&req(Some(604_800), None)).unwrap().0, 604_800);
        for bad in [0, 604_801, u64::MAX] {
            assert!(validate(&req(Some(bad), None)).is_err(), "{bad}");
        }
        let canon = |a| validate(&req(None, Some(a))).unwrap().1.unwrap();
        assert_eq!(canon("192.0.2.7"), "192.0.2.7");
        assert_eq!(canon("2001:DB8:0:0::7"), "2001:db8::7");
        assert_eq!(canon("::ffff:192.0.2.7"), "::ffff:192.0.2.7");
        for bad in ["", "192.0.2.300", "example.com", "192.0.2.7:80", "[::1]"] {
            assert!(validate(&req(None, Some(bad))).is_err(), "{bad}");
        }
    }
}
