//! The HTTP surface: health, readiness, Prometheus metrics and the calls API.
//!
//! `GET /api/v1/calls/{id}` returns the call with `transcript`, `extractions`, `events`,
//! `turns` (per-turn latency), `cost` (the priced ledger), `latency` (a summary over the
//! turns), `summary` and `sentiment` (`positive`, `neutral` or `negative`; both `null` until
//! the call is summarised) and `recording` (`duration_ms`, `created_at_ms`; `null` when the
//! call was not recorded); `GET /api/v1/calls` lists calls with their `cost_inr`.
//! `GET /api/v1/calls/{id}/recording` downloads the call's recording (`audio/wav`, two
//! channels: caller, agent), `404` when it has none; `GET /api/v1/recordings` lists the
//! recordings (`call_id`, `tenant_id`, `duration_ms`, `created_at_ms`), newest first.
//!
//! One module per thing served: [`health`] (health, readiness, metrics), [`calls`],
//! [`recordings`]; [`auth`] checks the bearer key, [`extract`] wraps axum's extractors and
//! [`error`] shapes every error answer as JSON.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use vaani_store::{CallFilter, Store};

use crate::metrics::Metrics;

mod auth;
mod calls;
mod error;
mod extract;
mod health;
mod recordings;
#[cfg(test)]
mod tests;

use error::ApiError;

/// What the HTTP handlers share.
pub struct HttpState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub operator_key: String,
    /// Set once SIP, media and plugins are up.
    pub ready: AtomicBool,
    /// Where `POST /api/v1/calls` sends the calls to place (`None`: not served).
    pub dialer: Option<tokio::sync::mpsc::Sender<crate::outbound::DialRequest>>,
}

/// The largest request body the JSON endpoints read: 64 KiB. A larger body is answered
/// `413 payload_too_large`. A route that takes more (an upload) sets its own limit with
/// `.layer(DefaultBodyLimit::max(bytes))` on its method router, which overrides this one.
const JSON_BODY_LIMIT: usize = 64 * 1024;

/// The router for every HTTP endpoint.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/api/v1/calls",
            get(calls::list_calls).post(calls::place_call),
        )
        .route("/api/v1/calls/{id}", get(calls::get_call))
        .route(
            "/api/v1/calls/{id}/recording",
            get(recordings::get_recording),
        )
        .route("/api/v1/recordings", get(recordings::list_recordings))
        .fallback(error::no_such_endpoint)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state)
}

/// The query of the list endpoints: `?limit=` (1..=500, default 50) and `?tenant=`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    tenant: Option<String>,
}

impl ListQuery {
    /// The store filter; `400 invalid_limit` when `limit` is out of range.
    fn into_filter(self) -> Result<CallFilter, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > 500 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                "limit must be between 1 and 500",
            ));
        }
        Ok(CallFilter {
            tenant: self.tenant,
            limit,
        })
    }
}
