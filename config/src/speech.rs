//! `[speech]`: text-to-speech and speech-to-text engines.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;
use crate::lenient;

/// The text-to-speech engines `speech.tts_engine` may name.
pub const TTS_ENGINES: [&str; 6] = [
    "espeak-ng",
    "hibari",
    "elevenlabs",
    "openai",
    "deepgram",
    "sarvam",
];
/// The speech-to-text engines `speech.stt_engine` may name.
pub const STT_ENGINES: [&str; 5] = ["whisper", "openai", "sarvam", "deepgram", "none"];
/// Engines run by a cloud provider: they need an API key (`*_api_key_env`).
pub const CLOUD_SPEECH_ENGINES: [&str; 4] = ["elevenlabs", "openai", "deepgram", "sarvam"];

/// `[speech]`: which speech engines to use and how the agent sounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeechConfig {
    /// Text-to-speech engine, one of [`TTS_ENGINES`]: `espeak-ng` (offline, default),
    /// `hibari` (offline, needs `models_dir`), or the cloud engines `elevenlabs`, `openai`,
    /// `deepgram`, `sarvam` (need `tts_api_key_env`).
    pub tts_engine: String,
    /// Name of the environment variable holding the cloud TTS engine's API key; required
    /// for cloud engines. The key itself is never in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_api_key_env: Option<String>,
    /// Overrides the cloud TTS engine's API root (proxies, tests); http or https.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_base_url: Option<String>,
    /// The cloud engine's voice (ElevenLabs voice id, OpenAI voice, Deepgram model such as
    /// `aura-2-thalia-en`, Sarvam speaker); `None`: the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_voice: Option<String>,
    /// Directory `scripts/fetch-models.sh` fills (`hibari/`, `onnxruntime/`), resolved
    /// against the config file's directory; required when `tts_engine = "hibari"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    /// The espeak-ng program: a name looked up in `PATH` or a path. Default `espeak-ng`.
    pub espeak_path: String,
    /// Voice used when a plugin does not choose one. Default `en`.
    pub default_voice: String,
    /// Speaking rate in words per minute, 80–450. Default 160.
    pub rate_wpm: u32,
    /// Speech-to-text engine, one of [`STT_ENGINES`]: `whisper` (offline whisper.cpp),
    /// the cloud engines `openai`, `sarvam`, `deepgram` (need `stt_api_key_env`), or
    /// `none`. Default `none`.
    pub stt_engine: String,
    /// Name of the environment variable holding the cloud STT engine's API key; required
    /// for cloud engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_api_key_env: Option<String>,
    /// Overrides the cloud STT engine's endpoint (proxies, tests): http(s) for `openai`
    /// and `sarvam`, ws(s) for `deepgram`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_base_url: Option<String>,
    /// Language of callers for cloud STT: ISO 639-1 (`en`, `hi`) for OpenAI, a BCP 47
    /// tag or `multi` for Deepgram, a Sarvam code (`hi-IN`, `unknown`) for Sarvam;
    /// `None`: the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_language: Option<String>,
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
    #[serde(deserialize_with = "lenient::opt_string")]
    tts_api_key_env: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    tts_base_url: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    tts_voice: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    models_dir: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    espeak_path: String,
    #[serde(deserialize_with = "lenient::string")]
    default_voice: String,
    rate_wpm: u32,
    #[serde(deserialize_with = "lenient::string")]
    stt_engine: String,
    #[serde(deserialize_with = "lenient::opt_string")]
    stt_model: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    stt_api_key_env: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    stt_base_url: Option<String>,
    #[serde(deserialize_with = "lenient::opt_string")]
    stt_language: Option<String>,
}

