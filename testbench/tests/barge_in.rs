//! Barge-in on the wire: caller audio that starts while the agent speaks stops the agent's
//! RTP within 40 ms of the speech onset.
//!
//! sipp places the call (SIP only); this test is the caller's RTP endpoint: it learns vaani's
//! media address from the agent's packets, streams silence paced at 20 ms, and at a moment
//! when the agent is audibly speaking switches to espeak-ng speech. The onset is the send time
//! of the first speech-level caller packet; the stop is the arrival of the agent's last
//! speech-level packet after it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use vaani_media::Law;
use vaani_testbench::audio::{SPEECH_RMS, payload_rms};
use vaani_testbench::{RtpSink, ServerSpec, Sipp, VaaniServer};

const PTIME: Duration = Duration::from_millis(20);
const ALAW_SILENCE: u8 = 0xD5;

/// The caller's speech: espeak-ng, 8 kHz A-law, leading silence removed up to one frame
/// before the first speech-level frame.
fn caller_speech(dir: &Path) -> Vec<[u8; 160]> {
    vaani_testbench::audio::write_spoken_alaw(
        dir,
        "barge.alaw",
        "Hello, I would like to book an appointment for tomorrow.",
        0.0,
        0.5,
    );
    let bytes = std::fs::read(dir.join("barge.alaw")).expect("speech file");
    let frames: Vec<[u8; 160]> = bytes
        .chunks_exact(160)
        .map(|c| c.try_into().expect("160 bytes"))
        .collect();
    let first = frames
        .iter()
        .position(|f| payload_rms(Law::A, f) > SPEECH_RMS)
        .expect("espeak-ng produced speech");
    frames[first..].to_vec()
}

fn rtp_packet(sequence: u16, timestamp: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(12 + payload.len());
    packet.extend_from_slice(&[0x80, 8]);
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&0x5EED_u32.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// A paced caller stream: one packet every 20 ms from `start`.
struct CallerStream {
    to: SocketAddr,
    next_send: Instant,
    sequence: u16,
    timestamp: u32,
}

impl CallerStream {
    fn send(&mut self, sink: &RtpSink, payload: &[u8]) -> Instant {
        let now = Instant::now();
        if self.next_send > now {
            std::thread::sleep(self.next_send - now);
        }
        let sent = Instant::now();
        sink.send_to(self.to, &rtp_packet(self.sequence, self.timestamp, payload));
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        self.next_send += PTIME;
        sent
    }
}

/// Whether the agent's last `n` packets were all speech-level.
fn agent_is_speaking(sink: &RtpSink, n: usize) -> bool {
    let packets = sink.packets();
    packets.len() >= n
        && packets[packets.len() - n..]
            .iter()
            .all(|p| payload_rms(Law::A, &p.payload) > SPEECH_RMS)
}

#[test]
fn caller_speech_stops_the_agents_rtp_within_40_ms_of_onset() {
    let mut spec = ServerSpec::demo();
    // The shortest barge-in there can be: one frame of caller speech. (The default, 200 ms,
    // ignores coughs and clicks; the flush itself happens in the frame the minimum is reached.)
    spec.media_toml = "barge_in_min_speech_ms = 20".to_string();
    let server = VaaniServer::start(&spec);
    let sink = RtpSink::start();
    let sipp = Sipp::new("uac_call_bye.xml")
        .substitute("m=audio [media_port]", format!("m=audio {}", sink.port))
        .substitute("<exec rtp_stream=\"caller_8k.alaw,-1,8\"/>", "")
        .substitute("milliseconds=\"5000\"", "milliseconds=\"9000\"");
    let speech = caller_speech(sipp.dir());
    let target = server.sip_addr();
    let caller =
        std::thread::spawn(move || sipp.run(target, "+918000000001", Duration::from_secs(40)));

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
        sequence: 1000,
        timestamp: 160_000,
    };
    // A real caller streams from the start: silence until the agent has been audibly
    // speaking for 200 ms (at least half a second into the call).
    let silence = [ALAW_SILENCE; 160];
    let call_start = Instant::now();
    let give_up = call_start + Duration::from_secs(6);
    loop {
        stream.send(&sink, &silence);
        if call_start.elapsed() > Duration::from_millis(500) && agent_is_speaking(&sink, 10) {
            break;
        }
        assert!(Instant::now() < give_up, "the agent never spoke");
    }
    let mut onset = None;
    for frame in &speech {
        let sent = stream.send(&sink, frame);
        onset.get_or_insert(sent);
    }
    for _ in 0..50 {
        stream.send(&sink, &silence);
    }
    let onset = onset.expect("speech sent");

    let run = caller.join().expect("sipp thread");
    run.assert_success();

    let agent: Vec<_> = sink
        .packets()
        .into_iter()
        .filter(|p| p.source == vaani_media && p.payload_type == 8)
        .collect();
    let voiced = |p: &&vaani_testbench::ReceivedRtp| payload_rms(Law::A, &p.payload) > SPEECH_RMS;
    let timeline: Vec<i64> = agent
        .iter()
        .filter(voiced)
        .map(|p| {
            if p.arrival >= onset {
                (p.arrival - onset).as_millis() as i64
            } else {
                -((onset - p.arrival).as_millis() as i64)
            }
        })
        .filter(|ms| (-200..1500).contains(ms))
        .collect();
    eprintln!("agent voiced packets around the onset (ms): {timeline:?}");
    let calls = server.calls();
    let detail = server.api_json(&format!(
        "/api/v1/calls/{}",
        calls[0]["id"].as_str().expect("call id")
    ));
    assert!(
        detail["media_stats"]["barge_ins"].as_u64().unwrap_or(0) >= 1,
        "{detail:#}"
    );
    let before = agent
        .iter()
        .filter(|p| p.arrival < onset && p.arrival + Duration::from_millis(100) >= onset)
        .filter(voiced)
        .count();
    assert!(before >= 3, "the agent was not speaking at the onset");
    // Agent speech after the onset, until the caller's speech has had time to be answered.
    let window_end = onset + Duration::from_millis(600);
    let last_voiced = agent
        .iter()
        .filter(|p| p.arrival >= onset && p.arrival < window_end)
        .filter(voiced)
        .map(|p| p.arrival)
        .max();
    // The agent's audio ends with its last speech-level packet after the onset, or, when
    // none came, with the first packet after the onset (which was silence).
    let stopped_at = last_voiced
        .map(|at| at + PTIME)
        .or_else(|| agent.iter().find(|p| p.arrival >= onset).map(|p| p.arrival));
    let stopped_after = stopped_at.map_or(Duration::ZERO, |at| at - onset);
    let voiced_late: usize = agent
        .iter()
        .filter(|p| p.arrival >= onset + Duration::from_millis(100) && p.arrival < window_end)
        .filter(voiced)
        .count();
    eprintln!(
        "agent RTP stopped {:.1} ms after the caller's speech onset on the wire",
        stopped_after.as_secs_f64() * 1000.0
    );
    assert_eq!(
        voiced_late,
        0,
        "the agent kept talking over the caller:\n{}",
        server.log()
    );
    assert!(
        stopped_after <= Duration::from_millis(40),
        "agent speech went on for {stopped_after:?} after the caller's onset:\n{}",
        server.log()
    );
}
