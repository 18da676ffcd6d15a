//! OpenAI speech-to-text: `POST {base_url}/audio/transcriptions` with the utterance as a
//! WAV file. With `stream=true` (the `gpt-4o-*-transcribe` models) the text arrives as
//! server-sent `transcript.text.delta` events, then `transcript.text.done`; used through
//! [`UtteranceStreamAdapter::with_partials`](super::UtteranceStreamAdapter::with_partials)
//! those become partial results. Any OpenAI-compatible endpoint works (Groq, Azure via its
//! base URL).

use std::time::Instant;

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::adapter::{IncrementalTranscriber, PartialSink};
use super::http::{
    BodyReader, Deadlines, HttpTimeouts, MAX_BODY_BYTES, build_client, check_request, endpoint_url,
    invalid, secret_header, wav_bytes,
};
use super::stream::primary_language;
use crate::llm::sse::SseParser;
use crate::transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
};

/// Engine name in logs, metrics and errors.
pub const OPENAI_ENGINE: &str = "openai";
/// Largest upload OpenAI accepts (25 MB) as 16 kHz 16-bit mono: about 13 minutes.
const MAX_UPLOAD_BYTES: u64 = 25 * 1000 * 1000;

/// Settings of [`OpenAiTranscriber`].
#[derive(Clone)]
pub struct OpenAiSttConfig {
    /// API key, sent as `Authorization: Bearer`.
    pub api_key: String,
    /// Base URL including the version: `https://api.openai.com/v1` (default), or another
    /// OpenAI-compatible server such as `https://api.groq.com/openai/v1`.
    pub base_url: String,
    /// Model: `gpt-4o-mini-transcribe` (default), `gpt-4o-transcribe` or `whisper-1`.
    pub model: String,
    /// Language hint as ISO 639-1 (`en`, `hi`) used when a request names none; `None` lets
    /// the model detect it.
    pub language: Option<String>,
    /// Optional text to guide the model (names, spellings, the previous turn).
    pub prompt: Option<String>,
    /// Ask for a streamed answer when partial results are wanted (`gpt-4o-*` models;
    /// `whisper-1` ignores it and answers in one piece). Default true.
    pub stream: bool,
    /// Ask for token log-probabilities (`gpt-4o-*` models) to compute a confidence.
    /// Default true.
    pub logprobs: bool,
    /// Time limits.
    pub timeouts: HttpTimeouts,
}

impl std::fmt::Debug for OpenAiSttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSttConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("language", &self.language)
            .field("stream", &self.stream)
            .field("logprobs", &self.logprobs)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl OpenAiSttConfig {
    /// Defaults for `api.openai.com` with `gpt-4o-mini-transcribe`, streamed.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini-transcribe".to_owned(),
            language: None,
            prompt: None,
            stream: true,
            logprobs: true,
            timeouts: HttpTimeouts::default(),
        }
    }

    /// Checks the settings; returns the transcription URL.
    pub fn validate(&self) -> Result<Url, TranscriptionError> {
        if self.api_key.trim().is_empty() {
            return Err(invalid(OPENAI_ENGINE, "api_key is empty"));
        }
        if self.model.trim().is_empty() {
            return Err(invalid(OPENAI_ENGINE, "model is empty"));
        }
        self.timeouts.check(OPENAI_ENGINE)?;
        endpoint_url(OPENAI_ENGINE, &self.base_url, &["audio", "transcriptions"])
    }
}

/// Speech-to-text with OpenAI's transcription API, one utterance per request.
#[derive(Clone)]
pub struct OpenAiTranscriber {
    http: reqwest::Client,
    url: Url,
    config: OpenAiSttConfig,
}

impl std::fmt::Debug for OpenAiTranscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiTranscriber")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl OpenAiTranscriber {
    /// Checks the configuration and prepares the HTTP client; opens no connection.
    pub fn new(config: OpenAiSttConfig) -> Result<Self, TranscriptionError> {
        let url = config.validate()?;
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            secret_header(OPENAI_ENGINE, &format!("Bearer {}", config.api_key.trim()))?,
        );
        let http = build_client(OPENAI_ENGINE, headers, config.timeouts.connect)?;
        Ok(Self { http, url, config })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    async fn run(
        &self,
        request: TranscriptionRequest,
        partials: Option<PartialSink>,
    ) -> Result<Transcript, TranscriptionError> {
        check_request(&request, max_upload_ms(request.sample_rate))?;
        let started = Instant::now();
        let deadlines = Deadlines::start(&self.config.timeouts);
        let language = request
            .language
            .as_deref()
            .or(self.config.language.as_deref())
            .map(primary_language)
            .filter(|language| !language.is_empty());
        let stream = partials.is_some() && self.config.stream;
        let wav = wav_bytes(OPENAI_ENGINE, &request.samples, request.sample_rate)?;
        let file = Part::bytes(wav)
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(|error| TranscriptionError::EngineFailed {
                engine: OPENAI_ENGINE.to_owned(),
                detail: error.to_string(),
            })?;
        let mut form = Form::new()
            .part("file", file)
            .text("model", self.config.model.trim().to_owned())
            .text("response_format", "json");
        if let Some(language) = &language {
            form = form.text("language", language.clone());
        }
        if let Some(prompt) = self.config.prompt.as_ref().filter(|p| !p.trim().is_empty()) {
            form = form.text("prompt", prompt.clone());
        }
        if stream {
            form = form.text("stream", "true");
        }
        if self.config.logprobs && self.config.model.trim().starts_with("gpt-4o") {
            form = form.text("include[]", "logprobs");
        }
        tracing::debug!(
            url = %self.url,
            model = %self.config.model,
            audio_ms = request.duration_ms(),
            stream,
            "OpenAI transcription request"
        );
        let send = self.http.post(self.url.clone()).multipart(form);
        let response = super::http::send(OPENAI_ENGINE, send, deadlines).await?;
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("text/event-stream"));
        let mut body = BodyReader::new(OPENAI_ENGINE, response, deadlines);
        let reply = if is_event_stream {
            read_event_stream(&mut body, partials.as_ref()).await?
        } else {
            let bytes = body.read_to_end(MAX_BODY_BYTES).await?;
            parse_json_reply(&bytes)?
        };
        let text = reply.text.trim().to_owned();
        let confidence = if text.is_empty() {
            0.0
        } else {
            reply.confidence.unwrap_or(1.0)
        };
        Ok(Transcript {
            text,
            confidence,
            language: language.unwrap_or_default(),
            processing: started.elapsed(),
        })
    }
}

