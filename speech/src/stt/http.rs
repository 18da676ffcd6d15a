//! HTTP plumbing shared by the utterance-level cloud engines (OpenAI, Sarvam): the client
//! with our TLS set-up, deadlines, typed errors from error statuses, and WAV encoding.

use std::io::Cursor;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::time::{Instant, timeout_at};

use crate::transcriber::{TranscriptionError, TranscriptionTimeout};

/// Most bytes of a response body read (an error body, or a JSON transcript).
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

/// Time limits of one HTTP transcription request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// TCP and TLS connect.
    pub connect: Duration,
    /// From sending the request (upload included) to the response headers.
    pub response: Duration,
    /// Longest gap between two pieces of the response body.
    pub stall: Duration,
    /// The whole request.
    pub total: Duration,
}

impl Default for HttpTimeouts {
    /// 5 s connect, 15 s to the response, 5 s stall, 30 s in all.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(15),
            stall: Duration::from_secs(5),
            total: Duration::from_secs(30),
        }
    }
}

impl HttpTimeouts {
    pub(crate) fn check(&self, engine: &str) -> Result<(), TranscriptionError> {
        if self.connect.is_zero()
            || self.response.is_zero()
            || self.stall.is_zero()
            || self.total.is_zero()
        {
            return Err(invalid(engine, "timeouts must be positive"));
        }
        Ok(())
    }
}

pub(crate) fn invalid(engine: &str, detail: impl Into<String>) -> TranscriptionError {
    TranscriptionError::InvalidConfig {
        engine: engine.to_owned(),
        detail: detail.into(),
    }
}

