//! End-to-end calls: the real `vaani` binary driven by Debian's sipp 3.6.1 on loopback.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::Value;
use vaani_media::g711::Law;
use vaani_testbench::audio::{SPEECH_RMS, payload_rms};
use vaani_testbench::{RtpSink, ServerSpec, Sipp, TenantSpec, VaaniServer, can_send_dtmf};

fn require_root_for_dtmf() {
    assert!(
        can_send_dtmf(),
        "sipp's play_dtmf needs raw sockets: run the end-to-end tests as root (CI does)"
    );
}

fn call_detail(server: &VaaniServer, id: &str) -> Value {
    server.api_json(&format!("/api/v1/calls/{id}"))
}

fn newest_call(server: &VaaniServer, dialled: &str, limit: Duration) -> Value {
    let calls = server.wait_for_calls(limit, |calls| {
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
        .expect("call present")
}

fn transcript_texts(detail: &Value) -> Vec<String> {
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

/// Milliseconds of 20 ms frames whose level is speech, among packets arriving after `from`.
fn speech_ms_after(packets: &[vaani_testbench::ReceivedRtp], law: Law, from: Instant) -> u64 {
    packets
        .iter()
        .filter(|p| p.arrival >= from && p.payload_type == law.static_payload_type())
        .filter(|p| payload_rms(law, &p.payload) > SPEECH_RMS)
        .count() as u64
        * 20
}

#[test]
fn echo_line_reads_back_digits_and_stores_them() {
    require_root_for_dtmf();
    let server = VaaniServer::start(&ServerSpec::demo());
    let sink = RtpSink::start();
    let started = Instant::now();
    let run = Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .substitute("milliseconds=\"3000\"", "milliseconds=\"1500\"")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(60));
    run.assert_success();

    let call = newest_call(&server, "+918000000099", Duration::from_secs(10));
    let detail = call_detail(&server, call["id"].as_str().expect("id"));
    assert_eq!(detail["status"], "completed", "{detail:#}");
    assert_eq!(detail["dtmf"], "12#", "{detail:#}");
    assert_eq!(detail["end_reason"], "plugin_hangup", "{detail:#}");
    let said = transcript_texts(&detail);
    assert!(said.iter().any(|t| t.contains("You pressed 1")), "{said:?}");
    assert!(said.iter().any(|t| t.contains("You pressed 2")), "{said:?}");

    // The read-back was on the wire: speech-level PCMU audio reached the caller after the digits.
    let packets = sink.packets();
    assert!(
        packets.len() > 100,
        "only {} RTP packets reached the caller",
        packets.len()
    );
    let digits_sent = started + Duration::from_millis(1500);
    let spoken = speech_ms_after(&packets, Law::Mu, digits_sent);
    eprintln!(
        "caller heard {spoken} ms of speech after the digits ({} packets)",
        packets.len()
    );
    assert!(
        spoken >= 1500,
        "only {spoken} ms of speech after the digits"
    );
    let source_ports: std::collections::HashSet<u16> =
        packets.iter().map(|p| p.source.port()).collect();
    assert_eq!(
        source_ports.len(),
        1,
        "RTP must leave from one port (symmetric RTP)"
    );
}

#[test]
fn clinic_books_an_appointment_by_dtmf() {
    require_root_for_dtmf();
    let server = VaaniServer::start(&ServerSpec::demo());
    // 1: book, 2: tomorrow, 1: morning, 1: confirm.
    let run = Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("play_dtmf=\"12#\"", "play_dtmf=\"1211\"")
        .substitute("milliseconds=\"3000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), "+918000000001", Duration::from_secs(90));
    run.assert_success();

    let call = newest_call(&server, "+918000000001", Duration::from_secs(10));
    let detail = call_detail(&server, call["id"].as_str().expect("id"));
    assert_eq!(detail["status"], "completed", "{detail:#}");
    let extractions = detail["extractions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let appointment = extractions
        .iter()
        .find(|e| e["schema_id"] == "appointment")
        .unwrap_or_else(|| panic!("no appointment extraction: {detail:#}"));
    assert_eq!(appointment["data"]["day"], "tomorrow", "{appointment:#}");
    assert_eq!(appointment["data"]["slot"], "morning", "{appointment:#}");
    assert_eq!(appointment["data"]["time"], "10:00", "{appointment:#}");

    // The same caller calls again: the clinic remembers the booking from the caller's memory.
    Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("play_dtmf=\"12#\"", "play_dtmf=\"1331\"")
        .substitute("milliseconds=\"3000\"", "milliseconds=\"1000\"")
        .run(server.sip_addr(), "+918000000001", Duration::from_secs(90))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().filter(|c| c["status"] == "completed").count() == 2
    });
    let second = call_detail(&server, calls[0]["id"].as_str().expect("id"));
    let said = transcript_texts(&second);
    assert_eq!(
        said.first().map(String::as_str),
        Some("Welcome back to Sunny Clinic. Your last booking was for tomorrow morning at 10:00."),
        "{said:?}"
    );
    let booking = &second["extractions"][0]["data"];
    assert_eq!(booking["day"], "day_after_tomorrow", "{second:#}");
    assert_eq!(booking["slot"], "evening", "{second:#}");
}

#[test]
fn unknown_number_gets_404_and_stranger_gets_403() {
    let server = VaaniServer::start(&ServerSpec::demo());
    Sipp::new("uac_expect_reject.xml")
        .run(server.sip_addr(), "+919999999999", Duration::from_secs(20))
        .assert_success();
    // 127.0.0.5 is loopback too, but outside the trunk's 127.0.0.1/32.
    Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", "response=\"403\"")
        .local_ip("127.0.0.5")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(20))
        .assert_success();
    let metrics = server.http_get("/metrics", None).expect("metrics").1;
    assert!(
        metrics.contains("vaani_sip_rejections_total{code=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vaani_sip_rejections_total{code=\"403\"} 1"),
        "{metrics}"
    );
    assert!(
        server.calls().is_empty(),
        "refused INVITEs must not create calls"
    );
}

