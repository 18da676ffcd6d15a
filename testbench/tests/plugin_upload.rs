//! Plugin uploads against the real server: valid components become numbered versions that can
//! be activated and rolled back; every kind of bad upload is refused with its own code and
//! an exact message, nothing is stored, and the server carries on.

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{OPERATOR_KEY, ServerSpec, VaaniServer, plugin_path, repo_root};

/// Sends `body` to `path` with `method`, the operator key unless `bearer` says otherwise, and
/// `content_type` if any; returns the status and the parsed JSON body (`Null` if none).
fn send(
    server: &VaaniServer,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    bearer: Option<&str>,
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let url = format!("{}{path}", server.http_base());
    let mut request = match method {
        "POST" => agent.post(&url),
        "PUT" => agent.put(&url),
        other => panic!("send: unsupported method {other}"),
    };
    if let Some(key) = bearer {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let mut response = request
        .send(body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Uploads `wasm` for `tenant` with the operator key.
fn upload(server: &VaaniServer, tenant: &str, wasm: &[u8]) -> (u16, Value) {
    send(
        server,
        "POST",
        &format!("/api/v1/plugins?tenant={tenant}"),
        Some("application/wasm"),
        wasm,
        Some(OPERATOR_KEY),
    )
}

fn post(server: &VaaniServer, path: &str) -> (u16, Value) {
    send(server, "POST", path, None, b"", Some(OPERATOR_KEY))
}

fn dist(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The code and message of an error body.
fn error(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or_default(),
        body["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// `(version_number, active)` of each listed version, as listed.
fn versions(server: &VaaniServer, tenant: &str) -> Vec<(i64, bool)> {
    let listed = server.api_json(&format!("/api/v1/plugins?tenant={tenant}"));
    listed["plugins"]
        .as_array()
        .expect("plugins array")
        .iter()
        .map(|v| (v["version_number"].as_i64().unwrap(), v["active"] == true))
        .collect()
}

#[test]
fn valid_uploads_become_versions_that_activate_and_roll_back() {
    let server = VaaniServer::start(&ServerSpec::demo());
    assert!(versions(&server, "echo").is_empty());
    assert_eq!(
        post(&server, "/api/v1/plugins/rollback?tenant=echo").0,
        409,
        "nothing to roll back to yet"
    );

    let echo = dist("echo");
    let (status, first) = upload(&server, "echo", &echo);
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["tenant_id"], "echo");
    assert_eq!(first["version_number"], 1);
    assert_eq!(first["name"], "echo");
    assert_eq!(first["size_bytes"], echo.len());
    assert_eq!(first["active"], false, "uploading does not activate");
    let hash = first["content_hash"].as_str().unwrap();
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    assert!(first["info"]["schemas"].is_array(), "{first}");
    assert!(first["world_version"].is_string());

    // The same bytes again: the stored version, nothing new.
    let (status, again) = upload(&server, "echo", &echo);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);

    let (status, second) = upload(&server, "echo", &dist("clinic"));
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["version_number"], 2);
    assert_eq!(second["name"], "clinic");
    assert_eq!(versions(&server, "echo"), [(2, false), (1, false)]);

    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    let fetched = server.api_json(&format!("/api/v1/plugins/{first_id}"));
    assert_eq!(fetched, first);

    let (status, active) = post(&server, &format!("/api/v1/plugins/{first_id}/activate"));
    assert_eq!((status, active["active"].clone()), (200, Value::Bool(true)));
    let (status, _) = post(&server, &format!("/api/v1/plugins/{second_id}/activate"));
    assert_eq!(status, 200);
    assert_eq!(versions(&server, "echo"), [(2, true), (1, false)]);

    let (status, back) = post(&server, "/api/v1/plugins/rollback?tenant=echo");
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["id"], first["id"]);
    assert_eq!(versions(&server, "echo"), [(2, false), (1, true)]);
    let (status, body) = post(&server, "/api/v1/plugins/rollback?tenant=echo");
    assert_eq!((status, error(&body).0), (409, "no_earlier_version"));

    // Another tenant's list does not show echo's versions; the same bytes are its own version.
    assert!(versions(&server, "clinic").is_empty());
    let (status, clinic_copy) = upload(&server, "clinic", &echo);
    assert_eq!(status, 201);
    assert_eq!(clinic_copy["version_number"], 1);
    assert_ne!(clinic_copy["id"], first["id"]);

    let (status, body) = post(&server, "/api/v1/plugins/no-such-id/activate");
    assert_eq!((status, error(&body).0), (404, "plugin_not_found"));
}

#[test]
fn bad_uploads_are_refused_with_their_code_and_exact_message() {
    let mut spec = ServerSpec::demo();
    // A short CPU limit, so the compile bomb is stopped in about two seconds.
    spec.extra_toml = "[sandbox]\ncompile_cpu_secs = 2\n".to_owned();
    let server = VaaniServer::start(&spec);

    let future_world_text =
        std::fs::read_to_string(repo_root().join("sandbox/tests/common/future_world.wat"))
            .expect("the future-world fixture");
    let refusals: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "WAT text",
            future_world_text.clone().into_bytes(),
            "not_a_component",
            "not a binary WebAssembly component: the WebAssembly text format is not accepted; \
             upload the binary .wasm component",
        ),
        (
            "a core module",
            wat::parse_str("(module)").unwrap(),
            "not_a_component",
            "",
        ),
        (
            "a future world",
            wat::parse_str(&future_world_text).unwrap(),
            "unsupported_world",
            "component was built for vaani:agent 0.9.0, which this host does not serve",
        ),
        (
            "a component without the agent's exports",
            wat::parse_str("(component)").unwrap(),
            "missing_export",
            "",
        ),
        (
            "a component importing the filesystem",
            dist("fsreader"),
            "link_failed",
            "",
        ),
        (
            "a describe() that traps",
            dist("describe_trapper"),
            "describe_trapped",
            "",
        ),
        (
            "a describe() that never returns",
            dist("lazy"),
            "describe_timeout",
            "",
        ),
        (
            "garbage",
            b"not wasm at all".to_vec(),
            "not_a_component",
            "",
        ),
        (
            "a compile bomb",
            compile_bomb(300_000),
            "resource_limit",
            "plugin compilation was stopped by the CPU time limit: killed by SIGXCPU",
        ),
    ];
    for (what, wasm, code, message) in &refusals {
        let (status, body) = upload(&server, "echo", wasm);
        assert_eq!(status, 422, "{what}: {body}");
        let (got_code, got_message) = error(&body);
        assert_eq!(got_code, *code, "{what}: {body}");
        assert!(!got_message.is_empty(), "{what}: {body}");
        if !message.is_empty() {
            assert_eq!(got_message, *message, "{what}");
        }
    }

    // Over 10 MiB: refused before anything is compiled.
    let oversized = vec![0u8; 10 * 1024 * 1024 + 1];
    let (status, body) = upload(&server, "echo", &oversized);
    assert_eq!((status, error(&body).0), (413, "payload_too_large"));

    let echo = dist("echo");
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/plugins?tenant=echo",
        Some("application/octet-stream"),
        &echo,
        Some(OPERATOR_KEY),
    );
    assert_eq!((status, error(&body).0), (415, "unsupported_media_type"));
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/plugins",
        Some("application/wasm"),
        &echo,
        Some(OPERATOR_KEY),
    );
    assert_eq!((status, error(&body).0), (400, "tenant_required"));
    let (status, body) = upload(&server, "nobody", &echo);
    assert_eq!((status, error(&body).0), (404, "unknown_tenant"));
    let (status, body) = send(
        &server,
        "POST",
        "/api/v1/plugins?tenant=echo",
        Some("application/wasm"),
        &echo,
        None,
    );
    assert_eq!((status, error(&body).0), (401, "unauthorized"));
    let (status, _) = send(
        &server,
        "POST",
        "/api/v1/plugins?tenant=echo",
        Some("application/wasm"),
        &echo,
        Some("not-a-key"),
    );
    assert_eq!(status, 401);

    // Nothing refused was stored, and the server still takes a good upload.
    assert!(versions(&server, "echo").is_empty());
    let (status, body) = upload(&server, "echo", &echo);
    assert_eq!(status, 201, "{body}");
    assert_eq!(versions(&server, "echo"), [(1, false)]);
}

/// A component wrapping one core function of `additions` chained `i32.add`s: about 50 µs of
/// Cranelift CPU each, so 300 000 of them need far more than the test's two CPU seconds.
fn compile_bomb(additions: usize) -> Vec<u8> {
    let mut text = String::with_capacity(additions * 20 + 100);
    text.push_str(
        "(component (core module (func (export \"f\") (param i32) (result i32) local.get 0\n",
    );
    for _ in 0..additions {
        text.push_str("i32.const 1 i32.add\n");
    }
    text.push_str(")))");
    wat::parse_str(&text).expect("bomb WAT")
}
