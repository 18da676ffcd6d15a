//! `[pricing]`: what a call costs, in Indian rupees.
//!
//! The table prices the per-call cost ledger: telephony minutes, speech-to-text audio per
//! engine, text-to-speech characters per engine and LLM tokens per model. The currency is fixed
//! to INR. Engines that run inside vaani (`whisper`, `espeak-ng`) cost nothing unless the table
//! says otherwise; an engine or model the table does not list is priced 0 and flagged
//! `unpriced` in the call's ledger (the call itself is never refused over pricing).
//!
//! ```toml
//! [pricing]
//! telephony_inr_per_minute = 0.50
//! telephony_billing = "per_second"
//! [pricing.stt.deepgram]
//! inr_per_minute = 0.36
//! [pricing.tts.elevenlabs]
//! inr_per_1k_chars = 2.5
//! [pricing.llm."gpt-4o-mini"]
//! inr_per_1m_prompt_tokens = 12.6
//! inr_per_1m_completion_tokens = 50.4
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// The only currency the ledger uses.
pub const PRICING_CURRENCY: &str = "INR";

/// Highest rate accepted for any item (INR per unit): far above any real price, low enough
/// that a ledger in integer micro-rupees cannot overflow.
pub const MAX_RATE_INR: f64 = 100_000.0;

/// Speech-to-text engines that run inside vaani and cost nothing unless priced.
pub const EMBEDDED_STT_ENGINES: [&str; 1] = ["whisper"];
/// Text-to-speech engines that run inside vaani and cost nothing unless priced.
pub const EMBEDDED_TTS_ENGINES: [&str; 1] = ["espeak-ng"];

/// How answered call time is billed by the telephony provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TelephonyBilling {
    /// Every started second (most Indian SIP trunks and Twilio's SIP trunking bill per second).
    PerSecond,
    /// Every started minute (pulse billing).
    PerMinute,
}

impl TelephonyBilling {
    /// The value written in the configuration and shown in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            TelephonyBilling::PerSecond => "per_second",
            TelephonyBilling::PerMinute => "per_minute",
        }
    }
}

/// `[pricing]`: the price table for the per-call cost ledger (INR).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PricingConfig {
    /// Always `INR`.
    pub currency: String,
    /// Price of one answered minute from the telephony provider. `None` (the default): not
    /// priced, so telephony shows as `unpriced` in each call's ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telephony_inr_per_minute: Option<f64>,
    /// How answered time is rounded before pricing. Default `per_second`.
    pub telephony_billing: TelephonyBilling,
    /// Speech-to-text prices by engine name (`whisper` is listed at 0 unless configured).
    pub stt: BTreeMap<String, SttPrice>,
    /// Text-to-speech prices by engine name (`espeak-ng` is listed at 0 unless configured).
    pub tts: BTreeMap<String, TtsPrice>,
    /// LLM prices by model name.
    pub llm: BTreeMap<String, LlmPrice>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        let mut silent = Checker::new(std::path::PathBuf::new(), false);
        RawPricing::default().check(&mut silent)
    }
}

/// `[pricing.stt.<engine>]`: speech-to-text price.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttPrice {
    /// INR per minute of caller audio sent to the engine.
    pub inr_per_minute: f64,
}

/// `[pricing.tts.<engine>]`: text-to-speech price.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsPrice {
    /// INR per 1000 characters of text sent to the engine.
    pub inr_per_1k_chars: f64,
}

/// `[pricing.llm.<model>]`: LLM token prices.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmPrice {
    /// INR per one million prompt (input) tokens.
    pub inr_per_1m_prompt_tokens: f64,
    /// INR per one million completion (output) tokens.
    pub inr_per_1m_completion_tokens: f64,
}

/// `[pricing]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawPricing {
    #[serde(deserialize_with = "lenient::string")]
    currency: String,
    telephony_inr_per_minute: Option<f64>,
    #[serde(deserialize_with = "lenient::string")]
    telephony_billing: String,
    stt: BTreeMap<String, SttPrice>,
    tts: BTreeMap<String, TtsPrice>,
    llm: BTreeMap<String, LlmPrice>,
}

impl Default for RawPricing {
    fn default() -> Self {
        RawPricing {
            currency: PRICING_CURRENCY.to_owned(),
            telephony_inr_per_minute: None,
            telephony_billing: TelephonyBilling::PerSecond.as_str().to_owned(),
            stt: BTreeMap::new(),
            tts: BTreeMap::new(),
            llm: BTreeMap::new(),
        }
    }
}

