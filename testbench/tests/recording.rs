//! Call recording end to end: sipp calls the echo line with recording on, the two-channel WAV
//! is downloaded over the API and checked (format, length, who spoke when).

use std::time::Duration;

use serde_json::Value;
use vaani_media::g711::Law;
use vaani_testbench::audio::{SPEECH_RMS, write_spoken_phrases};
use vaani_testbench::{ServerSpec, Sipp, TenantSpec, VaaniServer};

const ECHO: &str = "+918000000099";

/// The demo server with the echo tenant recording its calls (`recording` lines appended).
fn server(recording: &str) -> VaaniServer {
    let mut spec = ServerSpec::demo();
    let mut echo = TenantSpec::new("echo", ECHO, "echo");
    echo.extra = format!("[tenants.recording]\nenabled = true\nretention_days = 7\n{recording}");
    spec.tenants = vec![echo];
    VaaniServer::start(&spec)
}

/// A sipp call to the echo line: silence for `lead_s`, a spoken phrase, then silence, BYE
/// after `call_ms`.
fn call(server: &VaaniServer, lead_s: f32, call_ms: u64) {
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("caller_8k.alaw,-1,8", "spoken.alaw,1,8")
        .substitute(
            "milliseconds=\"5000\"",
            format!("milliseconds=\"{call_ms}\""),
        );
    write_spoken_phrases(
        sipp.dir(),
        "spoken.alaw",
        Law::A,
        lead_s,
        &[("Testing one two three, this is the caller speaking.", 4.0)],
    );
    sipp.run(server.sip_addr(), ECHO, Duration::from_secs(60))
        .assert_success();
}

/// The finished call, once its recording is stored.
fn recorded_call(server: &VaaniServer) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let calls = server.calls();
        if let Some(call) = calls.iter().find(|c| c["dialled"] == ECHO) {
            let detail =
                server.api_json(&format!("/api/v1/calls/{}", call["id"].as_str().unwrap()));
            if !detail["recording"].is_null() {
                return detail;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recording stored:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The downloaded recording: (caller, agent) RMS per 20 ms frame.
fn download(server: &VaaniServer, detail: &Value) -> Vec<(f64, f64)> {
    let id = detail["id"].as_str().unwrap();
    let (status, content_type, body) = server
        .http_get_bytes(&format!("/api/v1/calls/{id}/recording"))
        .expect("download");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "audio/wav");
    let mut reader = hound::WavReader::new(std::io::Cursor::new(body)).expect("a WAV file");
    let spec = reader.spec();
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let rms = |s: &mut dyn Iterator<Item = i16>| {
        let v: Vec<f64> = s.map(f64::from).collect();
        (v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt()
    };
    samples
        .chunks(320)
        .map(|frame| {
            (
                rms(&mut frame.iter().step_by(2).copied()),
                rms(&mut frame.iter().skip(1).step_by(2).copied()),
            )
        })
        .collect()
}

/// Milliseconds of speech-level frames in `frames[from_ms..to_ms]` of one channel.
fn speech_ms(frames: &[(f64, f64)], channel: usize, from_ms: u64, to_ms: u64) -> u64 {
    let to = ((to_ms / 20) as usize).min(frames.len());
    let from = ((from_ms / 20) as usize).min(to);
    frames[from..to]
        .iter()
        .filter(|f| if channel == 0 { f.0 } else { f.1 } > SPEECH_RMS)
        .count() as u64
        * 20
}

fn call_ms(detail: &Value) -> u64 {
    let answered = detail["answered_at_ms"].as_i64().expect("answered");
    let ended = detail["ended_at_ms"].as_i64().expect("ended");
    (ended - answered) as u64
}

#[test]
fn a_recorded_call_downloads_as_a_two_channel_wav_of_both_sides() {
    let server = server("");
    // The greeting plays for the first ~4 s; the caller speaks from 5 s on; BYE at 10 s.
    call(&server, 5.0, 10_000);
    let detail = recorded_call(&server);
    let frames = download(&server, &detail);
    let wav_ms = frames.len() as u64 * 20;
    let call_ms = call_ms(&detail);
    eprintln!("recording {wav_ms} ms, call {call_ms} ms");
    assert!(
        wav_ms.abs_diff(call_ms) <= 500,
        "recording {wav_ms} ms, call {call_ms} ms"
    );
    let stored = detail["recording"]["duration_ms"].as_u64().unwrap();
    assert!(
        stored.abs_diff(wav_ms) <= 20,
        "stored {stored} ms, WAV {wav_ms} ms"
    );

    // Agent channel: the greeting, at the start.
    let greeting = speech_ms(&frames, 1, 0, 4500);
    assert!(
        greeting >= 1500,
        "only {greeting} ms of greeting on the agent channel"
    );
    // Caller channel: silent during the greeting, speech after 5 s.
    let early = speech_ms(&frames, 0, 0, 4500);
    assert!(
        early <= 100,
        "{early} ms of caller speech during the silent lead"
    );
    let spoken = speech_ms(&frames, 0, 4500, 9000);
    assert!(
        spoken >= 1000,
        "only {spoken} ms of caller speech on the caller channel"
    );
    // The sides stay apart: the caller channel is quiet while the greeting plays.
    let crosstalk = frames[..(4000 / 20).min(frames.len())]
        .iter()
        .filter(|f| f.1 > SPEECH_RMS && f.0 > SPEECH_RMS)
        .count();
    assert_eq!(crosstalk, 0);

    // Listed, with its length.
    let listed = server.api_json("/api/v1/recordings?tenant=echo");
    assert_eq!(
        listed["recordings"][0]["call_id"], detail["id"],
        "{listed:#}"
    );
    assert_eq!(listed["recordings"][0]["duration_ms"], stored);

    // No recording: a JSON 404.
    let (status, body) = server
        .http_get(
            "/api/v1/calls/00000000-0000-0000-0000-000000000000/recording",
            Some(vaani_testbench::OPERATOR_KEY),
        )
        .unwrap();
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "recording_not_found");
    // Without the key: 401.
    let id = detail["id"].as_str().unwrap();
    let (status, _) = server
        .http_get(&format!("/api/v1/calls/{id}/recording"), None)
        .unwrap();
    assert_eq!(status, 401);
    // The file is under the tenant's directory.
    assert!(
        server
            .dir
            .path()
            .join("data/recordings/echo")
            .join(format!("{id}.wav"))
            .exists()
    );
}

#[test]
fn the_announcement_is_played_before_recording_starts() {
    let announcement = "This call is recorded for quality purposes.";
    let server = server(&format!("announcement = \"{announcement}\"\n"));
    call(&server, 8.0, 11_000);
    let detail = recorded_call(&server);
    let said: Vec<&str> = detail["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(said.first(), Some(&announcement), "{said:?}");
    let frames = download(&server, &detail);
    let wav_ms = frames.len() as u64 * 20;
    let call_ms = call_ms(&detail);
    eprintln!("recording {wav_ms} ms, call {call_ms} ms");
    // The announcement (about 2.5 s spoken) is not in the recording.
    assert!(
        call_ms >= wav_ms + 1500,
        "recording {wav_ms} ms of a {call_ms} ms call"
    );
    // What follows it is: the greeting on the agent channel.
    let greeting = speech_ms(&frames, 1, 0, 4000);
    assert!(greeting >= 1500, "only {greeting} ms of greeting recorded");
}
