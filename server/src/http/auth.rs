//! The bearer-key check in front of every `/api/v1` endpoint.

use axum::http::{HeaderMap, StatusCode, header};
use vaani_store::Scope;

use super::HttpState;
use super::error::ApiError;

/// Checks the bearer token; only the operator key exists in this version.
pub(super) fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<Scope, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if constant_time_eq(token.as_bytes(), state.operator_key.as_bytes()) => {
            Ok(Scope::Operator)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key is not valid",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API key as `Authorization: Bearer <key>`",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
