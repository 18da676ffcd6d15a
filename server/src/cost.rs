//! The per-call cost ledger: what a call used (telephony time, speech-to-text audio, LLM tokens,
//! text-to-speech characters) and what that costs in Indian rupees by the `[pricing]` table.
//!
//! Money is integer micro-rupees (1 INR = 1 000 000 µINR) from the rates on: each rate is
//! converted once (rounded to the nearest µINR), each line is rounded once (half up) and the
//! total is the exact sum of the lines, so adding up many calls never drifts the way summing
//! floats does. A µINR is 1/10 000 of a paisa, far below anything billed; `total_paise` gives
//! the figure rounded to paise.
//!
//! An engine or model the table does not list is priced 0 and named in `unpriced`; so is
//! telephony when the table has no telephony rate. A call is never refused over pricing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use vaani_config::{PricingConfig, TelephonyBilling};

/// Micro-rupees in one rupee.
pub const MICROS_PER_INR: u64 = 1_000_000;

/// Prompt and completion tokens of one LLM model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TokenCount {
    /// Prompt (input) tokens.
    pub prompt: u64,
    /// Completion (output) tokens.
    pub completion: u64,
}

/// What one call used, accumulated while it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostLedger {
    answered: Duration,
    /// Caller audio sent to speech-to-text, ms per engine.
    stt_ms: BTreeMap<String, u64>,
    /// Text sent to text-to-speech, characters per engine.
    tts_chars: BTreeMap<String, u64>,
    /// LLM tokens per model.
    llm: BTreeMap<String, TokenCount>,
}

/// One priced item of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostLine {
    /// What was used: `telephony`, `stt:<engine>`, `tts:<engine>`,
    /// `llm:<model>:prompt`, `llm:<model>:completion`.
    pub item: String,
    /// How much, in `unit`s.
    pub quantity: f64,
    /// `minute` (telephony, billed minutes; speech-to-text audio), `character`, `token`.
    pub unit: &'static str,
    /// The rate applied (INR per `rate_unit`); `None` when unpriced.
    pub rate_inr: Option<f64>,
    /// What the rate is per: `minute`, `1k characters`, `1M tokens`.
    pub rate_unit: &'static str,
    /// The line's price in INR (exactly `inr_micros` / 1 000 000).
    pub inr: f64,
    /// The line's price in micro-rupees.
    pub inr_micros: u64,
}

/// A priced ledger: quantities, lines and the total. Serialises as the call's `cost` JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PricedCost {
    /// Always `INR`.
    pub currency: &'static str,
    /// Answered time in seconds (ms precision).
    pub telephony_seconds: f64,
    /// Answered time as billed (`telephony_billing` rounding), in minutes.
    pub telephony_minutes: f64,
    /// `per_second` or `per_minute`.
    pub telephony_billing: &'static str,
    /// Caller audio sent to speech-to-text, seconds, all engines.
    pub stt_seconds: f64,
    /// The same per engine.
    pub stt: BTreeMap<String, f64>,
    /// LLM prompt tokens, all models.
    pub llm_prompt_tokens: u64,
    /// LLM completion tokens, all models.
    pub llm_completion_tokens: u64,
    /// Tokens per model.
    pub llm: BTreeMap<String, TokenCount>,
    /// Characters sent to text-to-speech, all engines.
    pub tts_characters: u64,
    /// The same per engine.
    pub tts: BTreeMap<String, u64>,
    /// Priced items.
    pub lines: Vec<CostLine>,
    /// The total in INR (exactly `total_inr_micros` / 1 000 000).
    pub total_inr: f64,
    /// The total in micro-rupees: the sum of the lines.
    pub total_inr_micros: u64,
    /// The total rounded (half up) to whole paise.
    pub total_paise: u64,
    /// Items used but not in the price table (priced 0): `telephony`, `stt:<engine>`, ...
    pub unpriced: Vec<String>,
}

