//! LLM and HTTP: what a plugin asks for and what comes back (0.2.0).

use std::fmt;

use crate::types::PlaybackId;

/// Identifies one [`Call::generate`](crate::Call::generate) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GenerationId(pub u64);

/// Identifies one [`Call::fetch`](crate::Call::fetch) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub u64);

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The caller (or the plugin on their behalf).
    User,
    /// The model.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    /// The model's id for this call; send it back with [`LlmRequest::tool_result`].
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments_json: String,
}

impl ToolCall {
    /// A tool call with these arguments.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: serde_json::Value,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments_json: arguments.to_string(),
        }
    }

    /// The arguments parsed as JSON (`Value::Null` if they do not parse).
    pub fn arguments(&self) -> serde_json::Value {
        serde_json::from_str(&self.arguments_json).unwrap_or(serde_json::Value::Null)
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Text.
    pub content: String,
    /// For an assistant message that called tools.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the id of the call it answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with no tool calls.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Tool name ([A-Za-z0-9_-], at most 64).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// A chat-completion request, built with chained calls:
///
/// ```
/// use vaani_plugin_sdk::LlmRequest;
/// let request = LlmRequest::new()
///     .system("You book clinic appointments.")
///     .user("Can I come tomorrow?")
///     .speak(true);
/// assert_eq!(request.messages.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// Sampling temperature (0.0 to 2.0).
    pub temperature: Option<f32>,
    /// Cap on completion tokens.
    pub max_tokens: Option<u32>,
    /// Speak the reply sentence by sentence as it streams.
    pub speak: bool,
    /// Whether caller speech may cut the spoken reply (and cancel the generation).
    pub interruptible: bool,
}

impl LlmRequest {
    /// An empty request: not spoken, interruptible if later made spoken.
    pub fn new() -> Self {
        LlmRequest {
            interruptible: true,
            ..LlmRequest::default()
        }
    }

    /// Appends a message.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Appends a system message.
    pub fn system(self, content: impl Into<String>) -> Self {
        self.message(Message::new(Role::System, content))
    }

    /// Appends a user message.
    pub fn user(self, content: impl Into<String>) -> Self {
        self.message(Message::new(Role::User, content))
    }

    /// Appends an assistant message.
    pub fn assistant(self, content: impl Into<String>) -> Self {
        self.message(Message::new(Role::Assistant, content))
    }

    /// Appends an assistant message that called tools.
    pub fn assistant_tool_calls(self, content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        self.message(Message {
            tool_calls: calls,
            ..Message::new(Role::Assistant, content)
        })
    }

    /// Appends a tool message answering the call `call_id`.
    pub fn tool_result(self, call_id: impl Into<String>, content: impl Into<String>) -> Self {
        self.message(Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        })
    }

    /// Offers a tool to the model.
    pub fn tool(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        self.tools.push(Tool {
            name: name.into(),
            description: description.into(),
            parameters,
        });
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Caps the completion tokens.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Whether the reply is spoken as it streams.
    pub fn speak(mut self, speak: bool) -> Self {
        self.speak = speak;
        self
    }

    /// Whether caller speech may cut the spoken reply.
    pub fn interruptible(mut self, interruptible: bool) -> Self {
        self.interruptible = interruptible;
        self
    }
}

/// What [`Call::generate`](crate::Call::generate) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationHandle {
    /// The generation; its result arrives in [`Plugin::on_generation`](crate::Plugin::on_generation).
    pub id: GenerationId,
    /// The playback of the spoken reply, when the request was spoken.
    pub playback: Option<PlaybackId>,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation {
    /// The whole reply (for a spoken one: what was queued for speech).
    pub text: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Prompt tokens billed.
    pub prompt_tokens: u32,
    /// Completion tokens billed.
    pub completion_tokens: u32,
}

/// How a generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationOutcome {
    /// The model answered.
    Completed(Generation),
    /// Cancelled by the plugin or by a barge-in.
    Cancelled,
    /// The provider failed, timed out or refused; the message says why.
    Failed(String),
}

/// A generation's id and outcome, given to [`Plugin::on_generation`](crate::Plugin::on_generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationResult {
    /// Which generation.
    pub id: GenerationId,
    /// How it ended.
    pub outcome: GenerationOutcome,
}

/// Why the host refused a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmError {
    /// The tenant has no LLM configured (see [`CallerContext::llm_available`](crate::CallerContext)).
    NotConfigured,
    /// The request is malformed; the message says how.
    InvalidRequest(String),
    /// The request is larger than the host accepts (64 KiB).
    TooLarge,
    /// Too many generations on this call (or, for a spoken one, too many playbacks).
    QuotaExceeded,
}

impl fmt::Display for LlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LlmError::NotConfigured => f.write_str("no LLM is configured"),
            LlmError::InvalidRequest(m) => write!(f, "invalid LLM request: {m}"),
            LlmError::TooLarge => f.write_str("LLM request too large"),
            LlmError::QuotaExceeded => f.write_str("LLM quota exceeded"),
        }
    }
}

impl std::error::Error for LlmError {}

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// An HTTP request, limited by the host to the tenant's allow-list.
///
/// ```
/// use vaani_plugin_sdk::{FetchRequest, json};
/// let request = FetchRequest::post_json("https://api.example.com/slots", &json!({"day": "mon"}))
///     .header("x-api-key", "k");
/// assert_eq!(request.headers.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Method.
    pub method: HttpMethod,
    /// An `https://` (or, where the tenant allows it, `http://`) URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (≤ 64 KiB).
    pub body: Option<Vec<u8>>,
    /// Timeout; the host caps it at the tenant's limit.
    pub timeout_ms: Option<u32>,
}

impl FetchRequest {
    /// A request with this method and URL, no headers and no body.
    pub fn new(method: HttpMethod, url: impl Into<String>) -> Self {
        FetchRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        FetchRequest::new(HttpMethod::Get, url)
    }

    /// A POST with a JSON body and `content-type: application/json`.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        FetchRequest::new(HttpMethod::Post, url)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Appends a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the timeout in ms.
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// Status code.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl FetchResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A response arrived (any status).
    Response(FetchResponse),
    /// Refused by the tenant's policy, failed to connect, timed out or too large.
    Failed(String),
}

/// A fetch's id and outcome, given to [`Plugin::on_fetch`](crate::Plugin::on_fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// Which fetch.
    pub id: FetchId,
    /// How it ended.
    pub outcome: FetchOutcome,
}

/// Why the host refused a fetch at call time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL does not parse or is not http(s) (or a header is malformed).
    InvalidUrl(String),
    /// The body or headers are larger than the host accepts.
    TooLarge,
    /// Too many requests on this call.
    QuotaExceeded,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid request URL: {m}"),
            HttpError::TooLarge => f.write_str("HTTP request too large"),
            HttpError::QuotaExceeded => f.write_str("HTTP quota exceeded"),
        }
    }
}

impl std::error::Error for HttpError {}
