//! ElevenLabs streaming text-to-speech:
//! `POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_{rate}` with the key in
//! `xi-api-key` and `{"text", "model_id", "voice_settings"?, "language_code"?}`; the answer
//! is chunked raw 16-bit little-endian PCM at the requested rate. Errors are JSON
//! `{"detail": {"status", "message"}}` (401 `invalid_api_key` / `quota_exceeded`, 429
//! `too_many_concurrent_requests` / `system_busy`) or FastAPI validation lists (422).

use std::fmt;

use reqwest::header::HeaderName;
use serde::Serialize;
use serde_json::{Value, json};

use super::http::{
    HttpTts, TtsTimeouts, endpoint_url, invalid_config, is_plain_name, primary_language,
};
use super::stream::{
    AudioStream, AudioStreamFuture, StreamingSynthesizer, checked_text, synthesize_by_streaming,
};
use crate::synthesizer::{SpeechError, SpeechRequest, SynthesisFuture, Synthesizer};

const ENGINE: &str = "elevenlabs";

/// PCM rates ElevenLabs streams on every plan (`pcm_{rate}`); others are converted from
/// [`FALLBACK_RATE`].
const NATIVE_RATES: [u32; 4] = [8000, 16000, 22050, 24000];
const FALLBACK_RATE: u32 = 24000;

/// Settings of the ElevenLabs engine.
#[derive(Clone)]
pub struct ElevenLabsConfig {
    /// Sent as `xi-api-key`. Never logged.
    pub api_key: String,
    /// API root, `https://api.elevenlabs.io` by default.
    pub base_url: String,
    /// Voice used when a request names none (a voice id such as `JBFqnCBsd6RMkjVDRZzb`).
    pub voice_id: String,
    /// `eleven_flash_v2_5` (lowest latency) by default.
    pub model_id: String,
    /// Stability, similarity, style, speed; the voice's stored settings when `None`.
    pub voice_settings: Option<ElevenLabsVoiceSettings>,
    /// Whether to send the request's language as `language_code` (only the Flash and Turbo
    /// v2.5 models accept it).
    pub send_language_code: bool,
    /// Longest text accepted per request, in characters.
    pub max_text_chars: usize,
    /// Connection, first-audio, stall and total limits.
    pub timeouts: TtsTimeouts,
}

impl ElevenLabsConfig {
    /// The defaults with the given API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        ElevenLabsConfig {
            api_key: api_key.into(),
            base_url: "https://api.elevenlabs.io".to_owned(),
            voice_id: "JBFqnCBsd6RMkjVDRZzb".to_owned(),
            model_id: "eleven_flash_v2_5".to_owned(),
            voice_settings: None,
            send_language_code: true,
            max_text_chars: 5000,
            timeouts: TtsTimeouts::default(),
        }
    }
}

impl fmt::Debug for ElevenLabsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("voice_id", &self.voice_id)
            .field("model_id", &self.model_id)
            .field("voice_settings", &self.voice_settings)
            .field("send_language_code", &self.send_language_code)
            .field("max_text_chars", &self.max_text_chars)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// ElevenLabs `voice_settings`; fields left `None` are not sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ElevenLabsVoiceSettings {
    /// 0–1: higher is more consistent, lower more expressive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability: Option<f32>,
    /// 0–1: how closely to match the original voice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity_boost: Option<f32>,
    /// 0–1: style exaggeration (adds latency when above 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<f32>,
    /// Boosts similarity to the original speaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    /// 0.7–1.2: speaking rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f32>,
}

/// Streaming text-to-speech through ElevenLabs.
pub struct ElevenLabsSynthesizer {
    http: HttpTts,
    config: ElevenLabsConfig,
}

impl fmt::Debug for ElevenLabsSynthesizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElevenLabsSynthesizer")
            .field("config", &self.config)
            .finish()
    }
}

impl ElevenLabsSynthesizer {
    /// Checks the configuration and prepares the HTTP client. Opens no connection.
    pub fn new(config: ElevenLabsConfig) -> Result<Self, SpeechError> {
        if config.api_key.trim().is_empty() {
            return Err(invalid_config(ENGINE, "api_key is empty"));
        }
        if !is_plain_name(&config.voice_id) {
            return Err(invalid_config(
                ENGINE,
                format!("voice_id {:?} is not a voice id", config.voice_id),
            ));
        }
        if config.model_id.trim().is_empty() {
            return Err(invalid_config(ENGINE, "model_id is empty"));
        }
        if config.max_text_chars == 0 {
            return Err(invalid_config(ENGINE, "max_text_chars is 0"));
        }
        endpoint_url(ENGINE, &config.base_url, &[])?;
        let http = HttpTts::new(
            ENGINE,
            HeaderName::from_static("xi-api-key"),
            config.api_key.trim(),
            config.timeouts,
        )?;
        Ok(ElevenLabsSynthesizer { http, config })
    }

