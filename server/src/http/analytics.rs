//! The analytics API: call counts, completion, talk time, extractions and cost over a period.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::AnalyticsFilter;

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::ApiQuery;
use super::{HttpState, params};

/// The query of `GET /api/v1/analytics`.
#[derive(Debug, Deserialize)]
pub(super) struct AnalyticsQuery {
    /// Start of the period (inclusive; unix ms or RFC 3339).
    from: Option<String>,
    /// End of the period (exclusive; unix ms or RFC 3339).
    to: Option<String>,
    tenant: Option<String>,
}

/// The figures of the calls that started in `[from, to)` (either end open when left out):
/// `calls`, `completed`, `completion_rate`, `answered`, `average_duration_secs` (talk time of
/// the answered calls), `extractions_by_schema` (stored in the period) and the cost. A tenant
/// key naming another tenant is `404 unknown_tenant`.
pub(super) async fn analytics(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AnalyticsQuery>,
) -> Result<Response, ApiError> {
    let (from_ms, to_ms) = params::time_range(query.from.as_deref(), query.to.as_deref())?;
    let tenant = match (caller.scope.tenant_id(), query.tenant.as_deref()) {
        // Another tenant's figures do not exist for this key.
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                format!("no tenant {asked}"),
            ));
        }
        (Some(own), _) => Some(own.to_owned()),
        (None, asked) => asked.map(str::to_owned),
    };
    let figures = state
        .store
        .analytics(
            &caller.scope,
            &AnalyticsFilter {
                tenant: query.tenant,
                from_ms,
                to_ms,
            },
        )
        .await
        .map_err(internal)?;
    Ok(Json(json!({
        "tenant_id": tenant,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "calls": figures.calls,
        "completed": figures.completed,
        "completion_rate": figures.completion_rate(),
        "answered": figures.answered,
        "average_duration_secs": figures.average_talk_ms.map(|ms| ms / 1000.0),
        "extractions_by_schema": figures.extractions_by_schema,
        "cost_inr": figures.cost_inr_micros as f64 / crate::cost::MICROS_PER_INR as f64,
        "cost_inr_micros": figures.cost_inr_micros,
    }))
    .into_response())
}
