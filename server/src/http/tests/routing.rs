//! The API keeps call routing in step with what it writes: tenant settings are checked as
//! routing reads them, and every write that changes routing rebuilds it before answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::json;
use vaani_store::{NewPlugin, PluginArtifact, Store};

use super::super::{HttpState, RoutingReload};
use super::{KEY, assert_error, send, send_json};
use crate::metrics::Metrics;

/// Routing that counts its rebuilds and checks settings with real `[sandbox]` limits.
struct CountingRouting {
    reloads: AtomicUsize,
    fail: AtomicBool,
    limits: vaani_config::SandboxLimits,
}

impl RoutingReload for CountingRouting {
    fn check_settings(&self, settings: &serde_json::Value) -> Result<(), Vec<String>> {
        vaani_config::check_tenant_settings(settings, &self.limits)
    }

    fn reload(
        self: Arc<Self>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        Box::pin(async move {
            self.reloads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                Err("the database is gone".to_owned())
            } else {
                Ok(())
            }
        })
    }
}

async fn state() -> (Arc<HttpState>, Arc<CountingRouting>) {
    let config = vaani_config::Config::from_toml_str(
        "[http]\noperator_key = \"k\"\n",
        "test.toml",
        std::path::Path::new("/"),
        &vaani_config::LoadOptions::without_env(),
    )
    .unwrap();
    let routing = Arc::new(CountingRouting {
        reloads: AtomicUsize::new(0),
        fail: AtomicBool::new(false),
        limits: config.sandbox.limits(),
    });
    let state = Arc::new(HttpState {
        store: Store::connect("sqlite::memory:").await.unwrap(),
        metrics: Arc::new(Metrics::new().unwrap()),
        operator_key: KEY.to_owned(),
        ready: AtomicBool::new(true),
        dialer: None,
        plugin_uploads: None,
        webhooks: vaani_config::WebhooksConfig::default(),
        routing: Some(routing.clone()),
        api_limits: crate::limits::ApiRateLimiter::new(0, 0),
    });
    (state, routing)
}

/// Stores a plugin version for `tenant` straight into the store; returns its id.
async fn stored_plugin(store: &Store, tenant: &str, hash: &str) -> String {
    let plugin = NewPlugin {
        tenant_id: tenant.to_owned(),
        name: "echo".to_owned(),
        plugin_version: "1.0.0".to_owned(),
        world_version: "0.3.0".to_owned(),
        content_hash: hash.to_owned(),
        info: json!({ "name": "echo", "version": "1.0.0", "schemas": [] }),
        wasm: vec![0, 97, 115, 109],
        artifact: Some(PluginArtifact {
            bytes: vec![1],
            artifact_hash: "a".repeat(64),
            compatibility_hash: "c".repeat(64),
        }),
    };
    store.add_plugin(&plugin, 1).await.unwrap().version.id
}

