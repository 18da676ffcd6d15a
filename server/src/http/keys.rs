//! The API keys API: create a tenant key (shown once), list keys, revoke one.
//!
//! A tenant key manages its own tenant's keys (it may create more and revoke any of them,
//! itself included); the operator names the tenant. Another tenant's key answers `404`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::StoreError;

use super::HttpState;
use super::auth::{Caller, unknown_tenant};
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::tenants::check_name;

/// Body of `POST /api/v1/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKeyBody {
    /// What the key is for, e.g. `crm export`.
    name: String,
    /// The tenant the key acts for: required with the operator key; a tenant key may name
    /// only its own tenant.
    tenant: Option<String>,
}

/// The query of `GET /api/v1/keys` and `GET /api/v1/numbers`: `?tenant=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantQuery {
    pub(super) tenant: Option<String>,
}

/// Creates a key: `201` with the key itself in `key`, which is never shown again.
pub(super) async fn create_key(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant_to_act_for(body.tenant)?;
    let name = check_name(&body.name)?;
    match state.store.create_api_key(&tenant, &name).await {
        Ok((listed, key)) => {
            let mut shown = serde_json::to_value(&listed).map_err(internal)?;
            shown["key"] = json!(key);
            Ok((StatusCode::CREATED, Json(shown)).into_response())
        }
        Err(StoreError::NotFound { .. }) => Err(unknown_tenant(&tenant)),
        Err(error) => Err(internal(error)),
    }
}

/// The keys the caller may see (revoked ones included), oldest first: a tenant's own; the
/// operator's `?tenant=` or every tenant's.
pub(super) async fn list_keys(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let keys = state
        .store
        .list_api_keys(&caller.scope, query.tenant.as_deref())
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

/// Revokes a key: `204`; `404 key_not_found` when the caller has no such key.
pub(super) async fn revoke_key(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state.store.revoke_api_key(&caller.scope, &id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound { .. }) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no API key with id {id}"),
        )),
        Err(error) => Err(internal(error)),
    }
}
