//! Crash recovery against the real binary: a server killed with SIGKILL mid-call and started
//! again on the same database marks the calls it had up as `failed` (`server_restart`), keeps
//! what those calls had stored, and takes new calls.

use std::time::{Duration, Instant};

use serde_json::Value;
use vaani_testbench::{ServerSpec, Sipp, VaaniServer, can_send_dtmf};

/// The echo line of the demo tenants.
const ECHO: &str = "+918000000099";

fn call_detail(server: &VaaniServer, id: &str) -> Value {
    server.api_json(&format!("/api/v1/calls/{id}"))
}

fn array_len(detail: &Value, field: &str) -> usize {
    detail[field].as_array().map_or(0, Vec::len)
}

/// Waits until `count` calls are in progress and each has stored a transcript line and an
/// event; returns their details as they were then.
fn calls_in_progress_with_history(server: &VaaniServer, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let details: Vec<Value> = server
            .calls()
            .iter()
            .filter(|c| c["status"] == "in_progress")
            .filter_map(|c| c["id"].as_str())
            .map(|id| call_detail(server, id))
            .collect();
        // The greeting and both keys' read-backs said, both key presses stored.
        let ready = details
            .iter()
            .filter(|d| array_len(d, "transcript") >= 3 && array_len(d, "events") >= 2)
            .count();
        if details.len() == count && ready == count {
            return details;
        }
        assert!(
            Instant::now() < deadline,
            "calls did not get under way: {details:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn calls_cut_by_a_crash_are_failed_on_restart_with_their_history_intact() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
    let mut server = VaaniServer::start(&ServerSpec::demo());
    let target = server.sip_addr();
    // Two callers that press 1 and 2 (stored as `dtmf` events, read back into the transcript)
    // and then wait for a BYE that never comes: the server dies first.
    let callers = std::thread::spawn(move || {
        Sipp::new("uac_dtmf_wait_bye.xml")
            .substitute("<exec play_dtmf=\"12#\"/>", "<exec play_dtmf=\"12\"/>")
            .substitute("milliseconds=\"3000\"", "milliseconds=\"500\"")
            .substitute("timeout=\"60000\"", "timeout=\"20000\"")
            .args(&["-l", "2", "-m", "2", "-r", "10"])
            .run(target, ECHO, Duration::from_secs(25))
    });
    let before = calls_in_progress_with_history(&server, 2);

    server.kill();
    assert!(!server.is_running());
    server.restart();

    // Both calls are failed by the recovery of the restarted server, nothing else changed.
    let calls = server.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for earlier in &before {
        let id = earlier["id"].as_str().expect("id");
        let detail = call_detail(&server, id);
        assert_eq!(detail["status"], "failed", "{detail:#}");
        assert_eq!(detail["end_reason"], "server_restart", "{detail:#}");
        assert!(detail["ended_at_ms"].is_i64(), "{detail:#}");
        assert_eq!(detail["answered_at_ms"], earlier["answered_at_ms"]);
        // What the call stored before the crash is still there, unchanged.
        for field in ["transcript", "events"] {
            let after = detail[field].as_array().expect("array");
            for row in earlier[field].as_array().expect("array") {
                assert!(
                    after.contains(row),
                    "{field} row lost or changed by the crash: {row:#}\nnow: {after:#?}"
                );
            }
        }
    }
    let recovered: Vec<Value> = server
        .log_json()
        .into_iter()
        .filter(|line| line["message"] == "node started")
        .collect();
    assert_eq!(recovered.len(), 2, "one start line per run: {recovered:#?}");
    assert_eq!(recovered[0]["recovered"], 0, "{recovered:#?}");
    assert_eq!(recovered[1]["recovered"], 2, "{recovered:#?}");
    assert_eq!(recovered[0]["node_id"], recovered[1]["node_id"]);

    // The restarted server takes calls again.
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"3000\"")
        .run(target, ECHO, Duration::from_secs(30))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| c["status"] == "completed")
    });
    assert_eq!(calls.len(), 3, "{calls:#?}");
    let new_call = calls
        .iter()
        .find(|c| c["status"] == "completed")
        .expect("completed call");
    assert_eq!(new_call["end_reason"], "caller_hangup", "{new_call:#}");
    let _ = callers.join();
}