/// A rate in INR as micro-rupees, rounded to the nearest µINR (rates are checked to be finite
/// and in `0..=MAX_RATE_INR` when the configuration loads).
fn rate_micros(inr: f64) -> u64 {
    if !inr.is_finite() || inr <= 0.0 {
        return 0;
    }
    (inr * MICROS_PER_INR as f64).round() as u64
}

/// `rate_micros * quantity / per`, rounded half up, in u128 so that no product overflows.
fn price_micros(rate_micros: u64, quantity: u64, per: u64) -> u64 {
    let per = u128::from(per.max(1));
    let scaled = u128::from(rate_micros) * u128::from(quantity);
    u64::try_from((scaled * 2 + per) / (per * 2)).unwrap_or(u64::MAX)
}

fn saturating_sum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

fn inr(micros: u64) -> f64 {
    micros as f64 / MICROS_PER_INR as f64
}

impl CostLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long the call was answered (0 for calls never answered).
    pub fn set_answered(&mut self, answered: Duration) {
        self.answered = answered;
    }

    /// Adds caller audio sent to speech-to-text engine `engine`.
    pub fn add_stt_audio(&mut self, engine: &str, audio: Duration) {
        let ms = u64::try_from(audio.as_millis()).unwrap_or(u64::MAX);
        let total = self.stt_ms.entry(engine.to_owned()).or_default();
        *total = total.saturating_add(ms);
    }

    /// Adds text sent to text-to-speech engine `engine`, in characters.
    pub fn add_tts_characters(&mut self, engine: &str, characters: u64) {
        let total = self.tts_chars.entry(engine.to_owned()).or_default();
        *total = total.saturating_add(characters);
    }

    /// Adds the token usage an LLM (`model`) reported for one request.
    pub fn add_llm_usage(&mut self, model: &str, prompt_tokens: u64, completion_tokens: u64) {
        let total = self.llm.entry(model.to_owned()).or_default();
        total.prompt = total.prompt.saturating_add(prompt_tokens);
        total.completion = total.completion.saturating_add(completion_tokens);
    }

    /// Prices the ledger with `pricing`.
    pub fn price(&self, pricing: &PricingConfig) -> PricedCost {
        let mut lines = Vec::new();
        let mut unpriced = Vec::new();

        let answered_ms = u64::try_from(self.answered.as_millis()).unwrap_or(u64::MAX);
        let billed_seconds = match pricing.telephony_billing {
            TelephonyBilling::PerSecond => answered_ms.div_ceil(1000),
            TelephonyBilling::PerMinute => answered_ms.div_ceil(60_000).saturating_mul(60),
        };
        let telephony_minutes = billed_seconds as f64 / 60.0;
        let telephony_rate = pricing.telephony_inr_per_minute;
        if telephony_rate.is_none() && answered_ms > 0 {
            unpriced.push("telephony".to_owned());
        }
        let micros = price_micros(
            rate_micros(telephony_rate.unwrap_or(0.0)),
            billed_seconds,
            60,
        );
        lines.push(CostLine {
            item: "telephony".to_owned(),
            quantity: telephony_minutes,
            unit: "minute",
            rate_inr: telephony_rate,
            rate_unit: "minute",
            inr: inr(micros),
            inr_micros: micros,
        });

        for (engine, &ms) in &self.stt_ms {
            let rate = pricing.stt.get(engine).map(|p| p.inr_per_minute);
            let item = format!("stt:{engine}");
            if rate.is_none() && ms > 0 {
                unpriced.push(item.clone());
            }
            let micros = price_micros(rate_micros(rate.unwrap_or(0.0)), ms, 60_000);
            lines.push(CostLine {
                item,
                quantity: ms as f64 / 60_000.0,
                unit: "minute",
                rate_inr: rate,
                rate_unit: "minute",
                inr: inr(micros),
                inr_micros: micros,
            });
        }

        for (model, tokens) in &self.llm {
            let price = pricing.llm.get(model);
            if price.is_none() && (tokens.prompt > 0 || tokens.completion > 0) {
                unpriced.push(format!("llm:{model}"));
            }
            for (kind, count, rate) in [
                (
                    "prompt",
                    tokens.prompt,
                    price.map(|p| p.inr_per_1m_prompt_tokens),
                ),
                (
                    "completion",
                    tokens.completion,
                    price.map(|p| p.inr_per_1m_completion_tokens),
                ),
            ] {
                let micros = price_micros(rate_micros(rate.unwrap_or(0.0)), count, 1_000_000);
                lines.push(CostLine {
                    item: format!("llm:{model}:{kind}"),
                    quantity: count as f64,
                    unit: "token",
                    rate_inr: rate,
                    rate_unit: "1M tokens",
                    inr: inr(micros),
                    inr_micros: micros,
                });
            }
        }

        for (engine, &characters) in &self.tts_chars {
            let rate = pricing.tts.get(engine).map(|p| p.inr_per_1k_chars);
            let item = format!("tts:{engine}");
            if rate.is_none() && characters > 0 {
                unpriced.push(item.clone());
            }
            let micros = price_micros(rate_micros(rate.unwrap_or(0.0)), characters, 1000);
            lines.push(CostLine {
                item,
                quantity: characters as f64,
                unit: "character",
                rate_inr: rate,
                rate_unit: "1k characters",
                inr: inr(micros),
                inr_micros: micros,
            });
        }

        let total_inr_micros = saturating_sum(lines.iter().map(|line| line.inr_micros));
        let stt_ms_total = saturating_sum(self.stt_ms.values().copied());
        PricedCost {
            currency: vaani_config::PRICING_CURRENCY,
            telephony_seconds: answered_ms as f64 / 1000.0,
            telephony_minutes,
            telephony_billing: pricing.telephony_billing.as_str(),
            stt_seconds: stt_ms_total as f64 / 1000.0,
            stt: self
                .stt_ms
                .iter()
                .map(|(engine, &ms)| (engine.clone(), ms as f64 / 1000.0))
                .collect(),
            llm_prompt_tokens: saturating_sum(self.llm.values().map(|t| t.prompt)),
            llm_completion_tokens: saturating_sum(self.llm.values().map(|t| t.completion)),
            llm: self.llm.clone(),
            tts_characters: saturating_sum(self.tts_chars.values().copied()),
            tts: self.tts_chars.clone(),
            lines,
            total_inr: inr(total_inr_micros),
            total_inr_micros,
            total_paise: total_inr_micros.saturating_add(5_000) / 10_000,
            unpriced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaani_config::{LlmPrice, SttPrice, TtsPrice};

    fn pricing() -> PricingConfig {
        let mut pricing = PricingConfig {
            telephony_inr_per_minute: Some(0.5),
            ..PricingConfig::default()
        };
        pricing.stt.insert(
            "deepgram".to_owned(),
            SttPrice {
                inr_per_minute: 0.36,
            },
        );
        pricing.tts.insert(
            "elevenlabs".to_owned(),
            TtsPrice {
                inr_per_1k_chars: 2.5,
            },
        );
        pricing.llm.insert(
            "gpt-4o-mini".to_owned(),
            LlmPrice {
                inr_per_1m_prompt_tokens: 12.6,
                inr_per_1m_completion_tokens: 50.4,
            },
        );
        pricing
    }

    fn line<'a>(cost: &'a PricedCost, item: &str) -> &'a CostLine {
        cost.lines
            .iter()
            .find(|l| l.item == item)
            .unwrap_or_else(|| panic!("no line {item}: {cost:#?}"))
    }

    #[test]
    fn a_typical_call_is_priced_line_by_line() {
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_millis(90_400));
        ledger.add_stt_audio("deepgram", Duration::from_millis(20_000));
        ledger.add_stt_audio("deepgram", Duration::from_millis(10_000));
        ledger.add_tts_characters("elevenlabs", 400);
        ledger.add_tts_characters("elevenlabs", 200);
        ledger.add_llm_usage("gpt-4o-mini", 1500, 200);
        ledger.add_llm_usage("gpt-4o-mini", 1700, 100);
        let cost = ledger.price(&pricing());

        // 90.4 s billed per second: 91 s = 1.5166… min × ₹0.50 = ₹0.758333 → 758 333 µINR.
        assert_eq!(cost.telephony_seconds, 90.4);
        assert_eq!(line(&cost, "telephony").inr_micros, 758_333);
        // 30 s of audio × ₹0.36/min = ₹0.18.
        assert_eq!(cost.stt_seconds, 30.0);
        assert_eq!(line(&cost, "stt:deepgram").inr_micros, 180_000);
        // 600 characters × ₹2.5/1k = ₹1.50.
        assert_eq!(cost.tts_characters, 600);
        assert_eq!(line(&cost, "tts:elevenlabs").inr_micros, 1_500_000);
        // 3200 prompt tokens × ₹12.6/1M = ₹0.04032; 300 completion × ₹50.4/1M = ₹0.01512.
        assert_eq!(cost.llm_prompt_tokens, 3200);
        assert_eq!(cost.llm_completion_tokens, 300);
        assert_eq!(line(&cost, "llm:gpt-4o-mini:prompt").inr_micros, 40_320);
        assert_eq!(line(&cost, "llm:gpt-4o-mini:completion").inr_micros, 15_120);

        let sum: u64 = cost.lines.iter().map(|l| l.inr_micros).sum();
        assert_eq!(cost.total_inr_micros, sum);
        assert_eq!(cost.total_inr_micros, 2_493_773);
        assert_eq!(cost.total_inr, 2.493773);
        assert_eq!(cost.total_paise, 249);
        assert!(cost.unpriced.is_empty(), "{:?}", cost.unpriced);
    }

    #[test]
    fn per_minute_billing_charges_every_started_minute() {
        let mut pricing = pricing();
        pricing.telephony_billing = TelephonyBilling::PerMinute;
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_millis(60_001));
        let cost = ledger.price(&pricing);
        assert_eq!(cost.telephony_minutes, 2.0);
        assert_eq!(cost.telephony_billing, "per_minute");
        assert_eq!(cost.total_inr_micros, 1_000_000);

        ledger.set_answered(Duration::from_millis(60_000));
        assert_eq!(ledger.price(&pricing).total_inr_micros, 500_000);
        ledger.set_answered(Duration::ZERO);
        assert_eq!(ledger.price(&pricing).total_inr_micros, 0);
    }

    #[test]
    fn per_second_billing_rounds_up_to_the_second() {
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_millis(1));
        let cost = ledger.price(&pricing());
        // 1 s × ₹0.50/min = ₹0.008333… → 8 333 µINR.
        assert_eq!(cost.telephony_minutes, 1.0 / 60.0);
        assert_eq!(cost.total_inr_micros, 8_333);
        assert_eq!(cost.total_paise, 1);
    }

    #[test]
    fn lines_round_half_up_and_the_total_never_drifts() {
        // ₹0.000001 per 1k chars: 500 chars = 0.5 µINR → 1 µINR (half up); 499 → 0.
        let mut pricing = PricingConfig::default();
        pricing.tts.insert(
            "tiny".to_owned(),
            TtsPrice {
                inr_per_1k_chars: 0.000_001,
            },
        );
        let mut ledger = CostLedger::new();
        ledger.add_tts_characters("tiny", 500);
        assert_eq!(ledger.price(&pricing).total_inr_micros, 1);
        let mut ledger = CostLedger::new();
        ledger.add_tts_characters("tiny", 499);
        assert_eq!(ledger.price(&pricing).total_inr_micros, 0);

        // Ten thousand calls of ₹0.1 each add up to exactly ₹1000 in µINR (floats would not).
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_secs(12));
        let one = ledger.price(&self::pricing()).total_inr_micros;
        assert_eq!(one, 100_000);
        let total: u64 = (0..10_000).map(|_| one).sum();
        assert_eq!(total, 1_000 * MICROS_PER_INR);
        let float_total: f64 = (0..10_000).map(|_| 0.1_f64).sum();
        assert_ne!(float_total, 1000.0, "the reason for integer micro-rupees");
    }

    #[test]
    fn unknown_engines_and_models_are_free_and_flagged() {
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_secs(30));
        ledger.add_stt_audio("whisper", Duration::from_secs(5));
        ledger.add_stt_audio("sarvam", Duration::from_secs(5));
        ledger.add_tts_characters("espeak-ng", 100);
        ledger.add_tts_characters("azure", 100);
        ledger.add_llm_usage("mystery-model", 10, 5);
        ledger.add_llm_usage("gpt-4o-mini", 0, 0);
        let cost = ledger.price(&pricing());
        assert_eq!(
            cost.unpriced,
            ["stt:sarvam", "llm:mystery-model", "tts:azure"]
        );
        assert_eq!(line(&cost, "stt:sarvam").rate_inr, None);
        assert_eq!(line(&cost, "stt:sarvam").inr_micros, 0);
        // Embedded engines are in the default table at 0: priced, not flagged.
        assert_eq!(line(&cost, "stt:whisper").rate_inr, Some(0.0));
        assert_eq!(line(&cost, "tts:espeak-ng").rate_inr, Some(0.0));
        // Only telephony costs anything: 30 s × ₹0.50/min.
        assert_eq!(cost.total_inr_micros, 250_000);
        assert_eq!(cost.total_paise, 25);
    }

    #[test]
    fn telephony_without_a_rate_is_flagged_only_when_answered() {
        let mut ledger = CostLedger::new();
        let cost = ledger.price(&PricingConfig::default());
        assert!(cost.unpriced.is_empty());
        ledger.set_answered(Duration::from_secs(3));
        let cost = ledger.price(&PricingConfig::default());
        assert_eq!(cost.unpriced, ["telephony"]);
        assert_eq!(cost.total_inr_micros, 0);
        assert_eq!(line(&cost, "telephony").rate_inr, None);
    }

    #[test]
    fn the_cost_json_has_the_documented_fields() {
        let mut ledger = CostLedger::new();
        ledger.set_answered(Duration::from_secs(60));
        ledger.add_stt_audio("whisper", Duration::from_millis(2500));
        ledger.add_tts_characters("espeak-ng", 42);
        let json = serde_json::to_value(ledger.price(&pricing())).unwrap();
        for key in [
            "currency",
            "telephony_seconds",
            "telephony_minutes",
            "stt_seconds",
            "llm_prompt_tokens",
            "llm_completion_tokens",
            "tts_characters",
            "lines",
            "total_inr",
            "total_inr_micros",
            "total_paise",
            "unpriced",
        ] {
            assert!(json.get(key).is_some(), "no {key} in {json:#}");
        }
        assert_eq!(json["currency"], "INR");
        assert_eq!(json["stt"]["whisper"], 2.5);
        assert_eq!(json["tts"]["espeak-ng"], 42);
        assert_eq!(json["total_inr"], 0.5);
        assert_eq!(json["lines"][0]["item"], "telephony");
        assert_eq!(json["lines"][0]["unit"], "minute");
        assert_eq!(json["lines"][0]["quantity"], 1.0);
        assert_eq!(json["lines"][0]["inr"], 0.5);
    }

    #[test]
    fn huge_quantities_saturate_instead_of_overflowing() {
        let mut pricing = PricingConfig::default();
        pricing.llm.insert(
            "big".to_owned(),
            LlmPrice {
                inr_per_1m_prompt_tokens: vaani_config::MAX_RATE_INR,
                inr_per_1m_completion_tokens: 0.0,
            },
        );
        let mut ledger = CostLedger::new();
        ledger.add_llm_usage("big", u64::MAX, 0);
        ledger.add_llm_usage("big", u64::MAX, 0);
        ledger.add_llm_usage("other", u64::MAX, 0);
        let cost = ledger.price(&pricing);
        assert_eq!(cost.llm_prompt_tokens, u64::MAX);
        assert_eq!(cost.total_inr_micros, u64::MAX);
    }
}
