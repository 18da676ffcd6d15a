//! G.722 end to end against the real binary: sipp offers only `RTP/AVP 9 101`
//! (`a=rtpmap:9 G722/8000`) to a trunk configured `codecs = ["G722", "PCMU", "PCMA"]`; vaani
//! answers PT 9 (sipp checks the answer), its greeting arrives as G.722 that decodes to speech,
//! and G.722-encoded caller speech sent back from the same socket is heard: it barges in.
//!
//! This test is the caller's RTP endpoint (the SDP media port is rewritten to an [`RtpSink`]):
//! it learns vaani's media address from the agent's packets, streams G.722 silence paced at
//! 20 ms, and once the agent is audibly speaking sends espeak-ng speech encoded as G.722.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use vaani_media::Law;
use vaani_media::g722::{FRAME_BYTES, FRAME_SAMPLES, G722Decoder, G722Encoder};
use vaani_testbench::audio::{SPEECH_RMS, pcm_rms};
use vaani_testbench::{ReceivedRtp, RtpSink, ServerSpec, Sipp, VaaniServer};

const PTIME: Duration = Duration::from_millis(20);
const CLINIC: &str = "+918000000001";

/// The caller's speech: espeak-ng at 8 kHz, upsampled to 16 kHz, leading silence removed, in
/// 20 ms frames of 320 samples.
fn caller_speech(dir: &Path) -> Vec<Vec<i16>> {
    vaani_testbench::audio::write_spoken_alaw(
        dir,
        "caller.alaw",
        "Hello, I would like to book an appointment for tomorrow morning.",
        0.0,
        0.5,
    );
    let alaw = std::fs::read(dir.join("caller.alaw")).expect("speech file");
    let mut narrow = vec![0i16; alaw.len()];
    Law::A.decode(&alaw, &mut narrow);
    let wide = vaani_media::resample::resample_buffer(&narrow, 8000, 16000);
    let frames: Vec<Vec<i16>> = wide
        .chunks_exact(FRAME_SAMPLES)
        .map(<[i16]>::to_vec)
        .collect();
    let first = frames
        .iter()
        .position(|f| pcm_rms(f) > SPEECH_RMS)
        .expect("espeak-ng produced speech");
    frames[first..].to_vec()
}

/// The level of each of vaani's G.722 packets, decoded in order with one decoder (ADPCM
/// state runs across packets).
fn decoded_levels(packets: &[ReceivedRtp]) -> Vec<f64> {
    let mut decoder = G722Decoder::new();
    let mut pcm = [0i16; FRAME_SAMPLES];
    packets
        .iter()
        .filter(|p| p.payload_type == 9)
        .map(|p| {
            let n = decoder.decode(&p.payload, &mut pcm);
            pcm_rms(&pcm[..n])
        })
        .collect()
}

/// A paced G.722 caller stream from the sink's socket.
struct CallerStream {
    to: SocketAddr,
    next_send: Instant,
    sequence: u16,
    timestamp: u32,
    encoder: G722Encoder,
}

impl CallerStream {
    fn send(&mut self, sink: &RtpSink, pcm16k: &[i16]) -> Instant {
        let mut payload = [0u8; FRAME_BYTES];
        self.encoder.encode(pcm16k, &mut payload);
        let mut packet = Vec::with_capacity(12 + FRAME_BYTES);
        packet.extend_from_slice(&[0x80, 9]);
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&0x0722_u32.to_be_bytes());
        packet.extend_from_slice(&payload);
        let now = Instant::now();
        if self.next_send > now {
            std::thread::sleep(self.next_send - now);
        }
        let sent = Instant::now();
        sink.send_to(self.to, &packet);
        self.sequence = self.sequence.wrapping_add(1);
        // RFC 3551: G.722's RTP clock is 8000 Hz, 160 units per 20 ms.
        self.timestamp = self.timestamp.wrapping_add(160);
        self.next_send += PTIME;
        sent
    }
}

