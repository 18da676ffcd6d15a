//! Early media against the real binary: a tenant whose plugin cannot run has its fallback
//! announced in `183 Session Progress` audio, and the call is refused `480` without ever being
//! answered (so the trunk bills nothing).

use std::time::Duration;

use vaani_media::g711::Law;
use vaani_testbench::audio::{SPEECH_RMS, payload_rms};
use vaani_testbench::{RtpSink, ServerSpec, Sipp, TenantSpec, VaaniServer};

const CLOSED: &str = "+918000000077";

#[test]
fn a_tenant_without_a_working_plugin_is_announced_as_early_media_then_refused() {
    let mut spec = ServerSpec::demo();
    let mut closed = TenantSpec::new("closed", CLOSED, "");
    closed.extra =
        "fallback_text = \"Sorry, this line is closed today. Please call tomorrow.\"".to_string();
    spec.tenants.push(closed);
    let server = VaaniServer::start(&spec);
    let sink = RtpSink::start();
    let run = Sipp::new("uac_early_media.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .run(server.sip_addr(), CLOSED, Duration::from_secs(60));
    run.assert_success();

    let spoken = sink
        .packets()
        .iter()
        .filter(|p| p.payload_type == 0 && payload_rms(Law::Mu, &p.payload) > SPEECH_RMS)
        .count();
    assert!(
        spoken >= 50,
        "expected at least a second of announcement before the 480, got {spoken} loud packets"
    );

    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls
            .iter()
            .any(|c| c["dialled"] == CLOSED && c["status"] == "failed")
    });
    let call = calls
        .iter()
        .find(|c| c["dialled"] == CLOSED)
        .expect("call stored");
    assert_eq!(call["end_reason"], "plugin_unavailable", "{call:#}");
    assert!(call["answered_at_ms"].is_null(), "never answered: {call:#}");
    let detail = server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()));
    let said: Vec<&str> = detail["transcript"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| l["text"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        said.iter().any(|t| t.contains("this line is closed today")),
        "{said:?}"
    );
}
