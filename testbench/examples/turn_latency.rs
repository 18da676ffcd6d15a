//! Benchmark: server-added latency per turn and embedded speech-to-text CPU per audio second.
//!
//! Runs the real `vaani` binary (build it first: `cargo build --workspace --bins`) with the echo
//! line, places `CALLS` sipp calls in which the caller says one sentence (espeak-ng, 8 kHz
//! A-law), and reads the stored turns back from the API. For every answered turn it reports
//! the stages (end of speech → transcript → plugin → first synthesized audio → first RTP), the
//! engines' own compute (whisper.cpp, espeak-ng) and `server_added` = total − engine compute:
//! what vaani itself adds (queues, the plugin, pacing). Whisper's CPU per second of caller audio
//! is the speech-to-text processing time over the utterance's speech duration (one thread per
//! decode). A benchmark prints figures; it asserts nothing about time.
//!
//! ```sh
//! cargo build --workspace --bins && cargo run -p vaani-testbench --example turn_latency
//! ```

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

const ECHO: &str = "+918000000099";
const CALLS: usize = 5;
const SENTENCES: [&str; 5] = [
    "I would like to book an appointment for tomorrow at ten.",
    "Can you tell me when the clinic opens on Sunday?",
    "My name is Priya and I need a table for two.",
    "Please send one chicken biryani to Church Street.",
    "Is the doctor available this evening?",
];

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank]
}

fn main() {
    let server = VaaniServer::start(&ServerSpec::demo());
    let mut stages: Vec<(&str, Vec<f64>)> = [
        "transcript_ms",
        "plugin_ms",
        "tts_first_audio_ms",
        "first_rtp_ms",
        "total_ms",
        "stt_processing_ms",
        "tts_synthesis_ms",
        "server_added_ms",
    ]
    .into_iter()
    .map(|s| (s, Vec::new()))
    .collect();
    let mut stt_cpu_per_audio_second = Vec::new();

    for (i, sentence) in SENTENCES.iter().cycle().take(CALLS).enumerate() {
        let before = server.calls().len();
        let sipp = Sipp::new("uac_call_bye.xml")
            .substitute("milliseconds=\"5000\"", "milliseconds=\"9000\"")
            .substitute("caller_8k.alaw,-1,8", "caller_speech.alaw,1,8");
        vaani_testbench::audio::write_spoken_alaw(
            sipp.dir(),
            "caller_speech.alaw",
            sentence,
            1.5,
            7.0,
        );
        sipp.run(server.sip_addr(), ECHO, Duration::from_secs(60))
            .assert_success();
        let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
            calls.len() > before && calls[0]["status"] == "completed"
        });
        let id = calls[0]["id"].as_str().expect("call id").to_string();
        let detail = server.api_json(&format!("/api/v1/calls/{id}"));
        let speech_ms: Vec<f64> = detail["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["kind"] == "speech.stopped")
            .filter_map(|e| e["detail"].as_str()?.trim_end_matches(" ms").parse().ok())
            .collect();
        let turns: Vec<Value> = detail["turns"].as_array().cloned().unwrap_or_default();
        let answered: Vec<&Value> = turns.iter().filter(|t| t["total_ms"].is_u64()).collect();
        println!(
            "call {}: {:?} → {} turn(s), {} answered",
            i + 1,
            sentence,
            turns.len(),
            answered.len()
        );
        for turn in &answered {
            for (stage, values) in &mut stages {
                if let Some(v) = turn[*stage].as_u64() {
                    values.push(v as f64);
                }
            }
        }
        let stt_ms: f64 = turns
            .iter()
            .filter_map(|t| t["stt_processing_ms"].as_u64())
            .map(|v| v as f64)
            .sum();
        let audio_ms: f64 = speech_ms.iter().sum();
        if audio_ms > 0.0 && stt_ms > 0.0 {
            stt_cpu_per_audio_second.push(stt_ms / audio_ms);
        }
    }

    println!();
    println!(
        "Per answered turn, ms (echo line, whisper tiny.en + espeak-ng, loopback, {CALLS} calls):"
    );
    println!("| stage | p50 | p90 | max |");
    println!("|---|---:|---:|---:|");
    for (stage, values) in &mut stages {
        let max = values.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} |",
            stage,
            percentile(values, 50.0),
            percentile(values, 90.0),
            max
        );
    }
    println!();
    println!(
        "whisper tiny.en CPU per second of caller speech (one thread): p50 {:.3} s, max {:.3} s",
        percentile(&mut stt_cpu_per_audio_second, 50.0),
        stt_cpu_per_audio_second
            .iter()
            .copied()
            .fold(f64::NAN, f64::max)
    );
}
