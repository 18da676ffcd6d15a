//! The HTTP side of the chat client: sends a streaming chat-completions request and reads
//! the event stream incrementally.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::time::{Instant, timeout_at};

use super::assembler::ReplyAssembler;
use super::error::{LlmError, TimeoutStage, describe};
use super::sse::SseParser;
use super::types::{ChatEvent, ChatRequest, LlmConfig, error_message, request_body};

/// Most bytes of an error body read to find the provider's message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Most bytes read after `[DONE]` to let the connection go back to the pool.
const MAX_DRAIN_BYTES: usize = 64 * 1024;
/// How long a finished reply's connection may take to end its body before it is dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// A client for one OpenAI-compatible chat-completions endpoint. Cheap to clone; clones
/// share the connection pool, so keep one per endpoint.
#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: Url,
    config: Arc<LlmConfig>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl ChatClient {
    /// Checks the configuration and prepares the HTTP client (TLS with the platform's root
    /// certificates, `ring` crypto). Opens no connection.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let url = completions_url(&config.base_url)?;
        if config.model.trim().is_empty() {
            return Err(LlmError::InvalidConfig("model is empty".to_owned()));
        }
        if config.timeout.is_zero() || config.first_token_timeout.is_zero() {
            return Err(LlmError::InvalidConfig(
                "timeouts must be positive".to_owned(),
            ));
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                LlmError::InvalidConfig(
                    "api_key contains characters not allowed in a header".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &config.extra_headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| LlmError::InvalidConfig(format!("invalid header name {name:?}")))?;
            let mut header_value = HeaderValue::from_str(value).map_err(|_| {
                LlmError::InvalidConfig(format!("invalid value for header {name:?}"))
            })?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        let tls = crate::tls::client_config()
            .map_err(|error| LlmError::InvalidConfig(format!("TLS set-up failed: {error}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .user_agent(concat!("vaani/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.first_token_timeout.min(config.timeout))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| LlmError::InvalidConfig(describe(error)))?;
        Ok(ChatClient {
            http,
            url,
            config: Arc::new(config),
        })
    }

    /// The chat-completions URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Sends `request` and returns the reply stream once the response headers arrived with
    /// a success status. Error statuses become [`LlmError::Http`] or
    /// [`LlmError::RateLimited`]; both limits of the configuration apply from this call on.
    pub async fn stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let total_deadline = started + self.config.timeout;
        let first_token_deadline = started + self.config.first_token_timeout;
        let (header_deadline, header_stage) = earlier(first_token_deadline, total_deadline);
        let body = request_body(&self.config.model, &request);
        tracing::debug!(
            url = %self.url,
            model = %self.config.model,
            messages = request.messages.len(),
            tools = request.tools.len(),
            "LLM request"
        );
        let send = self.http.post(self.url.clone()).json(&body).send();
        let response = match timeout_at(header_deadline, send).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    stage: header_stage,
                });
            }
            Ok(Err(error)) => {
                return Err(LlmError::Connect {
                    url: self.url.to_string(),
                    message: describe(error),
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(error_from_response(response, total_deadline).await);
        }
        Ok(ChatStream {
            response: Some(response),
            parser: SseParser::new(),
            assembler: ReplyAssembler::default(),
            pending: VecDeque::new(),
            first_token_deadline,
            total_deadline,
        })
    }
}

/// The reply to one request, as a sequence of [`ChatEvent`]s ending in
/// [`ChatEvent::Done`] (or an error). Dropping it before the end closes the connection,
/// which cancels the generation at the provider.
#[derive(Debug)]
pub struct ChatStream {
    /// `None` once the stream ended or failed.
    response: Option<reqwest::Response>,
    parser: SseParser,
    assembler: ReplyAssembler,
    pending: VecDeque<Result<ChatEvent, LlmError>>,
    first_token_deadline: Instant,
    total_deadline: Instant,
}

