//! Calls vaani places through a trunk (`POST /api/v1/calls`), against sipp as the callee.

use std::time::Duration;

use serde_json::{Value, json};
use vaani_testbench::{ServerSpec, Sipp, VaaniServer, free_port};

fn wait_final(server: &VaaniServer, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let detail = server.api_json(&format!("/api/v1/calls/{id}"));
        let status = detail["status"].as_str().unwrap_or("");
        if status != "ringing" && status != "in_progress" {
            return detail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "call still {status}: {detail:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A server whose loopback trunk places calls to a sipp callee on `callee_port`.
fn server_calling(callee_port: u16) -> VaaniServer {
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = format!(
        "[trunks.outbound]\nuri = \"sip:127.0.0.1:{callee_port}\"\ncaller_id = \"+918000000099\"\n"
    );
    VaaniServer::start(&spec)
}

#[test]
fn a_placed_call_is_answered_greeted_and_stored_as_outbound() {
    let callee_port = free_port();
    let server = server_calling(callee_port);
    let callee = std::thread::spawn(move || {
        Sipp::new("uas_answer_bye.xml").run_uas(callee_port, Duration::from_secs(40))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &json!({ "tenant": "echo", "to": "+919876543210" }),
    );
    assert_eq!(status, 202, "{body:#}");
    let id = body["id"].as_str().expect("call id").to_string();
    callee.join().expect("sipp thread").assert_success();

    let detail = wait_final(&server, &id);
    assert_eq!(detail["direction"], "outbound", "{detail:#}");
    assert_eq!(detail["status"], "completed", "{detail:#}");
    assert_eq!(detail["caller"], "+919876543210", "{detail:#}");
    assert_eq!(detail["dialled"], "+918000000099", "{detail:#}");
    assert!(detail["answered_at_ms"].as_i64().is_some(), "{detail:#}");
    // The echo plugin greeted the callee: its audio went out.
    let sent = detail["media_stats"]["packets_sent"].as_u64().unwrap_or(0);
    assert!(sent > 100, "{detail:#}");
}

#[test]
fn a_busy_callee_and_bad_requests_get_clear_answers() {
    let callee_port = free_port();
    let server = server_calling(callee_port);
    let callee = std::thread::spawn(move || {
        Sipp::new("uas_busy.xml").run_uas(callee_port, Duration::from_secs(15))
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &json!({ "tenant": "echo", "to": "+919876543210" }),
    );
    assert_eq!(status, 202, "{body:#}");
    let detail = wait_final(&server, body["id"].as_str().unwrap());
    assert_eq!(detail["status"], "busy", "{detail:#}");
    // The ACK for the 486 reached sipp.
    callee.join().expect("sipp thread").assert_success();

    for (request, code, status) in [
        (
            json!({ "tenant": "nobody", "to": "+919876543210" }),
            "unknown_tenant",
            404,
        ),
        (
            json!({ "tenant": "echo", "to": "98765" }),
            "invalid_number",
            422,
        ),
        (json!({ "tenant": "echo" }), "invalid_body", 400),
    ] {
        let (got, body) = server.api_post("/api/v1/calls", &request);
        assert_eq!(got, status, "{request}: {body:#}");
        assert_eq!(body["error"]["code"], code, "{body:#}");
    }
}
