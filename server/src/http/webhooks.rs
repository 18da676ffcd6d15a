//! The webhooks API: a tenant's endpoints (create, with the signing secret shown once; list;
//! delete) and its delivery log.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::json;
use vaani_store::{DeliveryStatus, StoreError, WebhookEventType};

use super::HttpState;
use super::auth::Caller;
use super::error::{ApiError, internal};
use super::extract::{ApiJson, ApiPath, ApiQuery};

/// Longest endpoint URL accepted.
const MAX_URL_BYTES: usize = 2048;
/// Endpoints one tenant may have.
const MAX_ENDPOINTS_PER_TENANT: usize = 10;

/// Body of `POST /api/v1/webhooks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateWebhookBody {
    /// Where to post (https, unless the server allows plain http).
    url: String,
    /// Event types to receive; none or absent: all of them.
    #[serde(default)]
    events: Vec<String>,
    /// The tenant (operator key only; a tenant key registers for itself).
    tenant: Option<String>,
}

/// Registers an endpoint: `201` with the endpoint and its signing `secret`, shown this once.
pub(super) async fn create_webhook(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhookBody>,
) -> Result<Response, ApiError> {
    let tenant = caller
        .existing_tenant_to_act_for(&state, body.tenant)
        .await?;
    check_url(&body.url, &state.webhooks)?;
    let mut events = Vec::new();
    for name in &body.events {
        let event = name.parse::<WebhookEventType>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_event",
                format!(
                    "unknown event type {name:?}; the types are {}",
                    WebhookEventType::ALL
                        .map(WebhookEventType::as_str)
                        .join(", ")
                ),
            )
        })?;
        events.push(event);
    }
    let existing = state
        .store
        .list_webhook_endpoints(Some(&tenant))
        .await
        .map_err(internal)?;
    if existing.len() >= MAX_ENDPOINTS_PER_TENANT {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            format!("a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints"),
        ));
    }
    let secret = new_secret();
    let endpoint = state
        .store
        .create_webhook_endpoint(&tenant, &body.url, &events, &secret, vaani_store::now_ms())
        .await
        .map_err(internal)?;
    let mut answer = serde_json::to_value(&endpoint).map_err(internal)?;
    answer["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A new signing secret: `whsec_` and 40 random letters and digits.
fn new_secret() -> String {
    let random: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("whsec_{random}")
}

/// `400 invalid_url` unless `url` is an absolute https URL (http when the server allows it)
/// without credentials or a fragment. Whether its host is a public address is checked at each
/// delivery (DNS can change), not here.
fn check_url(url: &str, policy: &vaani_config::WebhooksConfig) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_url",
            format!("webhook URL {url:?}: {why}"),
        )
    };
    if url.len() > MAX_URL_BYTES {
        return Err(invalid(&format!("longer than {MAX_URL_BYTES} bytes")));
    }
    let parsed = url::Url::parse(url).map_err(|error| invalid(&error.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_plain_http => {}
        "http" => return Err(invalid("must be https")),
        other => return Err(invalid(&format!("scheme {other:?} is not http(s)"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("must not have a fragment"));
    }
    Ok(())
}

/// `?tenant=`: the tenant an operator asks about.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

/// The tenant's endpoints (without their secrets), oldest first (the operator without
/// `?tenant=`: every tenant's).
pub(super) async fn list_webhooks(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    let listed = caller.tenant_to_list(&state, query.tenant).await?;
    let endpoints = match listed.tenant_filter() {
        Some(tenant) => state
            .store
            .list_webhook_endpoints(tenant)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "webhooks": endpoints })).into_response())
}

/// Deletes an endpoint and its pending deliveries: `204`; `404 webhook_not_found` when the
/// caller has no such endpoint.
pub(super) async fn delete_webhook(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    match state
        .store
        .delete_webhook_endpoint(&caller.scope, &id)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(StoreError::NotFound { .. }) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "webhook_not_found",
            format!("no webhook endpoint {id}"),
        )),
        Err(error) => Err(internal(error)),
    }
}

/// The query of the delivery log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveriesQuery {
    tenant: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

/// The tenant's delivery log, newest first (`?status=pending|delivered|failed`, `?limit=`;
/// the operator without `?tenant=`: every tenant's).
pub(super) async fn list_deliveries(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    let tenant = caller.tenant_to_list(&state, query.tenant).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<DeliveryStatus>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                format!("status {text:?} is not pending, delivered or failed"),
            )
        })?),
    };
    let limit = super::params::limit(query.limit)?;
    let deliveries = match tenant.tenant_filter() {
        Some(tenant) => state
            .store
            .list_webhook_deliveries(tenant, status, limit)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "deliveries": deliveries })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_https_unless_the_operator_allows_http() {
        let strict = vaani_config::WebhooksConfig::default();
        let lax = vaani_config::WebhooksConfig {
            allow_plain_http: true,
            ..strict
        };
        assert!(check_url("https://hooks.example.com/vaani", &strict).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com/vaani",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "",
        ] {
            let error = check_url(bad, &strict).unwrap_err();
            assert_eq!(error.code(), "invalid_url", "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", &lax).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(check_url(&long, &strict).is_err());
    }

    #[test]
    fn secrets_are_long_and_random() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with("whsec_") && a.len() == 46, "{a}");
        assert_ne!(a, b);
    }
}