/// `base_url` with `path` appended, checked: http or https, no credentials in it.
pub(crate) fn endpoint_url(
    engine: &str,
    base_url: &str,
    path: &[&str],
) -> Result<Url, TranscriptionError> {
    let mut url = Url::parse(base_url.trim())
        .map_err(|error| invalid(engine, format!("base_url {base_url:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            engine,
            format!("base_url {base_url:?} is not http or https"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            engine,
            "base_url must not contain credentials; use api_key",
        ));
    }
    url.path_segments_mut()
        .map_err(|_| invalid(engine, format!("base_url {base_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(path);
    Ok(url)
}

/// A header value holding a secret (never printed by `Debug`).
pub(crate) fn secret_header(
    engine: &str,
    value: &str,
) -> Result<reqwest::header::HeaderValue, TranscriptionError> {
    let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        invalid(
            engine,
            "api_key contains characters not allowed in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A reqwest client with the crate's TLS set-up (rustls, `ring`, platform roots).
pub(crate) fn build_client(
    engine: &str,
    headers: HeaderMap,
    connect_timeout: Duration,
) -> Result<reqwest::Client, TranscriptionError> {
    let tls = crate::tls::client_config()
        .map_err(|error| invalid(engine, format!("TLS set-up failed: {error}")))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .default_headers(headers)
        .user_agent(concat!("vaani/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|error| invalid(engine, describe(error)))
}

/// Deadlines of one request, fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    response: Instant,
    total: Instant,
    stall: Duration,
}

impl Deadlines {
    pub(crate) fn start(timeouts: &HttpTimeouts) -> Self {
        let now = Instant::now();
        Self {
            response: now + timeouts.response,
            total: now + timeouts.total,
            stall: timeouts.stall,
        }
    }
}

/// Sends the request; a success response is returned, an error status becomes its typed
/// error (the body is read for the provider's message).
pub(crate) async fn send(
    engine: &str,
    request: reqwest::RequestBuilder,
    deadlines: Deadlines,
) -> Result<reqwest::Response, TranscriptionError> {
    let (deadline, stage) = if deadlines.response < deadlines.total {
        (deadlines.response, TranscriptionTimeout::Response)
    } else {
        (deadlines.total, TranscriptionTimeout::Total)
    };
    let response = match timeout_at(deadline, request.send()).await {
        Err(_) => {
            return Err(TranscriptionError::Timeout {
                engine: engine.to_owned(),
                stage,
            });
        }
        Ok(Err(error)) => {
            return Err(if error.is_connect() && error.is_timeout() {
                TranscriptionError::Timeout {
                    engine: engine.to_owned(),
                    stage: TranscriptionTimeout::Connect,
                }
            } else {
                TranscriptionError::Connect {
                    engine: engine.to_owned(),
                    detail: describe(error),
                }
            });
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let mut reader = BodyReader::new(engine, response, deadlines);
    // The error body is best effort: a broken or slow one still gives the status.
    let body = reader.read_to_end(64 * 1024).await.unwrap_or_default();
    Err(error_from_status(engine, status, &headers, &body))
}

/// Reads a response body piece by piece within the stall and total limits.
pub(crate) struct BodyReader<'a> {
    engine: &'a str,
    response: reqwest::Response,
    deadlines: Deadlines,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(engine: &'a str, response: reqwest::Response, deadlines: Deadlines) -> Self {
        Self {
            engine,
            response,
            deadlines,
        }
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, TranscriptionError> {
        let stall_deadline = Instant::now() + self.deadlines.stall;
        let (deadline, stage) = if stall_deadline < self.deadlines.total {
            (stall_deadline, TranscriptionTimeout::Stalled)
        } else {
            (self.deadlines.total, TranscriptionTimeout::Total)
        };
        match timeout_at(deadline, self.response.chunk()).await {
            Err(_) => Err(TranscriptionError::Timeout {
                engine: self.engine.to_owned(),
                stage,
            }),
            Ok(Err(error)) => Err(TranscriptionError::Disconnected {
                engine: self.engine.to_owned(),
                detail: describe(error),
            }),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    /// The whole body, at most `limit` bytes (more is an error).
    pub(crate) async fn read_to_end(
        &mut self,
        limit: usize,
    ) -> Result<Vec<u8>, TranscriptionError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(TranscriptionError::MalformedResponse {
                    engine: self.engine.to_owned(),
                    detail: format!("response body longer than {limit} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The typed error for an error status, from its headers and body.
pub(crate) fn error_from_status(
    engine: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> TranscriptionError {
    let message = provider_error_message(body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text.chars().take(500).collect()
        }
    });
    tracing::debug!(engine, status = status.as_u16(), %message, "speech-to-text request refused");
    let engine = engine.to_owned();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => TranscriptionError::Unauthorized {
            engine,
            status: status.as_u16(),
            message,
        },
        StatusCode::TOO_MANY_REQUESTS => TranscriptionError::RateLimited {
            engine,
            retry_after: retry_after(headers),
            message,
        },
        _ => TranscriptionError::Http {
            engine,
            status: status.as_u16(),
            message,
        },
    }
}

/// The message of a provider's JSON error body, with its code or type when given. Knows
/// OpenAI's and Sarvam's `{"error": {"message", "type"/"code"}}` and Deepgram's
/// `{"err_code", "err_msg"}` and `{"category", "message", "details"}`.
pub(crate) fn provider_error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |value: &serde_json::Value, key: &str| -> Option<String> {
        match value.get(key)? {
            serde_json::Value::String(text) if !text.trim().is_empty() => {
                Some(text.trim().to_owned())
            }
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    let with_code = |message: String, code: Option<String>| match code {
        Some(code) => format!("{message} ({code})"),
        None => message,
    };
    if let Some(error) = value.get("error") {
        if let serde_json::Value::String(message) = error {
            return Some(message.clone());
        }
        let message = text(error, "message")?;
        let code = text(error, "code").or_else(|| text(error, "type"));
        return Some(with_code(message, code));
    }
    if let Some(message) = text(&value, "err_msg") {
        return Some(with_code(message, text(&value, "err_code")));
    }
    let message = text(&value, "message").or_else(|| text(&value, "detail"))?;
    let message = match text(&value, "details") {
        Some(details) => format!("{message}: {details}"),
        None => message,
    };
    Some(with_code(message, text(&value, "category")))
}

/// How long the provider asks to wait: `retry-after-ms`, else `Retry-After` in seconds
/// (the HTTP-date form is ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// A reqwest error with its causes, without the URL.
pub(crate) fn describe(error: reqwest::Error) -> String {
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

/// A mono 16-bit PCM WAV file of `samples`, in memory.
pub(crate) fn wav_bytes(
    engine: &str,
    samples: &[i16],
    sample_rate: u32,
) -> Result<Vec<u8>, TranscriptionError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let failed = |error: hound::Error| TranscriptionError::EngineFailed {
        engine: engine.to_owned(),
        detail: format!("encoding WAV: {error}"),
    };
    let mut cursor = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut cursor, spec).map_err(failed)?;
    {
        let mut samples_writer = writer.get_i16_writer(samples.len() as u32);
        for &sample in samples {
            samples_writer.write_sample(sample);
        }
        samples_writer.flush().map_err(failed)?;
    }
    writer.finalize().map_err(failed)?;
    Ok(cursor.into_inner())
}

/// Checks an utterance request: audio present, sane sample rate, at most `max_ms` long.
pub(crate) fn check_request(
    request: &crate::transcriber::TranscriptionRequest,
    max_ms: u64,
) -> Result<(), TranscriptionError> {
    if request.samples.is_empty() {
        return Err(TranscriptionError::EmptyAudio);
    }
    if !(8_000..=48_000).contains(&request.sample_rate) {
        return Err(TranscriptionError::BadSampleRate(request.sample_rate));
    }
    let duration_ms = request.duration_ms();
    if duration_ms > max_ms {
        return Err(TranscriptionError::TooLong {
            duration_ms,
            limit_ms: max_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn endpoint_urls() {
        let url = |base: &str| endpoint_url("x", base, &["audio", "transcriptions"]);
        assert_eq!(
            url("https://api.openai.com/v1").expect("valid").as_str(),
            "https://api.openai.com/v1/audio/transcriptions"
        );
        assert_eq!(
            url("http://127.0.0.1:9/v1/").expect("valid").as_str(),
            "http://127.0.0.1:9/v1/audio/transcriptions"
        );
        assert!(matches!(
            url("ftp://x/v1"),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        assert!(matches!(
            url("https://u:p@x/v1"),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        assert!(matches!(
            url("no url"),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn provider_error_shapes() {
        let message = |body: &str| provider_error_message(body.as_bytes());
        assert_eq!(
            message(
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
            )
            .as_deref(),
            Some("Incorrect API key provided (invalid_api_key)")
        );
        assert_eq!(
            message(
                r#"{"error":{"message":"Invalid API key","code":"invalid_api_key_error","request_id":"20250101_abc"}}"#
            )
            .as_deref(),
            Some("Invalid API key (invalid_api_key_error)")
        );
        assert_eq!(
            message(
                r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"u"}"#
            )
            .as_deref(),
            Some("Invalid credentials. (INVALID_AUTH)")
        );
        assert_eq!(
            message(
                r#"{"category":"INSUFFICIENT_PERMISSIONS","message":"Project lacks credits.","details":"top up","request_id":"u"}"#
            )
            .as_deref(),
            Some("Project lacks credits.: top up (INSUFFICIENT_PERMISSIONS)")
        );
        assert_eq!(message("not json"), None);
        assert_eq!(message(r#"{"error":{"code":5}}"#), None);
        assert_eq!(message("[1,2]"), None);
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert!(matches!(
            error_from_status("x", StatusCode::FORBIDDEN, &headers, b""),
            TranscriptionError::Unauthorized { status: 403, .. }
        ));
        assert!(matches!(
            error_from_status("x", StatusCode::TOO_MANY_REQUESTS, &headers, b"slow down"),
            TranscriptionError::RateLimited { retry_after: Some(d), ref message, .. }
                if d == Duration::from_secs(3) && message == "slow down"
        ));
        let error = error_from_status("x", StatusCode::BAD_GATEWAY, &headers, b"");
        assert!(matches!(
            error,
            TranscriptionError::Http { status: 502, ref message, .. } if message == "Bad Gateway"
        ));
        assert!(error.is_transient());
    }

    #[test]
    fn wav_has_a_riff_header_and_the_samples() {
        let wav = wav_bytes("x", &[1, -2, 3], 16_000).expect("wav");
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..12], b"WAVE");
        assert_eq!(wav.len(), 44 + 6);
        let reader = hound::WavReader::new(Cursor::new(wav)).expect("readable");
        assert_eq!(reader.spec().sample_rate, 16_000);
        let samples: Vec<i16> = reader
            .into_samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        assert_eq!(samples, vec![1, -2, 3]);
    }
}
