//! In-process tests of the HTTP API.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use tower::ServiceExt;
use vaani_store::{CallDirection, CallStatus, NewCall, Sentiment, Store, Tenant, TenantStatus};

use super::openapi::OPENAPI_JSON;
use super::{Endpoint, HttpState, JSON_BODY_LIMIT, endpoints, router, router_for};
use crate::metrics::Metrics;

mod read_api;
mod routing;

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
        plugin_uploads: None,
        webhooks: vaani_config::WebhooksConfig::default(),
        routing: None,
        api_limits: crate::limits::ApiRateLimiter::new(0, 0),
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

#[tokio::test]
async fn an_endpoint_with_its_own_body_limit_overrides_the_json_limit() {
    let (state, _) = state_with_call().await;
    async fn length(super::extract::ApiBytes(body): super::extract::ApiBytes) -> String {
        body.len().to_string()
    }
    let big = 4 * JSON_BODY_LIMIT;
    let endpoints = vec![
        Endpoint::new(Method::POST, "/small", length),
        Endpoint::new(Method::POST, "/upload", length).body_limit(big),
        Endpoint::new(Method::GET, "/upload", length),
    ];
    let app = router_for(endpoints, state);
    let post = |uri: &'static str, len: usize| {
        let request = Request::post(uri)
            .body(Body::from(vec![b'x'; len]))
            .unwrap();
        app.clone().oneshot(request)
    };
    let response = post("/upload", big).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&body_bytes(response).await[..], big.to_string().as_bytes());
    let response = post("/upload", big + 1).await.unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let response = post("/small", JSON_BODY_LIMIT + 1).await.unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // The limit wraps the one method only; the path's other answers are unchanged.
    let response = app
        .clone()
        .oneshot(Request::delete("/upload").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

/// The OpenAPI document, parsed.
fn openapi() -> serde_json::Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

/// The methods an OpenAPI path item may hold.
const OPENAPI_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(METHOD, path)` the document describes.
fn documented_operations(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if OPENAPI_METHODS.contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// `path` with every `{name}` parameter replaced by `x`.
fn sample_uri(path: &str) -> String {
    let mut uri = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                uri.push('x');
            }
            '}' => in_parameter = false,
            c if !in_parameter => uri.push(c),
            _ => {}
        }
    }
    uri
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_key() {
    let (state, _) = state_with_call().await;
    let uri = "/api/v1/openapi.json";
    let response = send(&state, Method::GET, uri, None, None, Body::empty()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let served: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(served, openapi());
    assert_eq!(served["openapi"], json!("3.1.0"));
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "The operator key (`[http] operator_key`), or a tenant's API key (`vk_…`, from `POST /api/v1/keys`)."
        })
    );
    assert_eq!(served["security"], json!([{ "bearer": [] }]));
    for path in [
        "/api/v1/calls",
        "/api/v1/calls/{id}",
        "/api/v1/calls/{id}/recording",
        "/api/v1/recordings",
        "/api/v1/openapi.json",
        "/api/v1/tenants",
        "/api/v1/tenants/{id}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/numbers",
        "/api/v1/numbers/{number}",
    ] {
        assert!(served["paths"].get(path).is_some(), "{path} missing");
    }
}

/// Later steps add endpoints: each must be in `endpoints()` (what the router serves) and in
/// `openapi.json`, with the same methods.
#[tokio::test]
async fn every_served_endpoint_is_documented_and_every_documented_one_is_served() {
    let doc = openapi();
    let documented = documented_operations(&doc);
    let served: BTreeSet<(String, String)> = endpoints()
        .iter()
        .map(|endpoint| (endpoint.method.to_string(), endpoint.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in openapi.json: {undocumented:?}; in openapi.json but not served: \
         {unserved:?}"
    );

    // The router really answers them, and answers nothing else on those paths.
    let (state, _) = state_with_call().await;
    let paths: BTreeSet<&str> = documented.iter().map(|(_, path)| path.as_str()).collect();
    for path in paths {
        let uri = sample_uri(path);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let is_documented = documented.contains(&(method.to_string(), path.to_owned()));
            let response = send(&state, method.clone(), &uri, None, None, Body::empty()).await;
            let status = response.status();
            if is_documented {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
                if status == StatusCode::NOT_FOUND {
                    let body: serde_json::Value =
                        serde_json::from_slice(&body_bytes(response).await).unwrap();
                    assert_ne!(body["error"]["code"], json!("not_found"), "{method} {uri}");
                }
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            }
        }
    }
}

/// Every `$ref` in `value` (recursively).
fn refs<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", serde_json::Value::String(target)) => found.push(target),
                    _ => refs(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

/// `value`, or what it points to when it is a `{"$ref": "#/..."}`.
fn resolve<'a>(doc: &'a serde_json::Value, value: &'a serde_json::Value) -> &'a serde_json::Value {
    match value.get("$ref").and_then(|target| target.as_str()) {
        Some(target) => doc
            .pointer(target.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {target}")),
        None => value,
    }
}

#[test]
fn the_openapi_document_is_consistent() {
    let doc = openapi();
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        assert!(target.starts_with("#/components/"), "{target}");
        assert!(
            doc.pointer(target.trim_start_matches('#')).is_some(),
            "dangling $ref {target}"
        );
    }
    let mut operation_ids = BTreeSet::new();
    for (method, path) in documented_operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(operation_ids.insert(id.to_owned()), "{id} twice");
        // Every `{name}` in the path is a declared path parameter, and nothing more.
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| parameter["name"].as_str().unwrap().to_owned())
            .collect();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, in_path, "{method} {path}");
        // The API needs the key (and documents its 401); health, metrics and this document
        // do not.
        let open = path == "/api/v1/openapi.json" || !path.starts_with("/api/v1/");
        if open {
            assert_eq!(operation["security"], json!([]), "{method} {path}");
        } else {
            assert!(operation.get("security").is_none(), "{method} {path}");
            assert!(
                operation["responses"].get("401").is_some(),
                "{method} {path}"
            );
            assert!(
                operation["responses"].get("default").is_some(),
                "{method} {path}"
            );
            // Every key-checked endpoint may answer 429 (the key's request rate).
            let too_many = &operation["responses"]["429"];
            assert!(
                too_many["$ref"] == "#/components/responses/TooManyRequests"
                    || too_many["headers"]["Retry-After"].is_object(),
                "{method} {path}: {too_many}"
            );
        }
    }
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_keys_and_strangers_count_apart() {
    let (state, _) = state_with_call().await;
    let limited = Arc::new(HttpState {
        store: state.store.clone(),
        metrics: Arc::new(Metrics::new().unwrap()),
        operator_key: KEY.to_owned(),
        ready: AtomicBool::new(true),
        dialer: None,
        plugin_uploads: None,
        webhooks: vaani_config::WebhooksConfig::default(),
        routing: None,
        // One a second, bursts of two.
        api_limits: crate::limits::ApiRateLimiter::new(1, 2),
    });
    for _ in 0..2 {
        assert_eq!(
            get(&limited, "/api/v1/calls").await.status(),
            StatusCode::OK
        );
    }
    let response = get(&limited, "/api/v1/calls").await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Requests without a valid key count against their source, not against the key.
    for key in [None, Some("wrong-key")] {
        let response = send(
            &limited,
            Method::GET,
            "/api/v1/calls",
            key,
            None,
            Body::empty(),
        )
        .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let response = send(
        &limited,
        Method::GET,
        "/api/v1/calls",
        None,
        None,
        Body::empty(),
    )
    .await;
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Health and metrics are not rate-limited.
    for _ in 0..5 {
        let response = send(&limited, Method::GET, "/metrics", None, None, Body::empty()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// The JSON schema of the answer `status` to `method path`, as a validator.
fn response_validator(path: &str, method: &str, status: &str) -> jsonschema::Validator {
    let doc = openapi();
    let response = resolve(&doc, &doc["paths"][path][method]["responses"][status]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema"
    );
    let mut schema = schema.clone();
    // Resolve `#/components/...` against the document.
    schema["components"] = doc["components"].clone();
    jsonschema::validator_for(&schema).expect("a valid JSON schema")
}

