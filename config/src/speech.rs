//! `[speech]`: text-to-speech and speech-to-text engines.

use std::path::PathBuf;

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
    /// Speech-to-text engine: `whisper` (offline whisper.cpp) or `none`. Default `none`.
    pub stt_engine: String,
    /// The whisper.cpp (ggml) model file, resolved against the config file's directory;
    /// required when `stt_engine = "whisper"`. `scripts/fetch-models.sh` provides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_model: Option<PathBuf>,
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
    #[serde(deserialize_with = "lenient::string")]
    stt_engine: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    stt_model: Option<String>,
}

impl Default for RawSpeech {
    fn default() -> Self {
        RawSpeech {
            tts_engine: "espeak-ng".to_owned(),
            espeak_path: "espeak-ng".to_owned(),
            default_voice: "en".to_owned(),
            rate_wpm: 160,
            stt_engine: "none".to_owned(),
            stt_model: None,
        }
    }
}

impl RawSpeech {
    pub(crate) fn check(self, c: &mut Checker) -> SpeechConfig {
        c.in_range("speech.rate_wpm", self.rate_wpm, 80, 450);
        let stt_model = self.stt_model.map(|path| {
            let resolved = c.resolve(path.trim());
            c.existing_file("speech.stt_model", &resolved);
            resolved
        });
        match self.stt_engine.as_str() {
            "none" => {}
            "whisper" if stt_model.is_none() => c.push(crate::error::ConfigError::Inconsistent {
                key: "speech.stt_model".to_owned(),
                message: "is required when speech.stt_engine is \"whisper\"".to_owned(),
            }),
            "whisper" => {}
            other => c.push(crate::error::ConfigError::Inconsistent {
                key: "speech.stt_engine".to_owned(),
                message: format!("\"{other}\" is not one of \"whisper\", \"none\""),
            }),
        }
        SpeechConfig {
            tts_engine: c.non_empty("speech.tts_engine", &self.tts_engine),
            espeak_path: c.non_empty("speech.espeak_path", &self.espeak_path),
            default_voice: c.non_empty("speech.default_voice", &self.default_voice),
            rate_wpm: self.rate_wpm,
            stt_engine: self.stt_engine,
            stt_model,
        }
    }
}
