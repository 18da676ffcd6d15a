//! The HTTP surface and the command line of the real binary.

use std::process::Command;

use serde_json::Value;
use vaani_testbench::{OPERATOR_KEY, ScratchDir, ServerSpec, VaaniServer, repo_root, vaani_binary};

#[test]
fn health_metrics_and_api_authentication() {
    let server = VaaniServer::start(&ServerSpec::demo());
    assert_eq!(server.http_get("/healthz", None).expect("healthz").0, 200);
    assert_eq!(server.http_get("/readyz", None).expect("readyz").0, 200);

    let (status, metrics) = server.http_get("/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    for family in [
        "vaani_active_calls",
        "vaani_rtp_packets_received_total",
        "vaani_rtp_packets_lost_total",
        "vaani_plugin_event_seconds",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from /metrics:\n{metrics}"
        );
    }

    for key in [None, Some("wrong-key")] {
        let (status, body) = server.http_get("/api/v1/calls", key).expect("calls");
        assert_eq!(status, 401, "{body}");
        let error: Value = serde_json::from_str(&body).expect("JSON error body");
        assert_eq!(error["error"]["code"], "unauthorized", "{body}");
    }

    let (status, body) = server
        .http_get("/api/v1/calls", Some(OPERATOR_KEY))
        .expect("calls");
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(listed["calls"], serde_json::json!([]));

    let (status, body) = server
        .http_get("/api/v1/calls?limit=0", Some(OPERATOR_KEY))
        .expect("calls");
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .http_get("/api/v1/calls?limit=abc", Some(OPERATOR_KEY))
        .expect("calls");
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .http_get("/api/v1/calls/0190-nope", Some(OPERATOR_KEY))
        .expect("call");
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(error["error"]["code"], "call_not_found", "{body}");

    // axum's own rejections answer with the JSON error body too.
    let (status, body) = server.api_post("/api/v1/recordings", &serde_json::json!({}));
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let padding = "x".repeat(65 * 1024);
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &serde_json::json!({ "tenant": "echo", "to": "+919876543210", "from": padding }),
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    // The OpenAPI document, without a key.
    let (status, body) = server
        .http_get("/api/v1/openapi.json", None)
        .expect("openapi.json");
    assert_eq!(status, 200, "{body}");
    let document: Value = serde_json::from_str(&body).expect("OpenAPI JSON");
    assert_eq!(document["openapi"], "3.1.0", "{body}");
    for path in ["/api/v1/calls", "/api/v1/calls/{id}", "/api/v1/recordings"] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let config = repo_root().join("config/vaani.toml");
    let output = Command::new(vaani_binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .expect("run vaani");
    assert!(
        output.status.success(),
        "shipped config rejected (build the plugins first):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_reports_every_error_with_its_key_path() {
    let dir = ScratchDir::new("check-config");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[sip]
listen_udp = "not-an-address"

[http]
listen = "127.0.0.1:8080"
operator_key = "k"

[[trunks]]
id = "local"
allowed_cidrs = ["10.0.0/8"]

[[tenants]]
id = "clinic"
numbers = ["12345"]
trunk = "nowhere"
"#,
    )
    .expect("write config");
    let output = Command::new(vaani_binary())
        .args(["check-config", "--config"])
        .arg(&path)
        .env("VAANI_MEDIA__RTP_PORTS", "20001-20000")
        .output()
        .expect("run vaani");
    assert!(!output.status.success(), "a bad config must exit non-zero");
    let report = String::from_utf8_lossy(&output.stderr);
    for key in [
        "sip.listen_udp",
        "trunks[0].allowed_cidrs[0]",
        "tenants[0].numbers[0]",
        "tenants[0].trunk",
        "media.rtp_ports",
    ] {
        assert!(report.contains(key), "no error for {key} in:\n{report}");
    }
}

/// Every `/api/v1` operation the served OpenAPI document lists refuses a request without a
/// key, or with a wrong or revoked-looking one, with `401 unauthorized` (JSON body and
/// `WWW-Authenticate: Bearer`) before looking at anything else, and answers the operator key
/// with something other than 401.
#[test]
fn every_documented_api_operation_requires_a_key() {
    // Well over a hundred requests without a valid key in a moment: no per-source rate here
    // (testbench/tests/limits.rs covers it).
    let mut spec = ServerSpec::demo();
    spec.env.push((
        "VAANI_HTTP__REQUESTS_PER_SECOND_PER_KEY".to_owned(),
        "0".to_owned(),
    ));
    let server = VaaniServer::start(&spec);
    let (status, body) = server
        .http_get("/api/v1/openapi.json", None)
        .expect("openapi");
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).expect("the OpenAPI document");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
            continue;
        }
        // Any value fits a path parameter for the authentication check.
        let concrete = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in operations.as_object().expect("operations").keys() {
            for key in [
                None,
                Some("wrong-key"),
                Some("vk_00000000_notarealkeyatall"),
            ] {
                let mut request = ureq::http::Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(format!("{}{concrete}", server.http_base()));
                if let Some(key) = key {
                    request = request.header("Authorization", format!("Bearer {key}"));
                }
                let mut response = agent
                    .run(request.body(()).expect("a request"))
                    .unwrap_or_else(|e| panic!("{method} {concrete}: {e}"));
                let what = format!("{method} {concrete} with {key:?}");
                assert_eq!(response.status().as_u16(), 401, "{what}");
                assert_eq!(
                    response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{what}"
                );
                let body: Value =
                    serde_json::from_str(&response.body_mut().read_to_string().unwrap())
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e})"));
                assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
            }
            let request = ureq::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(format!("{}{concrete}", server.http_base()))
                .header("Authorization", format!("Bearer {OPERATOR_KEY}"));
            let mut response = agent
                .run(request.body(()).expect("a request"))
                .unwrap_or_else(|e| panic!("{method} {concrete}: {e}"));
            let status = response.status().as_u16();
            let _ = response.body_mut().read_to_vec();
            assert_ne!(status, 401, "{method} {concrete} refused the operator key");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations were checked");
}
