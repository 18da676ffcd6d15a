//! The phone numbers API: the numbers a tenant owns, claiming one, releasing one.
//!
//! A number belongs to one tenant at a time. Claiming a number another tenant owns answers
//! `409 number_unavailable`: this tells the caller the number is taken (not by whom), which is
//! acceptable because a phone number is public (anyone can dial it to find out). Releasing
//! or reading another tenant's number answers `404`, as for every other resource.
//!
//! Calls follow these rows: a claimed number routes to its tenant from the next call on, a
//! released one answers `404` like any unknown number.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::StoreError;

use super::auth::{Caller, unknown_tenant};
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::keys::TenantQuery;
use super::{HttpState, apply_routing};

/// Body of `POST /api/v1/numbers`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignNumberBody {
    /// The number, E.164 (`+` and 8–15 digits).
    number: String,
    /// The trunk its calls arrive over (an operator's trunk id), if any.
    trunk: Option<String>,
    /// The owner: required with the operator key; a tenant key may name only its own tenant.
    tenant: Option<String>,
}

/// `422 invalid_number` unless `number` is E.164.
fn check_number(number: &str) -> Result<(), ApiError> {
    if vaani_config::is_e164(number) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_number",
            "a number is E.164: + and 8 to 15 digits, the first not 0",
        ))
    }
}

/// The numbers the caller may see, ordered: a tenant's own; the operator's `?tenant=` or all.
pub(super) async fn list_numbers(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let numbers = state
        .store
        .list_phone_numbers(&caller.scope, query.tenant.as_deref())
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "numbers": numbers })).into_response())
}

/// Claims a number for a tenant: `201` with it (also when the tenant owned it already; the
/// trunk is then replaced); `409 number_unavailable` when another tenant owns it.
pub(super) async fn assign_number(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<AssignNumberBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant_to_act_for(body.tenant)?;
    check_number(&body.number)?;
    if let Some(trunk) = &body.trunk {
        let known = state.store.get_trunk(trunk).await.map_err(internal)?;
        if known.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_trunk",
                format!("no trunk {trunk:?}"),
            ));
        }
    }
    match state
        .store
        .assign_phone_number(&tenant, &body.number, body.trunk.as_deref())
        .await
    {
        Ok(number) => {
            apply_routing(&state).await?;
            Ok((StatusCode::CREATED, Json(number)).into_response())
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "number_unavailable",
            "the number belongs to another tenant",
        )),
        // The trunk was checked above: the tenant is missing (or was deleted meanwhile).
        Err(StoreError::NotFound { .. }) => Err(unknown_tenant(&tenant)),
        Err(error) => Err(internal(error)),
    }
}

/// Releases a number: `204`; `404 number_not_found` when the caller owns no such number.
pub(super) async fn release_number(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(number): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .release_phone_number(&caller.scope, &number)
        .await
    {
        Ok(()) => {
            apply_routing(&state).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(StoreError::NotFound { .. }) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "number_not_found",
            "no such number",
        )),
        Err(error) => Err(internal(error)),
    }
}
