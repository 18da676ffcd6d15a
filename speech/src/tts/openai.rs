//! OpenAI text-to-speech: `POST {base}/audio/speech` (base `https://api.openai.com/v1`) with
//! bearer auth and `{"model", "input", "voice", "response_format": "pcm", "instructions"?,
//! "speed"?}`; the answer is raw 24 kHz 16-bit little-endian mono PCM, streamed as it is
//! generated, converted here to the call's rate. Errors are
//! `{"error": {"message", "type", "code"}}`. OpenAI-compatible servers (e.g. a local
//! Kokoro-FastAPI) work with their own base URL.

use std::fmt;

use reqwest::Url;
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};

use super::http::{HttpTts, TtsTimeouts, endpoint_url, invalid_config, is_plain_name};
use super::stream::{
    AudioStream, AudioStreamFuture, StreamingSynthesizer, checked_text, synthesize_by_streaming,
};
use crate::synthesizer::{SpeechError, SpeechRequest, SynthesisFuture, Synthesizer};

const ENGINE: &str = "openai";

/// The rate of OpenAI's `pcm` output.
pub const OPENAI_PCM_RATE: u32 = 24000;

/// Settings of the OpenAI engine.
#[derive(Clone)]
pub struct OpenAiTtsConfig {
    /// Sent as `Authorization: Bearer …`. Never logged.
    pub api_key: String,
    /// API root: `https://api.openai.com/v1` by default. `/audio/speech` is appended; a root
    /// without a `/v1` path gets `/v1/audio/speech`; a URL that already ends in
    /// `/audio/speech` is used as is.
    pub base_url: String,
    /// `gpt-4o-mini-tts` by default (`tts-1` for the older, faster model).
    pub model: String,
    /// Voice used when a request names none: `alloy`, `ash`, `coral`, `sage`, …
    pub voice: String,
    /// How to speak (tone, accent, pace); only the `gpt-4o-mini-tts` model accepts it.
    pub instructions: Option<String>,
    /// 0.25–4.0; the provider default (1.0) when `None`.
    pub speed: Option<f32>,
    /// Longest text accepted per request, in characters (OpenAI's limit is 4096).
    pub max_text_chars: usize,
    /// Connection, first-audio, stall and total limits.
    pub timeouts: TtsTimeouts,
}

impl OpenAiTtsConfig {
    /// The defaults with the given API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        OpenAiTtsConfig {
            api_key: api_key.into(),
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini-tts".to_owned(),
            voice: "alloy".to_owned(),
            instructions: None,
            speed: None,
            max_text_chars: 4096,
            timeouts: TtsTimeouts::default(),
        }
    }
}

impl fmt::Debug for OpenAiTtsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiTtsConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("voice", &self.voice)
            .field("instructions", &self.instructions)
            .field("speed", &self.speed)
            .field("max_text_chars", &self.max_text_chars)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// Streaming text-to-speech through OpenAI's speech endpoint.
pub struct OpenAiSynthesizer {
    http: HttpTts,
    url: Url,
    config: OpenAiTtsConfig,
}