/// Upload limit of OpenAI expressed as milliseconds of 16-bit mono audio.
fn max_upload_ms(sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    (MAX_UPLOAD_BYTES - 44) / 2 * 1000 / u64::from(sample_rate)
}

impl Transcriber for OpenAiTranscriber {
    fn name(&self) -> &str {
        OPENAI_ENGINE
    }

    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request, None))
    }
}

impl IncrementalTranscriber for OpenAiTranscriber {
    fn transcribe_incremental(
        &self,
        request: TranscriptionRequest,
        partials: PartialSink,
    ) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request, Some(partials)))
    }
}

/// What one answer said.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) text: String,
    /// exp(mean token log-probability), when log-probabilities came.
    pub(crate) confidence: Option<f32>,
}

#[derive(Debug, Deserialize)]
struct LogProb {
    #[serde(default)]
    logprob: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct JsonReply {
    text: String,
    #[serde(default)]
    logprobs: Option<Vec<LogProb>>,
}

/// One event of a streamed answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum StreamEvent {
    #[serde(rename = "transcript.text.delta")]
    Delta { delta: String },
    #[serde(rename = "transcript.text.done")]
    Done {
        text: String,
        #[serde(default)]
        logprobs: Option<Vec<LogProb>>,
    },
    #[serde(other)]
    Other,
}

fn malformed(detail: impl Into<String>) -> TranscriptionError {
    TranscriptionError::MalformedResponse {
        engine: OPENAI_ENGINE.to_owned(),
        detail: detail.into(),
    }
}

fn confidence(logprobs: Option<&[LogProb]>) -> Option<f32> {
    let values: Vec<f64> = logprobs?
        .iter()
        .filter_map(|p| p.logprob)
        .filter(|p| p.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some(mean.exp().clamp(0.0, 1.0) as f32)
}

/// Parses a non-streamed answer: `{"text": "...", "logprobs": [...], "usage": {...}}`.
pub(crate) fn parse_json_reply(body: &[u8]) -> Result<Reply, TranscriptionError> {
    let reply: JsonReply = serde_json::from_slice(body)
        .map_err(|error| malformed(format!("transcription JSON: {error}")))?;
    Ok(Reply {
        confidence: confidence(reply.logprobs.as_deref()),
        text: reply.text,
    })
}

/// Sans-IO state of a streamed answer: feed it the `data` of each event.
#[derive(Debug, Default)]
pub(crate) struct StreamedReply {
    text: String,
    done: Option<Reply>,
}

impl StreamedReply {
    /// Takes one event's data; returns the text so far when a delta grew it.
    pub(crate) fn event(&mut self, data: &str) -> Result<Option<&str>, TranscriptionError> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" || self.done.is_some() {
            return Ok(None);
        }
        let value: serde_json::Value = serde_json::from_str(data)
            .map_err(|error| malformed(format!("stream event is not JSON: {error}")))?;
        if value.get("error").is_some()
            || value.get("type").and_then(|t| t.as_str()) == Some("error")
        {
            let message = super::http::provider_error_message(data.as_bytes())
                .unwrap_or_else(|| data.chars().take(300).collect());
            return Err(TranscriptionError::EngineFailed {
                engine: OPENAI_ENGINE.to_owned(),
                detail: format!("error in the stream: {message}"),
            });
        }
        match serde_json::from_value::<StreamEvent>(value)
            .map_err(|error| malformed(format!("stream event: {error}")))?
        {
            StreamEvent::Delta { delta } => {
                if delta.is_empty() {
                    return Ok(None);
                }
                self.text.push_str(&delta);
                Ok(Some(&self.text))
            }
            StreamEvent::Done { text, logprobs } => {
                self.done = Some(Reply {
                    confidence: confidence(logprobs.as_deref()),
                    text,
                });
                Ok(None)
            }
            StreamEvent::Other => Ok(None),
        }
    }

    /// The final answer, once `transcript.text.done` came.
    pub(crate) fn done(&self) -> Option<&Reply> {
        self.done.as_ref()
    }
}

