//! The HTTP side shared by the cloud engines: the client (rustls with `ring`, the API key as
//! a sensitive default header), the limits, typed errors from the providers' error bodies,
//! and the stream that reads a raw PCM response body as it arrives.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use super::pcm::PcmConverter;
use super::stream::{AudioChunk, AudioStream, ChunkFuture, TtsUsage};
use crate::synthesizer::{SpeechError, TtsTimeoutStage};

/// Most bytes of an error body read to find the provider's message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Longest piece of a body quoted in an error message, in characters.
const QUOTE_LIMIT: usize = 300;

/// Limits of one cloud text-to-speech request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtsTimeouts {
    /// Opening the connection (TCP and TLS).
    pub connect: Duration,
    /// From sending the request to the first audio bytes (includes the response headers).
    pub first_byte: Duration,
    /// Longest gap between two pieces of audio once audio is flowing.
    pub idle: Duration,
    /// The whole request, from sending it to the last audio byte.
    pub total: Duration,
}

impl Default for TtsTimeouts {
    fn default() -> Self {
        TtsTimeouts {
            connect: Duration::from_secs(3),
            first_byte: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            total: Duration::from_secs(60),
        }
    }
}

impl TtsTimeouts {
    fn check(&self, engine: &str) -> Result<(), SpeechError> {
        if [self.connect, self.first_byte, self.idle, self.total]
            .iter()
            .any(Duration::is_zero)
        {
            return Err(invalid_config(engine, "timeouts must be positive"));
        }
        Ok(())
    }

    fn limit(&self, stage: TtsTimeoutStage) -> Duration {
        match stage {
            TtsTimeoutStage::Connect => self.connect,
            TtsTimeoutStage::FirstByte => self.first_byte,
            TtsTimeoutStage::Idle => self.idle,
            TtsTimeoutStage::Total => self.total,
        }
    }
}

pub(crate) fn invalid_config(engine: &str, detail: impl Into<String>) -> SpeechError {
    SpeechError::InvalidConfig {
        engine: engine.to_owned(),
        detail: detail.into(),
    }
}

