//! In-process tests of the HTTP API.

use std::sync::atomic::AtomicBool;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vaani_store::Store;

use super::calls::get_call;
use super::recordings::{get_recording, list_recordings};
use super::{HttpState, ListQuery};
use crate::metrics::Metrics;
use std::sync::Arc;
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