    /// The rate to ask ElevenLabs for when the caller needs `sample_rate`.
    fn provider_rate(sample_rate: u32) -> u32 {
        if NATIVE_RATES.contains(&sample_rate) {
            sample_rate
        } else {
            FALLBACK_RATE
        }
    }

    fn request_body(&self, text: &str, request: &SpeechRequest) -> Value {
        let mut body = json!({ "text": text, "model_id": self.config.model_id });
        if let Some(settings) = &self.config.voice_settings {
            body["voice_settings"] = json!(settings);
        }
        if self.config.send_language_code
            && let Some(language) = request.language.as_deref().and_then(primary_language)
        {
            body["language_code"] = json!(language);
        }
        body
    }

    async fn start(&self, request: SpeechRequest) -> Result<Box<dyn AudioStream>, SpeechError> {
        let (text, characters) = checked_text(&request, self.config.max_text_chars)?;
        let voice = match request.voice.as_deref() {
            Some(voice) if is_plain_name(voice) => voice,
            Some(voice) => {
                tracing::warn!(voice, "not an ElevenLabs voice id; using the default voice");
                &self.config.voice_id
            }
            None => &self.config.voice_id,
        };
        let rate = Self::provider_rate(request.sample_rate);
        let mut url = endpoint_url(
            ENGINE,
            &self.config.base_url,
            &["v1", "text-to-speech", voice, "stream"],
        )?;
        url.query_pairs_mut()
            .append_pair("output_format", &format!("pcm_{rate}"));
        let body = self.request_body(text, &request);
        let (response, deadlines) = self.http.post_json(url, &body).await?;
        let stream = self
            .http
            .pcm_stream(
                response,
                deadlines,
                rate,
                request.sample_rate,
                characters as u64,
            )
            .await?;
        Ok(Box::new(stream))
    }

    /// The configuration in use.
    pub fn config(&self) -> &ElevenLabsConfig {
        &self.config
    }
}

impl StreamingSynthesizer for ElevenLabsSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_> {
        Box::pin(self.start(request))
    }
}

impl Synthesizer for ElevenLabsSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_> {
        synthesize_by_streaming(self, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn configuration_is_checked_and_the_key_is_not_printed() {
        let config = ElevenLabsConfig::new("xi-secret-key");
        assert!(!format!("{config:?}").contains("xi-secret-key"));
        let engine = ElevenLabsSynthesizer::new(config.clone()).expect("valid");
        assert!(!format!("{engine:?}").contains("xi-secret-key"));
        assert_eq!(engine.config().timeouts, TtsTimeouts::default());
        for broken in [
            ElevenLabsConfig {
                api_key: " ".into(),
                ..config.clone()
            },
            ElevenLabsConfig {
                voice_id: "../v2/user".into(),
                ..config.clone()
            },
            ElevenLabsConfig {
                model_id: String::new(),
                ..config.clone()
            },
            ElevenLabsConfig {
                base_url: "api.elevenlabs.io".into(),
                ..config.clone()
            },
            ElevenLabsConfig {
                timeouts: TtsTimeouts {
                    first_byte: Duration::ZERO,
                    ..TtsTimeouts::default()
                },
                ..config.clone()
            },
        ] {
            assert!(
                matches!(
                    ElevenLabsSynthesizer::new(broken.clone()),
                    Err(SpeechError::InvalidConfig { .. })
                ),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn rates_and_body() {
        assert_eq!(ElevenLabsSynthesizer::provider_rate(8000), 8000);
        assert_eq!(ElevenLabsSynthesizer::provider_rate(16000), 16000);
        assert_eq!(ElevenLabsSynthesizer::provider_rate(48000), 24000);
        let mut config = ElevenLabsConfig::new("k");
        config.voice_settings = Some(ElevenLabsVoiceSettings {
            stability: Some(0.5),
            speed: Some(1.1),
            ..ElevenLabsVoiceSettings::default()
        });
        let engine = ElevenLabsSynthesizer::new(config).expect("valid");
        let request = SpeechRequest {
            text: "नमस्ते".into(),
            voice: None,
            language: Some("hi-IN".into()),
            sample_rate: 8000,
        };
        let body = engine.request_body("नमस्ते", &request);
        assert_eq!(body["text"], "नमस्ते");
        assert_eq!(body["model_id"], "eleven_flash_v2_5");
        assert_eq!(body["language_code"], "hi");
        assert_eq!(body["voice_settings"]["stability"], 0.5);
        assert!(body["voice_settings"].get("style").is_none());
    }
}