/// Checks that `base_url` is an http(s) URL without credentials and appends `segments` to
/// its path (each percent-encoded as needed).
pub(crate) fn endpoint_url(
    engine: &str,
    base_url: &str,
    segments: &[&str],
) -> Result<Url, SpeechError> {
    let mut url = Url::parse(base_url.trim())
        .map_err(|error| invalid_config(engine, format!("base_url {base_url:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_config(
            engine,
            format!("base_url {base_url:?} is not http or https"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_config(
            engine,
            "base_url must not contain credentials; use api_key",
        ));
    }
    url.path_segments_mut()
        .map_err(|_| invalid_config(engine, format!("base_url {base_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The deadlines of one request, fixed when it is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub started: Instant,
    pub first_byte: Instant,
    pub total: Instant,
}

impl Deadlines {
    fn start(timeouts: &TtsTimeouts) -> Self {
        let started = Instant::now();
        Deadlines {
            started,
            first_byte: started + timeouts.first_byte,
            total: started + timeouts.total,
        }
    }

    /// The deadline before any audio arrived, and its stage.
    fn before_audio(&self) -> (Instant, TtsTimeoutStage) {
        if self.first_byte < self.total {
            (self.first_byte, TtsTimeoutStage::FirstByte)
        } else {
            (self.total, TtsTimeoutStage::Total)
        }
    }

    /// The deadline for the next piece once audio is flowing, and its stage.
    fn next_piece(&self, last_piece: Instant, idle: Duration) -> (Instant, TtsTimeoutStage) {
        let idle_deadline = last_piece + idle;
        if idle_deadline < self.total {
            (idle_deadline, TtsTimeoutStage::Idle)
        } else {
            (self.total, TtsTimeoutStage::Total)
        }
    }
}

/// An HTTP client for one provider endpoint family. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpTts {
    engine: &'static str,
    http: reqwest::Client,
    timeouts: TtsTimeouts,
}

impl HttpTts {
    /// A client that sends `auth_value` in header `auth_header` (marked sensitive, so it is
    /// never printed) with every request.
    pub(crate) fn new(
        engine: &'static str,
        auth_header: HeaderName,
        auth_value: &str,
        timeouts: TtsTimeouts,
    ) -> Result<Self, SpeechError> {
        timeouts.check(engine)?;
        let mut value = HeaderValue::from_str(auth_value).map_err(|_| {
            invalid_config(
                engine,
                "api_key contains characters not allowed in a header",
            )
        })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(auth_header, value);
        let tls = crate::tls::client_config()
            .map_err(|error| invalid_config(engine, format!("TLS set-up failed: {error}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .user_agent(concat!("vaani/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| invalid_config(engine, describe(error)))?;
        Ok(HttpTts {
            engine,
            http,
            timeouts,
        })
    }

    pub(crate) fn engine(&self) -> &'static str {
        self.engine
    }

    /// Posts `body` as JSON and waits for the response headers. A success status returns
    /// the response and the request's deadlines; an error status becomes
    /// [`SpeechError::Http`] or [`SpeechError::RateLimited`] with the provider's message.
    pub(crate) async fn post_json(
        &self,
        url: Url,
        body: &Value,
    ) -> Result<(reqwest::Response, Deadlines), SpeechError> {
        let deadlines = Deadlines::start(&self.timeouts);
        let (deadline, stage) = deadlines.before_audio();
        tracing::debug!(engine = self.engine, url = %redacted_url(&url), "text-to-speech request");
        let send = self.http.post(url).json(body).send();
        let response = match timeout_at(deadline, send).await {
            Err(_) => return Err(self.timeout(stage)),
            Ok(Err(error)) if error.is_connect() && error.is_timeout() => {
                return Err(self.timeout(TtsTimeoutStage::Connect));
            }
            Ok(Err(error)) => {
                return Err(SpeechError::Connect {
                    engine: self.engine.to_owned(),
                    message: describe(error),
                });
            }
            Ok(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(self.error_from_response(response, deadlines.total).await);
        }
        Ok((response, deadlines))
    }

    /// Reads a whole (non-streamed) success body of at most `limit` bytes, under the
    /// request's deadlines.
    pub(crate) async fn read_body(
        &self,
        mut response: reqwest::Response,
        deadlines: Deadlines,
        limit: usize,
    ) -> Result<Vec<u8>, SpeechError> {
        let mut body = Vec::new();
        let mut last_piece: Option<Instant> = None;
        loop {
            let (deadline, stage) = match last_piece {
                None => deadlines.before_audio(),
                Some(at) => deadlines.next_piece(at, self.timeouts.idle),
            };
            match timeout_at(deadline, response.chunk()).await {
                Err(_) => return Err(self.timeout(stage)),
                Ok(Err(error)) => return Err(self.interrupted(error)),
                Ok(Ok(None)) => return Ok(body),
                Ok(Ok(Some(bytes))) => {
                    if body.len() + bytes.len() > limit {
                        return Err(SpeechError::BadAudio(format!(
                            "{} sent more than {limit} bytes",
                            self.engine
                        )));
                    }
                    body.extend_from_slice(&bytes);
                    if !bytes.is_empty() {
                        last_piece = Some(Instant::now());
                    }
                }
            }
        }
    }

    /// Turns a success response carrying raw 16-bit PCM at `from_hz` into a stream of
    /// chunks at `to_hz`. A JSON or text body (a misrouted error) is reported as an error.
    pub(crate) async fn pcm_stream(
        &self,
        response: reqwest::Response,
        deadlines: Deadlines,
        from_hz: u32,
        to_hz: u32,
        characters: u64,
    ) -> Result<PcmHttpStream, SpeechError> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") || content_type.starts_with("text/") {
            let body = read_limited(response, deadlines.total, MAX_ERROR_BODY_BYTES).await;
            return Err(SpeechError::BadAudio(format!(
                "{} sent {content_type} instead of audio: {}",
                self.engine,
                body_message(&body, StatusCode::OK)
            )));
        }
        Ok(PcmHttpStream {
            engine: self.engine,
            response: Some(response),
            converter: PcmConverter::new(from_hz, to_hz)?,
            sample_rate: to_hz,
            timeouts: self.timeouts,
            deadlines,
            last_piece: None,
            usage: TtsUsage {
                characters,
                ..TtsUsage::default()
            },
            pending: VecDeque::new(),
        })
    }

    fn timeout(&self, stage: TtsTimeoutStage) -> SpeechError {
        stage_timeout(self.engine, &self.timeouts, stage)
    }

    fn interrupted(&self, error: reqwest::Error) -> SpeechError {
        SpeechError::StreamInterrupted {
            engine: self.engine.to_owned(),
            message: describe(error),
        }
    }

    /// The typed error for a non-success response, from its status, headers and body.
    async fn error_from_response(
        &self,
        response: reqwest::Response,
        deadline: Instant,
    ) -> SpeechError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_limited(response, deadline, MAX_ERROR_BODY_BYTES).await;
        let message = body_message(&body, status);
        tracing::debug!(engine = self.engine, status = status.as_u16(), %message, "text-to-speech request refused");
        if status == StatusCode::TOO_MANY_REQUESTS {
            SpeechError::RateLimited {
                engine: self.engine.to_owned(),
                retry_after,
                message,
            }
        } else {
            SpeechError::Http {
                engine: self.engine.to_owned(),
                status: status.as_u16(),
                message,
            }
        }
    }
}

fn stage_timeout(engine: &str, timeouts: &TtsTimeouts, stage: TtsTimeoutStage) -> SpeechError {
    SpeechError::StageTimeout {
        engine: engine.to_owned(),
        stage,
        limit_ms: u64::try_from(timeouts.limit(stage).as_millis()).unwrap_or(u64::MAX),
    }
}

/// The audio of one streamed response, converted to the call's rate as it arrives.
pub(crate) struct PcmHttpStream {
    engine: &'static str,
    /// `None` once the body ended or failed.
    response: Option<reqwest::Response>,
    converter: PcmConverter,
    sample_rate: u32,
    timeouts: TtsTimeouts,
    deadlines: Deadlines,
    /// When the last audio bytes arrived; `None` before the first.
    last_piece: Option<Instant>,
    usage: TtsUsage,
    pending: VecDeque<Result<AudioChunk, SpeechError>>,
}

impl PcmHttpStream {
    async fn next(&mut self) -> Option<Result<AudioChunk, SpeechError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let response = self.response.as_mut()?;
            let (deadline, stage) = match self.last_piece {
                None => self.deadlines.before_audio(),
                Some(at) => self.deadlines.next_piece(at, self.timeouts.idle),
            };
            match timeout_at(deadline, response.chunk()).await {
                Err(_) => self.fail(stage_timeout(self.engine, &self.timeouts, stage)),
                Ok(Err(error)) => self.fail(SpeechError::StreamInterrupted {
                    engine: self.engine.to_owned(),
                    message: describe(error),
                }),
                Ok(Ok(Some(bytes))) => {
                    if !bytes.is_empty() {
                        self.last_piece = Some(Instant::now());
                    }
                    let samples = self.converter.push(&bytes);
                    self.deliver(samples);
                }
                Ok(Ok(None)) => self.end(),
            }
        }
    }

    fn deliver(&mut self, samples: Vec<i16>) {
        if samples.is_empty() {
            return;
        }
        if self.usage.time_to_first_audio.is_none() {
            self.usage.time_to_first_audio = Some(self.deadlines.started.elapsed());
        }
        self.usage.samples += samples.len() as u64;
        self.pending.push_back(Ok(AudioChunk {
            sample_rate: self.sample_rate,
            samples,
        }));
    }

    fn end(&mut self) {
        self.response = None;
        let (tail, odd_byte) = self.converter.finish();
        if odd_byte {
            tracing::debug!(
                engine = self.engine,
                "audio ended with half a sample; dropped"
            );
        }
        self.deliver(tail);
        if self.usage.samples == 0 {
            self.pending.push_back(Err(SpeechError::BadAudio(format!(
                "{} ended the response without audio",
                self.engine
            ))));
        }
    }

    /// Ends the stream with `error` after the chunks already queued; closes the connection.
    fn fail(&mut self, error: SpeechError) {
        tracing::debug!(%error, "text-to-speech audio stream failed");
        self.response = None;
        self.pending.push_back(Err(error));
    }
}

impl AudioStream for PcmHttpStream {
    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(self.next())
    }

    fn usage(&self) -> TtsUsage {
        self.usage
    }
}