#[test]
fn a_g722_call_is_answered_in_g722_and_wideband_speech_flows_both_ways() {
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = "codecs = [\"G722\", \"PCMU\", \"PCMA\"]".to_string();
    let server = VaaniServer::start(&spec);
    let sink = RtpSink::start();
    let sipp = Sipp::new("uac_g722.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port));
    let speech = caller_speech(sipp.dir());
    let target = server.sip_addr();
    let caller = std::thread::spawn(move || sipp.run(target, CLINIC, Duration::from_secs(40)));

    // vaani's media address: where the agent's packets come from.
    let deadline = Instant::now() + Duration::from_secs(10);
    let vaani_media = loop {
        if let Some(p) = sink.packets().first() {
            break p.source;
        }
        if caller.is_finished() {
            let run = caller.join().expect("sipp thread");
            panic!(
                "sipp ended before any RTP from vaani: {run:?}\n{}",
                server.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no RTP from vaani:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stream = CallerStream {
        to: vaani_media,
        next_send: Instant::now(),
        sequence: 7000,
        timestamp: 320_000,
        encoder: G722Encoder::new(),
    };
    // Silence until the greeting has been audibly playing for 200 ms.
    let silence = [0i16; FRAME_SAMPLES];
    let give_up = Instant::now() + Duration::from_secs(6);
    loop {
        stream.send(&sink, &silence);
        let levels = decoded_levels(&sink.packets_from(vaani_media));
        if levels.len() >= 10 && levels[levels.len() - 10..].iter().all(|&l| l > SPEECH_RMS) {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "the greeting never decoded to speech: {levels:?}\n{}",
            server.log()
        );
    }
    let onset = stream.send(&sink, &speech[0]);
    for frame in &speech[1..] {
        stream.send(&sink, frame);
    }
    for _ in 0..25 {
        stream.send(&sink, &silence);
    }

    let run = caller.join().expect("sipp thread");
    run.assert_success();

    // Everything vaani sent is G.722: PT 9, 160 bytes, 160 timestamp units per packet.
    let agent = sink.packets_from(vaani_media);
    assert!(agent.len() > 100, "{} packets", agent.len());
    assert!(
        agent
            .iter()
            .all(|p| p.payload_type == 9 && p.payload.len() == FRAME_BYTES),
        "not all G.722: {:?}",
        agent
            .iter()
            .map(|p| (p.payload_type, p.payload.len()))
            .collect::<Vec<_>>()
    );
    vaani_testbench::assert_timestamp_steps(&agent, 160);
    let levels = decoded_levels(&agent);
    let voiced = levels.iter().filter(|&&l| l > SPEECH_RMS).count();
    assert!(
        voiced >= 25,
        "only {voiced} speech-level packets: {levels:?}"
    );
    let peak = levels.iter().copied().fold(0.0, f64::max);
    assert!(peak < 30000.0, "decoded audio clips: peak RMS {peak}");

    // The caller's G.722 speech was heard: it barged in on the greeting.
    let calls = server.wait_for_calls(Duration::from_secs(15), |calls| {
        calls.iter().any(|c| {
            c["status"]
                .as_str()
                .is_some_and(|s| s != "ringing" && s != "in_progress")
        })
    });
    let call = calls.first().expect("call stored");
    let detail = server.api_json(&format!(
        "/api/v1/calls/{}",
        call["id"].as_str().expect("call id")
    ));
    let stats = &detail["media_stats"];
    assert_eq!(stats["unknown_payload_packets"], 0, "{detail:#}");
    assert!(
        stats["packets_received"].as_u64().unwrap_or(0) > 50,
        "{detail:#}"
    );
    assert!(
        stats["barge_ins"].as_u64().unwrap_or(0) >= 1,
        "caller speech sent {:?} after the greeting started was not heard:\n{detail:#}\n{}",
        onset.elapsed(),
        server.log()
    );
}
