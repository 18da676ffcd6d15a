//! The calls API: list, detail and placing an outbound call.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::{CallFilter, CallRecord};

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::{HttpState, ListQuery, params};

/// The query of `GET /api/v1/calls`: `limit` and `tenant` as every list, and the filters.
#[derive(Debug, Deserialize)]
pub(super) struct CallListQuery {
    // Not `#[serde(flatten)]` of `ListQuery`: flattened query fields only deserialise strings.
    limit: Option<u32>,
    tenant: Option<String>,
    /// Started at or after (unix ms or RFC 3339).
    from: Option<String>,
    /// Started before (unix ms or RFC 3339).
    to: Option<String>,
    status: Option<String>,
    dialled: Option<String>,
    caller: Option<String>,
    cursor: Option<String>,
}

impl CallListQuery {
    /// The store filter; `400` with `invalid_limit`, `invalid_time`, `invalid_range`,
    /// `invalid_status`, `invalid_number` or `invalid_cursor` when a parameter is not valid.
    fn into_filter(self) -> Result<CallFilter, ApiError> {
        let (from_ms, to_ms) = params::time_range(self.from.as_deref(), self.to.as_deref())?;
        Ok(CallFilter {
            from_ms,
            to_ms,
            status: params::status(self.status.as_deref())?,
            dialled: params::number_filter("dialled", self.dialled.as_deref())?,
            caller: params::number_filter("caller", self.caller.as_deref())?,
            cursor: params::cursor(self.cursor.as_deref())?,
            ..ListQuery {
                limit: self.limit,
                tenant: self.tenant,
            }
            .into_filter()?
        })
    }
}

/// Calls, newest first, filtered (`from`, `to`, `status`, `dialled`, `caller`, `tenant`) and
/// paged (`limit` 1..=500, default 50; `cursor`, the previous page's `next_cursor`, which is
/// `null` on the last page). A tenant key sees only its own calls (`?tenant=` naming another
/// tenant gives an empty list).
pub(super) async fn list_calls(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CallListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.into_filter()?;
    let page = state
        .store
        .list_call_page(&caller.scope, &filter)
        .await
        .map_err(internal)?;
    let calls: Vec<serde_json::Value> = page.items.iter().map(listed_call).collect();
    let next_cursor = page.next_cursor.map(|cursor| cursor.encode());
    Ok(Json(json!({ "calls": calls, "next_cursor": next_cursor })).into_response())
}

/// A call as the list shows it: the stored fields plus `cost_inr`, the priced total in rupees
/// (`null` until the call has ended with its cost ledger).
pub(super) fn listed_call(call: &CallRecord) -> serde_json::Value {
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
    /// The tenant whose plugin talks on the call: required with the operator key; a tenant
    /// key places calls for its own tenant only (naming another is `404 unknown_tenant`).
    tenant: Option<String>,
    /// The number to call (E.164).
    to: String,
    /// Our caller id (E.164); default: the trunk's, else the tenant's first number.
    from: Option<String>,
}

/// Places a call through the tenant's trunk: `202` with the call id once the INVITE is on
/// its way; the call's status then follows in `GET /api/v1/calls/{id}`.
pub(super) async fn place_call(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<PlaceCallBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant_to_act_for(body.tenant)?;
    let Some(dialer) = &state.dialer else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server does not place calls",
        ));
    };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let request = crate::outbound::DialRequest {
        tenant,
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
            DialError::TooManyCalls(_) | DialError::TenantBusy(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_calls")
            }
            DialError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            DialError::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
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
