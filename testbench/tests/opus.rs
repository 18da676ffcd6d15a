//! Opus end to end against the real binary: sipp offers only `RTP/AVP 111 101`
//! (`a=rtpmap:111 opus/48000/2`, RFC 7587) to a trunk configured `codecs = ["opus", "PCMU"]`;
//! vaani answers PT 111 with `useinbandfec=1` (sipp checks the answer), its greeting arrives as
//! Opus that decodes to speech with 960 timestamp units per 20 ms packet, and Opus-encoded
//! caller speech sent back from the same socket is heard: it barges in. One speech packet is
//! held back, and vaani rebuilds it from the next packet's in-band FEC.
//!
//! A call vaani places through a trunk configured the same way offers Opus first on PT 111
//! (sipp as the callee checks the offer and answers Opus), and its greeting goes out as Opus.
//!
//! This test is the caller's RTP endpoint (the SDP media port is rewritten to an [`RtpSink`]):
//! it learns vaani's media address from the agent's packets, streams Opus silence paced at
//! 20 ms, and once the agent is audibly speaking sends espeak-ng speech encoded at 16 kHz.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use vaani_media::opus::{
    FRAME_SAMPLES, FRAME_UNITS, MAX_PACKET_SAMPLES, OpusDecoder, OpusEncoder, has_inband_fec,
};
use vaani_testbench::audio::{SPEECH_RMS, pcm_rms};
use vaani_testbench::{ReceivedRtp, RtpSink, ServerSpec, Sipp, VaaniServer, free_port};

const PTIME: Duration = Duration::from_millis(20);
const CLINIC: &str = "+918000000001";
const OPUS_PT: u8 = 111;
/// Largest Opus payload vaani sends (its packets fit a 20 ms G.711 packet's 160 bytes).
const MAX_PAYLOAD: usize = 160;

/// The caller's speech: espeak-ng resampled by sox straight to 16 kHz 16-bit mono, leading
/// silence removed, in 20 ms frames of 320 samples.
fn caller_speech(dir: &Path) -> Vec<Vec<i16>> {
    let wav = dir.join("caller.wav");
    let raw = dir.join("caller16k.raw");
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("Hello, I would like to book an appointment for tomorrow morning.")
        .status()
        .expect("run espeak-ng (installed by the set-up)");
    assert!(status.success(), "espeak-ng failed");
    let status = std::process::Command::new("sox")
        .arg(&wav)
        .args(["-r", "16000", "-c", "1", "-e", "signed-integer", "-b", "16"])
        .args(["-L", "-t", "raw"])
        .arg(&raw)
        .status()
        .expect("run sox (installed by the set-up)");
    assert!(status.success(), "sox failed");
    let bytes = std::fs::read(&raw).expect("speech file");
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let frames: Vec<Vec<i16>> = pcm
        .chunks_exact(FRAME_SAMPLES)
        .map(<[i16]>::to_vec)
        .collect();
    let first = frames
        .iter()
        .position(|f| pcm_rms(f) > SPEECH_RMS)
        .expect("espeak-ng produced speech");
    frames[first..].to_vec()
}

fn encode(encoder: &mut OpusEncoder, pcm16k: &[i16]) -> Vec<u8> {
    let mut payload = [0u8; MAX_PAYLOAD];
    let n = encoder.encode(pcm16k, &mut payload).expect("opus encode");
    payload[..n].to_vec()
}

/// The level of each of vaani's Opus packets, decoded in order with one decoder.
fn decoded_levels(packets: &[ReceivedRtp]) -> Vec<f64> {
    let mut decoder = OpusDecoder::new().expect("opus decoder");
    let mut pcm = [0i16; MAX_PACKET_SAMPLES];
    packets
        .iter()
        .filter(|p| p.payload_type == OPUS_PT)
        .map(|p| match decoder.decode(&p.payload, &mut pcm) {
            Ok(n) => pcm_rms(&pcm[..n]),
            Err(error) => panic!("vaani sent an undecodable Opus packet: {error}"),
        })
        .collect()
}

/// A paced Opus caller stream from the sink's socket.
struct CallerStream {
    to: SocketAddr,
    next_send: Instant,
    sequence: u16,
    timestamp: u32,
}

impl CallerStream {
    fn send(&mut self, sink: &RtpSink, payload: &[u8]) -> Instant {
        let mut packet = Vec::with_capacity(12 + payload.len());
        packet.extend_from_slice(&[0x80, OPUS_PT]);
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&0x0F05_u32.to_be_bytes());
        packet.extend_from_slice(payload);
        let now = Instant::now();
        if self.next_send > now {
            std::thread::sleep(self.next_send - now);
        }
        let sent = Instant::now();
        sink.send_to(self.to, &packet);
        self.skip();
        self.next_send += PTIME;
        sent
    }

    /// Leaves one packet out (a loss on the way). The next packet goes out in the slot this
    /// one would have had, so that it is surely buffered when vaani gives up on this one.
    fn skip(&mut self) {
        self.sequence = self.sequence.wrapping_add(1);
        // RFC 7587: the 48 kHz clock, 960 units per 20 ms.
        self.timestamp = self.timestamp.wrapping_add(FRAME_UNITS);
    }
}