#[test]
fn cancel_before_answer_leaves_a_cancelled_call() {
    let mut spec = ServerSpec::demo();
    let mut ringing = TenantSpec::new("ringer", "+918000000077", "echo");
    ringing.ring_ms = 5000;
    spec.tenants.push(ringing);
    let server = VaaniServer::start(&spec);
    Sipp::new("uac_cancel.xml")
        .substitute("milliseconds=\"1000\"", "milliseconds=\"500\"")
        .run(server.sip_addr(), "+918000000077", Duration::from_secs(20))
        .assert_success();
    let call = newest_call(&server, "+918000000077", Duration::from_secs(10));
    assert_eq!(call["status"], "cancelled", "{call:#}");
    assert!(call["answered_at_ms"].is_null(), "{call:#}");
}

#[test]
fn twenty_simultaneous_calls_all_complete() {
    // Twenty calls to one number in two seconds: above the default 10 per minute per number.
    let mut spec = ServerSpec::demo();
    spec.sip_toml
        .push_str("max_calls_per_minute_per_number = 100\n");
    let server = VaaniServer::start(&spec);
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"4000\"")
        .args(&["-r", "10", "-l", "20", "-m", "20"])
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(60))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().filter(|c| c["status"] == "completed").count() == 20
    });
    for call in &calls {
        assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
        let received = call["media_stats"]["packets_received"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            received > 100,
            "call {} received only {received} RTP packets",
            call["id"]
        );
        assert_eq!(
            call["media_stats"]["unknown_payload_packets"], 0,
            "{call:#}"
        );
        assert_eq!(call["media_stats"]["packets_lost"], 0, "{call:#}");
    }
}

