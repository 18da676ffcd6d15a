//! A tenant made over the API alone takes calls: created with the operator key, given a key,
//! a number and a plugin with its own key, then called with sipp. Activations, roll-backs,
//! suspension and releasing the number apply to the next call; a call in progress keeps the
//! plugin it started with.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vaani_testbench::{OPERATOR_KEY, ServerSpec, Sipp, VaaniServer, can_send_dtmf};

/// The API tenant's number (not one of the demo tenants').
const NUMBER: &str = "+918000000500";

/// Uploads a `plugins/dist/` component with `key`; returns the new version's id.
fn upload(server: &VaaniServer, key: &str, plugin: &str) -> String {
    let (status, body) = server.upload_plugin(key, plugin);
    assert_eq!(status, 201, "upload {plugin}: {body}");
    assert_eq!(body["name"], plugin, "{body}");
    body["id"].as_str().expect("version id").to_owned()
}

/// `POST path` with `key` and no body; asserts `200` and returns the body.
fn post_ok(server: &VaaniServer, key: &str, path: &str) -> Value {
    let (status, body) = server.api_request("POST", path, key, None);
    assert_eq!(status, 200, "POST {path}: {body}");
    body
}

/// The tenant's calls to [`NUMBER`] as `key` lists them, newest first.
fn tenant_calls(server: &VaaniServer, key: &str) -> Vec<Value> {
    let (status, body) = server.api_request("GET", "/api/v1/calls?limit=100", key, None);
    assert_eq!(status, 200, "{body}");
    body["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|call| call["dialled"] == NUMBER)
        .collect()
}

/// Waits until `key` sees `count` finished calls to [`NUMBER`]; returns the newest.
fn nth_finished_call(server: &VaaniServer, key: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let calls = tenant_calls(server, key);
        let finished: Vec<&Value> = calls
            .iter()
            .filter(|c| {
                c["status"]
                    .as_str()
                    .is_some_and(|s| s != "ringing" && s != "in_progress")
            })
            .collect();
        if finished.len() >= count {
            return finished[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} finished calls, have {calls:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 1.5 s call to [`NUMBER`] that hangs up itself.
fn short_call(server: &VaaniServer) {
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1500\"")
        .run(server.sip_addr(), NUMBER, Duration::from_secs(60))
        .assert_success();
}

/// Asserts that a call to [`NUMBER`] is refused with `status`.
fn refused_call(server: &VaaniServer, status: u16) {
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", format!("response=\"{status}\""))
        .run(server.sip_addr(), NUMBER, Duration::from_secs(30))
        .assert_success();
}

/// Creates tenant `acme` with the operator key and a key of its own; returns that key.
fn api_tenant(server: &VaaniServer) -> String {
    // Settings are checked by the config file's rules, every problem listed.
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(&json!({ "id": "acme", "name": "Acme", "settings": { "ring_ms": 999999, "plugin": "/etc/passwd" } })),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_settings", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("settings.ring_ms") && message.contains("settings.plugin"),
        "{message}"
    );

    let (status, body) = server.api_request(
        "POST",
        "/api/v1/tenants",
        OPERATOR_KEY,
        Some(&json!({ "id": "acme", "name": "Acme", "settings": { "fallback_text": "Acme is busy." } })),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/keys",
        OPERATOR_KEY,
        Some(&json!({ "tenant": "acme", "name": "acme ops" })),
    );
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("the key").to_owned()
}

