//! Transfers against the real binary, with sipp as the trunk. Blind: the echo plugin
//! transfers to the tenant's `frontdesk` when the caller presses 0; a successful NOTIFY ends
//! the call with our BYE, a busy target keeps it going. Bridged: on 8 vaani calls the front
//! desk (a sipp UAS), says the summary and connects the two calls' audio.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use vaani_media::g711::Law;
use vaani_testbench::audio::{SPEECH_RMS, payload_rms};
use vaani_testbench::{RtpSink, ServerSpec, Sipp, VaaniServer, free_port};

const ECHO: &str = "+918000000099";

fn server() -> VaaniServer {
    server_with_frontdesk("sip:frontdesk@127.0.0.1:5999")
}

fn server_with_frontdesk(uri: &str) -> VaaniServer {
    let mut spec = ServerSpec::demo();
    let echo = spec
        .tenants
        .iter_mut()
        .find(|t| t.number == ECHO)
        .expect("echo tenant");
    echo.extra = format!("transfer_targets = {{ frontdesk = \"{uri}\" }}");
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
fn a_transfer_to_a_number_logs_it_masked() {
    // The target is a phone number: the log shows only its last four digits.
    let server = server_with_frontdesk("sip:+918000000123@127.0.0.1:5999");
    Sipp::new("uac_refer.xml")
        .substitute("frontdesk@127", "\\+918000000123@127")
        .run(server.sip_addr(), ECHO, Duration::from_secs(60))
        .assert_success();
    let detail = finished_call(&server);
    assert_eq!(detail["end_reason"], "transferred", "{detail:#}");
    let log = server.log();
    let referred = log
        .lines()
        .find(|line| line.contains("transferring the call (REFER)"))
        .unwrap_or_else(|| panic!("no REFER line:\n{log}"));
    assert!(referred.contains("+********0123"), "{referred}");
    for number in ["918000000123", "918000000099", "919800000"] {
        assert!(!log.contains(number), "{number} is logged unmasked:\n{log}");
    }
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

/// μ-law has two codes for zero; decoding and re-encoding may swap them.
fn normalise(frame: &[u8]) -> Vec<u8> {
    frame
        .iter()
        .map(|&b| if b == 0x7f { 0xff } else { b })
        .collect()
}

/// The 20 ms frames (160 bytes) of a raw μ-law file, normalised.
fn frames_of(file: &[u8]) -> HashSet<Vec<u8>> {
    file.chunks_exact(160).map(normalise).collect()
}

/// How many packets the sink got whose payload is one of `frames`.
fn relayed(sink: &RtpSink, frames: &HashSet<Vec<u8>>) -> usize {
    sink.packets()
        .iter()
        .filter(|p| p.payload_type == 0 && frames.contains(&normalise(&p.payload)))
        .count()
}

#[test]
fn a_bridged_transfer_tells_the_target_the_summary_then_connects_both_ways() {
    let target_port = free_port();
    let server = server_with_frontdesk(&format!("sip:frontdesk@127.0.0.1:{target_port}"));
    let caller_sink = RtpSink::start();
    let target_sink = RtpSink::start();

    // The front desk streams a tone of its own, so that its audio is told apart from the
    // caller's line noise.
    let target = Sipp::new("uas_transfer_target.xml").substitute(
        "m=audio [media_port]",
        format!("m=audio {}", target_sink.port),
    );
    let tone: Vec<i16> = (0..20 * 8000)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin() * 6000.0) as i16)
        .collect();
    let mut target_audio = vec![0u8; tone.len()];
    Law::Mu.encode(&tone, &mut target_audio);
    std::fs::write(target.dir().join("target_8k.ulaw"), &target_audio).expect("target audio");
    let target_run =
        std::thread::spawn(move || target.run_uas(target_port, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(500));

    let caller = Sipp::new("uac_bridged_transfer.xml").substitute(
        "m=audio [media_port]",
        format!("m=audio {}", caller_sink.port),
    );
    let caller_audio = std::fs::read(caller.dir().join("caller_8k.ulaw")).expect("caller audio");
    let caller_run = caller.run(server.sip_addr(), ECHO, Duration::from_secs(60));
    caller_run.assert_success();
    target_run.join().expect("target thread").assert_success();

    // The target heard the summary (speech) before the caller...
    let spoken = target_sink
        .packets()
        .iter()
        .filter(|p| p.payload_type == 0 && payload_rms(Law::Mu, &p.payload) > SPEECH_RMS)
        .count();
    assert!(
        spoken >= 25,
        "the summary was not heard: {spoken} loud packets"
    );
    // ... then the caller's own audio, frame for frame, and the caller heard the target.
    let to_target = relayed(&target_sink, &frames_of(&caller_audio));
    assert!(
        to_target >= 200,
        "the caller's audio reached the target in {to_target} packets"
    );
    let to_caller = relayed(&caller_sink, &frames_of(&target_audio));
    assert!(
        to_caller >= 200,
        "the target's audio reached the caller in {to_caller} packets"
    );

    let detail = finished_call(&server);
    assert_eq!(detail["end_reason"], "transferred", "{detail:#}");
    assert_eq!(
        event_details(&detail, "transfer.bridged").len(),
        1,
        "{detail:#}"
    );
    assert_eq!(
        event_details(&detail, "transfer.dialling"),
        vec![format!("frontdesk (sip:frontdesk@127.0.0.1:{target_port})")]
    );
}

#[test]
fn a_busy_bridged_transfer_target_returns_the_caller_to_the_plugin() {
    let target_port = free_port();
    let mut server = server_with_frontdesk(&format!("sip:frontdesk@127.0.0.1:{target_port}"));
    let target = Sipp::new("uas_busy.xml");
    let target_run =
        std::thread::spawn(move || target.run_uas(target_port, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(500));
    let run =
        Sipp::new("uac_bridged_busy.xml").run(server.sip_addr(), ECHO, Duration::from_secs(60));
    run.assert_success();
    target_run.join().expect("target thread").assert_success();
    let detail = finished_call(&server);
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    assert_eq!(
        event_details(&detail, "transfer.failed"),
        vec!["frontdesk 486 busy".to_string()],
        "{detail:#}"
    );
    assert!(
        said(&detail)
            .iter()
            .any(|t| t.contains("did not go through")),
        "{:?}",
        said(&detail)
    );
    // Nothing of the failed leg is left behind: with no call in progress the server stops at
    // once instead of draining for its `[sip] shutdown_grace_secs`.
    let started = std::time::Instant::now();
    assert_eq!(server.terminate(Duration::from_secs(8)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}
