//! The bearer-key check in front of every `/api/v1` endpoint.
//!
//! A handler takes a [`Caller`] as its first extractor after `State`, so an unauthenticated
//! request is answered `401` before its query or body is looked at. Only the operator key
//! (`[http] operator_key`) exists in this version; tenant keys will resolve to
//! `Scope::Tenant` in [`scope_for_key`].

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use vaani_store::Scope;

use super::HttpState;
use super::error::ApiError;

/// Who is calling an `/api/v1` endpoint: the scope its bearer key grants.
pub(super) struct Caller {
    /// What the key may see and change.
    pub(super) scope: Scope,
}

impl FromRequestParts<Arc<HttpState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Self, ApiError> {
        let key = bearer_key(&parts.headers)?;
        let scope = scope_for_key(state, key).await?;
        if let Some(tenant) = scope.tenant_id() {
            tracing::Span::current().record("tenant_id", tenant);
        }
        Ok(Caller { scope })
    }
}

/// The key in `Authorization: Bearer <key>`; `401` when the header is missing or malformed.
fn bearer_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an API key as `Authorization: Bearer <key>`",
            )
        })
}

/// The scope a presented key grants: the operator key gives `Scope::Operator`; any other key
/// is `401`. (Tenant keys, looked up in the store, will give `Scope::Tenant` here.)
async fn scope_for_key(state: &HttpState, key: &str) -> Result<Scope, ApiError> {
    if constant_time_eq(key.as_bytes(), state.operator_key.as_bytes()) {
        return Ok(Scope::Operator);
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the API key is not valid",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