impl ChatStream {
    /// The next event; `None` after [`ChatEvent::Done`] or an error. Cancel-safe: if the
    /// future is dropped (e.g. in `tokio::select!`), no event is lost.
    pub async fn next(&mut self) -> Option<Result<ChatEvent, LlmError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.assembler.is_done() {
                // The reply is complete: read the end of the body so the connection can
                // be reused, then report the end.
                if let Some(response) = self.response.take() {
                    drain(response).await;
                }
                return None;
            }
            let response = self.response.as_mut()?;
            let (deadline, stage) = if self.assembler.saw_token() {
                (self.total_deadline, TimeoutStage::Total)
            } else {
                earlier(self.first_token_deadline, self.total_deadline)
            };
            match timeout_at(deadline, response.chunk()).await {
                Err(_) => self.fail(LlmError::Timeout { stage }),
                Ok(Err(error)) => self.fail(LlmError::StreamInterrupted(describe(error))),
                Ok(Ok(Some(bytes))) => self.received(&bytes),
                Ok(Ok(None)) => self.ended(),
            }
        }
    }

    /// Collects the whole reply: its text, tool calls, finish reason and usage.
    pub async fn collect(mut self) -> Result<ChatReply, LlmError> {
        let mut reply = ChatReply::default();
        while let Some(event) = self.next().await {
            match event? {
                ChatEvent::TextDelta(text) => reply.text.push_str(&text),
                ChatEvent::ToolCall(call) => reply.tool_calls.push(call),
                ChatEvent::Done {
                    finish_reason,
                    usage,
                } => {
                    reply.finish_reason = finish_reason;
                    reply.usage = usage;
                }
            }
        }
        Ok(reply)
    }

    fn received(&mut self, bytes: &[u8]) {
        let events = match self.parser.feed(bytes) {
            Ok(events) => events,
            Err(error) => return self.fail(LlmError::MalformedStream(error.to_string())),
        };
        for data in events {
            if let Err(error) = self.handle(&data) {
                return self.fail(error);
            }
        }
    }

    fn ended(&mut self) {
        let last = match self.parser.finish() {
            Ok(last) => last,
            Err(error) => return self.fail(LlmError::MalformedStream(error.to_string())),
        };
        if let Some(data) = last
            && let Err(error) = self.handle(&data)
        {
            return self.fail(error);
        }
        let mut events = VecDeque::new();
        let result = self.assembler.end_of_stream(&mut events);
        self.pending.extend(events.into_iter().map(Ok));
        match result {
            Ok(()) => self.response = None,
            Err(error) => self.fail(error),
        }
    }

    fn handle(&mut self, data: &str) -> Result<(), LlmError> {
        let mut events = VecDeque::new();
        let result = self.assembler.event(data, &mut events);
        self.pending.extend(events.into_iter().map(Ok));
        result
    }

    /// Ends the stream with `error` after the events already queued; closes the connection.
    fn fail(&mut self, error: LlmError) {
        tracing::debug!(%error, "LLM reply stream failed");
        self.response = None;
        self.pending.push_back(Err(error));
    }
}

impl Drop for ChatStream {
    /// A complete reply's connection is drained in the background (so it can be reused);
    /// an incomplete one is closed, which cancels the generation.
    fn drop(&mut self) {
        if self.assembler.is_done()
            && let Some(response) = self.response.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(drain(response));
        }
    }
}

/// A whole reply, from [`ChatStream::collect`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatReply {
    /// All text deltas joined.
    pub text: String,
    /// The tool calls, in the model's order.
    pub tool_calls: Vec<super::types::ToolCall>,
    /// Why the model stopped, if sent.
    pub finish_reason: Option<String>,
    /// Token counts, if sent.
    pub usage: Option<super::types::Usage>,
}

