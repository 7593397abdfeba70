//! Extractors that reject with [`ApiError`], so that axum does extraction
//! and validation (through the validating newtypes of `rtmp_live_types`)
//! and every rejection is a JSON `{"error": ...}` body.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

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
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.tokens.check(h).inspect_err(|_| {
            // The request span already carries the method and path.
            tracing::warn!("refused: missing or invalid token");
        })
    }
}
