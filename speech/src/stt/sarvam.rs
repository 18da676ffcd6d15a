//! Sarvam speech-to-text (Hindi, Hinglish and other Indian languages):
//! `POST {base_url}/speech-to-text` with the utterance as a WAV file and the key in the
//! `api-subscription-key` header; the answer is `{"request_id", "transcript",
//! "language_code", ...}`. The REST endpoint takes at most 30 s of audio.

use std::time::Instant;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::http::{
    BodyReader, Deadlines, HttpTimeouts, MAX_BODY_BYTES, build_client, check_request, endpoint_url,
    invalid, secret_header, wav_bytes,
};
use super::stream::primary_language;
use crate::transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
};

/// Engine name in logs, metrics and errors.
pub const SARVAM_ENGINE: &str = "sarvam";
/// Longest audio the REST endpoint takes.
pub const SARVAM_MAX_AUDIO_MS: u64 = 30_000;

/// Settings of [`SarvamTranscriber`].
#[derive(Clone)]
pub struct SarvamSttConfig {
    /// API subscription key, sent as `api-subscription-key`.
    pub api_key: String,
    /// Base URL: `https://api.sarvam.ai` (default).
    pub base_url: String,
    /// Model: `saarika:v2.5` (default), or a `saaras` model with `mode`.
    pub model: String,
    /// Language used when a request names none: a Sarvam code such as `hi-IN` or `en-IN`,
    /// or `unknown` (default) to detect it, which also suits Hinglish.
    pub language_code: String,
    /// Output mode of `saaras:v3` and later (`transcribe`, `translate`, `verbatim`,
    /// `translit`, `codemix`); `None` sends none.
    pub mode: Option<String>,
    /// Time limits.
    pub timeouts: HttpTimeouts,
}

impl std::fmt::Debug for SarvamSttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SarvamSttConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("language_code", &self.language_code)
            .field("mode", &self.mode)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl SarvamSttConfig {
    /// Defaults for `api.sarvam.ai` with `saarika:v2.5` and language detection.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: "https://api.sarvam.ai".to_owned(),
            model: "saarika:v2.5".to_owned(),
            language_code: "unknown".to_owned(),
            mode: None,
            timeouts: HttpTimeouts::default(),
        }
    }

    /// Checks the settings; returns the transcription URL.
    pub fn validate(&self) -> Result<Url, TranscriptionError> {
        if self.api_key.trim().is_empty() {
            return Err(invalid(SARVAM_ENGINE, "api_key is empty"));
        }
        if self.model.trim().is_empty() {
            return Err(invalid(SARVAM_ENGINE, "model is empty"));
        }
        if sarvam_language_code(&self.language_code).is_none() {
            return Err(invalid(
                SARVAM_ENGINE,
                format!(
                    "language_code {:?} is not a language tag like hi-IN, or unknown",
                    self.language_code
                ),
            ));
        }
        self.timeouts.check(SARVAM_ENGINE)?;
        endpoint_url(SARVAM_ENGINE, &self.base_url, &["speech-to-text"])
    }
}

/// Sarvam's code for a BCP 47 tag: `hi-IN` as is, a bare `hi` as `hi-IN`, `unknown` as
/// is; `None` for something that is not a language tag.
pub(crate) fn sarvam_language_code(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if tag.eq_ignore_ascii_case("unknown") {
        return Some("unknown".to_owned());
    }
    let mut parts = tag.split(['-', '_']);
    let language = parts.next()?.to_ascii_lowercase();
    if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let region = parts.next().unwrap_or("IN").to_ascii_uppercase();
    if region.len() != 2 || !region.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some(format!("{language}-{region}"))
}

/// Speech-to-text with Sarvam's REST API, one utterance per request.
#[derive(Clone)]
pub struct SarvamTranscriber {
    http: reqwest::Client,
    url: Url,
    config: SarvamSttConfig,
}