#[test]
fn garbage_never_stops_the_server() {
    let mut server = VaaniServer::start(&ServerSpec::demo());
    let target = server.sip_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let invite = "INVITE sip:+918000000099@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKgarbage\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+918000000099@127.0.0.1>\r\nCall-ID: garbage-1\r\nCSeq: 1 INVITE\r\nContent-Length: 500\r\n\r\nv=0\r\n";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 7;
        state ^= state >> 9;
        state
    };
    for i in 0..2000 {
        let datagram: Vec<u8> = match i % 4 {
            0 => (0..(next() % 1400) as usize)
                .map(|_| next() as u8)
                .collect(),
            1 => invite.as_bytes()[..(next() as usize % invite.len())].to_vec(),
            2 => {
                let mut bytes = invite.as_bytes().to_vec();
                for _ in 0..8 {
                    let at = next() as usize % bytes.len();
                    bytes[at] = next() as u8;
                }
                bytes
            }
            _ => b"\r\n\r\n".to_vec(),
        };
        let _ = socket.send_to(&datagram, target);
    }
    if let Ok(mut tcp) = TcpStream::connect(target) {
        let _ = tcp.write_all(b"INVITE garbage\r\nContent-Length: 99999999\r\n\r\n");
        let _ = tcp.write_all(&[0xff; 4096]);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.is_running(),
        "vaani died on garbage input:\n{}",
        server.log()
    );
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"1000\"")
        .run(target, "+918000000099", Duration::from_secs(30))
        .assert_success();
}

#[test]
fn tcp_call_completes() {
    let server = VaaniServer::start(&ServerSpec::demo());
    Sipp::new("uac_call_bye.xml")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"2000\"")
        .args(&["-t", "t1"])
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(30))
        .assert_success();
    let call = newest_call(&server, "+918000000099", Duration::from_secs(10));
    assert_eq!(call["status"], "completed", "{call:#}");
    assert_eq!(call["end_reason"], "caller_hangup", "{call:#}");
}

#[test]
fn silent_caller_is_hung_up_after_the_rtp_timeout() {
    let mut spec = ServerSpec::demo();
    spec.rtp_timeout_secs = 2;
    let server = VaaniServer::start(&spec);
    // No audio and no digits: the caller's RTP never starts.
    Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("<exec rtp_stream=\"caller_8k.ulaw,-1,0\"/>", "")
        .substitute("<exec play_dtmf=\"12#\"/>", "")
        .substitute("milliseconds=\"3000\"", "milliseconds=\"100\"")
        .run(server.sip_addr(), "+918000000099", Duration::from_secs(30))
        .assert_success();
    let call = newest_call(&server, "+918000000099", Duration::from_secs(10));
    assert_eq!(call["end_reason"], "media_timeout", "{call:#}");
    assert_eq!(call["media_stats"]["packets_received"], 0, "{call:#}");
}

/// Runs one call to `number` whose caller speaks over the greeting; returns the stored call and
/// the milliseconds of agent speech the caller heard in the first five seconds.
fn call_with_caller_speech(server: &VaaniServer, number: &str) -> (Value, u64) {
    let sink = RtpSink::start();
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .substitute("milliseconds=\"5000\"", "milliseconds=\"9000\"")
        .substitute("caller_8k.alaw,-1,8", "caller_speech.alaw,1,8");
    vaani_testbench::audio::write_spoken_alaw(
        sipp.dir(),
        "caller_speech.alaw",
        "Hello, I would like to book an appointment for tomorrow morning please.",
        1.5,
        6.0,
    );
    let started = Instant::now();
    sipp.run(server.sip_addr(), number, Duration::from_secs(30))
        .assert_success();
    let call = newest_call(server, number, Duration::from_secs(10));
    let detail = call_detail(server, call["id"].as_str().expect("id"));
    // Agent speech in the first 5 s: the greeting or prompts the caller spoke over (at 1.5 s),
    // before any reply to what they said.
    let greeting_window: Vec<_> = sink
        .packets()
        .into_iter()
        .filter(|p| p.arrival < started + Duration::from_secs(5))
        .collect();
    let heard = speech_ms_after(&greeting_window, Law::A, started);
    (detail, heard)
}

