//! Call recordings: the list and the WAV download of one call's recording.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vaani_store::CallFilter;

use super::auth::authorize;
use super::error::{ApiError, internal};
use super::{HttpState, ListQuery};

/// Recordings, newest first (`?limit=` 1..=500, default 50; `?tenant=`).
pub(super) async fn list_recordings(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    let filter = CallFilter {
        tenant: query.tenant,
        limit,
    };
    let recordings = state
        .store
        .list_recordings(&scope, &filter)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "recordings": recordings })).into_response())
}

/// The call's recording as `audio/wav`; `404 recording_not_found` when there is none (not
/// recorded, another tenant's call, or deleted by retention).
pub(super) async fn get_recording(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "recording_not_found",
            format!("no recording for call {id}"),
        )
    };
    let recording = state
        .store
        .recording_for_call(&scope, &id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let bytes = match tokio::fs::read(&recording.path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(error) => return Err(internal(error)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.wav\"", recording.call_id),
            ),
        ],
        bytes,
    )
        .into_response())
}
