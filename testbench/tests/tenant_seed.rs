//! The config file's `[[tenants]]` seed the database at every start, and the seed must not
//! undo what the API did: a suspended tenant stays suspended across a restart, and a number
//! another tenant has claimed is not silently taken back (the start fails, saying why).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vaani_store::{Scope, Store};
use vaani_testbench::{OPERATOR_KEY, ServerSpec, VaaniServer, vaani_binary};

/// Echo's number in [`ServerSpec::demo`].
const ECHO_NUMBER: &str = "+918000000099";

/// Runs `vaani serve` on the stopped `server`'s config (and so its database) until it is
/// ready, answering `GET path` with the operator key; returns the answers, then stops it.
fn restart_and_get(server: &VaaniServer, paths: &[&str]) -> Vec<serde_json::Value> {
    let mut child = Command::new(vaani_binary())
        .arg("serve")
        .arg("--config")
        .arg(server.dir.path().join("vaani.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vaani again");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the restarted server exited: {status}");
        }
        if let Ok((200, _)) = server.http_get("/readyz", None) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted server is not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers = paths
        .iter()
        .map(|path| {
            let (status, answer) = server.api_request("GET", path, OPERATOR_KEY, None);
            assert_eq!(status, 200, "GET {path}: {answer}");
            answer
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    answers
}

#[test]
fn a_restart_keeps_api_changes_and_refuses_to_take_back_a_claimed_number() {
    let mut server = VaaniServer::start(&ServerSpec::demo());
    // Over the API: suspend echo, and give echo's number to another tenant.
    let (status, body) = server.api_request(
        "PATCH",
        "/api/v1/tenants/echo",
        OPERATOR_KEY,
        Some(&json!({ "status": "suspended", "settings": { "fallback_text": "Unpaid." } })),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(&json!({ "id": "squatter", "name": "Squatter" })),
    );
    assert_eq!(status, 201, "{body}");
    let encoded = ECHO_NUMBER.replace('+', "%2B");
    let (status, body) = server.api_request(
        "DELETE",
        &format!("/api/v1/numbers/{encoded}"),
        OPERATOR_KEY,
        None,
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/numbers",
        OPERATOR_KEY,
        Some(&json!({ "number": ECHO_NUMBER, "tenant": "squatter" })),
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        server.terminate(Duration::from_secs(30)).is_some(),
        "the server did not stop"
    );

    // The config still gives the number to echo: the start fails and says so, with the
    // number masked.
    let output = Command::new(vaani_binary())
        .arg("serve")
        .arg("--config")
        .arg(server.dir.path().join("vaani.toml"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run vaani");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("tenants.echo: number") && stderr.contains("another tenant"),
        "{stderr}"
    );
    assert!(!stderr.contains(ECHO_NUMBER), "{stderr}");

    // Once the other tenant releases it, the server starts: echo is still suspended with
    // its settings, and the seed gives it its config number again.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let store = Store::connect(&server.database_url()).await.expect("store");
        store
            .release_phone_number(&Scope::Tenant("squatter".to_owned()), ECHO_NUMBER)
            .await
            .expect("release");
        store.close().await;
    });
    let answers = restart_and_get(
        &server,
        &["/api/v1/tenants/echo", "/api/v1/numbers?tenant=echo"],
    );
    assert_eq!(answers[0]["status"], json!("suspended"), "{}", answers[0]);
    assert_eq!(
        answers[0]["settings"],
        json!({ "fallback_text": "Unpaid." })
    );
    assert_eq!(answers[0]["name"], json!("Test tenant echo"));
    assert_eq!(answers[1]["numbers"][0]["number"], json!(ECHO_NUMBER));
}