fn event_kinds(detail: &Value) -> Vec<String> {
    detail["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn caller_speech_is_detected_and_barges_in_on_playback() {
    let server = VaaniServer::start(&ServerSpec::demo());

    // The clinic leaves barge-in to the media engine: caller speech cuts the prompt.
    let (detail, heard) = call_with_caller_speech(&server, "+918000000001");
    let kinds = event_kinds(&detail);
    assert!(
        kinds.iter().any(|k| k == "speech.started"),
        "no speech detected: {detail:#}"
    );
    assert!(
        kinds.iter().any(|k| k == "speech.stopped"),
        "speech never ended: {detail:#}"
    );
    assert!(
        kinds.iter().any(|k| k == "playback.barge_in"),
        "no barge-in: {detail:#}"
    );
    assert!(
        detail["media_stats"]["barge_ins"].as_u64().unwrap_or(0) >= 1,
        "{detail:#}"
    );
    assert_eq!(
        detail["media_stats"]["unknown_payload_packets"], 0,
        "{detail:#}"
    );
    eprintln!("clinic caller heard {heard} ms of prompts before barging in");

    // The echo plugin stops playback itself as soon as speech starts, then repeats what the
    // caller said: speech-to-text (whisper tiny.en) turned the caller's audio into a transcript.
    let (detail, heard) = call_with_caller_speech(&server, "+918000000099");
    assert!(
        event_kinds(&detail).iter().any(|k| k == "speech.started"),
        "{detail:#}"
    );
    let lines = detail["transcript"].as_array().cloned().unwrap_or_default();
    let caller_said: Vec<String> = lines
        .iter()
        .filter(|l| l["speaker"] == "caller")
        .filter_map(|l| l["text"].as_str().map(str::to_lowercase))
        .collect();
    assert!(
        caller_said.iter().any(|t| t.contains("appointment")),
        "no caller transcript with the spoken words: {detail:#}"
    );
    let agent_said = transcript_texts(&detail);
    assert!(
        agent_said
            .iter()
            .any(|t| t.to_lowercase().starts_with("you said: ")
                && t.to_lowercase().contains("appointment")),
        "the plugin did not receive the transcript: {agent_said:?}"
    );
    // Its greeting alone lasts about 4.5 s; the caller spoke over it after about 2 s.
    eprintln!("echo caller heard {heard} ms of the greeting before it stopped");
    assert!(
        heard < 3000,
        "caller heard {heard} ms: the plugin did not stop playback"
    );
}

/// The `call ended` log lines' reasons, in order.
fn ended_reasons(server: &VaaniServer) -> Vec<String> {
    server
        .log_json()
        .iter()
        .filter(|line| line["message"] == "call ended")
        .filter_map(|line| line["reason"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `/readyz` stops answering 200 (the server has begun to drain).
fn wait_until_draining(server: &VaaniServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !matches!(server.http_get("/readyz", None), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not start draining:\n{}", server.log());
}

/// A demo server that drains for `grace_secs` on SIGTERM.
fn server_with_grace(grace_secs: u32) -> VaaniServer {
    let mut spec = ServerSpec::demo();
    spec.sip_toml = format!("shutdown_grace_secs = {grace_secs}");
    VaaniServer::start(&spec)
}

#[test]
fn stopping_the_server_lets_calls_in_progress_finish_and_refuses_new_ones() {
    let mut server = server_with_grace(30);
    let target = server.sip_addr();
    // A caller that talks for 6 s and then hangs up itself.
    let caller = std::thread::spawn(move || {
        Sipp::new("uac_call_bye.xml")
            .substitute("milliseconds=\"5000\"", "milliseconds=\"6000\"")
            .run(target, "+918000000099", Duration::from_secs(30))
    });
    server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().any(|c| c["status"] == "in_progress")
    });
    let stop_requested = Instant::now();
    server.send_sigterm();
    wait_until_draining(&server);

    // (b) A new INVITE while draining: 503 with Retry-After, and no call is created.
    let refused = Sipp::new("uac_expect_reject.xml")
        .substitute("response=\"404\"", "response=\"503\"")
        .run(target, "+918000000099", Duration::from_secs(20));
    refused.assert_success();
    assert!(
        refused.messages.contains("Retry-After:"),
        "the 503 carries no Retry-After:\n{}",
        refused.messages
    );
    // No new calls from the API either.
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &serde_json::json!({"tenant": "echo", "to": "+919800000042"}),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "draining", "{body}");
    let calls = server.calls();
    assert_eq!(
        calls.len(),
        1,
        "refused calls must not be stored: {calls:#?}"
    );

    // (a) The call in progress is not hung up: its caller ends it, normally.
    caller.join().expect("sipp thread").assert_success();
    let exit = server.wait_exit(Duration::from_secs(20));
    let stopped_after = stop_requested.elapsed();
    assert_eq!(
        exit,
        Some(0),
        "vaani did not stop cleanly:\n{}",
        server.log()
    );
    assert_eq!(
        ended_reasons(&server),
        ["caller_hangup"],
        "{}",
        server.log()
    );
    // It stopped once the last call ended, long before the 30 s grace.
    assert!(
        stopped_after < Duration::from_secs(20),
        "stopping took {stopped_after:?}"
    );
    let log = server.log_json();
    let refused_line = log
        .iter()
        .find(|line| line["message"] == "INVITE refused: draining")
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.log()));
    assert_eq!(refused_line["status"], 503, "{refused_line}");
}

