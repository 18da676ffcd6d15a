//! End to end: per-turn latency and the per-call cost ledger. A caller speaks to the echo line
//! (which answers "You said: ..."); the stored call then has a turn with every stage, a cost
//! ledger priced by the test's `[pricing]` table, and `/metrics` shows the turn histograms.

use std::time::Duration;

use serde_json::Value;
use vaani_testbench::{ServerSpec, Sipp, VaaniServer};

/// The echo line's greeting (plugins/echo): text-to-speech characters of a call without speech.
const ECHO_GREETING: &str =
    "Hello, this is the vaani echo line. Press some keys, then hash to hang up.";

/// Telephony ₹0.60/min per second, whisper ₹1.20/min, espeak-ng ₹3 per 1000 characters.
const PRICING: &str = r#"
[pricing]
telephony_inr_per_minute = 0.6
telephony_billing = "per_second"

[pricing.stt.whisper]
inr_per_minute = 1.2

[pricing.tts.espeak-ng]
inr_per_1k_chars = 3.0
"#;

const ECHO: &str = "+918000000099";

/// Runs one call to the echo line; `speech` is what the caller says 1.5 s after the answer
/// (`None`: only line noise). Returns the stored call detail.
fn call_echo(server: &VaaniServer, speech: Option<&str>, seconds: u32) -> Value {
    let before = server.calls().len();
    let mut sipp = Sipp::new("uac_call_bye.xml").substitute(
        "milliseconds=\"5000\"",
        format!("milliseconds=\"{}\"", seconds * 1000),
    );
    if let Some(text) = speech {
        sipp = sipp.substitute("caller_8k.alaw,-1,8", "caller_speech.alaw,1,8");
        vaani_testbench::audio::write_spoken_alaw(
            sipp.dir(),
            "caller_speech.alaw",
            text,
            1.5,
            seconds as f32,
        );
    }
    sipp.run(server.sip_addr(), ECHO, Duration::from_secs(60))
        .assert_success();
    let calls = server.wait_for_calls(Duration::from_secs(10), |calls| {
        calls.len() > before && calls[0]["status"] == "completed"
    });
    let id = calls[0]["id"].as_str().expect("call id");
    server.api_json(&format!("/api/v1/calls/{id}"))
}

fn ms(turn: &Value, stage: &str) -> Option<u64> {
    turn[stage].as_u64()
}

/// `rate_micros * quantity / per`, rounded half up: the ledger's rule.
fn priced(rate_micros: u64, quantity: u64, per: u64) -> u64 {
    (rate_micros * quantity * 2 + per) / (per * 2)
}