impl std::fmt::Debug for SarvamTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SarvamTranscriber")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl SarvamTranscriber {
    /// Checks the configuration and prepares the HTTP client; opens no connection.
    pub fn new(config: SarvamSttConfig) -> Result<Self, TranscriptionError> {
        let url = config.validate()?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("api-subscription-key"),
            secret_header(SARVAM_ENGINE, config.api_key.trim())?,
        );
        let http = build_client(SARVAM_ENGINE, headers, config.timeouts.connect)?;
        Ok(Self { http, url, config })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    async fn run(&self, request: TranscriptionRequest) -> Result<Transcript, TranscriptionError> {
        check_request(&request, SARVAM_MAX_AUDIO_MS)?;
        let language_code = match request.language.as_deref() {
            Some(tag) => sarvam_language_code(tag)
                .ok_or_else(|| TranscriptionError::UnsupportedLanguage(tag.to_owned()))?,
            None => sarvam_language_code(&self.config.language_code)
                .unwrap_or_else(|| "unknown".to_owned()),
        };
        let started = Instant::now();
        let deadlines = Deadlines::start(&self.config.timeouts);
        let wav = wav_bytes(SARVAM_ENGINE, &request.samples, request.sample_rate)?;
        let file = Part::bytes(wav)
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(|error| TranscriptionError::EngineFailed {
                engine: SARVAM_ENGINE.to_owned(),
                detail: error.to_string(),
            })?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.config.model.trim().to_owned())
            .text("language_code", language_code.clone());
        if let Some(mode) = self.config.mode.as_ref().filter(|m| !m.trim().is_empty()) {
            form = form.text("mode", mode.trim().to_owned());
        }
        tracing::debug!(
            url = %self.url,
            model = %self.config.model,
            %language_code,
            audio_ms = request.duration_ms(),
            "Sarvam transcription request"
        );
        let send = self.http.post(self.url.clone()).multipart(form);
        let response = super::http::send(SARVAM_ENGINE, send, deadlines).await?;
        let body = BodyReader::new(SARVAM_ENGINE, response, deadlines)
            .read_to_end(MAX_BODY_BYTES)
            .await?;
        let reply = parse_reply(&body)?;
        tracing::debug!(request_id = ?reply.request_id, "Sarvam transcription done");
        let text = reply.transcript.trim().to_owned();
        let language = reply
            .language_code
            .as_deref()
            .map(primary_language)
            .filter(|language| !language.is_empty())
            .unwrap_or_else(|| primary_language(&language_code));
        Ok(Transcript {
            confidence: if text.is_empty() { 0.0 } else { 1.0 },
            text,
            language,
            processing: started.elapsed(),
        })
    }
}

impl Transcriber for SarvamTranscriber {
    fn name(&self) -> &str {
        SARVAM_ENGINE
    }

    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request))
    }
}

/// Sarvam's answer (fields this client uses).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct SarvamReply {
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    pub(crate) transcript: String,
    #[serde(default)]
    pub(crate) language_code: Option<String>,
}

pub(crate) fn parse_reply(body: &[u8]) -> Result<SarvamReply, TranscriptionError> {
    serde_json::from_slice(body).map_err(|error| TranscriptionError::MalformedResponse {
        engine: SARVAM_ENGINE.to_owned(),
        detail: format!("speech-to-text JSON: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes() {
        assert_eq!(sarvam_language_code("hi-IN").as_deref(), Some("hi-IN"));
        assert_eq!(sarvam_language_code("hi").as_deref(), Some("hi-IN"));
        assert_eq!(sarvam_language_code("en_in").as_deref(), Some("en-IN"));
        assert_eq!(sarvam_language_code("Unknown").as_deref(), Some("unknown"));
        assert_eq!(sarvam_language_code(""), None);
        assert_eq!(sarvam_language_code("hindi-IN"), None);
        assert_eq!(sarvam_language_code("hi-IND"), None);
    }

    #[test]
    fn reply_shapes() {
        let reply = parse_reply(
            r#"{"request_id":"20250611_8f2c","transcript":"मुझे कल का अपॉइंटमेंट चाहिए","timestamps":null,"diarized_transcript":null,"language_code":"hi-IN","language_probability":0.97}"#
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(reply.transcript, "मुझे कल का अपॉइंटमेंट चाहिए");
        assert_eq!(reply.language_code.as_deref(), Some("hi-IN"));
        assert_eq!(reply.request_id.as_deref(), Some("20250611_8f2c"));
        assert!(matches!(
            parse_reply(br#"{"request_id":"x"}"#),
            Err(TranscriptionError::MalformedResponse { .. })
        ));
        assert!(matches!(
            parse_reply(b"<html>"),
            Err(TranscriptionError::MalformedResponse { .. })
        ));
    }

    #[test]
    fn config_validation() {
        let transcriber = SarvamTranscriber::new(SarvamSttConfig::new("sk_live")).expect("ok");
        assert_eq!(transcriber.url(), "https://api.sarvam.ai/speech-to-text");
        assert!(!format!("{transcriber:?}").contains("sk_live"));
        let mut config = SarvamSttConfig::new("");
        assert!(matches!(
            SarvamTranscriber::new(config.clone()),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        config.api_key = "k".into();
        config.language_code = "Hindi".into();
        assert!(matches!(
            SarvamTranscriber::new(config.clone()),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        config.language_code = "hi-IN".into();
        config.base_url = "api.sarvam.ai".into();
        assert!(matches!(
            SarvamTranscriber::new(config),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
    }
}
