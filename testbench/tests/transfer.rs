//! Blind transfer by REFER against the real binary, with sipp as the trunk: the echo plugin
//! transfers to the tenant's `frontdesk` when the caller presses 0; a successful NOTIFY ends
//! the call with our BYE, a busy target keeps it going.

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";

fn server() -> VaaniServer {
    let mut spec = ServerSpec::demo();
    let echo = spec
        .tenants
        .iter_mut()
        .find(|t| t.number == ECHO)
        .expect("echo tenant");
    echo.extra = "transfer_targets = { frontdesk = \"sip:frontdesk@127.0.0.1:5999\" }".to_string();
    VaaniServer::start(&spec)
}

fn finished_call(server: &VaaniServer) -> Value {
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| {
            c["dialled"] == ECHO
                && c["status"]
                    .as_str()
                    .is_some_and(|s| s != "ringing" && s != "in_progress")
        })
    });
    let call = calls
        .into_iter()
        .find(|c| c["dialled"] == ECHO)
        .expect("call stored");
    server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()))
}

fn event_details(detail: &Value, kind: &str) -> Vec<String> {
    detail["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == kind)
                .map(|e| e["detail"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn said(detail: &Value) -> Vec<String> {
    detail["transcript"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_transfer_the_trunk_completes_ends_the_call_with_our_bye() {
    let server = server();
    let run = Sipp::new("uac_refer.xml").run(server.sip_addr(), ECHO, Duration::from_secs(60));
    run.assert_success();
    let detail = finished_call(&server);
    assert_eq!(detail["end_reason"], "transferred", "{detail:#}");
    assert_eq!(detail["status"], "completed", "{detail:#}");
    let requested = event_details(&detail, "transfer.requested");
    assert_eq!(
        requested,
        vec!["frontdesk (sip:frontdesk@127.0.0.1:5999)".to_string()],
        "{detail:#}"
    );
    assert_eq!(event_details(&detail, "transfer.accepted").len(), 1);
    assert!(
        said(&detail).iter().any(|t| t.contains("Transferring you")),
        "{:?}",
        said(&detail)
    );
}

#[test]
fn a_busy_transfer_target_keeps_the_call_and_the_plugin_hears_of_it() {
    let server = server();
    let run = Sipp::new("uac_refer_busy.xml").run(server.sip_addr(), ECHO, Duration::from_secs(90));
    run.assert_success();
    let detail = finished_call(&server);
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    let failed = event_details(&detail, "transfer.failed");
    assert_eq!(
        failed,
        vec!["frontdesk 486 Busy Here".to_string()],
        "{detail:#}"
    );
    assert!(
        said(&detail)
            .iter()
            .any(|t| t.contains("did not go through")),
        "{:?}",
        said(&detail)
    );
}