/// The value of a metric line `name` (exact series text), or 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_spoken_turn_is_timed_and_the_call_is_priced() {
    let mut spec = ServerSpec::demo();
    spec.extra_toml = PRICING.to_string();
    let server = VaaniServer::start(&spec);

    let detail = call_echo(
        &server,
        Some("Hello, I would like to book a table for two tonight please."),
        11,
    );

    // --- Turns: at least one with a transcript and the reply on the wire.
    let turns = detail["turns"].as_array().cloned().unwrap_or_default();
    assert!(!turns.is_empty(), "no turns: {detail:#}");
    for turn in &turns {
        eprintln!(
            "turn {}: caller {:?} transcript {:?} plugin {:?} tts {:?} rtp {:?} total {:?} \
             server-added {:?} (stt {:?}, tts synthesis {:?}) superseded {}",
            turn["index"],
            turn["caller_text"].as_str().unwrap_or(""),
            ms(turn, "transcript_ms"),
            ms(turn, "plugin_ms"),
            ms(turn, "tts_first_audio_ms"),
            ms(turn, "first_rtp_ms"),
            ms(turn, "total_ms"),
            ms(turn, "server_added_ms"),
            ms(turn, "stt_processing_ms"),
            ms(turn, "tts_synthesis_ms"),
            turn["superseded"],
        );
    }
    let answered = turns
        .iter()
        .find(|t| ms(t, "transcript_ms").is_some() && ms(t, "first_rtp_ms").is_some())
        .unwrap_or_else(|| panic!("no turn with a transcript and a reply: {detail:#}"));
    let total = ms(answered, "total_ms").expect("total");
    let stages = [
        "transcript_ms",
        "plugin_ms",
        "tts_first_audio_ms",
        "first_rtp_ms",
    ]
    .map(|stage| ms(answered, stage).unwrap_or_else(|| panic!("{stage}: {answered:#}")));
    for stage in stages {
        assert!(
            total >= stage,
            "total {total} < stage {stage}: {answered:#}"
        );
    }
    assert_eq!(total, stages.iter().sum::<u64>(), "{answered:#}");
    let server_added = ms(answered, "server_added_ms").expect("server_added");
    assert!(server_added <= total, "{answered:#}");
    assert!(
        ms(answered, "stt_processing_ms").is_some() && ms(answered, "tts_synthesis_ms").is_some(),
        "{answered:#}"
    );
    assert!(answered["llm_first_token_ms"].is_null(), "no LLM is wired");
    let caller_text = answered["caller_text"].as_str().unwrap_or("");
    assert!(!caller_text.is_empty(), "{answered:#}");
    // The reply is what the echo line said about that text.
    let agent_lines: Vec<&str> = detail["transcript"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["speaker"] == "agent")
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert!(
        agent_lines.contains(&format!("You said: {caller_text}").as_str()),
        "{agent_lines:?}"
    );
    // Within a sane bound on a 2-core machine running whisper in a debug build.
    assert!(total < 10_000, "turn took {total} ms: {answered:#}");

    let latency = &detail["latency"];
    assert_eq!(latency["turns"], turns.len(), "{latency:#}");
    assert!(
        latency["replied_turns"].as_u64().unwrap_or(0) >= 1,
        "{latency:#}"
    );
    assert!(latency["p50_ms"].as_u64().is_some(), "{latency:#}");
    assert!(
        latency["max_ms"].as_u64().unwrap_or(0) >= total,
        "{latency:#}"
    );

    // --- Cost: every quantity measured, priced by the table above.
    let cost = &detail["cost"];
    eprintln!("cost: {cost:#}");
    assert_eq!(cost["currency"], "INR");
    let telephony_s = cost["telephony_seconds"]
        .as_f64()
        .expect("telephony_seconds");
    let stt_s = cost["stt_seconds"].as_f64().expect("stt_seconds");
    let tts_chars = cost["tts_characters"].as_u64().expect("tts_characters");
    assert!(telephony_s > 5.0, "{cost:#}");
    assert!(stt_s > 0.0, "{cost:#}");
    assert!(
        tts_chars as usize >= ECHO_GREETING.len() + "You said: ".len(),
        "{cost:#}"
    );
    assert_eq!(cost["llm_prompt_tokens"], 0);
    assert_eq!(cost["llm_completion_tokens"], 0);
    assert_eq!(cost["unpriced"], serde_json::json!([]), "{cost:#}");
    let telephony_ms = (telephony_s * 1000.0).round() as u64;
    let stt_ms = (stt_s * 1000.0).round() as u64;
    let expected = priced(600_000, telephony_ms.div_ceil(1000), 60)
        + priced(1_200_000, stt_ms, 60_000)
        + priced(3_000_000, tts_chars, 1000);
    assert_eq!(cost["total_inr_micros"], expected, "{cost:#}");
    let total_inr = cost["total_inr"].as_f64().expect("total_inr");
    assert!(
        (total_inr - expected as f64 / 1e6).abs() < 1e-9,
        "{total_inr} vs {expected} µINR"
    );
    let lines = cost["lines"].as_array().expect("lines");
    let items: Vec<&str> = lines.iter().filter_map(|l| l["item"].as_str()).collect();
    assert_eq!(
        items,
        ["telephony", "stt:whisper", "tts:espeak-ng"],
        "{cost:#}"
    );
    let line_sum: u64 = lines.iter().filter_map(|l| l["inr_micros"].as_u64()).sum();
    assert_eq!(line_sum, expected);
    eprintln!(
        "call of {telephony_s:.1} s: ₹{total_inr:.4} (stt {stt_s:.1} s, tts {tts_chars} chars)"
    );

    // The list shows the same total.
    let listed = server.calls();
    let row = listed
        .iter()
        .find(|c| c["id"] == detail["id"])
        .expect("call listed");
    assert_eq!(row["cost_inr"].as_f64(), Some(total_inr), "{row:#}");

    // --- A call without speech: no turns, only telephony and the greeting's characters.
    let quiet = call_echo(&server, None, 3);
    assert_eq!(quiet["turns"], serde_json::json!([]), "{quiet:#}");
    assert_eq!(quiet["latency"]["turns"], 0);
    assert_eq!(quiet["latency"]["p50_ms"], Value::Null);
    let quiet_cost = &quiet["cost"];
    assert_eq!(quiet_cost["stt_seconds"], 0.0, "{quiet_cost:#}");
    assert_eq!(
        quiet_cost["tts_characters"],
        ECHO_GREETING.chars().count(),
        "{quiet_cost:#}"
    );

    // --- Metrics.
    let (status, text) = server.http_get("/metrics", None).expect("metrics");
    assert_eq!(status, 200);
    let replied = metric(&text, "vaani_turn_latency_seconds_count{stage=\"total\"}");
    assert!(replied >= 1.0, "{text}");
    assert!(
        metric(
            &text,
            "vaani_turn_latency_seconds_count{stage=\"transcript\"}"
        ) >= replied,
        "{text}"
    );
    assert_eq!(metric(&text, "vaani_call_cost_inr_count"), 2.0, "{text}");
    assert!(
        metric(&text, "vaani_stt_audio_seconds_total{engine=\"whisper\"}") > 0.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "vaani_tts_characters_total{engine=\"espeak-ng\"}"),
        (tts_chars + ECHO_GREETING.chars().count() as u64) as f64,
        "{text}"
    );
}
