//! Instruments one call: per-turn latency ([`TurnRecorder`]) and the cost ledger
//! ([`CostLedger`]). The call task calls one small hook per thing that happens; the meter reads
//! the clock, observes finished turns and usage into the Prometheus metrics as they happen and
//! turns everything into the stored report when the call ends.
//!
//! Hooks for the LLM path: [`CallMeter::llm_request_started`] when a request for the reply
//! goes out (optional), [`CallMeter::llm_first_token`] when its first token arrives and
//! [`CallMeter::add_llm_usage`] with the usage the provider reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vaani_config::PricingConfig;
use vaani_store::{CallReport, CallTurn};

use crate::cost::CostLedger;
use crate::metrics::{Metrics, TURN_STAGES};
use crate::turn_timing::{TurnRecorder, TurnTiming, latency_summary};

/// Model label used for LLM models that are not in the `[pricing]` table (bounded labels).
const OTHER_MODEL: &str = "other";

/// Latency and cost instruments of one call.
pub struct CallMeter {
    turns: TurnRecorder,
    ledger: CostLedger,
    pricing: PricingConfig,
    metrics: Arc<Metrics>,
    /// Media time at which the current caller speech began.
    speech_onset_ms: Option<u32>,
}

impl CallMeter {
    /// A meter for one call; `transcripts_expected` when caller speech goes to speech-to-text.
    pub fn new(metrics: Arc<Metrics>, pricing: PricingConfig, transcripts_expected: bool) -> Self {
        Self {
            turns: TurnRecorder::new(transcripts_expected),
            ledger: CostLedger::new(),
            pricing,
            metrics,
            speech_onset_ms: None,
        }
    }

    /// The VAD saw caller speech begin at media time `media_ms`.
    pub fn caller_speech_started(&mut self, media_ms: u32) {
        self.speech_onset_ms = Some(media_ms);
    }

    /// The VAD ended a caller speech segment of `duration_ms`; `fallback_media_ms` is used as
    /// the end when the segment's start was not reported.
    pub fn caller_speech_ended(&mut self, duration_ms: u32, fallback_media_ms: u32) {
        let end = self
            .speech_onset_ms
            .take()
            .map_or(fallback_media_ms, |onset| onset.saturating_add(duration_ms));
        self.turns.speech_ended(Instant::now(), end);
        self.observe_closed_turns();
    }

    /// An utterance ending at media time `end_ms` was queued for speech-to-text; `last_piece`
    /// when the caller has stopped speaking (earlier pieces of long speech do not end a turn).
    pub fn utterance_queued(&mut self, end_ms: u32, last_piece: bool) {
        if last_piece {
            self.turns.utterance_queued(Instant::now(), end_ms);
            self.observe_closed_turns();
        }
    }

    /// `audio` of caller speech went to speech-to-text engine `engine`.
    pub fn stt_audio_sent(&mut self, engine: &str, audio: Duration) {
        self.ledger.add_stt_audio(engine, audio);
        self.metrics
            .stt_audio_seconds_total
            .with_label_values(&[engine])
            .inc_by(audio.as_secs_f64());
    }

    /// The transcript of the utterance ending at `end_ms` is ready (possibly empty).
    pub fn transcript_ready(&mut self, end_ms: u32, text: &str, processing: Duration) {
        self.turns
            .transcript_ready(Instant::now(), end_ms, text, processing);
        self.observe_closed_turns();
    }

    /// Speech-to-text failed for the utterance ending at `end_ms`.
    pub fn transcript_failed(&mut self, end_ms: u32) {
        self.turns.transcript_failed(Instant::now(), end_ms);
        self.observe_closed_turns();
    }

    /// The plugin queued speech as playback `playback`.
    pub fn reply_queued(&mut self, playback: u64) {
        self.turns.reply_queued(Instant::now(), playback);
    }

    /// `text` went to text-to-speech engine `engine`.
    pub fn tts_text_sent(&mut self, engine: &str, text: &str) {
        let characters = text.chars().count() as u64;
        self.ledger.add_tts_characters(engine, characters);
        self.metrics
            .tts_characters_total
            .with_label_values(&[engine])
            .inc_by(characters);
    }