fn assert_valid(validator: &jsonschema::Validator, instance: &serde_json::Value) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| error.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {instance:#}");
}

/// The properties a schema (or its `allOf` parts) declares.
fn declared_properties(doc: &serde_json::Value, schema: &serde_json::Value) -> BTreeSet<String> {
    let schema = resolve(doc, schema);
    let mut properties: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        properties.extend(declared_properties(doc, part));
    }
    properties
}

fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn answers_match_the_documented_schemas() {
    let doc = openapi();
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let (state, call_id) = state_with_call().await;
    state
        .store
        .set_recording(&vaani_store::Recording {
            tenant_id: "a".to_owned(),
            call_id: call_id.clone(),
            path: "/nonexistent.wav".to_owned(),
            duration_ms: 1_000,
            created_at_ms: 20_000,
        })
        .await
        .unwrap();

    // A finished call with one of everything, so every nested schema is checked.
    let store = &state.store;
    let line = vaani_store::NewTranscriptLine {
        speaker: vaani_store::Speaker::Caller,
        text: "Two dosas, please.".to_owned(),
        start_ms: 1_000,
        end_ms: 2_000,
        confidence: Some(0.9),
    };
    store
        .add_transcript_line("a", &call_id, &line)
        .await
        .unwrap();
    let order = json!({ "items": ["dosa", "dosa"] });
    store
        .add_extraction("a", &call_id, "order", &order)
        .await
        .unwrap();
    store
        .add_call_event("a", &call_id, 11_000, "dtmf", "5")
        .await
        .unwrap();
    let outcome = vaani_store::CallOutcome {
        status: CallStatus::Completed,
        ended_at_ms: 30_000,
        end_reason: "caller_hangup".to_owned(),
        media_stats: Some(json!({ "mos": 4.3 })),
        error: None,
    };
    let turn = vaani_store::CallTurn {
        caller_text: Some("Two dosas, please.".to_owned()),
        total_ms: Some(640),
        ..Default::default()
    };
    let report = vaani_store::CallReport {
        turns: vec![turn],
        cost_inr_micros: 1_250_000,
        cost: json!({ "total_inr": 1.25 }),
        latency: json!({ "count": 1 }),
    };
    store
        .finish_call_with_report("a", &call_id, &outcome, &report)
        .await
        .unwrap();
    store
        .set_call_summary("a", &call_id, "Ordered.", Some(Sentiment::Positive))
        .await
        .unwrap();

    let detail = call_json(&state, &call_id).await;
    for list in ["transcript", "extractions", "events", "turns"] {
        assert_eq!(detail[list].as_array().unwrap().len(), 1, "{list}");
    }
    assert_valid(
        &response_validator("/api/v1/calls/{id}", "get", "200"),
        &detail,
    );
    assert_eq!(
        keys(&detail),
        declared_properties(&doc, &schema("CallDetail"))
    );
    assert_eq!(
        keys(&detail["recording"]),
        declared_properties(&doc, &schema("Recording"))
    );

    let response = get(&state, "/api/v1/calls").await;
    let listed: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_valid(&response_validator("/api/v1/calls", "get", "200"), &listed);
    assert_eq!(
        keys(&listed["calls"][0]),
        declared_properties(&doc, &schema("ListedCall"))
    );
    assert_eq!(listed["calls"][0]["cost_inr"], json!(1.25));

    let response = get(&state, "/api/v1/recordings").await;
    let listed: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_valid(
        &response_validator("/api/v1/recordings", "get", "200"),
        &listed,
    );
    assert_eq!(listed["recordings"].as_array().unwrap().len(), 1);

    // Error answers, each against the response the document gives for its status.
    let errors = [
        (
            get(&state, "/api/v1/calls?limit=0").await,
            "/api/v1/calls",
            "get",
        ),
        (
            send(
                &state,
                Method::GET,
                "/api/v1/calls",
                None,
                None,
                Body::empty(),
            )
            .await,
            "/api/v1/calls",
            "get",
        ),
        (
            get(&state, "/api/v1/calls/nope").await,
            "/api/v1/calls/{id}",
            "get",
        ),
        (
            get(&state, &format!("/api/v1/calls/{call_id}/recording")).await,
            "/api/v1/calls/{id}/recording",
            "get",
        ),
        (
            post_call(&state, Some(KEY), None, place_call_body()).await,
            "/api/v1/calls",
            "post",
        ),
        (
            post_call(
                &state,
                Some(KEY),
                Some("application/json"),
                place_call_body(),
            )
            .await,
            "/api/v1/calls",
            "post",
        ),
    ];
    for (response, path, method) in errors {
        let status = response.status().as_str().to_owned();
        assert!(
            doc["paths"][path][method]["responses"]
                .get(&status)
                .is_some(),
            "{method} {path}: {status} is not documented"
        );
        let body: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
        assert_valid(&response_validator(path, method, &status), &body);
    }
    // The Error schema is strict enough to refuse something else.
    let error = response_validator("/api/v1/calls", "get", "default");
    assert!(!error.is_valid(&json!({ "message": "no code" })));
    assert!(!error.is_valid(&listed));
}

