//! The calls API: list, detail and placing an outbound call.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::CallRecord;

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{HttpState, ListQuery};

/// Calls, newest first (`?limit=` 1..=500, default 50; `?tenant=`).
pub(super) async fn list_calls(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.into_filter()?;
    let calls = state
        .store
        .list_calls(&caller.scope, &filter)
        .await
        .map_err(internal)?;
    let calls: Vec<serde_json::Value> = calls.iter().map(listed_call).collect();
    Ok(Json(json!({ "calls": calls })).into_response())
}

/// A call as the list shows it: the stored fields plus `cost_inr`, the priced total in rupees
/// (`null` until the call has ended with its cost ledger).
fn listed_call(call: &CallRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(call).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        let cost_inr = call
            .cost_inr_micros
            .map(|micros| micros as f64 / crate::cost::MICROS_PER_INR as f64);
        object.insert("cost_inr".to_owned(), json!(cost_inr));
    }
    value
}

/// Body of `POST /api/v1/calls`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlaceCallBody {
    /// The tenant whose plugin talks on the call.
    tenant: String,
    /// The number to call (E.164).
    to: String,
    /// Our caller id (E.164); default: the trunk's, else the tenant's first number.
    from: Option<String>,
}

/// Places a call through the tenant's trunk: `202` with the call id once the INVITE is on
/// its way; the call's status then follows in `GET /api/v1/calls/{id}`.
pub(super) async fn place_call(
    State(state): State<Arc<HttpState>>,
    // Every key is the operator's in this version; a tenant key must be pinned to its tenant.
    _caller: Caller,
    ApiJson(body): ApiJson<PlaceCallBody>,
) -> Result<Response, ApiError> {
    let Some(dialer) = &state.dialer else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server does not place calls",
        ));
    };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let request = crate::outbound::DialRequest {
        tenant: body.tenant,
        to: body.to,
        from: body.from,
        reply,
    };
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is stopping",
        )
    };
    dialer.send(request).await.map_err(|_| unavailable())?;
    let call_id = outcome.await.map_err(|_| unavailable())?.map_err(|error| {
        use crate::outbound::DialError;
        let (status, code) = match &error {
            DialError::UnknownTenant(_) => (StatusCode::NOT_FOUND, "unknown_tenant"),
            DialError::NoOutboundTrunk(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "no_outbound_trunk")
            }
            DialError::InvalidNumber { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_number"),
            DialError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            DialError::TooManyCalls(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_calls"),
            DialError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, error.to_string())
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": call_id, "status": "ringing" })),
    )
        .into_response())
}

/// One call with everything recorded about it; `404 call_not_found` when the caller's scope
/// has no such call.
pub(super) async fn get_call(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .get_call(&caller.scope, &id)
        .await
        .map_err(internal)?
    {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "call_not_found",
            format!("no call with id {id}"),
        )),
    }
}
