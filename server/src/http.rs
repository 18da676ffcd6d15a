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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use vaani_store::{CallFilter, CallRecord, Scope, Store};

use crate::metrics::Metrics;

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

/// The router for every HTTP endpoint.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/calls", get(list_calls).post(place_call))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/recording", get(get_recording))
        .route("/api/v1/recordings", get(list_recordings))
        .fallback(not_found)
        .with_state(state)
}

/// A JSON error body `{"error": {"code", "message"}}` with its status.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {error}")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Checks the bearer token; only the operator key exists in this version.
fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<Scope, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if constant_time_eq(token.as_bytes(), state.operator_key.as_bytes()) => {
            Ok(Scope::Operator)
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key is not valid",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API key as `Authorization: Bearer <key>`",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    tenant: Option<String>,
}

async fn list_calls(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    let filter = CallFilter {
        tenant: query.tenant,
        limit,
    };
    let calls = state
        .store
        .list_calls(&scope, &filter)
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
struct PlaceCallBody {
    /// The tenant whose plugin talks on the call.
    tenant: String,
    /// The number to call (E.164).
    to: String,
    /// Our caller id (E.164); default: the trunk's, else the tenant's first number.
    from: Option<String>,
}

/// Places a call through the tenant's trunk: `202` with the call id once the INVITE is on
/// its way; the call's status then follows in `GET /api/v1/calls/{id}`.
async fn place_call(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Result<Json<PlaceCallBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text()))?;
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

async fn get_call(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    match state.store.get_call(&scope, &id).await.map_err(internal)? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "call_not_found",
            format!("no call with id {id}"),
        )),
    }
}

/// Recordings, newest first (`?limit=` 1..=500, default 50; `?tenant=`).
async fn list_recordings(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    let Query(query) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    let filter = CallFilter {
        tenant: query.tenant,
        limit,
    };
    let recordings = state
        .store
        .list_recordings(&scope, &filter)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "recordings": recordings })).into_response())
}

/// The call's recording as `audio/wav`; `404 recording_not_found` when there is none (not
/// recorded, another tenant's call, or deleted by retention).
async fn get_recording(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scope = authorize(&state, &headers)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "recording_not_found",
            format!("no recording for call {id}"),
        )
    };
    let recording = state
        .store
        .recording_for_call(&scope, &id)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let bytes = match tokio::fs::read(&recording.path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(error) => return Err(internal(error)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.wav\"", recording.call_id),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!("API store error: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request could not be completed",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaani_store::{CallDirection, CallStatus, NewCall, Sentiment, Tenant, TenantStatus};

    const KEY: &str = "operator-secret";

    async fn state_with_call() -> (Arc<HttpState>, String) {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        store
            .upsert_tenant(&Tenant {
                id: "a".to_owned(),
                name: "Tenant a".to_owned(),
                status: TenantStatus::Active,
                created_at_ms: 1_000,
            })
            .await
            .unwrap();
        let call_id = vaani_store::new_id();
        store
            .insert_call(&NewCall {
                id: call_id.clone(),
                tenant_id: "a".to_owned(),
                external_id: None,
                direction: CallDirection::Inbound,
                caller: "+919800000001".to_owned(),
                dialled: "+918000000099".to_owned(),
                status: CallStatus::Ringing,
                started_at_ms: 10_000,
                plugin_name: None,
                plugin_version: None,
            })
            .await
            .unwrap();
        let state = Arc::new(HttpState {
            store,
            metrics: Arc::new(Metrics::new().unwrap()),
            operator_key: KEY.to_owned(),
            ready: AtomicBool::new(true),
            dialer: None,
        });
        (state, call_id)
    }

    async fn call_json(state: &Arc<HttpState>, call_id: &str) -> serde_json::Value {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap(),
        );
        let response = get_call(State(state.clone()), headers, Path(call_id.to_owned()))
            .await
            .unwrap_or_else(|e| e.into_response());
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// The call detail keeps every field it had and only gains `summary` and `sentiment`.
    #[tokio::test]
    async fn call_detail_json_only_gains_summary_and_sentiment() {
        let (state, call_id) = state_with_call().await;
        let json = call_json(&state, &call_id).await;
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = vec![
            // The call row.
            "id",
            "tenant_id",
            "external_id",
            "direction",
            "caller",
            "dialled",
            "status",
            "started_at_ms",
            "answered_at_ms",
            "ended_at_ms",
            "end_reason",
            "dtmf",
            "plugin_name",
            "plugin_version",
            "media_stats",
            "error",
            "cost_inr_micros",
            // What was recorded during the call.
            "transcript",
            "extractions",
            "events",
            "turns",
            "cost",
            "latency",
            // New in this version.
            "summary",
            "sentiment",
            // Call recording.
            "recording",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(json["id"], json!(call_id));
        assert_eq!(json["status"], json!("ringing"));
        assert_eq!(json["summary"], json!(null));
        assert_eq!(json["sentiment"], json!(null));

        state
            .store
            .set_call_summary(
                "a",
                &call_id,
                "Ordered two dosas.",
                Some(Sentiment::Positive),
            )
            .await
            .unwrap();
        let json = call_json(&state, &call_id).await;
        assert_eq!(json["summary"], json!("Ordered two dosas."));
        assert_eq!(json["sentiment"], json!("positive"));
    }

    async fn recording_response(state: &Arc<HttpState>, call_id: &str, key: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        get_recording(State(state.clone()), headers, Path(call_id.to_owned()))
            .await
            .unwrap_or_else(|e| e.into_response())
    }

    #[tokio::test]
    async fn a_recording_downloads_as_wav_and_is_404_when_absent() {
        let (state, call_id) = state_with_call().await;
        let response = recording_response(&state, &call_id, KEY).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], json!("recording_not_found"));
        assert_eq!(
            recording_response(&state, &call_id, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );

        let path = std::env::temp_dir().join(format!("vaani-http-{call_id}.wav"));
        std::fs::write(&path, b"RIFF....WAVE").unwrap();
        state
            .store
            .set_recording(&vaani_store::Recording {
                tenant_id: "a".to_owned(),
                call_id: call_id.clone(),
                path: path.to_string_lossy().into_owned(),
                duration_ms: 1_000,
                created_at_ms: 20_000,
            })
            .await
            .unwrap();
        let response = recording_response(&state, &call_id, KEY).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "audio/wav");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(&body[..], b"RIFF....WAVE");
        assert_eq!(
            call_json(&state, &call_id).await["recording"]["duration_ms"],
            json!(1_000)
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap(),
        );
        let query = Ok(Query(ListQuery {
            limit: None,
            tenant: Some("a".into()),
        }));
        let response = list_recordings(State(state.clone()), headers, query)
            .await
            .unwrap_or_else(|e| e.into_response());
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            listed,
            json!({ "recordings": [{
                "tenant_id": "a",
                "call_id": call_id,
                "duration_ms": 1_000,
                "created_at_ms": 20_000,
            }] })
        );

        // Deleted by retention (or by hand): gone from the API too.
        std::fs::remove_file(&path).unwrap();
        let response = recording_response(&state, &call_id, KEY).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