impl Default for RawSpeech {
    fn default() -> Self {
        RawSpeech {
            tts_engine: "espeak-ng".to_owned(),
            tts_api_key_env: None,
            tts_base_url: None,
            tts_voice: None,
            models_dir: None,
            espeak_path: "espeak-ng".to_owned(),
            default_voice: "en".to_owned(),
            rate_wpm: 160,
            stt_engine: "none".to_owned(),
            stt_model: None,
            stt_api_key_env: None,
            stt_base_url: None,
            stt_language: None,
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
        let models_dir = self.models_dir.map(|path| {
            if path.trim().is_empty() {
                c.push(ConfigError::Empty {
                    key: "speech.models_dir".to_owned(),
                });
            }
            let resolved = c.resolve(path.trim());
            c.existing_dir("speech.models_dir", &resolved);
            resolved
        });
        let tts_engine = self.tts_engine.trim().to_ascii_lowercase();
        let stt_engine = self.stt_engine.trim().to_ascii_lowercase();
        let tts_api_key_env = self
            .tts_api_key_env
            .map(|name| c.env_name("speech.tts_api_key_env", &name));
        let stt_api_key_env = self
            .stt_api_key_env
            .map(|name| c.env_name("speech.stt_api_key_env", &name));
        let tts_base_url = self
            .tts_base_url
            .map(|url| c.url("speech.tts_base_url", &url, &["http", "https"]));
        let stt_schemes: &[&str] = if stt_engine == "deepgram" {
            &["ws", "wss"]
        } else {
            &["http", "https"]
        };
        let stt_base_url = self
            .stt_base_url
            .map(|url| c.url("speech.stt_base_url", &url, stt_schemes));
        let tts_voice = self
            .tts_voice
            .map(|voice| c.non_empty("speech.tts_voice", &voice));
        let stt_language = self
            .stt_language
            .map(|language| c.non_empty("speech.stt_language", &language));

        if tts_engine.is_empty() {
            c.push(ConfigError::Empty {
                key: "speech.tts_engine".to_owned(),
            });
        } else if !TTS_ENGINES.contains(&tts_engine.as_str()) {
            c.push(not_one_of("speech.tts_engine", &tts_engine, &TTS_ENGINES));
        } else if tts_engine == "hibari" && models_dir.is_none() {
            c.push(required_for("speech.models_dir", "tts_engine", &tts_engine));
        } else if CLOUD_SPEECH_ENGINES.contains(&tts_engine.as_str()) && tts_api_key_env.is_none() {
            c.push(required_for(
                "speech.tts_api_key_env",
                "tts_engine",
                &tts_engine,
            ));
        }
        match stt_engine.as_str() {
            "none" => {}
            "whisper" if stt_model.is_none() => {
                c.push(required_for("speech.stt_model", "stt_engine", "whisper"))
            }
            "whisper" => {}
            cloud if CLOUD_SPEECH_ENGINES.contains(&cloud) && STT_ENGINES.contains(&cloud) => {
                if stt_api_key_env.is_none() {
                    c.push(required_for("speech.stt_api_key_env", "stt_engine", cloud));
                }
            }
            other => c.push(not_one_of("speech.stt_engine", other, &STT_ENGINES)),
        }
        SpeechConfig {
            tts_engine,
            tts_api_key_env,
            tts_base_url,
            tts_voice,
            models_dir,
            espeak_path: c.non_empty("speech.espeak_path", &self.espeak_path),
            default_voice: c.non_empty("speech.default_voice", &self.default_voice),
            rate_wpm: self.rate_wpm,
            stt_engine,
            stt_model,
            stt_api_key_env,
            stt_base_url,
            stt_language,
        }
    }
}

fn not_one_of(key: &str, value: &str, allowed: &[&str]) -> ConfigError {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    ConfigError::Inconsistent {
        key: key.to_owned(),
        message: format!("{value:?} is not one of {}", allowed.join(", ")),
    }
}

fn required_for(key: &str, engine_key: &str, engine: &str) -> ConfigError {
    ConfigError::Inconsistent {
        key: key.to_owned(),
        message: format!("is required when speech.{engine_key} is {engine:?}"),
    }
}