/// A stored (not compiled) plugin version of tenant `a`.
async fn stored_plugin(state: &Arc<HttpState>) -> vaani_store::PluginVersion {
    let plugin = vaani_store::NewPlugin {
        tenant_id: "a".to_owned(),
        name: "echo".to_owned(),
        plugin_version: "1.0.0".to_owned(),
        world_version: "0.3.0".to_owned(),
        content_hash: "ab".repeat(32),
        info: json!({"name": "echo", "version": "1.0.0", "schemas": []}),
        wasm: b"\0asm".to_vec(),
        artifact: None,
    };
    state
        .store
        .add_plugin(&plugin, 5_000)
        .await
        .unwrap()
        .version
}

#[tokio::test]
async fn plugin_uploads_check_the_tenant_and_the_content_type_first() {
    let (state, _) = state_with_call().await;
    let upload = |uri: &'static str, content_type: &'static str| {
        send(
            &state,
            Method::POST,
            uri,
            Some(KEY),
            Some(content_type),
            b"\0asm\x0d\0\x01\0".to_vec(),
        )
    };
    let response = upload("/api/v1/plugins", "application/wasm").await;
    assert_error(response, StatusCode::BAD_REQUEST, "tenant_required").await;
    let response = upload("/api/v1/plugins?tenant=ghost", "application/wasm").await;
    assert_error(response, StatusCode::NOT_FOUND, "unknown_tenant").await;
    let response = upload("/api/v1/plugins?tenant=a", "application/json").await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // This state has no compiler: a well-formed request is 503, and nothing is stored.
    let response = upload("/api/v1/plugins?tenant=a", "application/wasm").await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        state
            .store
            .list_plugins(Some("a"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// POST without a body, with the operator key.
async fn post_empty(state: &Arc<HttpState>, uri: &str) -> Response {
    send(state, Method::POST, uri, Some(KEY), None, Body::empty()).await
}

#[tokio::test]
async fn plugin_versions_list_activate_and_roll_back() {
    let doc = openapi();
    let (state, _) = state_with_call().await;

    let response = post_empty(&state, "/api/v1/plugins/rollback?tenant=a").await;
    assert_error(response, StatusCode::CONFLICT, "no_earlier_version").await;
    let response = get(&state, "/api/v1/plugins/no-such-id").await;
    assert_error(response, StatusCode::NOT_FOUND, "plugin_not_found").await;
    let response = post_empty(&state, "/api/v1/plugins/no-such-id/activate").await;
    assert_error(response, StatusCode::NOT_FOUND, "plugin_not_found").await;

    let version = stored_plugin(&state).await;
    let response = get(&state, "/api/v1/plugins?tenant=a").await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_valid(
        &response_validator("/api/v1/plugins", "get", "200"),
        &listed,
    );
    assert_eq!(listed["plugins"][0]["id"], version.id.as_str());
    assert_eq!(listed["plugins"][0]["active"], false);
    assert_eq!(
        keys(&listed["plugins"][0]),
        declared_properties(&doc, &json!({"$ref": "#/components/schemas/PluginVersion"}))
    );

    let response = post_empty(&state, &format!("/api/v1/plugins/{}/activate", version.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let active: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_valid(
        &response_validator("/api/v1/plugins/{id}/activate", "post", "200"),
        &active,
    );
    assert_eq!(active["active"], true);
    let response = get(&state, &format!("/api/v1/plugins/{}", version.id)).await;
    let fetched: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
    assert_eq!(fetched, active);
}

// ---- Tenancy: tenants, API keys, numbers, and what a tenant key may see ----

/// Sends `body` as JSON (or no body) with `key`; returns the status and the parsed body
/// (`null` when empty).
async fn send_json(
    state: &Arc<HttpState>,
    method: Method,
    uri: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let (content_type, body) = match body {
        Some(body) => (Some("application/json"), Body::from(body.to_string())),
        None => (None, Body::empty()),
    };
    let response = send(state, method, uri, Some(key), content_type, body).await;
    let status = response.status();
    let bytes = body_bytes(response).await;
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, json)
}

/// The test state (tenant `a` with one call) plus tenant `b` with a call of its own, and an
/// API key for each: `(state, a's call, b's call, a's key, b's key)`.
async fn two_tenant_state() -> (Arc<HttpState>, String, String, String, String) {
    let (state, call_a) = state_with_call().await;
    let store = &state.store;
    store
        .create_tenant(&vaani_store::NewTenant {
            id: "b".to_owned(),
            name: "Tenant b".to_owned(),
            settings: None,
        })
        .await
        .unwrap();
    let call_b = vaani_store::new_id();
    store
        .insert_call(&NewCall {
            id: call_b.clone(),
            tenant_id: "b".to_owned(),
            external_id: None,
            direction: CallDirection::Inbound,
            caller: "+919800000002".to_owned(),
            dialled: "+918000000002".to_owned(),
            status: CallStatus::Ringing,
            started_at_ms: 20_000,
            plugin_name: None,
            plugin_version: None,
        })
        .await
        .unwrap();
    let (_, key_a) = store.create_api_key("a", "a").await.unwrap();
    let (_, key_b) = store.create_api_key("b", "b").await.unwrap();
    (state, call_a, call_b, key_a, key_b)
}

fn ids(list: &serde_json::Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_operator_creates_reads_changes_and_deletes_tenants() {
    let (state, _) = state_with_call().await;
    let settings = json!({ "greeting": "Namaste" });
    let (status, created) = send_json(
        &state,
        Method::POST,
        "/api/v1/tenants",
        KEY,
        Some(json!({ "id": "sunny", "name": " Sunny Clinic ", "settings": settings })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], json!("sunny"));
    assert_eq!(created["name"], json!("Sunny Clinic"));
    assert_eq!(created["status"], json!("active"));
    assert_eq!(created["settings"], settings);

    let (status, listed) = send_json(&state, Method::GET, "/api/v1/tenants", KEY, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&listed["tenants"], "id"), ["a", "sunny"]);

    let (status, fetched) =
        send_json(&state, Method::GET, "/api/v1/tenants/sunny", KEY, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, patched) = send_json(
        &state,
        Method::PATCH,
        "/api/v1/tenants/sunny",
        KEY,
        Some(json!({ "status": "suspended" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["status"], json!("suspended"));
    assert_eq!(patched["name"], json!("Sunny Clinic"));
    assert_eq!(patched["settings"], settings, "absent settings are kept");
    let (_, patched) = send_json(
        &state,
        Method::PATCH,
        "/api/v1/tenants/sunny",
        KEY,
        Some(json!({ "settings": null, "name": "Renamed" })),
    )
    .await;
    assert_eq!(
        patched["settings"],
        json!(null),
        "null removes the settings"
    );
    assert_eq!(patched["name"], json!("Renamed"));

    let (status, body) =
        send_json(&state, Method::DELETE, "/api/v1/tenants/sunny", KEY, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, json!(null));
    for method in [Method::GET, Method::DELETE] {
        let response = send(
            &state,
            method,
            "/api/v1/tenants/sunny",
            Some(KEY),
            None,
            Body::empty(),
        )
        .await;
        assert_error(response, StatusCode::NOT_FOUND, "tenant_not_found").await;
    }
    let response = send(
        &state,
        Method::PATCH,
        "/api/v1/tenants/sunny",
        Some(KEY),
        Some("application/json"),
        json!({ "name": "x" }).to_string(),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "tenant_not_found").await;
}

#[tokio::test]
async fn tenant_requests_are_validated() {
    let (state, _) = state_with_call().await;
    let post = |body: serde_json::Value| {
        let state = state.clone();
        async move {
            send(
                &state,
                Method::POST,
                "/api/v1/tenants",
                Some(KEY),
                Some("application/json"),
                body.to_string(),
            )
            .await
        }
    };
    let conflict = post(json!({ "id": "a", "name": "Again" })).await;
    assert_error(conflict, StatusCode::CONFLICT, "conflict").await;
    for id in ["", "Upper", "with space", "a/b", &"x".repeat(65)] {
        let response = post(json!({ "id": id, "name": "N" })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_tenant_id").await;
    }
    for name in ["", "   ", &"n".repeat(201)] {
        let response = post(json!({ "id": "ok", "name": name })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    }
    for settings in [json!([1]), json!("text"), json!(3)] {
        let response = post(json!({ "id": "ok", "name": "N", "settings": settings })).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    }
    let unknown_field = post(json!({ "id": "ok", "name": "N", "plan": "gold" })).await;
    assert_error(unknown_field, StatusCode::BAD_REQUEST, "invalid_body").await;
    let patch = send(
        &state,
        Method::PATCH,
        "/api/v1/tenants/a",
        Some(KEY),
        Some("application/json"),
        json!({ "status": "deleted" }).to_string(),
    )
    .await;
    assert_error(patch, StatusCode::BAD_REQUEST, "invalid_body").await;
    // Nothing was created by the refused requests.
    assert_eq!(state.store.list_tenants().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_tenant_key_finds_no_tenants_endpoint() {
    let (state, _, _, key_a, _) = two_tenant_state().await;
    let requests = [
        (Method::GET, "/api/v1/tenants", None),
        (
            Method::POST,
            "/api/v1/tenants",
            Some(json!({ "id": "c", "name": "C" })),
        ),
        (Method::GET, "/api/v1/tenants/a", None),
        (Method::GET, "/api/v1/tenants/b", None),
        (
            Method::PATCH,
            "/api/v1/tenants/a",
            Some(json!({ "status": "active" })),
        ),
        (Method::DELETE, "/api/v1/tenants/b", None),
    ];
    for (method, uri, body) in requests {
        let (content_type, body) = match body {
            Some(body) => (Some("application/json"), Body::from(body.to_string())),
            None => (None, Body::empty()),
        };
        let response = send(&state, method, uri, Some(&key_a), content_type, body).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Nothing changed.
    let tenants = state.store.list_tenants().await.unwrap();
    assert_eq!(tenants.len(), 2);
}

#[tokio::test]
async fn tenant_keys_are_created_shown_once_listed_and_revoked() {
    let (state, _, _, key_a, _) = two_tenant_state().await;

    // A tenant key creates a key for its own tenant.
    let (status, created) = send_json(
        &state,
        Method::POST,
        "/api/v1/keys",
        &key_a,
        Some(json!({ "name": "crm export" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["tenant_id"], json!("a"));
    assert_eq!(created["name"], json!("crm export"));
    let new_key = created["key"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with(created["prefix"].as_str().unwrap()));

    // The new key works, for tenant a only.
    let (status, listed) = send_json(&state, Method::GET, "/api/v1/keys", &new_key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&listed["keys"], "tenant_id"), ["a", "a"]);
    let listed_text = listed.to_string();
    assert!(!listed_text.contains(&new_key) && !listed_text.contains(&key_a));
    assert!(listed["keys"][1].get("key").is_none());

    // The operator sees every tenant's keys, or one tenant's.
    let (_, all) = send_json(&state, Method::GET, "/api/v1/keys", KEY, None).await;
    assert_eq!(ids(&all["keys"], "tenant_id"), ["a", "a", "b"]);
    let (_, only_b) = send_json(&state, Method::GET, "/api/v1/keys?tenant=b", KEY, None).await;
    assert_eq!(ids(&only_b["keys"], "tenant_id"), ["b"]);

    // Revoking: 204, then the key is 401.
    let uri = format!("/api/v1/keys/{}", created["id"].as_str().unwrap());
    let (status, _) = send_json(&state, Method::DELETE, &uri, &key_a, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = send(
        &state,
        Method::GET,
        "/api/v1/calls",
        Some(&new_key),
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (_, listed) = send_json(&state, Method::GET, "/api/v1/keys", &key_a, None).await;
    assert!(listed["keys"][1]["revoked_at_ms"].is_i64());

    // The operator creates keys for a named tenant.
    let (status, for_b) = send_json(
        &state,
        Method::POST,
        "/api/v1/keys",
        KEY,
        Some(json!({ "name": "ops", "tenant": "b" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(for_b["tenant_id"], json!("b"));
    let missing = send_json(
        &state,
        Method::DELETE,
        "/api/v1/keys/no-such-key",
        KEY,
        None,
    )
    .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    assert_eq!(missing.1["error"]["code"], json!("key_not_found"));
}

#[tokio::test]
async fn key_requests_are_validated() {
    let (state, _, _, key_a, _) = two_tenant_state().await;
    let post = |key: String, body: serde_json::Value| {
        let state = state.clone();
        async move {
            send(
                &state,
                Method::POST,
                "/api/v1/keys",
                Some(&key),
                Some("application/json"),
                body.to_string(),
            )
            .await
        }
    };
    let operator = KEY.to_owned();
    let response = post(operator.clone(), json!({ "name": "n" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "tenant_required").await;
    let response = post(operator.clone(), json!({ "name": "n", "tenant": "ghost" })).await;
    assert_error(response, StatusCode::NOT_FOUND, "unknown_tenant").await;
    // A tenant key naming another tenant (existing or not) gets the same answer.
    for other in ["b", "ghost"] {
        let response = post(key_a.clone(), json!({ "name": "n", "tenant": other })).await;
        assert_error(response, StatusCode::NOT_FOUND, "unknown_tenant").await;
    }
    let response = post(key_a.clone(), json!({ "name": " " })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    let response = post(key_a.clone(), json!({})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_body").await;
    // Only the two keys of the set-up exist.
    let keys = state
        .store
        .list_api_keys(&vaani_store::Scope::Operator, None)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    let response = send(
        &state,
        Method::GET,
        "/api/v1/keys?tenat=b",
        Some(KEY),
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[tokio::test]
async fn numbers_are_claimed_listed_and_released() {
    let (state, _, _, key_a, key_b) = two_tenant_state().await;
    state
        .store
        .upsert_trunk(&vaani_store::Trunk {
            id: "local".to_owned(),
            name: "Loopback".to_owned(),
            allowed_cidrs: vec![],
        })
        .await
        .unwrap();
    let (status, claimed) = send_json(
        &state,
        Method::POST,
        "/api/v1/numbers",
        &key_a,
        Some(json!({ "number": "+918000000001", "trunk": "local" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!(
        claimed,
        json!({ "number": "+918000000001", "tenant_id": "a", "trunk_id": "local" })
    );
    // Claiming it again is fine; another tenant cannot.
    let (status, _) = send_json(
        &state,
        Method::POST,
        "/api/v1/numbers",
        &key_a,
        Some(json!({ "number": "+918000000001" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let response = send(
        &state,
        Method::POST,
        "/api/v1/numbers",
        Some(&key_b),
        Some("application/json"),
        json!({ "number": "+918000000001" }).to_string(),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "number_unavailable").await;
    // Nor release it.
    let uri = "/api/v1/numbers/%2B918000000001";
    let response = send(
        &state,
        Method::DELETE,
        uri,
        Some(&key_b),
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "number_not_found").await;

    let (_, mine) = send_json(&state, Method::GET, "/api/v1/numbers", &key_a, None).await;
    assert_eq!(ids(&mine["numbers"], "number"), ["+918000000001"]);
    let (_, theirs) = send_json(&state, Method::GET, "/api/v1/numbers", &key_b, None).await;
    assert_eq!(theirs["numbers"], json!([]));
    let (_, peek) = send_json(
        &state,
        Method::GET,
        "/api/v1/numbers?tenant=a",
        &key_b,
        None,
    )
    .await;
    assert_eq!(peek["numbers"], json!([]));

    // Validation.
    for number in ["918000000001", "+0123456789", "+12", "+91 800 000"] {
        let response = send(
            &state,
            Method::POST,
            "/api/v1/numbers",
            Some(&key_a),
            Some("application/json"),
            json!({ "number": number }).to_string(),
        )
        .await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_number").await;
    }
    let response = send(
        &state,
        Method::POST,
        "/api/v1/numbers",
        Some(&key_a),
        Some("application/json"),
        json!({ "number": "+918000000003", "trunk": "nowhere" }).to_string(),
    )
    .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "unknown_trunk").await;
    let response = send(
        &state,
        Method::POST,
        "/api/v1/numbers",
        Some(KEY),
        Some("application/json"),
        json!({ "number": "+918000000003" }).to_string(),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "tenant_required").await;

    // The owner releases it (the `+` may come unencoded), then b may claim it.
    let (status, _) = send_json(
        &state,
        Method::DELETE,
        "/api/v1/numbers/+918000000001",
        &key_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send_json(
        &state,
        Method::POST,
        "/api/v1/numbers",
        KEY,
        Some(json!({ "number": "+918000000001", "tenant": "b" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_tenant_key_sees_only_its_own_calls_and_recordings() {
    let (state, call_a, call_b, key_a, _) = two_tenant_state().await;
    for (tenant, call) in [("a", &call_a), ("b", &call_b)] {
        state
            .store
            .set_recording(&vaani_store::Recording {
                tenant_id: tenant.to_owned(),
                call_id: call.clone(),
                path: "/nonexistent.wav".to_owned(),
                duration_ms: 1_000,
                created_at_ms: 30_000,
            })
            .await
            .unwrap();
    }
    let (_, all) = send_json(&state, Method::GET, "/api/v1/calls", KEY, None).await;
    assert_eq!(all["calls"].as_array().unwrap().len(), 2);

    let (status, mine) = send_json(&state, Method::GET, "/api/v1/calls", &key_a, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&mine["calls"], "id"), [call_a.as_str()]);
    for uri in ["/api/v1/calls?tenant=b", "/api/v1/recordings?tenant=b"] {
        let (status, listed) = send_json(&state, Method::GET, uri, &key_a, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let rows = listed.as_object().unwrap().values().next().unwrap();
        assert_eq!(rows, &json!([]), "{uri}");
    }
    let (_, recordings) = send_json(&state, Method::GET, "/api/v1/recordings", &key_a, None).await;
    assert_eq!(ids(&recordings["recordings"], "call_id"), [call_a.as_str()]);

    let (status, own) = send_json(
        &state,
        Method::GET,
        &format!("/api/v1/calls/{call_a}"),
        &key_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["id"], json!(call_a));
    let response = send(
        &state,
        Method::GET,
        &format!("/api/v1/calls/{call_b}"),
        Some(&key_a),
        None,
        Body::empty(),
    )
    .await;
    assert_error(response, StatusCode::NOT_FOUND, "call_not_found").await;
    let response = recording_response(&state, &call_b, &key_a).await;
    assert_error(response, StatusCode::NOT_FOUND, "recording_not_found").await;
}

#[tokio::test]
async fn placing_a_call_is_pinned_to_the_key_s_tenant() {
    let (state, _, _, key_a, _) = two_tenant_state().await;
    let post = |key: String, body: serde_json::Value| {
        let state = state.clone();
        async move {
            post_call(
                &state,
                Some(&key),
                Some("application/json"),
                body.to_string(),
            )
            .await
        }
    };
    // Naming another tenant, existing or not, is 404 before anything else is looked at.
    for other in ["b", "ghost"] {
        let body = json!({ "tenant": other, "to": "+919800000002" });
        let response = post(key_a.clone(), body).await;
        assert_error(response, StatusCode::NOT_FOUND, "unknown_tenant").await;
    }
    // Its own tenant, named or not, reaches the dialer (absent in this state: 503).
    for body in [
        json!({ "to": "+919800000002" }),
        json!({ "tenant": "a", "to": "+919800000002" }),
    ] {
        let response = post(key_a.clone(), body).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    let response = post(KEY.to_owned(), json!({ "to": "+919800000002" })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "tenant_required").await;
}

#[tokio::test]
async fn unknown_and_revoked_keys_are_401_without_echoing_the_key() {
    let (state, _, _, key_a, _) = two_tenant_state().await;
    let (listed, revoked) = state.store.create_api_key("a", "old").await.unwrap();
    state
        .store
        .revoke_api_key(&vaani_store::Scope::Operator, &listed.id)
        .await
        .unwrap();
    let mut near_miss = key_a.clone();
    near_miss.pop();
    near_miss.push('!');
    for key in [revoked.as_str(), near_miss.as_str(), "vk_nothing"] {
        for uri in ["/api/v1/calls", "/api/v1/keys", "/api/v1/tenants"] {
            let response = send(&state, Method::GET, uri, Some(key), None, Body::empty()).await;
            let body = assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert!(!body.to_string().contains(key), "{body}");
        }
    }
}

/// One request of [`tenancy_answers_match_the_documented_schemas`]: the documented path,
/// method and status, then the request (method, URI, JSON body).
type SchemaCheck = (
    &'static str,
    &'static str,
    &'static str,
    Method,
    &'static str,
    Option<serde_json::Value>,
);

#[tokio::test]
async fn tenancy_answers_match_the_documented_schemas() {
    let (state, _, _, key_a, _) = two_tenant_state().await;
    let checks: Vec<SchemaCheck> = vec![
        (
            "/api/v1/tenants",
            "post",
            "201",
            Method::POST,
            "/api/v1/tenants",
            Some(json!({ "id": "c", "name": "C", "settings": { "x": 1 } })),
        ),
        (
            "/api/v1/tenants",
            "get",
            "200",
            Method::GET,
            "/api/v1/tenants",
            None,
        ),
        (
            "/api/v1/tenants/{id}",
            "get",
            "200",
            Method::GET,
            "/api/v1/tenants/c",
            None,
        ),
        (
            "/api/v1/tenants/{id}",
            "patch",
            "200",
            Method::PATCH,
            "/api/v1/tenants/c",
            Some(json!({ "status": "suspended" })),
        ),
        (
            "/api/v1/keys",
            "post",
            "201",
            Method::POST,
            "/api/v1/keys",
            Some(json!({ "name": "k", "tenant": "c" })),
        ),
        (
            "/api/v1/keys",
            "get",
            "200",
            Method::GET,
            "/api/v1/keys",
            None,
        ),
        (
            "/api/v1/numbers",
            "post",
            "201",
            Method::POST,
            "/api/v1/numbers",
            Some(json!({ "number": "+918000000005", "tenant": "c" })),
        ),
        (
            "/api/v1/numbers",
            "get",
            "200",
            Method::GET,
            "/api/v1/numbers",
            None,
        ),
        (
            "/api/v1/tenants",
            "post",
            "409",
            Method::POST,
            "/api/v1/tenants",
            Some(json!({ "id": "c", "name": "C" })),
        ),
        (
            "/api/v1/numbers",
            "post",
            "422",
            Method::POST,
            "/api/v1/numbers",
            Some(json!({ "number": "5", "tenant": "c" })),
        ),
    ];
    for (path, method, status, http_method, uri, body) in checks {
        let (got, answer) = send_json(&state, http_method, uri, KEY, body).await;
        assert_eq!(got.as_str(), status, "{method} {uri}: {answer}");
        assert_valid(&response_validator(path, method, status), &answer);
    }
    // A tenant key on an operator endpoint, and a foreign number, as documented.
    let (got, answer) = send_json(&state, Method::GET, "/api/v1/tenants", &key_a, None).await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    assert_valid(
        &response_validator("/api/v1/tenants", "get", "404"),
        &answer,
    );
    let (got, answer) = send_json(
        &state,
        Method::POST,
        "/api/v1/numbers",
        &key_a,
        Some(json!({ "number": "+918000000005" })),
    )
    .await;
    assert_eq!(got, StatusCode::CONFLICT);
    assert_valid(
        &response_validator("/api/v1/numbers", "post", "409"),
        &answer,
    );
    // The created key's answer has exactly the documented fields.
    let doc = openapi();
    let (_, created) = send_json(
        &state,
        Method::POST,
        "/api/v1/keys",
        &key_a,
        Some(json!({ "name": "k2" })),
    )
    .await;
    assert_eq!(
        keys(&created),
        declared_properties(
            &doc,
            &json!({ "$ref": "#/components/schemas/CreatedApiKey" })
        )
    );
    let (_, tenant) = send_json(&state, Method::GET, "/api/v1/tenants/c", KEY, None).await;
    assert_eq!(
        keys(&tenant),
        declared_properties(
            &doc,
            &json!({ "$ref": "#/components/schemas/TenantDetail" })
        )
    );
}

#[test]
fn logged_paths_mask_phone_numbers_only() {
    assert_eq!(
        super::masked_path("/api/v1/callers/%2B919876543210"),
        "/api/v1/callers/%2B********3210"
    );
    assert_eq!(
        super::masked_path("/api/v1/numbers/+918000000001"),
        "/api/v1/numbers/+********0001"
    );
    assert_eq!(
        super::masked_path("/api/v1/callers/919876543210"),
        "/api/v1/callers/********3210"
    );
    // Ids and names stay readable.
    for path in [
        "/api/v1/calls/01HZX3K9Q2",
        "/api/v1/keys/12",
        "/api/v1/tenants/clinic",
        "/",
    ] {
        assert_eq!(super::masked_path(path), path);
    }
}