impl fmt::Debug for OpenAiSynthesizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSynthesizer")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl OpenAiSynthesizer {
    /// Checks the configuration and prepares the HTTP client. Opens no connection.
    pub fn new(config: OpenAiTtsConfig) -> Result<Self, SpeechError> {
        if config.api_key.trim().is_empty() {
            return Err(invalid_config(ENGINE, "api_key is empty"));
        }
        if !is_plain_name(&config.model) {
            return Err(invalid_config(
                ENGINE,
                format!("model {:?} is not a model name", config.model),
            ));
        }
        if !is_plain_name(&config.voice) {
            return Err(invalid_config(
                ENGINE,
                format!("voice {:?} is not a voice name", config.voice),
            ));
        }
        if let Some(speed) = config.speed
            && !(0.25..=4.0).contains(&speed)
        {
            return Err(invalid_config(
                ENGINE,
                format!("speed {speed} is not in 0.25–4.0"),
            ));
        }
        if config.max_text_chars == 0 {
            return Err(invalid_config(ENGINE, "max_text_chars is 0"));
        }
        let url = speech_url(&config.base_url)?;
        let http = HttpTts::new(
            ENGINE,
            AUTHORIZATION,
            &format!("Bearer {}", config.api_key.trim()),
            config.timeouts,
        )?;
        Ok(OpenAiSynthesizer { http, url, config })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpenAiTtsConfig {
        &self.config
    }

    fn request_body(&self, text: &str, request: &SpeechRequest) -> Value {
        let voice = match request.voice.as_deref() {
            Some(voice) if is_plain_name(voice) => voice,
            Some(voice) => {
                tracing::warn!(voice, "not an OpenAI voice name; using the default voice");
                &self.config.voice
            }
            None => &self.config.voice,
        };
        let mut body = json!({
            "model": self.config.model,
            "input": text,
            "voice": voice,
            "response_format": "pcm",
        });
        if let Some(instructions) = self
            .config
            .instructions
            .as_deref()
            .filter(|text| !text.trim().is_empty())
        {
            body["instructions"] = json!(instructions);
        }
        if let Some(speed) = self.config.speed {
            body["speed"] = json!(speed);
        }
        body
    }

    async fn start(&self, request: SpeechRequest) -> Result<Box<dyn AudioStream>, SpeechError> {
        let (text, characters) = checked_text(&request, self.config.max_text_chars)?;
        let body = self.request_body(text, &request);
        let (response, deadlines) = self.http.post_json(self.url.clone(), &body).await?;
        let stream = self
            .http
            .pcm_stream(
                response,
                deadlines,
                OPENAI_PCM_RATE,
                request.sample_rate,
                characters as u64,
            )
            .await?;
        Ok(Box::new(stream))
    }
}

/// The speech URL for a base URL (see [`OpenAiTtsConfig::base_url`]).
fn speech_url(base_url: &str) -> Result<Url, SpeechError> {
    let url = endpoint_url(ENGINE, base_url, &[])?;
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/audio/speech") {
        return Ok(url);
    }
    if path.ends_with("/v1") {
        endpoint_url(ENGINE, base_url, &["audio", "speech"])
    } else {
        endpoint_url(ENGINE, base_url, &["v1", "audio", "speech"])
    }
}

impl StreamingSynthesizer for OpenAiSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_> {
        Box::pin(self.start(request))
    }
}

impl Synthesizer for OpenAiSynthesizer {
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

    #[test]
    fn speech_url_variants() {
        let url = |base: &str| speech_url(base).map(|u| u.to_string()).ok();
        assert_eq!(
            url("https://api.openai.com/v1").as_deref(),
            Some("https://api.openai.com/v1/audio/speech")
        );
        assert_eq!(
            url("http://127.0.0.1:8880/v1/").as_deref(),
            Some("http://127.0.0.1:8880/v1/audio/speech")
        );
        assert_eq!(
            url("http://127.0.0.1:4000").as_deref(),
            Some("http://127.0.0.1:4000/v1/audio/speech")
        );
        assert_eq!(
            url("https://proxy.example/openai/v1/audio/speech").as_deref(),
            Some("https://proxy.example/openai/v1/audio/speech")
        );
    }

    #[test]
    fn configuration_is_checked() {
        let config = OpenAiTtsConfig::new("sk-secret");
        let engine = OpenAiSynthesizer::new(config.clone()).expect("valid");
        assert!(!format!("{engine:?}").contains("sk-secret"));
        assert_eq!(engine.config().voice, "alloy");
        for broken in [
            OpenAiTtsConfig {
                api_key: String::new(),
                ..config.clone()
            },
            OpenAiTtsConfig {
                speed: Some(9.0),
                ..config.clone()
            },
            OpenAiTtsConfig {
                voice: "al loy".into(),
                ..config.clone()
            },
        ] {
            assert!(matches!(
                OpenAiSynthesizer::new(broken),
                Err(SpeechError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn body_has_openai_shape() {
        let mut config = OpenAiTtsConfig::new("k");
        config.instructions = Some("Speak warmly, with an Indian English accent.".into());
        let engine = OpenAiSynthesizer::new(config).expect("valid");
        let request = SpeechRequest {
            text: "Hello".into(),
            voice: Some("coral".into()),
            language: None,
            sample_rate: 8000,
        };
        assert_eq!(
            engine.request_body("Hello", &request),
            json!({
                "model": "gpt-4o-mini-tts",
                "input": "Hello",
                "voice": "coral",
                "response_format": "pcm",
                "instructions": "Speak warmly, with an Indian English accent.",
            })
        );
    }
}
