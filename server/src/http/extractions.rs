//! The extractions API: what plugins extracted, across calls, by schema and time.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::ExtractionFilter;

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::ApiQuery;
use super::{HttpState, params};

/// The query of `GET /api/v1/extractions`.
#[derive(Debug, Deserialize)]
pub(super) struct ExtractionsQuery {
    /// Only data of this schema id (exact match).
    schema: Option<String>,
    /// Stored at or after (unix ms or RFC 3339).
    from: Option<String>,
    /// Stored before (unix ms or RFC 3339).
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    tenant: Option<String>,
}

/// Extractions, newest first, filtered (`schema`, `from`, `to`, `tenant`) and paged (`limit`
/// 1..=500, default 50; `cursor`).
pub(super) async fn list_extractions(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ExtractionsQuery>,
) -> Result<Response, ApiError> {
    let (from_ms, to_ms) = params::time_range(query.from.as_deref(), query.to.as_deref())?;
    let filter = ExtractionFilter {
        tenant: query.tenant,
        schema_id: query.schema,
        from_ms,
        to_ms,
        limit: params::limit(query.limit)?,
        cursor: params::cursor(query.cursor.as_deref())?,
    };
    let page = state
        .store
        .list_extractions(&caller.scope, &filter)
        .await
        .map_err(internal)?;
    let next_cursor = page.next_cursor.map(|cursor| cursor.encode());
    Ok(Json(json!({ "extractions": page.items, "next_cursor": next_cursor })).into_response())
}