/// Reads at most `limit` bytes of a body before `deadline`; whatever arrived on error.
async fn read_limited(mut response: reqwest::Response, deadline: Instant, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = timeout_at(deadline, async {
        while let Ok(Some(bytes)) = response.chunk().await {
            body.extend_from_slice(&bytes);
            if body.len() >= limit {
                break;
            }
        }
    })
    .await;
    body.truncate(limit);
    body
}

/// The provider's error message from an error body: JSON in any of the providers' shapes,
/// else the start of the text, else the status reason.
pub(crate) fn body_message(body: &[u8], status: StatusCode) -> String {
    if let Some(message) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| provider_message(&value))
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        quote(text)
    }
}

/// The message of a JSON error body in the shapes the providers use:
///
/// * OpenAI, Sarvam: `{"error": {"message", "type"?, "code"?}}`;
/// * ElevenLabs: `{"detail": {"status", "message"}}`, or FastAPI validation errors
///   `{"detail": [{"loc", "msg", "type"}]}`, or `{"detail": "text"}`;
/// * Deepgram: `{"err_code", "err_msg", "request_id"}` or
///   `{"category", "message", "details", "request_id"}`.
pub(crate) fn provider_message(value: &Value) -> Option<String> {
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let with_tags = |message: String, tags: &[(&str, Option<String>)]| -> String {
        let tags: Vec<String> = tags
            .iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
            .collect();
        let message = quote(&message);
        if tags.is_empty() {
            message
        } else {
            format!("{message} ({})", tags.join(", "))
        }
    };
    if let Some(error) = value.get("error") {
        if let Some(message) = text(error.get("message")) {
            return Some(with_tags(
                message,
                &[
                    ("type", text(error.get("type"))),
                    ("code", text(error.get("code"))),
                ],
            ));
        }
        if let Some(message) = text(Some(error)) {
            return Some(quote(&message));
        }
    }
    if let Some(detail) = value.get("detail") {
        if let Some(message) = text(detail.get("message")) {
            return Some(with_tags(
                message,
                &[("status", text(detail.get("status")))],
            ));
        }
        if let Some(message) = text(Some(detail)) {
            return Some(quote(&message));
        }
        if let Value::Array(items) = detail {
            let messages: Vec<String> = items
                .iter()
                .filter_map(|item| {
                    let msg = text(item.get("msg"))?;
                    let location = item
                        .get("loc")
                        .and_then(Value::as_array)
                        .map(|parts| {
                            parts
                                .iter()
                                .filter_map(|p| text(Some(p)))
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .filter(|location| !location.is_empty());
                    Some(match location {
                        Some(location) => format!("{location}: {msg}"),
                        None => msg,
                    })
                })
                .collect();
            if !messages.is_empty() {
                return Some(quote(&messages.join("; ")));
            }
        }
    }
    if let Some(message) = text(value.get("err_msg")) {
        return Some(with_tags(message, &[("code", text(value.get("err_code")))]));
    }
    if let Some(message) = text(value.get("message")) {
        let message = match text(value.get("details")) {
            Some(details) => format!("{message} {details}"),
            None => message,
        };
        return Some(with_tags(
            message,
            &[("category", text(value.get("category")))],
        ));
    }
    None
}

/// How long the provider asks to wait: `retry-after-ms`, else `Retry-After` in seconds (the
/// HTTP-date form is not used by these providers and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value = headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(86_400.0)));
    }
    number(RETRY_AFTER.as_str()).map(|secs| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// The start of `text` for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The URL without its query (which never holds secrets here, but stays out of logs anyway).
fn redacted_url(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// The message of a reqwest error with its causes, without the URL and never with headers.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The ISO 639-1 primary subtag of a BCP 47 tag (`hi-IN` → `hi`), if it has one.
pub(crate) fn primary_language(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    (primary.len() == 2 && primary.chars().all(|c| c.is_ascii_lowercase())).then_some(primary)
}

/// Whether a voice or model name from a request is a plain identifier (ASCII letters,
/// digits, `-`, `_`, `:`), so it is safe to send (also as a URL path segment).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages_in_every_provider_shape() {
        let message = |v: Value| provider_message(&v);
        assert_eq!(
            message(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})).as_deref(),
            Some("Incorrect API key provided (type invalid_request_error, code invalid_api_key)")
        );
        assert_eq!(
            message(json!({"error": {"message": "Invalid API key", "code": "invalid_api_key_error", "request_id": "x"}})).as_deref(),
            Some("Invalid API key (code invalid_api_key_error)")
        );
        assert_eq!(
            message(json!({"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota of 10000."}})).as_deref(),
            Some("This request exceeds your quota of 10000. (status quota_exceeded)")
        );
        assert_eq!(
            message(json!({"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "value_error.missing"}]})).as_deref(),
            Some("body.text: field required")
        );
        assert_eq!(
            message(json!({"detail": "Not Found"})).as_deref(),
            Some("Not Found")
        );
        assert_eq!(
            message(json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": "u"})).as_deref(),
            Some("Invalid credentials. (code INVALID_AUTH)")
        );
        assert_eq!(
            message(json!({"category": "INVALID_JSON", "message": "Invalid JSON submitted.", "details": "expected `:`", "request_id": "u"})).as_deref(),
            Some("Invalid JSON submitted. expected `:` (category INVALID_JSON)")
        );
        assert_eq!(
            message(json!({"error": "overloaded"})).as_deref(),
            Some("overloaded")
        );
        assert_eq!(message(json!({"unrelated": 1})), None);
        assert_eq!(message(json!([1, 2])), None);
    }

    #[test]
    fn bodies_that_are_not_json() {
        assert_eq!(
            body_message(b"upstream unavailable\n", StatusCode::BAD_GATEWAY),
            "upstream unavailable"
        );
        assert_eq!(body_message(b"", StatusCode::BAD_GATEWAY), "Bad Gateway");
        assert_eq!(
            body_message(&[0xff, 0xfe, b'x'], StatusCode::OK),
            "\u{fffd}\u{fffd}x"
        );
        let long = "é".repeat(1000);
        assert_eq!(
            body_message(long.as_bytes(), StatusCode::OK)
                .chars()
                .count(),
            QUOTE_LIMIT + 1
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn endpoint_urls() {
        let url = |base: &str, segments: &[&str]| {
            endpoint_url("t", base, segments).map(|url| url.to_string())
        };
        assert_eq!(
            url(
                "https://api.elevenlabs.io",
                &["v1", "text-to-speech", "a b/c", "stream"]
            )
            .ok()
            .as_deref(),
            Some("https://api.elevenlabs.io/v1/text-to-speech/a%20b%2Fc/stream")
        );
        assert_eq!(
            url("http://127.0.0.1:9/proxy/", &["v1", "speak"])
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:9/proxy/v1/speak")
        );
        assert!(matches!(
            url("ftp://x", &[]),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert!(matches!(
            url("https://u:p@x", &[]),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert!(matches!(
            url("not a url", &[]),
            Err(SpeechError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn language_and_names() {
        assert_eq!(primary_language("hi-IN").as_deref(), Some("hi"));
        assert_eq!(primary_language("EN_us").as_deref(), Some("en"));
        assert_eq!(primary_language("fil-PH"), None);
        assert_eq!(primary_language(""), None);
        assert!(is_plain_name("aura-2-thalia-en"));
        assert!(is_plain_name("bulbul:v2"));
        assert!(!is_plain_name("a/../b"));
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name(""));
    }

    #[test]
    fn timeouts_must_be_positive() {
        let timeouts = TtsTimeouts {
            idle: Duration::ZERO,
            ..TtsTimeouts::default()
        };
        assert!(matches!(
            HttpTts::new("t", HeaderName::from_static("x-key"), "k", timeouts).err(),
            Some(SpeechError::InvalidConfig { .. })
        ));
        assert!(matches!(
            HttpTts::new(
                "t",
                HeaderName::from_static("x-key"),
                "bad\nkey",
                TtsTimeouts::default()
            )
            .err(),
            Some(SpeechError::InvalidConfig { .. })
        ));
    }
}
