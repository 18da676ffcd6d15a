//! Call recordings: the list and the WAV download of one call's recording.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiPath, ApiQuery};
use super::{HttpState, ListQuery};

/// Recordings, newest first (`?limit=` 1..=500, default 50; `?tenant=`).
pub(super) async fn list_recordings(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.into_filter()?;
    let recordings = state
        .store
        .list_recordings(&caller.scope, &filter)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "recordings": recordings })).into_response())
}

/// The call's recording as `audio/wav`; `404 recording_not_found` when there is none (not
/// recorded, another tenant's call, or deleted by retention).
pub(super) async fn get_recording(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "recording_not_found",
            format!("no recording for call {id}"),
        )
    };
    let recording = state
        .store
        .recording_for_call(&caller.scope, &id)
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
