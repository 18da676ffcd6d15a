//! The real binary's log (`[log] format = "json"`, the default): every line of a call is a
//! JSON object carrying the call's `call_id` and `tenant_id`, and the caller's number is
//! masked.

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

/// The caller's number sipp puts in From (and so in the call's `caller`).
const CALLER: &str = "+919876543210";
/// How [`CALLER`] may appear in a log: all but the last four digits masked.
const CALLER_MASKED: &str = "+********3210";

#[test]
fn call_log_lines_are_json_with_call_and_tenant_and_a_masked_caller() {
    let server = VaaniServer::start(&ServerSpec::demo());
    Sipp::new("uac_call_bye.xml")
        .substitute("sip:+9198000[call_number]@", format!("sip:{CALLER}@"))
        .substitute("milliseconds=\"5000\"", "milliseconds=\"2000\"")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(30))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().any(|c| c["status"] == "completed")
    });
    let call_id = calls[0]["id"].as_str().expect("call id").to_string();
    assert_eq!(calls[0]["caller"], CALLER, "{:#}", calls[0]);
    // The "call ended" line is written after the call's row is final; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let log = server.log();

    // Nothing anywhere in the log shows the caller's number whole.
    let digits = CALLER.trim_start_matches('+');
    for line in log.lines() {
        assert!(
            !line.contains(digits),
            "the caller's number is logged unmasked: {line}"
        );
    }

    // Every line that mentions a call id is a JSON object with the call and its tenant.
    let call_lines: Vec<Value> = log
        .lines()
        .filter(|line| line.contains("call_id"))
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("a call's log line is not JSON ({e}): {line}"))
        })
        .collect();
    let of_this_call: Vec<&Value> = call_lines
        .iter()
        .filter(|line| line["call_id"] == call_id.as_str())
        .collect();
    assert!(
        of_this_call.len() >= 2,
        "expected the call's lines (incoming call, call ended) with call_id {call_id}:\n{log}"
    );
    for line in &call_lines {
        assert!(
            line.is_object() && line["timestamp"].is_string() && line["level"].is_string(),
            "not a log object: {line}"
        );
        assert_eq!(
            line["tenant_id"], "echo",
            "a call line without its tenant: {line}"
        );
        // The admission span's SIP Call-ID comes along with the call's own id.
        assert!(line["sip_call_id"].is_string(), "{line}");
    }
    let messages: Vec<&str> = of_this_call
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    let incoming = of_this_call
        .iter()
        .find(|line| line["message"] == "incoming call")
        .unwrap_or_else(|| panic!("no `incoming call` line: {messages:?}"));
    assert_eq!(incoming["caller"], CALLER_MASKED, "{incoming}");
    let ended = of_this_call
        .iter()
        .find(|line| line["message"] == "call ended")
        .unwrap_or_else(|| panic!("no `call ended` line: {messages:?}"));
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["reason"], "caller_hangup", "{ended}");
}

#[test]
fn refused_invite_line_carries_the_tenant_of_the_dialled_number() {
    // 127.0.0.5 is loopback too, but outside the trunk's 127.0.0.1/32: the INVITE is refused
    // with 403 after its number was mapped to a tenant, so the refusal line names the tenant.
    let server = VaaniServer::start(&ServerSpec::demo());
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", "response=\"403\"")
        .local_ip("127.0.0.5")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(20))
        .assert_success();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let found = server
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("INVITE refused"))
            });
        if let Some(found) = found {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `INVITE refused` line:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["tenant_id"], "echo", "{refused}");
    assert!(refused["sip_call_id"].is_string(), "{refused}");
    assert!(refused.get("call_id").is_none(), "not admitted: {refused}");
}

#[test]
fn text_format_writes_plain_lines() {
    let mut spec = ServerSpec::demo();
    spec.env
        .push(("VAANI_LOG__FORMAT".to_string(), "text".to_string()));
    let server = VaaniServer::start(&spec);
    let log = server.log();
    let listening = log
        .lines()
        .find(|line| line.contains("SIP listening"))
        .unwrap_or_else(|| panic!("no `SIP listening` line:\n{log}"));
    assert!(
        serde_json::from_str::<Value>(listening).is_err() && listening.contains(" INFO "),
        "not a text line: {listening}"
    );
}
