//! `[vad]`: voice activity detection thresholds.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;

/// `[vad]`: when caller audio counts as speech. Hysteresis: speech starts when
/// the probability rises above `threshold_on` and ends when it stays below
/// `threshold_off` for `hangover_ms`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VadConfig {
    /// Speech probability that starts an utterance, 0–1. Default 0.8.
    pub threshold_on: f64,
    /// Speech probability below which an utterance may end, 0–1, at most
    /// `threshold_on`. Default 0.5.
    pub threshold_off: f64,
    /// Shortest sound that counts as speech, ms. Default 100.
    pub min_speech_ms: u32,
    /// Silence needed to end an utterance, ms. Default 500.
    pub hangover_ms: u32,
}

/// `[vad]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawVad {
    threshold_on: f64,
    threshold_off: f64,
    min_speech_ms: u32,
    hangover_ms: u32,
}

impl Default for RawVad {
    fn default() -> Self {
        RawVad {
            threshold_on: 0.8,
            threshold_off: 0.5,
            min_speech_ms: 100,
            hangover_ms: 500,
        }
    }
}

impl RawVad {
    pub(crate) fn check(self, c: &mut Checker) -> VadConfig {
        c.in_range("vad.threshold_on", self.threshold_on, 0.0, 1.0);
        c.in_range("vad.threshold_off", self.threshold_off, 0.0, 1.0);
        if self.threshold_off > self.threshold_on {
            c.push(ConfigError::Inconsistent {
                key: "vad.threshold_off".to_owned(),
                message: format!(
                    "{} must not exceed vad.threshold_on ({})",
                    self.threshold_off, self.threshold_on
                ),
            });
        }
        c.in_range("vad.min_speech_ms", self.min_speech_ms, 0, 10_000);
        c.in_range("vad.hangover_ms", self.hangover_ms, 0, 10_000);
        VadConfig {
            threshold_on: self.threshold_on,
            threshold_off: self.threshold_off,
            min_speech_ms: self.min_speech_ms,
            hangover_ms: self.hangover_ms,
        }
    }
}
