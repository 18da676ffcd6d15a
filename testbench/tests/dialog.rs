//! Trunk-grade dialog behaviour against the real binary with sipp: hold and resume by
//! re-INVITE, a refused re-offer that keeps the call, session refresh by UPDATE, and session
//! timers that keep a long call up and end one whose peer stopped refreshing.

use std::time::{Duration, Instant};

use serde_json::Value;
use vaani_testbench::{RtpSink, ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";

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

/// Gaps longer than `at_least` between consecutive packets the sink received.
fn gaps(sink: &RtpSink, at_least: Duration) -> Vec<(Instant, Duration)> {
    let packets = sink.packets();
    packets
        .windows(2)
        .filter_map(|w| {
            let gap = w[1].arrival.duration_since(w[0].arrival);
            (gap >= at_least).then_some((w[0].arrival, gap))
        })
        .collect()
}

#[test]
fn hold_stops_our_audio_resume_restarts_it_and_a_refused_reoffer_keeps_the_call() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let sink = RtpSink::start();
    let run = Sipp::new("uac_hold_resume.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .run(server.sip_addr(), ECHO, Duration::from_secs(60));
    run.assert_success();

    // sipp checked the answers (recvonly on hold, sendrecv on resume, 488 for G.729 only,
    // Session-Expires in every 2xx). Here: what vaani sent while on hold.
    let held = gaps(&sink, Duration::from_millis(500));
    assert_eq!(
        held.len(),
        1,
        "expected exactly one pause in vaani's audio (the 2 s hold): {held:?}"
    );
    let (_, hold_gap) = held[0];
    assert!(
        (Duration::from_millis(1500)..Duration::from_millis(3000)).contains(&hold_gap),
        "the hold silenced vaani for {hold_gap:?}"
    );
    let packets = sink.packets();
    let resumed_at = held[0].0 + hold_gap;
    let after_resume = packets.iter().filter(|p| p.arrival >= resumed_at).count();
    assert!(
        after_resume > 100,
        "audio did not come back after resume: {after_resume} packets"
    );

    let call = finished_call(&server, ECHO);
    assert_eq!(call["status"], "completed", "{call:#}");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
}

/// The "real 3-minute call with session timers at their minimum": refreshes every
/// 40 s keep it up; when they stop, vaani ends it 60 s after the last one (RFC 4028 §10:
/// a third of the 90 s interval before expiry).
#[test]
fn refreshes_keep_a_three_minute_call_and_a_silent_peer_gets_bye_at_expiry() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let started = Instant::now();
    let run =
        Sipp::new("uac_session_refresh.xml").run(server.sip_addr(), ECHO, Duration::from_secs(300));
    let took = started.elapsed();
    run.assert_success();
    // 160 s of refreshes, then BYE 60 s after the last one, then sipp lingers 2 s.
    assert!(
        (Duration::from_secs(218)..Duration::from_secs(235)).contains(&took),
        "the call lasted {took:?}"
    );

    let call = finished_call(&server, ECHO);
    assert_eq!(call["end_reason"], "session_expired", "{call:#}");
    assert_eq!(call["status"], "completed", "{call:#}");
    let answered = call["answered_at_ms"].as_i64().expect("answered");
    let ended = call["ended_at_ms"].as_i64().expect("ended");
    assert!(
        ended - answered >= 215_000,
        "the call was up only {} ms",
        ended - answered
    );
}

#[test]
fn keys_sent_as_sip_info_reach_the_plugin_and_its_keys_go_out_as_rfc_4733_events() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let sink = RtpSink::start();
    let run = Sipp::new("uac_info_dtmf.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .run(server.sip_addr(), ECHO, Duration::from_secs(60));
    run.assert_success();
    let call = finished_call(&server, ECHO);
    assert_eq!(call["dtmf"], "73#", "{call:#}");
    assert_eq!(call["end_reason"], "plugin_hangup", "{call:#}");
    let detail = server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()));
    let said: Vec<&str> = detail["transcript"]
        .as_array()
        .map(|lines| lines.iter().filter_map(|l| l["text"].as_str()).collect())
        .unwrap_or_default();
    // 7 makes the echo plugin send the keys 1 2 3 (RFC 4733, on the offered PT 96).
    assert!(
        said.iter().any(|t| t.contains("Sent one two three")),
        "{said:?}"
    );
    assert!(said.iter().any(|t| t.contains("You pressed 3")), "{said:?}");

    let events: Vec<_> = sink
        .packets()
        .into_iter()
        .filter(|p| p.payload_type == 96)
        .collect();
    let ends: Vec<u8> = events
        .iter()
        .filter(|p| p.payload.len() == 4 && p.payload[1] & 0x80 != 0)
        .map(|p| p.payload[0])
        .collect();
    assert_eq!(
        ends,
        vec![1, 1, 1, 2, 2, 2, 3, 3, 3],
        "three end packets per key"
    );
    let starts: Vec<u8> = events
        .iter()
        .filter(|p| p.marker)
        .map(|p| p.payload[0])
        .collect();
    assert_eq!(starts, vec![1, 2, 3], "the marker opens each key once");
    let stamps: std::collections::BTreeSet<u32> = events.iter().map(|p| p.timestamp).collect();
    assert_eq!(stamps.len(), 3, "one timestamp per key");
    let sent: Vec<&str> = detail["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["kind"] == "dtmf.sent")
                .filter_map(|x| x["detail"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sent, vec!["123"], "{detail:#}");
}