#[test]
fn an_opus_call_is_answered_in_opus_and_speech_flows_both_ways_with_fec() {
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = "codecs = [\"opus\", \"PCMU\"]".to_string();
    let server = VaaniServer::start(&spec);
    let sink = RtpSink::start();
    let sipp = Sipp::new("uac_opus.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port));
    let speech = caller_speech(sipp.dir());
    let target = server.sip_addr();
    let caller = std::thread::spawn(move || sipp.run(target, CLINIC, Duration::from_secs(40)));

    // The caller's speech, encoded ahead (one encoder, in-band FEC on like vaani's). The packet
    // to lose is one whose successor carries its FEC copy.
    let mut speech_encoder = OpusEncoder::new().expect("opus encoder");
    let speech_packets: Vec<Vec<u8>> = speech
        .iter()
        .map(|frame| encode(&mut speech_encoder, frame))
        .collect();
    let lost = (10..speech_packets.len() - 1)
        .find(|&i| has_inband_fec(&speech_packets[i + 1]))
        .expect("the caller's speech carries FEC");

    // vaani's media address: where the agent's packets come from.
    let deadline = Instant::now() + Duration::from_secs(10);
    let vaani_media = loop {
        if let Some(p) = sink.packets().first() {
            break p.source;
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
        timestamp: 960_000,
    };
    // Silence until the greeting has been audibly playing for 200 ms.
    let mut silence_encoder = OpusEncoder::new().expect("opus encoder");
    let silence = [0i16; FRAME_SAMPLES];
    let give_up = Instant::now() + Duration::from_secs(6);
    loop {
        stream.send(&sink, &encode(&mut silence_encoder, &silence));
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
    let onset = Instant::now();
    for (i, packet) in speech_packets.iter().enumerate() {
        if i == lost {
            stream.skip();
        } else {
            stream.send(&sink, packet);
        }
    }
    for _ in 0..25 {
        stream.send(&sink, &encode(&mut silence_encoder, &silence));
    }

    let run = caller.join().expect("sipp thread");
    run.assert_success();

    // Everything vaani sent is Opus: PT 111, at most 160 bytes.
    let agent = sink.packets_from(vaani_media);
    assert!(agent.len() > 100, "{} packets", agent.len());
    assert!(
        agent
            .iter()
            .all(|p| p.payload_type == OPUS_PT && (1..=MAX_PAYLOAD).contains(&p.payload.len())),
        "not all Opus: {:?}",
        agent
            .iter()
            .map(|p| (p.payload_type, p.payload.len()))
            .collect::<Vec<_>>()
    );
    vaani_testbench::assert_timestamp_steps(&agent, FRAME_UNITS);
    let levels = decoded_levels(&agent);
    let voiced = levels.iter().filter(|&&l| l > SPEECH_RMS).count();
    assert!(
        voiced >= 25,
        "only {voiced} speech-level packets: {levels:?}"
    );
    let peak = levels.iter().copied().fold(0.0, f64::max);
    assert!(peak < 30000.0, "decoded audio clips: peak RMS {peak}");

    // The caller's Opus speech was heard: it barged in on the greeting; the packet left out
    // was rebuilt from its successor's FEC.
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
    assert_eq!(stats["decode_errors"], 0, "{detail:#}");
    assert!(
        stats["packets_received"].as_u64().unwrap_or(0) > 50,
        "{detail:#}"
    );
    assert!(
        stats["packets_lost"].as_u64().unwrap_or(0) >= 1,
        "{detail:#}"
    );
    assert!(
        stats["fec_recovered_frames"].as_u64().unwrap_or(0) >= 1,
        "the left-out packet was not rebuilt from FEC:\n{detail:#}"
    );
    assert!(
        stats["barge_ins"].as_u64().unwrap_or(0) >= 1,
        "caller speech sent {:?} after the greeting started was not heard:\n{detail:#}\n{}",
        onset.elapsed(),
        server.log()
    );
}

#[test]
fn a_placed_call_offers_opus_first_and_greets_the_callee_in_opus() {
    let callee_port = free_port();
    let mut spec = ServerSpec::demo();
    spec.trunk_toml = format!(
        "codecs = [\"opus\", \"PCMU\"]\n[trunks.outbound]\nuri = \"sip:127.0.0.1:{callee_port}\"\n\
         caller_id = \"+918000000099\"\n"
    );
    let server = VaaniServer::start(&spec);
    let sink = RtpSink::start();
    let callee_sipp = Sipp::new("uas_opus.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port));
    let callee =
        std::thread::spawn(move || callee_sipp.run_uas(callee_port, Duration::from_secs(40)));
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = server.api_post(
        "/api/v1/calls",
        &serde_json::json!({ "tenant": "echo", "to": "+919876543210" }),
    );
    assert_eq!(status, 202, "{body:#}");
    callee.join().expect("sipp thread").assert_success();

    // vaani's audio reached the address of the callee's Opus answer, as Opus.
    let packets = sink.packets();
    let Some(first) = packets.first() else {
        panic!("no RTP from vaani:\n{}", server.log());
    };
    let agent = sink.packets_from(first.source);
    assert!(agent.len() > 100, "{} packets", agent.len());
    assert!(
        agent.iter().all(|p| p.payload_type == OPUS_PT),
        "not all Opus: {:?}",
        agent.iter().map(|p| p.payload_type).collect::<Vec<_>>()
    );
    let levels = decoded_levels(&agent);
    let voiced = levels.iter().filter(|&&l| l > SPEECH_RMS).count();
    assert!(
        voiced >= 25,
        "only {voiced} speech-level packets: {levels:?}"
    );
}
