//! The callers API: a tenant's callers, one caller's profile (name, memory, counts, recent
//! calls), and erasing a caller on request.
//!
//! Callers are per tenant (the same number can call several tenants), so the operator names
//! the tenant with `?tenant=` (`400 tenant_required` without it); a tenant key always means
//! its own tenant, and naming another tenant answers `404`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use vaani_store::{CallFilter, CallerFilter, Scope};

use super::auth::Caller;
use super::calls::listed_call;
use super::error::{ApiError, internal};
use super::extract::{ApiPath, ApiQuery};
use super::{HttpState, params};

/// How many of a caller's calls the profile shows, newest first.
const PROFILE_RECENT_CALLS: u32 = 10;

/// The query of the callers endpoints: the tenant (operator only), and paging for the list.
#[derive(Debug, Deserialize)]
pub(super) struct CallersQuery {
    tenant: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The tenant whose callers `caller` asks about: a tenant key's own tenant (another one named
/// in `?tenant=` is `404 caller_not_found`, as if it did not exist); the operator must name one
/// (`400 tenant_required`).
fn tenant_of(caller: &Caller, asked: Option<String>) -> Result<String, ApiError> {
    match (&caller.scope, asked) {
        (Scope::Tenant(own), Some(asked)) if *own != asked => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "caller_not_found",
            "no such caller",
        )),
        (Scope::Tenant(own), _) => Ok(own.clone()),
        (Scope::Operator, Some(asked)) => Ok(asked),
        (Scope::Operator, None) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "tenant_required",
            "callers belong to a tenant: name it with ?tenant=",
        )),
    }
}

/// A caller as the API shows it: `memory` is the stored JSON document (`null` when none; a
/// stored text that is not JSON is shown as a string).
fn caller_json(caller: &vaani_store::Caller) -> serde_json::Value {
    let memory = caller.memory_json.as_deref().map(|text| {
        serde_json::from_str::<serde_json::Value>(text)
            .unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
    });
    json!({
        "tenant_id": caller.tenant_id,
        "phone": caller.phone,
        "name": caller.name,
        "memory": memory,
        "first_call_at_ms": caller.first_call_at_ms,
        "last_call_at_ms": caller.last_call_at_ms,
        "call_count": caller.call_count,
    })
}

/// The tenant's callers, most recent call first (`limit` 1..=500, default 50; `cursor`).
pub(super) async fn list_callers(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CallersQuery>,
) -> Result<Response, ApiError> {
    let limit = params::limit(query.limit)?;
    let cursor = params::cursor(query.cursor.as_deref())?;
    if let (Scope::Tenant(own), Some(asked)) = (&caller.scope, &query.tenant)
        && own != asked
    {
        // Another tenant's callers: an empty list, as for the other lists.
        return Ok(Json(json!({ "callers": [], "next_cursor": null })).into_response());
    }
    let tenant = tenant_of(&caller, query.tenant)?;
    let page = state
        .store
        .list_callers(&tenant, &CallerFilter { limit, cursor })
        .await
        .map_err(internal)?;
    let callers: Vec<serde_json::Value> = page.items.iter().map(caller_json).collect();
    let next_cursor = page.next_cursor.map(|cursor| cursor.encode());
    Ok(Json(json!({ "callers": callers, "next_cursor": next_cursor })).into_response())
}

/// One caller's profile with its most recent calls; `404 caller_not_found` when the tenant has
/// no profile for the number.
pub(super) async fn get_caller(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(phone): ApiPath<String>,
    ApiQuery(query): ApiQuery<CallersQuery>,
) -> Result<Response, ApiError> {
    let phone = params::e164(&phone)?;
    let tenant = tenant_of(&caller, query.tenant)?;
    let profile = state
        .store
        .get_caller(&tenant, phone)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(phone))?;
    let recent = state
        .store
        .list_calls(
            &Scope::Tenant(tenant.clone()),
            &CallFilter {
                caller: Some(phone.to_owned()),
                limit: PROFILE_RECENT_CALLS,
                ..CallFilter::default()
            },
        )
        .await
        .map_err(internal)?;
    let mut body = caller_json(&profile);
    body["recent_calls"] = recent.iter().map(listed_call).collect();
    Ok(Json(body).into_response())
}

/// Erases the caller on request: the profile and memory, and in each call from the number the
/// transcript, turn texts, extractions, events, DTMF digits, summary and recording (file and
/// row), with the number replaced by `redacted`. `200` with what was erased; `404
/// caller_not_found` when nothing was stored about the number.
pub(super) async fn delete_caller(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(phone): ApiPath<String>,
    ApiQuery(query): ApiQuery<CallersQuery>,
) -> Result<Response, ApiError> {
    let phone = params::e164(&phone)?;
    let tenant = tenant_of(&caller, query.tenant)?;
    let erased = state
        .store
        .erase_caller(&tenant, phone)
        .await
        .map_err(internal)?;
    if erased.is_empty() {
        return Err(not_found(phone));
    }
    let mut recordings_deleted = 0;
    for path in &erased.recording_paths {
        match tokio::fs::remove_file(path).await {
            Ok(()) => recordings_deleted += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            // The row is gone, so the file would be orphaned: say so loudly, but the erasure
            // of the database stands.
            Err(error) => tracing::error!(
                path,
                "could not delete an erased caller's recording: {error}"
            ),
        }
    }
    tracing::info!(
        phone = %crate::call::mask_number(phone),
        calls = erased.calls_redacted,
        "caller erased on request"
    );
    Ok(Json(json!({
        "tenant_id": tenant,
        "phone": phone,
        "profile_deleted": erased.profile_deleted,
        "calls_redacted": erased.calls_redacted,
        "recordings_deleted": recordings_deleted,
    }))
    .into_response())
}

fn not_found(phone: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "caller_not_found",
        format!("no caller {phone}"),
    )
}
