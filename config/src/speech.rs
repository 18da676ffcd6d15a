//! `[speech]`: text-to-speech defaults.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::lenient;

/// `[speech]`: which speech engines to use and how the agent sounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeechConfig {
    /// Text-to-speech engine. Default `espeak-ng` (offline).
    pub tts_engine: String,
    /// The espeak-ng program: a name looked up in `PATH` or a path. Default `espeak-ng`.
    pub espeak_path: String,
    /// Voice used when a plugin does not choose one. Default `en`.
    pub default_voice: String,
    /// Speaking rate in words per minute, 80–450. Default 160.
    pub rate_wpm: u32,
}

/// `[speech]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSpeech {
    #[serde(deserialize_with = "lenient::string")]
    tts_engine: String,
    #[serde(deserialize_with = "lenient::string")]
    espeak_path: String,
    #[serde(deserialize_with = "lenient::string")]
    default_voice: String,
    rate_wpm: u32,
}

impl Default for RawSpeech {
    fn default() -> Self {
        RawSpeech {
            tts_engine: "espeak-ng".to_owned(),
            espeak_path: "espeak-ng".to_owned(),
            default_voice: "en".to_owned(),
            rate_wpm: 160,
        }
    }
}

impl RawSpeech {
    pub(crate) fn check(self, c: &mut Checker) -> SpeechConfig {
        c.in_range("speech.rate_wpm", self.rate_wpm, 80, 450);
        SpeechConfig {
            tts_engine: c.non_empty("speech.tts_engine", &self.tts_engine),
            espeak_path: c.non_empty("speech.espeak_path", &self.espeak_path),
            default_voice: c.non_empty("speech.default_voice", &self.default_voice),
            rate_wpm: self.rate_wpm,
        }
    }
}
