//! Deepgram Aura text-to-speech:
//! `POST {base}/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=8000&container=none`
//! with `Authorization: Token <key>` and `{"text"}`; the answer is raw 16-bit little-endian
//! PCM at the requested rate, streamed as it is generated. Errors are JSON
//! `{"err_code", "err_msg", "request_id"}` (or `{"category", "message", "details",
//! "request_id"}` for malformed requests).

use std::fmt;

use reqwest::header::AUTHORIZATION;
use serde_json::json;

use super::http::{HttpTts, TtsTimeouts, endpoint_url, invalid_config, is_plain_name};
use super::stream::{
    AudioStream, AudioStreamFuture, StreamingSynthesizer, checked_text, synthesize_by_streaming,
};
use crate::synthesizer::{SpeechError, SpeechRequest, SynthesisFuture, Synthesizer};

const ENGINE: &str = "deepgram";

/// `linear16` rates Aura produces; others are converted from [`FALLBACK_RATE`].
const NATIVE_RATES: [u32; 5] = [8000, 16000, 24000, 32000, 48000];
const FALLBACK_RATE: u32 = 24000;

/// Settings of the Deepgram Aura engine.
#[derive(Clone)]
pub struct DeepgramTtsConfig {
    /// Sent as `Authorization: Token …`. Never logged.
    pub api_key: String,
    /// API root, `https://api.deepgram.com` by default.
    pub base_url: String,
    /// Voice model used when a request names none (Aura voices are models):
    /// `aura-2-thalia-en` by default.
    pub model: String,
    /// Longest text accepted per request, in characters (Deepgram's limit is 2000).
    pub max_text_chars: usize,
    /// Connection, first-audio, stall and total limits.
    pub timeouts: TtsTimeouts,
}

impl DeepgramTtsConfig {
    /// The defaults with the given API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        DeepgramTtsConfig {
            api_key: api_key.into(),
            base_url: "https://api.deepgram.com".to_owned(),
            model: "aura-2-thalia-en".to_owned(),
            max_text_chars: 2000,
            timeouts: TtsTimeouts::default(),
        }
    }
}

impl fmt::Debug for DeepgramTtsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepgramTtsConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("max_text_chars", &self.max_text_chars)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// Streaming text-to-speech through Deepgram Aura.
pub struct DeepgramSynthesizer {
    http: HttpTts,
    config: DeepgramTtsConfig,
}

impl fmt::Debug for DeepgramSynthesizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeepgramSynthesizer")
            .field("config", &self.config)
            .finish()
    }
}

impl DeepgramSynthesizer {
    /// Checks the configuration and prepares the HTTP client. Opens no connection.
    pub fn new(config: DeepgramTtsConfig) -> Result<Self, SpeechError> {
        if config.api_key.trim().is_empty() {
            return Err(invalid_config(ENGINE, "api_key is empty"));
        }
        if !is_plain_name(&config.model) {
            return Err(invalid_config(
                ENGINE,
                format!("model {:?} is not a model name", config.model),
            ));
        }
        if config.max_text_chars == 0 {
            return Err(invalid_config(ENGINE, "max_text_chars is 0"));
        }
        endpoint_url(ENGINE, &config.base_url, &[])?;
        let http = HttpTts::new(
            ENGINE,
            AUTHORIZATION,
            &format!("Token {}", config.api_key.trim()),
            config.timeouts,
        )?;
        Ok(DeepgramSynthesizer { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &DeepgramTtsConfig {
        &self.config
    }

    fn provider_rate(sample_rate: u32) -> u32 {
        if NATIVE_RATES.contains(&sample_rate) {
            sample_rate
        } else {
            FALLBACK_RATE
        }
    }

    async fn start(&self, request: SpeechRequest) -> Result<Box<dyn AudioStream>, SpeechError> {
        let (text, characters) = checked_text(&request, self.config.max_text_chars)?;
        let model = match request.voice.as_deref() {
            Some(voice) if is_plain_name(voice) && voice.starts_with("aura") => voice,
            Some(voice) => {
                tracing::warn!(voice, "not a Deepgram Aura model; using the default voice");
                &self.config.model
            }
            None => &self.config.model,
        };
        let rate = Self::provider_rate(request.sample_rate);
        let mut url = endpoint_url(ENGINE, &self.config.base_url, &["v1", "speak"])?;
        url.query_pairs_mut()
            .append_pair("model", model)
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &rate.to_string())
            .append_pair("container", "none");
        let body = json!({ "text": text });
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
}

impl StreamingSynthesizer for DeepgramSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_> {
        Box::pin(self.start(request))
    }
}

impl Synthesizer for DeepgramSynthesizer {
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
    fn configuration_is_checked_and_rates_chosen() {
        let config = DeepgramTtsConfig::new("dg-secret");
        let engine = DeepgramSynthesizer::new(config.clone()).expect("valid");
        assert!(!format!("{engine:?}").contains("dg-secret"));
        assert_eq!(engine.config().model, "aura-2-thalia-en");
        assert!(matches!(
            DeepgramSynthesizer::new(DeepgramTtsConfig {
                model: "aura 2".into(),
                ..config.clone()
            }),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert!(matches!(
            DeepgramSynthesizer::new(DeepgramTtsConfig {
                api_key: String::new(),
                ..config
            }),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert_eq!(DeepgramSynthesizer::provider_rate(8000), 8000);
        assert_eq!(DeepgramSynthesizer::provider_rate(48000), 48000);
        assert_eq!(DeepgramSynthesizer::provider_rate(22050), 24000);
    }
}