/// Reads what is left of a finished reply's body, bounded in size and time.
async fn drain(mut response: reqwest::Response) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async move {
        let mut read = 0usize;
        while let Ok(Some(bytes)) = response.chunk().await {
            read += bytes.len();
            if read > MAX_DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
}

/// The earlier of the first-token and total deadlines, with its stage.
fn earlier(first_token: Instant, total: Instant) -> (Instant, TimeoutStage) {
    if first_token < total {
        (first_token, TimeoutStage::FirstToken)
    } else {
        (total, TimeoutStage::Total)
    }
}

/// `{base_url}/chat/completions`, keeping any query (Azure's `api-version`); a base URL
/// that already ends in `/chat/completions` is used as is.
fn completions_url(base_url: &str) -> Result<Url, LlmError> {
    let mut url = Url::parse(base_url.trim())
        .map_err(|error| LlmError::InvalidConfig(format!("base_url {base_url:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LlmError::InvalidConfig(format!(
            "base_url {base_url:?} is not http or https"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LlmError::InvalidConfig(
            "base_url must not contain credentials; use api_key or extra_headers".to_owned(),
        ));
    }
    if url
        .path()
        .trim_end_matches('/')
        .ends_with("/chat/completions")
    {
        return Ok(url);
    }
    url.path_segments_mut()
        .map_err(|_| LlmError::InvalidConfig(format!("base_url {base_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

/// The typed error for a non-success response, from its status, headers and body.
async fn error_from_response(mut response: reqwest::Response, deadline: Instant) -> LlmError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    let _ = timeout_at(deadline, async {
        while let Ok(Some(bytes)) = response.chunk().await {
            body.extend_from_slice(&bytes);
            if body.len() >= MAX_ERROR_BODY_BYTES {
                break;
            }
        }
    })
    .await;
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| error_message(&value))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text.chars().take(500).collect()
            }
        });
    tracing::debug!(status = status.as_u16(), %message, "LLM request refused");
    if status == StatusCode::TOO_MANY_REQUESTS {
        LlmError::RateLimited {
            retry_after,
            message,
        }
    } else {
        LlmError::Http {
            status: status.as_u16(),
            message,
        }
    }
}

/// How long the provider asks to wait: OpenAI's `retry-after-ms`, else `Retry-After` in
/// seconds (the HTTP-date form is not used by these providers and is ignored).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_url_variants() {
        let url = |base: &str| completions_url(base).map(|u| u.to_string());
        assert_eq!(
            url("https://api.openai.com/v1").as_deref(),
            Ok("https://api.openai.com/v1/chat/completions")
        );
        assert_eq!(
            url("http://127.0.0.1:11434/v1/").as_deref(),
            Ok("http://127.0.0.1:11434/v1/chat/completions")
        );
        assert_eq!(
            url("https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21")
                .as_deref(),
            Ok(
                "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
            )
        );
        assert_eq!(
            url("https://api.groq.com/openai/v1/chat/completions").as_deref(),
            Ok("https://api.groq.com/openai/v1/chat/completions")
        );
        assert!(matches!(url("ftp://x/v1"), Err(LlmError::InvalidConfig(_))));
        assert!(matches!(url("not a url"), Err(LlmError::InvalidConfig(_))));
        assert!(matches!(
            url("https://user:pw@x/v1"),
            Err(LlmError::InvalidConfig(_))
        ));
    }

    #[test]
    fn retry_after_forms() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.remove("retry-after-ms");
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn new_validates_config_and_builds_tls() {
        let mut config = LlmConfig::new("https://api.openai.com/v1", "gpt-4o-mini");
        config.api_key = Some("sk-test".into());
        config.extra_headers = vec![("api-key".into(), "k".into())];
        let client = ChatClient::new(config.clone()).expect("valid config");
        assert_eq!(client.url(), "https://api.openai.com/v1/chat/completions");
        assert!(!format!("{client:?}").contains("sk-test"));

        let mut bad = config.clone();
        bad.model = " ".into();
        assert!(matches!(
            ChatClient::new(bad),
            Err(LlmError::InvalidConfig(_))
        ));
        let mut bad = config.clone();
        bad.extra_headers = vec![("bad header".into(), "v".into())];
        assert!(matches!(
            ChatClient::new(bad),
            Err(LlmError::InvalidConfig(_))
        ));
        let mut bad = config;
        bad.api_key = Some("line\nbreak".into());
        let error = ChatClient::new(bad).expect_err("newline in key");
        assert!(!error.to_string().contains("break"), "{error}");
    }
}