    /// Audio for `playback` was synthesized in `synthesis`.
    pub fn tts_audio_ready(&mut self, playback: u64, synthesis: Duration) {
        self.turns
            .tts_audio_ready(Instant::now(), playback, synthesis);
    }

    /// The media engine sent the first packet of `playback`.
    pub fn playback_started(&mut self, playback: u64) {
        self.turns.playback_started(Instant::now(), playback);
        self.observe_closed_turns();
    }

    /// An LLM request for the current turn's reply went out (optional: without it the time to
    /// first token runs from the transcript).
    pub fn llm_request_started(&mut self) {
        self.turns.llm_request_started(Instant::now());
    }

    /// The first token of the current turn's LLM reply arrived.
    pub fn llm_first_token(&mut self) {
        self.turns.llm_first_token(Instant::now());
    }

    /// Token usage `model` reported for one request (prompt and completion tokens).
    pub fn add_llm_usage(&mut self, model: &str, prompt_tokens: u64, completion_tokens: u64) {
        self.ledger
            .add_llm_usage(model, prompt_tokens, completion_tokens);
        let label = if self.pricing.llm.contains_key(model) {
            model
        } else {
            OTHER_MODEL
        };
        let tokens = &self.metrics.llm_tokens_total;
        tokens
            .with_label_values(&[label, "prompt"])
            .inc_by(prompt_tokens);
        tokens
            .with_label_values(&[label, "completion"])
            .inc_by(completion_tokens);
    }

    /// Closes the last turn, prices the ledger (`answered`: how long the call was answered,
    /// `None` if never) and returns what is stored with the call.
    pub fn finish(&mut self, answered: Option<Duration>) -> CallReport {
        self.turns.close();
        self.observe_closed_turns();
        let turns = self.turns.finish();
        self.ledger.set_answered(answered.unwrap_or_default());
        let cost = self.ledger.price(&self.pricing);
        if answered.is_some() {
            self.metrics.call_cost_inr.observe(cost.total_inr);
        }
        let mut latency = latency_summary(&turns);
        latency["dropped_turns"] = self.turns.dropped().into();
        CallReport {
            turns: turns.iter().map(stored_turn).collect(),
            cost_inr_micros: i64::try_from(cost.total_inr_micros).unwrap_or(i64::MAX),
            cost: serde_json::to_value(&cost).unwrap_or_default(),
            latency,
        }
    }

    fn observe_closed_turns(&mut self) {
        for turn in self.turns.take_newly_closed() {
            observe_turn(&self.metrics, turn);
        }
    }
}

/// Observes each stage a turn has into `vaani_turn_latency_seconds`.
fn observe_turn(metrics: &Metrics, turn: &TurnTiming) {
    // In the order of TURN_STAGES.
    let values = [
        turn.transcript_ms,
        turn.plugin_ms,
        turn.llm_first_token_ms,
        turn.tts_first_audio_ms,
        turn.first_rtp_ms,
        turn.total_ms,
        turn.server_added_ms,
    ];
    for (stage, ms) in TURN_STAGES.into_iter().zip(values) {
        if let Some(ms) = ms {
            metrics
                .turn_latency_seconds
                .with_label_values(&[stage])
                .observe(f64::from(ms) / 1000.0);
        }
    }
}

