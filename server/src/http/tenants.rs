//! The tenants API (operator only): create, list, read, change and delete tenants.
//!
//! A tenant key on any of these answers `404 not_found`, as for a path that does not exist.
//! Settings are checked as call routing reads them (the keys of a config `[[tenants]]` table
//! but `id`, `name`, `numbers`, `trunk` and `plugin`; `400 invalid_settings` lists every
//! problem). Every change applies to the next call before it is answered: a suspended tenant's
//! numbers answer `480`, a deleted tenant's are released. A config tenant deleted here is
//! seeded again at the next start.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use vaani_store::{NewTenant, StoreError, TenantStatus, TenantUpdate};

use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath};
use super::{HttpState, apply_routing};

/// The longest tenant id.
const MAX_TENANT_ID_LEN: usize = 64;
/// The longest tenant (or key) name, in characters.
pub(super) const MAX_NAME_CHARS: usize = 200;

/// Body of `POST /api/v1/tenants`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTenantBody {
    /// 1–64 characters of `a-z`, `0-9`, `_` and `-`.
    id: String,
    /// Display name.
    name: String,
    /// A JSON object, if any.
    settings: Option<serde_json::Value>,
}

/// Body of `PATCH /api/v1/tenants/{id}`; absent fields stay as they are.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTenantBody {
    name: Option<String>,
    status: Option<TenantStatus>,
    /// Absent: unchanged; `null`: removed; an object: replaces the settings.
    #[serde(default, deserialize_with = "present")]
    settings: Option<Option<serde_json::Value>>,
}

/// Deserializes a field that is present (possibly `null`) as `Some`, so that an absent
/// field (`#[serde(default)]`, `None`) and `null` (`Some(None)`) differ.
fn present<'de, D>(deserializer: D) -> Result<Option<Option<serde_json::Value>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<serde_json::Value>::deserialize(deserializer).map(Some)
}

/// `400 invalid_tenant_id` unless `id` is 1–64 characters of `a-z`, `0-9`, `_`, `-`.
fn check_tenant_id(id: &str) -> Result<(), ApiError> {
    let valid = (1..=MAX_TENANT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant_id",
            format!("a tenant id is 1 to {MAX_TENANT_ID_LEN} characters of a-z, 0-9, _ and -"),
        ))
    }
}

/// `400 invalid_name` unless `name` has 1–200 characters and is not blank; returns it trimmed.
pub(super) fn check_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            format!("a name is 1 to {MAX_NAME_CHARS} characters, not only spaces"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// `400 invalid_settings` unless `settings` are valid tenant settings (a JSON object with the
/// keys of a config `[[tenants]]` table but `id`, `name`, `numbers`, `trunk` and `plugin`,
/// checked by the same rules); the message lists every problem, `; `-separated.
fn check_settings(state: &HttpState, settings: &serde_json::Value) -> Result<(), ApiError> {
    let checked = match &state.routing {
        Some(routing) => routing.check_settings(settings),
        None if settings.is_object() => Ok(()),
        None => Err(vec!["settings: must be a JSON object".to_owned()]),
    };
    checked.map_err(|errors| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_settings",
            errors.join("; "),
        )
    })
}

/// `404 tenant_not_found` for the tenant named in the path.
fn tenant_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "tenant_not_found",
        format!("no tenant {id:?}"),
    )
}

/// Creates a tenant: `201` with it; `409 conflict` when the id is taken.
pub(super) async fn create_tenant(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTenantBody>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    check_tenant_id(&body.id)?;
    let name = check_name(&body.name)?;
    if let Some(settings) = &body.settings {
        check_settings(&state, settings)?;
    }
    let tenant = NewTenant {
        id: body.id,
        name,
        settings: body.settings,
    };
    match state.store.create_tenant(&tenant).await {
        Ok(created) => {
            apply_routing(&state).await?;
            Ok((StatusCode::CREATED, Json(created)).into_response())
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a tenant {:?} exists already", tenant.id),
        )),
        Err(error) => Err(internal(error)),
    }
}

/// Every tenant, ordered by id (without settings; read one tenant for those).
pub(super) async fn list_tenants(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    let tenants = state.store.list_tenants().await.map_err(internal)?;
    Ok(Json(json!({ "tenants": tenants })).into_response())
}

/// One tenant with its settings.
pub(super) async fn get_tenant(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    match state
        .store
        .get_tenant_with_settings(&id)
        .await
        .map_err(internal)?
    {
        Some(tenant) => Ok(Json(tenant).into_response()),
        None => Err(tenant_not_found(&id)),
    }
}

/// Changes a tenant's name, status or settings; answers the tenant as it now is.
pub(super) async fn update_tenant(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTenantBody>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    if let Some(Some(settings)) = &body.settings {
        check_settings(&state, settings)?;
    }
    let update = TenantUpdate {
        name,
        status: body.status,
        settings: body.settings,
    };
    match state.store.update_tenant(&id, &update).await {
        Ok(tenant) => {
            apply_routing(&state).await?;
            Ok(Json(tenant).into_response())
        }
        Err(StoreError::NotFound { .. }) => Err(tenant_not_found(&id)),
        Err(error) => Err(internal(error)),
    }
}

/// Deletes a tenant and everything it owns (numbers, keys, calls, callers, KV): `204`.
pub(super) async fn delete_tenant(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.operator_only()?;
    match state.store.delete_tenant(&id).await {
        Ok(()) => {
            apply_routing(&state).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(StoreError::NotFound { .. }) => Err(tenant_not_found(&id)),
        Err(error) => Err(internal(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_short_lowercase_words() {
        for good in ["a", "clinic", "sunny-clinic_2", &"x".repeat(64)] {
            assert!(check_tenant_id(good).is_ok(), "{good}");
        }
        for bad in ["", "Clinic", "a b", "a/b", "ä", "a.b", &"x".repeat(65)] {
            assert!(check_tenant_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Sunny Clinic ").unwrap(), "Sunny Clinic");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"न".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"न".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
