//! Extractors that reject with [`ApiError`], so that axum does extraction
//! and validation (through the validating newtypes of `rtmp_live_types`)
//! and every rejection is a JSON `{"error": ...}` body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::Writer;
use crate::error::ApiError;
use crate::state::AppState;

/// `axum::extract::Path`, rejecting with [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query`, rejecting with [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::Json`, rejecting with [`ApiError`] (415 without a JSON content
/// type, 413 over the body limit, 400 for anything invalid).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::Form`, rejecting with [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(ApiError))]
pub struct ApiForm<T>(pub T);

/// An origin (its discovery): `Authorization: Bearer <token>` matching
/// `API_REPORT_TOKEN` or one of `API_ORIGIN_TOKENS` (401 otherwise). Needed
/// to write the registry and to ask `/authorize`.
impl FromRequestParts<Arc<AppState>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Writer, ApiError> {
        state.tokens.check(authorization(parts)).inspect_err(|_| {
            // The request span already carries the method and path.
            tracing::warn!("refused: missing or invalid token");
        })
    }
}

/// A JSON body that may be left out: an empty (or blank) body is
/// `T::default()`; any other needs a JSON content type (415) and must parse
/// (400), like [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<OptionalJson<T>, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            });
        let body = Bytes::from_request(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json",
            ));
        }
        let axum::Json(v) = axum::Json::<T>::from_bytes(&body)?;
        Ok(OptionalJson(v))
    }
}

fn authorization(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The operator: `Authorization: Bearer <API_OPERATOR_TOKEN>` (401
/// otherwise, 503 when no operator token is configured). Needed to issue
/// playback tokens.
pub struct Operator;

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Operator, ApiError> {
        state
            .operator
            .check(authorization(parts), "operator token is not configured")
            .inspect_err(|e| {
                if matches!(e, ApiError::Unauthorized) {
                    tracing::warn!("refused: missing or invalid operator token");
                }
            })
            .map(|()| Operator)
    }
}

/// An edge: `Authorization: Bearer <API_EDGE_TOKEN>` (401 otherwise, 503
/// when no edge token is configured). Needed to report viewer counts, and
/// good for nothing else.
pub struct EdgeReporter;

impl FromRequestParts<Arc<AppState>> for EdgeReporter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<EdgeReporter, ApiError> {
        state
            .edge
            .check(authorization(parts), "viewer reports are not configured")
            .inspect_err(|e| {
                if matches!(e, ApiError::Unauthorized) {
                    tracing::warn!("refused: missing or invalid edge token");
                }
            })
            .map(|()| EdgeReporter)
    }
}