#[tokio::test]
async fn invalid_settings_are_refused_with_every_problem_and_nothing_is_written() {
    let (state, routing) = state().await;
    let body = json!({
        "id": "acme",
        "name": "Acme",
        "settings": { "ring_ms": 999999, "plugin": "/etc/passwd", "fallback_text": " " }
    });
    let response = send(
        &state,
        Method::POST,
        "/api/v1/tenants",
        Some(KEY),
        Some("application/json"),
        body.to_string(),
    )
    .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    let message = error["error"]["message"].as_str().unwrap();
    for key in [
        "settings.ring_ms",
        "settings.plugin",
        "settings.fallback_text",
    ] {
        assert!(message.contains(key), "{key} missing: {message}");
    }
    assert!(state.store.list_tenants().await.unwrap().is_empty());

    let (status, created) = send_json(
        &state,
        Method::POST,
        "/api/v1/tenants",
        KEY,
        Some(json!({ "id": "acme", "name": "Acme", "settings": { "ring_ms": 500 } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let response = send(
        &state,
        Method::PATCH,
        "/api/v1/tenants/acme",
        Some(KEY),
        Some("application/json"),
        json!({ "settings": { "turns": { "end_of_turn_ms": "soon" } } }).to_string(),
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    let stored = state
        .store
        .get_tenant_with_settings("acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.settings, Some(json!({ "ring_ms": 500 })));
    // Only the write that succeeded rebuilt routing.
    assert_eq!(routing.reloads.load(Ordering::SeqCst), 1);
}

/// Sends a write and asserts its status; returns the answer.
async fn write(
    state: &Arc<HttpState>,
    method: Method,
    uri: String,
    key: String,
    body: Option<serde_json::Value>,
    status: StatusCode,
) -> serde_json::Value {
    let (got, answer) = send_json(state, method.clone(), &uri, &key, body).await;
    assert_eq!(got, status, "{method} {uri}: {answer}");
    answer
}

#[tokio::test]
async fn every_write_that_changes_routing_rebuilds_it_once() {
    let (state, routing) = state().await;
    let reloads = || routing.reloads.load(Ordering::SeqCst);
    let mut expected = 0;
    let write = |method: Method, uri: &str, key: &str, body, status| {
        write(&state, method, uri.to_owned(), key.to_owned(), body, status)
    };

    write(
        Method::POST,
        "/api/v1/tenants",
        KEY,
        Some(json!({ "id": "acme", "name": "Acme" })),
        StatusCode::CREATED,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "create");

    // A key changes no routing.
    let key = write(
        Method::POST,
        "/api/v1/keys",
        KEY,
        Some(json!({ "tenant": "acme", "name": "ops" })),
        StatusCode::CREATED,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reloads(), expected, "key");

    write(
        Method::POST,
        "/api/v1/numbers",
        &key,
        Some(json!({ "number": "+918000000500" })),
        StatusCode::CREATED,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "claim");

    let first = stored_plugin(&state.store, "acme", &"1".repeat(64)).await;
    let second = stored_plugin(&state.store, "acme", &"2".repeat(64)).await;
    for id in [&first, &second] {
        write(
            Method::POST,
            &format!("/api/v1/plugins/{id}/activate"),
            &key,
            None,
            StatusCode::OK,
        )
        .await;
        expected += 1;
        assert_eq!(reloads(), expected, "activate");
    }
    write(
        Method::POST,
        "/api/v1/plugins/rollback",
        &key,
        None,
        StatusCode::OK,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "roll back");
    // Nothing to roll back to: nothing changed, no rebuild.
    write(
        Method::POST,
        "/api/v1/plugins/rollback",
        &key,
        None,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(reloads(), expected, "refused roll back");

    write(
        Method::PATCH,
        "/api/v1/tenants/acme",
        KEY,
        Some(json!({ "status": "suspended" })),
        StatusCode::OK,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "suspend");

    write(
        Method::DELETE,
        "/api/v1/numbers/%2B918000000500",
        &key,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "release");

    // A refused write rebuilds nothing.
    write(
        Method::DELETE,
        "/api/v1/numbers/%2B918000000500",
        &key,
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(reloads(), expected, "refused release");

    write(
        Method::DELETE,
        "/api/v1/tenants/acme",
        KEY,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    expected += 1;
    assert_eq!(reloads(), expected, "delete");
}

#[tokio::test]
async fn a_failed_rebuild_answers_500_and_keeps_the_write() {
    let (state, routing) = state().await;
    routing.fail.store(true, Ordering::SeqCst);
    let response = send(
        &state,
        Method::POST,
        "/api/v1/tenants",
        Some(KEY),
        Some("application/json"),
        json!({ "id": "acme", "name": "Acme" }).to_string(),
    )
    .await;
    let error = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("stored"), "{message}");
    // The server's own problem is not shown to the client.
    assert!(!message.contains("database is gone"), "{message}");
    assert!(state.store.get_tenant("acme").await.unwrap().is_some());
}