/// The key path of a table entry: `pricing.llm.gpt-4o`, or quoted when the name has a dot
/// (`pricing.llm."gpt-4.1"`), as it is written in TOML.
fn entry_key(table: &str, name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("pricing.{table}.{name}")
    } else {
        format!("pricing.{table}.{name:?}")
    }
}

/// Records an error unless `value` is a finite rate in `0..=MAX_RATE_INR`.
fn check_rate(c: &mut Checker, key: &str, value: f64) {
    if !value.is_finite() || !(0.0..=MAX_RATE_INR).contains(&value) {
        c.push(ConfigError::OutOfRange {
            key: key.to_owned(),
            value: value.to_string(),
            expected: format!("0..={MAX_RATE_INR} INR"),
        });
    }
}

/// Records an error if a table entry's name is empty or has spaces.
fn check_name(c: &mut Checker, table: &str, name: &str) {
    if name.trim().is_empty() {
        c.push(ConfigError::Empty {
            key: format!("pricing.{table}.<name>"),
        });
    } else if name.contains(char::is_whitespace) {
        c.push(ConfigError::Inconsistent {
            key: entry_key(table, name),
            message: "an engine or model name must not contain spaces".to_owned(),
        });
    }
}

impl RawPricing {
    pub(crate) fn check(self, c: &mut Checker) -> PricingConfig {
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency != PRICING_CURRENCY {
            c.push(ConfigError::Inconsistent {
                key: "pricing.currency".to_owned(),
                message: format!(
                    "{:?} is not supported: prices are in INR (write \"INR\" or leave it out)",
                    self.currency
                ),
            });
        }
        if let Some(rate) = self.telephony_inr_per_minute {
            check_rate(c, "pricing.telephony_inr_per_minute", rate);
        }
        let telephony_billing = match self.telephony_billing.trim() {
            "per_second" => TelephonyBilling::PerSecond,
            "per_minute" => TelephonyBilling::PerMinute,
            other => {
                c.push(ConfigError::Inconsistent {
                    key: "pricing.telephony_billing".to_owned(),
                    message: format!("\"{other}\" is not one of \"per_second\", \"per_minute\""),
                });
                TelephonyBilling::PerSecond
            }
        };
        let mut stt = self.stt;
        for (name, price) in &stt {
            check_name(c, "stt", name);
            let key = entry_key("stt", name);
            check_rate(c, &format!("{key}.inr_per_minute"), price.inr_per_minute);
        }
        let mut tts = self.tts;
        for (name, price) in &tts {
            check_name(c, "tts", name);
            let key = entry_key("tts", name);
            check_rate(
                c,
                &format!("{key}.inr_per_1k_chars"),
                price.inr_per_1k_chars,
            );
        }
        for (name, price) in &self.llm {
            check_name(c, "llm", name);
            let key = entry_key("llm", name);
            check_rate(
                c,
                &format!("{key}.inr_per_1m_prompt_tokens"),
                price.inr_per_1m_prompt_tokens,
            );
            check_rate(
                c,
                &format!("{key}.inr_per_1m_completion_tokens"),
                price.inr_per_1m_completion_tokens,
            );
        }
        for engine in EMBEDDED_STT_ENGINES {
            stt.entry(engine.to_owned()).or_insert(SttPrice {
                inr_per_minute: 0.0,
            });
        }
        for engine in EMBEDDED_TTS_ENGINES {
            tts.entry(engine.to_owned()).or_insert(TtsPrice {
                inr_per_1k_chars: 0.0,
            });
        }
        PricingConfig {
            currency: PRICING_CURRENCY.to_owned(),
            telephony_inr_per_minute: self.telephony_inr_per_minute,
            telephony_billing,
            stt,
            tts,
            llm: self.llm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_quote_names_with_dots() {
        assert_eq!(entry_key("stt", "deepgram"), "pricing.stt.deepgram");
        assert_eq!(entry_key("tts", "espeak-ng"), "pricing.tts.espeak-ng");
        assert_eq!(entry_key("llm", "gpt-4.1"), "pricing.llm.\"gpt-4.1\"");
    }

    #[test]
    fn default_table_prices_only_the_embedded_engines() {
        let pricing = PricingConfig::default();
        assert_eq!(pricing.currency, "INR");
        assert_eq!(pricing.telephony_inr_per_minute, None);
        assert_eq!(pricing.telephony_billing, TelephonyBilling::PerSecond);
        assert_eq!(pricing.stt["whisper"].inr_per_minute, 0.0);
        assert_eq!(pricing.tts["espeak-ng"].inr_per_1k_chars, 0.0);
        assert_eq!(pricing.stt.len(), 1);
        assert_eq!(pricing.tts.len(), 1);
        assert!(pricing.llm.is_empty());
    }
}