fn stored_turn(turn: &TurnTiming) -> CallTurn {
    let ms = |value: Option<u32>| value.map(i64::from);
    CallTurn {
        index: i64::from(turn.index),
        speech_end_ms: i64::from(turn.speech_end_media_ms),
        caller_text: turn.caller_text.clone(),
        transcript_ms: ms(turn.transcript_ms),
        plugin_ms: ms(turn.plugin_ms),
        llm_first_token_ms: ms(turn.llm_first_token_ms),
        tts_first_audio_ms: ms(turn.tts_first_audio_ms),
        first_rtp_ms: ms(turn.first_rtp_ms),
        total_ms: ms(turn.total_ms),
        server_added_ms: ms(turn.server_added_ms),
        stt_processing_ms: ms(turn.stt_processing_ms),
        tts_synthesis_ms: ms(turn.tts_synthesis_ms),
        superseded: turn.superseded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> PricingConfig {
        let mut pricing = PricingConfig {
            telephony_inr_per_minute: Some(0.6),
            ..PricingConfig::default()
        };
        pricing.llm.insert(
            "small".to_owned(),
            vaani_config::LlmPrice {
                inr_per_1m_prompt_tokens: 10.0,
                inr_per_1m_completion_tokens: 40.0,
            },
        );
        pricing
    }

    #[test]
    fn a_call_turns_into_a_report_and_metrics() {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let mut meter = CallMeter::new(metrics.clone(), pricing(), true);
        meter.tts_text_sent("espeak-ng", "Hello, how can I help?");
        meter.caller_speech_started(1000);
        meter.caller_speech_ended(1500, 0);
        meter.utterance_queued(2400, false);
        meter.utterance_queued(2700, true);
        meter.stt_audio_sent("whisper", Duration::from_millis(1900));
        meter.transcript_ready(2700, "book a table", Duration::from_millis(5));
        meter.llm_request_started();
        meter.llm_first_token();
        meter.add_llm_usage("small", 1000, 100);
        meter.add_llm_usage("unlisted", 10, 1);
        meter.reply_queued(1);
        meter.tts_text_sent("espeak-ng", "You said: book a table");
        meter.tts_audio_ready(1, Duration::from_millis(1));
        meter.playback_started(1);
        // The finished turn is observed at once, not only when the call ends.
        let text = metrics.render();
        assert!(
            text.contains("vaani_turn_latency_seconds_count{stage=\"total\"} 1"),
            "{text}"
        );

        // A second turn without a reply, still open when the call ends.
        meter.caller_speech_started(5000);
        meter.caller_speech_ended(400, 0);
        meter.utterance_queued(5600, true);
        meter.transcript_ready(5600, "thanks", Duration::from_millis(5));

        let report = meter.finish(Some(Duration::from_secs(10)));
        assert_eq!(report.turns.len(), 2);
        assert_eq!(report.turns[1].total_ms, None);
        assert!(!report.turns[1].superseded);
        let turn = &report.turns[0];
        assert_eq!(turn.speech_end_ms, 2500);
        assert_eq!(turn.caller_text.as_deref(), Some("book a table"));
        assert!(turn.total_ms.is_some() && turn.first_rtp_ms.is_some());
        assert!(turn.llm_first_token_ms.is_some());
        // 10 s × ₹0.60/min = ₹0.10; 1000 × ₹10/1M + 100 × ₹40/1M = ₹0.014.
        assert_eq!(report.cost_inr_micros, 114_000);
        assert_eq!(report.cost["total_inr"], 0.114);
        assert_eq!(report.cost["tts_characters"], 44);
        assert_eq!(report.cost["stt_seconds"], 1.9);
        assert_eq!(report.cost["unpriced"], serde_json::json!(["llm:unlisted"]));
        assert_eq!(report.latency["turns"], 2);
        assert_eq!(report.latency["replied_turns"], 1);
        assert_eq!(report.latency["dropped_turns"], 0);

        // Each turn is observed once: the answered one when it closed, the other at the end.
        let text = metrics.render();
        for stage in TURN_STAGES {
            let count = if stage == "transcript" { 2 } else { 1 };
            assert!(
                text.contains(&format!(
                    "vaani_turn_latency_seconds_count{{stage=\"{stage}\"}} {count}"
                )),
                "stage {stage} observed {count} times: {text}"
            );
        }
        for expected in [
            "vaani_call_cost_inr_count 1",
            "vaani_tts_characters_total{engine=\"espeak-ng\"} 44",
            "vaani_stt_audio_seconds_total{engine=\"whisper\"} 1.9",
            "vaani_llm_tokens_total{kind=\"prompt\",model=\"small\"} 1000",
            "vaani_llm_tokens_total{kind=\"prompt\",model=\"other\"} 10",
        ] {
            assert!(text.contains(expected), "no {expected:?} in {text}");
        }
    }

    #[test]
    fn an_unanswered_call_costs_nothing_and_is_not_observed() {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let mut meter = CallMeter::new(metrics.clone(), pricing(), false);
        let report = meter.finish(None);
        assert!(report.turns.is_empty());
        assert_eq!(report.cost_inr_micros, 0);
        assert_eq!(report.cost["telephony_seconds"], 0.0);
        assert!(metrics.render().contains("vaani_call_cost_inr_count 0"));
    }
}
