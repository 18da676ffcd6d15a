//! In-process tests of the HTTP API.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use tower::ServiceExt;
use vaani_store::{CallDirection, CallStatus, NewCall, Sentiment, Store, Tenant, TenantStatus};

use super::{HttpState, JSON_BODY_LIMIT, router};
use crate::metrics::Metrics;

const KEY: &str = "operator-secret";

/// Sends one request through the whole router (routing, extractors, fallbacks, layers).
async fn send(
    state: &Arc<HttpState>,
    method: Method,
    uri: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    router(state.clone())
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap()
}

/// GET with the operator key.
async fn get(state: &Arc<HttpState>, uri: &str) -> Response {
    send(state, Method::GET, uri, Some(KEY), None, Body::empty()).await
}

async fn body_bytes(response: Response) -> axum::body::Bytes {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
}

/// Asserts the documented error answer: the status, a JSON content type and exactly
/// `{"error": {"code", "message"}}` with the expected code and a non-empty message.
async fn assert_error(response: Response, status: StatusCode, code: &str) -> serde_json::Value {
    assert_eq!(response.status(), status, "status for {code}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "content type for {code}"
    );
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    let error = body.as_object().unwrap();
    assert_eq!(error.len(), 1, "{body}");
    let fields = error["error"].as_object().unwrap();
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message"], "{body}");
    assert_eq!(fields["code"], json!(code), "{body}");
    assert!(
        !fields["message"].as_str().unwrap().is_empty(),
        "empty message: {body}"
    );
    body
}

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
    let response = get(state, &format!("/api/v1/calls/{call_id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(&body_bytes(response).await).unwrap()
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
    let uri = format!("/api/v1/calls/{call_id}/recording");
    send(state, Method::GET, &uri, Some(key), None, Body::empty()).await
}

#[tokio::test]
async fn a_recording_downloads_as_wav_and_is_404_when_absent() {
    let (state, call_id) = state_with_call().await;
    let response = recording_response(&state, &call_id, KEY).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = body_bytes(response).await;
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
    let body = body_bytes(response).await;
    assert_eq!(&body[..], b"RIFF....WAVE");
    assert_eq!(
        call_json(&state, &call_id).await["recording"]["duration_ms"],
        json!(1_000)
    );
    let response = get(&state, "/api/v1/recordings?tenant=a").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_bytes(response).await;
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

/// A body that `POST /api/v1/calls` accepts; the test state has no dialer, so it reaches the
/// handler and is answered `503 unavailable`.
fn place_call_body() -> String {
    json!({ "tenant": "a", "to": "+919800000002" }).to_string()
}

async fn post_call(
    state: &Arc<HttpState>,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Response {
    send(
        state,
        Method::POST,
        "/api/v1/calls",
        key,
        content_type,
        body,
    )
    .await
}

#[tokio::test]
async fn a_method_the_path_does_not_serve_is_405_json_with_allow() {
    let (state, call_id) = state_with_call().await;
    let response = send(
        &state,
        Method::DELETE,
        "/api/v1/calls",
        Some(KEY),
        None,
        Body::empty(),
    )
    .await;
    let allow = response.headers()[header::ALLOW]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let body = assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_eq!(
        body["error"]["message"],
        json!("DELETE is not allowed on /api/v1/calls")
    );
    // Without a key too: the method is wrong whoever asks.
    let uri = format!("/api/v1/calls/{call_id}");
    let response = send(&state, Method::PUT, &uri, None, None, Body::empty()).await;
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_json() {
    let (state, _) = state_with_call().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = post_call(&state, Some(KEY), content_type, place_call_body()).await;
        assert_error(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    // The same body with the JSON content type gets through to the handler.
    let response = post_call(
        &state,
        Some(KEY),
        Some("application/json"),
        place_call_body(),
    )
    .await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
}

#[tokio::test]
async fn broken_or_misshapen_json_is_400_json() {
    let (state, _) = state_with_call().await;
    for (body, code) in [
        (r#"{"tenant": "a", "to": "#, "invalid_json"),
        ("not json", "invalid_json"),
        (r#"{"tenant": "a"}"#, "invalid_body"),
        (r#"{"tenant": "a", "to": 5}"#, "invalid_body"),
        (
            r#"{"tenant": "a", "to": "+919800000002", "colour": "red"}"#,
            "invalid_body",
        ),
        ("[]", "invalid_body"),
    ] {
        let response = post_call(&state, Some(KEY), Some("application/json"), body).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
}

#[tokio::test]
async fn the_key_is_checked_before_the_body_or_query() {
    let (state, _) = state_with_call().await;
    let response = post_call(&state, None, Some("application/json"), "not json").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = post_call(&state, Some("wrong"), None, "not json").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = send(
        &state,
        Method::GET,
        "/api/v1/calls?limit=abc",
        None,
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn bad_query_and_path_parameters_are_400_json() {
    let (state, _) = state_with_call().await;
    for uri in [
        "/api/v1/calls?limit=abc",
        "/api/v1/calls?limit=-1",
        "/api/v1/calls?limit=99999999999",
        "/api/v1/recordings?limit=ten",
    ] {
        assert_error(
            get(&state, uri).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
    for uri in ["/api/v1/calls?limit=0", "/api/v1/recordings?limit=501"] {
        assert_error(
            get(&state, uri).await,
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        )
        .await;
    }
    // `%FF` is not UTF-8, so the id cannot be a string.
    for uri in ["/api/v1/calls/%FF", "/api/v1/calls/%FF/recording"] {
        assert_error(
            get(&state, uri).await,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_paths_stay_404_json() {
    let (state, _) = state_with_call().await;
    for uri in [
        "/api/v1/nope",
        "/api/v2/calls",
        "/api/v1/calls/x/y/z",
        "/nope",
    ] {
        assert_error(get(&state, uri).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_error(
        get(&state, "/api/v1/calls/0190-nope").await,
        StatusCode::NOT_FOUND,
        "call_not_found",
    )
    .await;
}

/// A `POST /api/v1/calls` body of exactly `len` bytes: valid JSON of the right shape, padded
/// with spaces.
fn padded_place_call_body(len: usize) -> String {
    let mut body = place_call_body();
    assert!(body.len() <= len);
    body.extend(std::iter::repeat_n(' ', len - body.len()));
    body
}

#[tokio::test]
async fn a_json_body_over_64_kib_is_413_json() {
    let (state, _) = state_with_call().await;
    assert_eq!(JSON_BODY_LIMIT, 64 * 1024);
    // At the limit the body is read and reaches the handler.
    let body = padded_place_call_body(JSON_BODY_LIMIT);
    let response = post_call(&state, Some(KEY), Some("application/json"), body).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // One byte more is refused, and so is a body far over axum's implicit 2 MB.
    for len in [JSON_BODY_LIMIT + 1, 3 << 20] {
        let body = padded_place_call_body(len);
        let response = post_call(&state, Some(KEY), Some("application/json"), body).await;
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
}