async fn read_event_stream(
    body: &mut BodyReader<'_>,
    partials: Option<&PartialSink>,
) -> Result<Reply, TranscriptionError> {
    let mut parser = SseParser::new();
    let mut reply = StreamedReply::default();
    loop {
        let chunk = body.chunk().await?;
        let events = match &chunk {
            Some(bytes) => parser.feed(bytes),
            None => parser.finish().map(|last| last.into_iter().collect()),
        }
        .map_err(|error| malformed(error.to_string()))?;
        for data in events {
            if let Some(text) = reply.event(&data)?
                && let Some(partials) = partials
            {
                partials.send(text);
            }
        }
        if let Some(done) = reply.done() {
            return Ok(done.clone());
        }
        if chunk.is_none() {
            return Err(TranscriptionError::Disconnected {
                engine: OPENAI_ENGINE.to_owned(),
                detail: "the event stream ended before transcript.text.done".to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_events_accumulate_then_finish() {
        let mut reply = StreamedReply::default();
        assert_eq!(
            reply
                .event(r#"{"type":"transcript.text.delta","delta":"I'd like"}"#)
                .expect("valid"),
            Some("I'd like")
        );
        assert_eq!(
            reply
                .event(r#"{"type":"transcript.text.delta","delta":" to book","logprobs":[{"token":" to","logprob":-0.01,"bytes":[32,116,111]}]}"#)
                .expect("valid"),
            Some("I'd like to book")
        );
        assert_eq!(
            reply
                .event(r#"{"type":"transcript.text.segment","id":"seg_1","start":0.0,"end":1.0,"text":"x","speaker":"A"}"#)
                .expect("unknown types are skipped"),
            None
        );
        assert!(reply.done().is_none());
        reply
            .event(r#"{"type":"transcript.text.done","text":"I'd like to book.","logprobs":[{"token":"I","logprob":0.0},{"token":"'d","logprob":-0.2}],"usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":6,"total_tokens":20}}"#)
            .expect("valid");
        let done = reply.done().expect("done");
        assert_eq!(done.text, "I'd like to book.");
        let confidence = done.confidence.expect("from logprobs");
        assert!((confidence - (-0.1f32).exp()).abs() < 1e-4, "{confidence}");
        assert_eq!(reply.event("[DONE]").expect("ignored"), None);
    }

    #[test]
    fn malformed_and_error_events_are_typed_errors() {
        let mut reply = StreamedReply::default();
        assert!(matches!(
            reply.event("{not json"),
            Err(TranscriptionError::MalformedResponse { .. })
        ));
        assert!(matches!(
            reply.event(r#"{"type":"transcript.text.delta"}"#),
            Err(TranscriptionError::MalformedResponse { .. })
        ));
        assert!(matches!(
            reply.event(r#"{"type":"error","error":{"message":"server overloaded","type":"server_error"}}"#),
            Err(TranscriptionError::EngineFailed { ref detail, .. }) if detail.contains("server overloaded")
        ));
    }

    #[test]
    fn json_reply_with_and_without_logprobs() {
        let reply =
            parse_json_reply(br#"{"text":"Hello.","usage":{"type":"duration","seconds":2}}"#)
                .expect("valid");
        assert_eq!(
            reply,
            Reply {
                text: "Hello.".into(),
                confidence: None
            }
        );
        let reply =
            parse_json_reply(br#"{"text":"Hi","logprobs":[{"token":"Hi","logprob":-0.5}]}"#)
                .expect("valid");
        assert!((reply.confidence.expect("some") - (-0.5f32).exp()).abs() < 1e-4);
        assert!(matches!(
            parse_json_reply(b"{\"txt\":1}"),
            Err(TranscriptionError::MalformedResponse { .. })
        ));
    }

    #[test]
    fn config_validation() {
        assert!(OpenAiTranscriber::new(OpenAiSttConfig::new("sk-test")).is_ok());
        let mut config = OpenAiSttConfig::new(" ");
        assert!(matches!(
            OpenAiTranscriber::new(config.clone()),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        config.api_key = "sk-x".into();
        config.timeouts.stall = std::time::Duration::ZERO;
        assert!(matches!(
            OpenAiTranscriber::new(config.clone()),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        config.timeouts = HttpTimeouts::default();
        config.api_key = "sk-se\ncret".into();
        let error = OpenAiTranscriber::new(config).expect_err("newline");
        assert!(!error.to_string().contains("cret"), "{error}");
        let transcriber = OpenAiTranscriber::new(OpenAiSttConfig::new("sk-hidden")).expect("ok");
        assert!(!format!("{transcriber:?}").contains("sk-hidden"));
        assert_eq!(
            transcriber.url(),
            "https://api.openai.com/v1/audio/transcriptions"
        );
    }
}
