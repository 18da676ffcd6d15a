//! The bearer-key check in front of every `/api/v1` endpoint.
//!
//! A handler takes a [`Caller`] as its first extractor after `State`, so an unauthenticated
//! request is answered `401` before its query or body is looked at. Two kinds of key exist:
//! the operator key (`[http] operator_key`) gives `Scope::Operator`; a tenant's API key
//! (`vk_…`, created with `POST /api/v1/keys`, stored only as a hash) gives
//! `Scope::Tenant(id)`. An unknown or revoked key is `401`. Keys are never logged; the
//! request span records only the tenant id.
//!
//! Each request then counts against its key's rate (`[http] requests_per_second_per_key`,
//! the key known only by a hash), and a request without a valid key against its source
//! address's; over it the answer is `429 rate_limited` with `Retry-After`.
//!
//! Across tenants the answer is `404`, never `403`: [`Caller::operator_only`] answers a tenant
//! key on an operator endpoint as if the endpoint did not exist, and
//! [`Caller::tenant_to_act_for`] answers a tenant key naming another tenant as if that tenant
//! did not exist.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use vaani_store::Scope;

use super::HttpState;
use super::error::ApiError;
use crate::limits::ApiClient;

/// Who is calling an `/api/v1` endpoint: the scope its bearer key grants.
pub(super) struct Caller {
    /// What the key may see and change.
    pub(super) scope: Scope,
}

impl Caller {
    /// `Ok` for the operator; a tenant key gets `404 not_found`, the answer for a path no
    /// route serves, so operator endpoints do not reveal themselves to tenants.
    pub(super) fn operator_only(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Operator => Ok(()),
            Scope::Tenant(_) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            )),
        }
    }

    /// The tenant a write acts for, from the `tenant` a request names (if any): a tenant key
    /// acts for its own tenant (naming another is `404 unknown_tenant`, as if it did not
    /// exist); the operator must name one (`400 tenant_required`).
    pub(super) fn tenant_to_act_for(&self, named: Option<String>) -> Result<String, ApiError> {
        match (&self.scope, named) {
            (Scope::Tenant(own), None) => Ok(own.clone()),
            (Scope::Tenant(own), Some(named)) if *own == named => Ok(named),
            (Scope::Tenant(_), Some(named)) => Err(unknown_tenant(&named)),
            (Scope::Operator, Some(named)) => Ok(named),
            (Scope::Operator, None) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "tenant_required",
                "the operator key must name the tenant (`tenant`)",
            )),
        }
    }
}

impl Caller {
    /// [`Caller::tenant_to_act_for`], and for the operator also that the named tenant exists
    /// (`404 unknown_tenant` when not).
    pub(super) async fn existing_tenant_to_act_for(
        &self,
        state: &HttpState,
        named: Option<String>,
    ) -> Result<String, ApiError> {
        let tenant = self.tenant_to_act_for(named)?;
        if self.scope == Scope::Operator
            && state
                .store
                .get_tenant(&tenant)
                .await
                .map_err(super::error::internal)?
                .is_none()
        {
            return Err(unknown_tenant(&tenant));
        }
        Ok(tenant)
    }
}

/// Whose rows a list shows.
pub(super) enum Listed {
    /// Every tenant's (the operator naming none).
    All,
    /// This tenant's.
    Only(String),
    /// None: a tenant key named another tenant (an empty list, as the other lists answer).
    Nothing,
}

impl Listed {
    /// The store's tenant filter: `Some(None)` every tenant, `Some(Some(id))` one, `None` none.
    pub(super) fn tenant_filter(&self) -> Option<Option<&str>> {
        match self {
            Listed::All => Some(None),
            Listed::Only(id) => Some(Some(id)),
            Listed::Nothing => None,
        }
    }
}

impl Caller {
    /// Whose rows a list shows: a tenant key's own (naming another tenant shows nothing); the
    /// operator's named tenant (`404 unknown_tenant` when it does not exist), or every tenant.
    pub(super) async fn tenant_to_list(
        &self,
        state: &HttpState,
        named: Option<String>,
    ) -> Result<Listed, ApiError> {
        match (&self.scope, named) {
            (Scope::Tenant(own), Some(named)) if *own != named => Ok(Listed::Nothing),
            (Scope::Tenant(own), _) => Ok(Listed::Only(own.clone())),
            (Scope::Operator, None) => Ok(Listed::All),
            (Scope::Operator, named) => self
                .existing_tenant_to_act_for(state, named)
                .await
                .map(Listed::Only),
        }
    }
}

/// `404 unknown_tenant`: the tenant a request names does not exist (or is not the key's).
pub(super) fn unknown_tenant(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        format!("no tenant {id:?}"),
    )
}

impl FromRequestParts<Arc<HttpState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Self, ApiError> {
        let key = bearer_key(&parts.headers);
        let scope = match &key {
            Ok(key) => scope_for_key(state, key).await,
            Err(_) => Err(unauthorized(
                "send an API key as `Authorization: Bearer <key>`",
            )),
        };
        let client = match (&scope, key) {
            (Ok(_), Ok(key)) => ApiClient::key(key),
            _ => ApiClient::Address(
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|info| info.0.ip().to_canonical()),
            ),
        };
        if let Err(refused) = state.api_limits.check(&client, Instant::now()) {
            if refused.first {
                tracing::info!(
                    authenticated = scope.is_ok(),
                    "API request refused: over the per-key request rate"
                );
            }
            return Err(ApiError::rate_limited(refused.retry_after_secs()));
        }
        let scope = scope?;
        if let Some(tenant) = scope.tenant_id() {
            tracing::Span::current().record("tenant_id", tenant);
        }
        Ok(Caller { scope })
    }
}

/// The key in `Authorization: Bearer <key>`; `401` when the header is missing or malformed.
fn bearer_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("send an API key as `Authorization: Bearer <key>`"))
}

/// `401 unauthorized`.
fn unauthorized(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The scope a presented key grants: the operator key gives `Scope::Operator`; a live tenant
/// API key gives `Scope::Tenant`; anything else (unknown, revoked, a deleted tenant's) is
/// `401`. The key never reaches a log line or an error message.
async fn scope_for_key(state: &HttpState, key: &str) -> Result<Scope, ApiError> {
    if constant_time_eq(key.as_bytes(), state.operator_key.as_bytes()) {
        return Ok(Scope::Operator);
    }
    match state.store.tenant_for_api_key(key).await {
        Ok(Some(tenant)) => Ok(Scope::Tenant(tenant)),
        Ok(None) => Err(unauthorized("the API key is not valid")),
        // The store's error names the query, never the key.
        Err(error) => Err(super::error::internal(error)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
