//! Trunk profiles against the real binary: a Twilio-like origination (X-Twilio headers,
//! Record-Route, PCMU first) on a `twilio` trunk, and an Exotel-like call over TCP on an
//! `exotel` trunk, which answers A-law.

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{RtpSink, ServerSpec, Sipp, TenantSpec, VaaniServer};

const PROBE: &str = "+918000000077";

fn finished_call(server: &VaaniServer, dialled: &str) -> Value {
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| {
            c["dialled"] == dialled
                && c["status"]
                    .as_str()
                    .is_some_and(|s| s != "ringing" && s != "in_progress")
        })
    });
    calls
        .into_iter()
        .find(|c| c["dialled"] == dialled)
        .expect("call stored")
}

/// A server with the probe tenant on a trunk of `profile`. The loopback address stands in for
/// the provider's signalling networks, and for its media networks when `media_from_loopback`;
/// everything else is the profile's.
fn spec(profile: &str, media_from_loopback: bool) -> ServerSpec {
    let mut spec = ServerSpec::demo();
    spec.tenants.push(TenantSpec::new("probe", PROBE, "probe"));
    spec.trunk_toml = format!("profile = \"{profile}\"");
    if media_from_loopback {
        spec.trunk_toml.push_str("\nmedia_cidrs = [\"127.0.0.1\"]");
    }
    spec
}

#[test]
fn a_twilio_call_keeps_its_call_sid_and_the_plugin_sees_the_twilio_headers() {
    let server = VaaniServer::start(&spec("twilio", true));
    let sink = RtpSink::start();
    let run = Sipp::new("uac_twilio.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .run(server.sip_addr(), PROBE, Duration::from_secs(30));
    run.assert_success();

    let call = finished_call(&server, PROBE);
    assert_eq!(
        call["external_id"], "CA708d85d118aacfcc794b730fa02bc40c",
        "{call:#}"
    );
    assert_eq!(call["status"], "completed", "{call:#}");
    let detail = server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()));
    let logs: Vec<&str> = detail["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == "plugin.log")
                .filter_map(|e| e["detail"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        logs.iter().any(|l| l.contains(
            "context external_id=CA708d85d118aacfcc794b730fa02bc40c \
             headers=X-Twilio-AccountSid=AC58f23d38858ac262d6ee2e554b30c561,\
             X-Twilio-CallSid=CA708d85d118aacfcc794b730fa02bc40c"
        )),
        "{logs:#?}"
    );
    // PCMU, as Twilio prefers.
    let packets = sink.packets();
    assert!(!packets.is_empty(), "no RTP from vaani");
    assert!(packets.iter().all(|p| p.payload_type == 0), "not PCMU");
    // The caller's audio came from the trunk's media network and was taken.
    let stats = &call["media_stats"];
    assert!(stats["packets_received"].as_u64() > Some(50), "{stats:#}");
    assert_eq!(stats["foreign_packets"], 0, "{stats:#}");
}

#[test]
fn an_exotel_call_over_tcp_is_answered_in_alaw() {
    let server = VaaniServer::start(&spec("exotel", false));
    let sink = RtpSink::start();
    let run = Sipp::new("uac_call_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        // Exotel offers PCMA, then PCMU, events on 96; the server's own preference is PCMU.
        .substitute("RTP/AVP 8 96", "RTP/AVP 0 8 96")
        .substitute(
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000\n      a=rtpmap:8 PCMA/8000",
        )
        .substitute("milliseconds=\"5000\"", "milliseconds=\"2000\"")
        .args(&["-t", "t1"])
        .run(server.sip_addr(), PROBE, Duration::from_secs(30));
    run.assert_success();

    let call = finished_call(&server, PROBE);
    assert_eq!(call["status"], "completed", "{call:#}");
    // No X-Twilio-CallSid on an Exotel trunk: the external id is the SIP Call-ID.
    let external = call["external_id"].as_str().unwrap_or("");
    assert!(
        !external.is_empty() && !external.starts_with("CA"),
        "{call:#}"
    );
    let packets = sink.packets();
    assert!(!packets.is_empty(), "no RTP from vaani");
    assert!(packets.iter().all(|p| p.payload_type == 8), "not PCMA");
    // sipp's RTP comes from loopback, outside Exotel's media hosts: all of it was refused.
    let stats = &call["media_stats"];
    assert!(stats["foreign_packets"].as_u64() > Some(50), "{stats:#}");
    assert_eq!(stats["packets_received"], 0, "{stats:#}");
}