#[test]
fn calls_still_up_when_the_grace_ends_are_hung_up() {
    let mut server = server_with_grace(5);
    let target = server.sip_addr();
    // A caller that presses nothing and waits for vaani's BYE.
    let caller = std::thread::spawn(move || {
        let run = Sipp::new("uac_dtmf_wait_bye.xml")
            .substitute("<exec play_dtmf=\"12#\"/>", "")
            .substitute("milliseconds=\"3000\"", "milliseconds=\"100\"")
            .run(target, "+918000000099", Duration::from_secs(30));
        (run, Instant::now())
    });
    server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.iter().any(|c| c["status"] == "in_progress")
    });
    // Let sipp reach its wait for the BYE (it treats a BYE during a pause as unexpected).
    std::thread::sleep(Duration::from_secs(1));
    let stop_requested = Instant::now();
    let exit = server.terminate(Duration::from_secs(20));
    assert_eq!(
        exit,
        Some(0),
        "vaani did not stop cleanly:\n{}",
        server.log()
    );
    let (run, caller_done) = caller.join().expect("sipp thread");
    run.assert_success();
    // The BYE came at the end of the grace, not at once.
    let hung_up_after = caller_done.saturating_duration_since(stop_requested);
    assert!(
        hung_up_after >= Duration::from_millis(4500),
        "the call was hung up {hung_up_after:?} after SIGTERM, before the 5 s grace ended"
    );
    assert_eq!(
        ended_reasons(&server),
        ["host_shutdown"],
        "{}",
        server.log()
    );
}

#[test]
fn maximum_call_duration_warns_then_hangs_up() {
    let mut spec = ServerSpec::demo();
    let mut short = TenantSpec::new("short", "+918000000055", "echo");
    short.extra = "max_call_duration_secs = 8\nduration_warning_secs = 4\nduration_warning_text = \"Time is nearly up.\"".to_string();
    spec.tenants.push(short);
    let server = VaaniServer::start(&spec);
    let started = Instant::now();
    Sipp::new("uac_dtmf_wait_bye.xml")
        .substitute("<exec play_dtmf=\"12#\"/>", "")
        .substitute("milliseconds=\"3000\"", "milliseconds=\"100\"")
        .run(server.sip_addr(), "+918000000055", Duration::from_secs(30))
        .assert_success();
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_secs(7)..Duration::from_secs(12)).contains(&elapsed),
        "call lasted {elapsed:?}"
    );
    let call = newest_call(&server, "+918000000055", Duration::from_secs(10));
    assert_eq!(call["end_reason"], "max_duration", "{call:#}");
    let detail = call_detail(&server, call["id"].as_str().expect("id"));
    assert!(
        transcript_texts(&detail)
            .iter()
            .any(|t| t == "Time is nearly up."),
        "{detail:#}"
    );
}