#[test]
fn an_api_tenant_takes_calls_with_the_plugin_it_activates() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let key = api_tenant(&server);

    // Before it has a number, its number is unknown.
    refused_call(&server, 404);
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/numbers",
        &key,
        Some(&json!({ "number": NUMBER })),
    );
    assert_eq!(status, 201, "{body}");
    let echo = upload(&server, &key, "echo");
    let active = post_ok(&server, &key, &format!("/api/v1/plugins/{echo}/activate"));
    assert_eq!(active["active"], true, "{active}");

    short_call(&server);
    let call = nth_finished_call(&server, &key, 1);
    assert_eq!(call["tenant_id"], "acme", "{call}");
    assert_eq!(call["status"], "completed", "{call}");
    assert!(call["answered_at_ms"].is_i64(), "answered: {call}");
    assert_eq!(call["plugin_name"], "echo", "{call}");

    // A new version applies to the next call.
    let clinic = upload(&server, &key, "clinic");
    post_ok(&server, &key, &format!("/api/v1/plugins/{clinic}/activate"));
    short_call(&server);
    let call = nth_finished_call(&server, &key, 2);
    assert_eq!(call["plugin_name"], "clinic", "{call}");

    // Rolling back too.
    let back = post_ok(&server, &key, "/api/v1/plugins/rollback");
    assert_eq!(back["id"], echo.as_str(), "{back}");
    short_call(&server);
    let call = nth_finished_call(&server, &key, 3);
    assert_eq!(call["plugin_name"], "echo", "{call}");

    // The operator key sees the call as well; the demo tenants are untouched.
    let all = server.calls();
    assert!(all.iter().any(|c| c["tenant_id"] == "acme"), "{all:#?}");

    // Suspended: its number answers 480. Active again: it answers.
    let (status, body) = server.api_request(
        "PATCH",
        "/api/v1/tenants/acme",
        OPERATOR_KEY,
        Some(&json!({ "status": "suspended" })),
    );
    assert_eq!(status, 200, "{body}");
    refused_call(&server, 480);
    let (status, body) = server.api_request(
        "PATCH",
        "/api/v1/tenants/acme",
        OPERATOR_KEY,
        Some(&json!({ "status": "active" })),
    );
    assert_eq!(status, 200, "{body}");
    short_call(&server);
    let call = nth_finished_call(&server, &key, 4);
    assert_eq!(call["plugin_name"], "echo", "{call}");

    // Released: the number is unknown again.
    let (status, body) = server.api_request(
        "DELETE",
        &format!("/api/v1/numbers/{}", NUMBER.replace('+', "%2B")),
        &key,
        None,
    );
    assert_eq!(status, 204, "{body}");
    refused_call(&server, 404);
    assert_eq!(tenant_calls(&server, &key).len(), 4);

    // The config tenants still answer with their config plugins.
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(60))
        .assert_success();
    let echo_calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == "+918000000099" && c["status"] == "completed")
    });
    let demo = echo_calls
        .iter()
        .find(|c| c["dialled"] == "+918000000099")
        .expect("the demo call");
    assert_eq!(demo["plugin_name"], "echo", "{demo}");
}

#[test]
fn a_call_in_progress_keeps_its_plugin_across_an_activation() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
    let server = VaaniServer::start(&ServerSpec::demo());
    let key = api_tenant(&server);
    let (status, body) = server.api_request(
        "POST",
        "/api/v1/numbers",
        &key,
        Some(&json!({ "number": NUMBER })),
    );
    assert_eq!(status, 201, "{body}");
    let echo = upload(&server, &key, "echo");
    let clinic = upload(&server, &key, "clinic");
    post_ok(&server, &key, &format!("/api/v1/plugins/{echo}/activate"));

    // A call that sends its digits 6 s after the answer: echo reads them back and hangs up
    // on `#`; clinic would start a booking instead.
    let sip = server.sip_addr();
    let long_call = std::thread::spawn(move || {
        Sipp::new("uac_dtmf_wait_bye.xml")
            .substitute("milliseconds=\"3000\"", "milliseconds=\"6000\"")
            .run(sip, NUMBER, Duration::from_secs(90))
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while !tenant_calls(&server, &key)
        .iter()
        .any(|c| c["status"] == "in_progress")
    {
        assert!(Instant::now() < deadline, "the long call did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    post_ok(&server, &key, &format!("/api/v1/plugins/{clinic}/activate"));

    // A new call meanwhile gets clinic.
    short_call(&server);
    long_call.join().expect("sipp thread").assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(20), |calls| {
        calls
            .iter()
            .filter(|c| c["dialled"] == NUMBER && c["status"] == "completed")
            .count()
            == 2
    });
    let calls: Vec<&Value> = calls.iter().filter(|c| c["dialled"] == NUMBER).collect();
    // Newest first: the short call started after the long one.
    assert_eq!(calls[0]["plugin_name"], "clinic", "{:#}", calls[0]);
    assert_eq!(calls[1]["plugin_name"], "echo", "{:#}", calls[1]);

    // The digits after the activation still reached echo.
    let id = calls[1]["id"].as_str().expect("id");
    let (status, detail) = server.api_request("GET", &format!("/api/v1/calls/{id}"), &key, None);
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["dtmf"], "12#", "{detail:#}");
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    let said: Vec<&str> = detail["transcript"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| l["text"].as_str()).collect())
        .unwrap_or_default();
    assert!(said.iter().any(|t| t.contains("You pressed 1")), "{said:?}");
}
