//! The provider-neutral request and event types of the chat client, and their mapping to
//! and from the OpenAI chat-completions wire format.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Where and how to reach one OpenAI-compatible chat-completions endpoint.
///
/// Works for OpenAI (`https://api.openai.com/v1`), Groq (`https://api.groq.com/openai/v1`),
/// Azure OpenAI (`https://{resource}.openai.azure.com/openai/v1` with an `api-key` extra
/// header, or a deployment URL with an `?api-version=` query) and local servers
/// (llama.cpp `http://127.0.0.1:8080/v1`, Ollama `http://127.0.0.1:11434/v1`).
#[derive(Clone)]
pub struct LlmConfig {
    /// API root; `/chat/completions` is appended to its path (a query string is kept).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when present. Never logged.
    pub api_key: Option<String>,
    /// The `model` field of every request (for Azure deployment URLs, anything).
    pub model: String,
    /// Limit for the whole request, from sending it to the last event.
    pub timeout: Duration,
    /// Limit from sending the request to the first token (text or tool-call delta).
    pub first_token_timeout: Duration,
    /// Extra request headers, e.g. `("api-key", key)` for Azure. Values are never logged.
    pub extra_headers: Vec<(String, String)>,
}

impl LlmConfig {
    /// A configuration with the given endpoint and model, no key, a 60 s request limit and a
    /// 10 s first-token limit.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        LlmConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            timeout: Duration::from_secs(60),
            first_token_timeout: Duration::from_secs(10),
            extra_headers: Vec::new(),
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.extra_headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("first_token_timeout", &self.first_token_timeout)
            .field("extra_headers (values redacted)", &header_names)
            .finish()
    }
}

/// One chat-completion request: the conversation so far and the tools the model may call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Functions the model may call; empty for none.
    pub tools: Vec<ToolDefinition>,
    /// Sampling temperature; the provider's default when `None`.
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens (`max_tokens` on the wire); provider default when `None`.
    pub max_tokens: Option<u32>,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    /// Instructions for the model.
    System(String),
    /// What the caller said.
    User(String),
    /// An earlier reply of the model: its text and/or the tools it called.
    Assistant {
        /// The spoken text, if any.
        text: Option<String>,
        /// Tool calls the model made in this turn.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the [`ToolCall`] with the same id.
    Tool {
        /// The [`ToolCall::id`] this answers.
        call_id: String,
        /// The result, usually JSON text.
        content: String,
    },
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// Function name (`^[a-zA-Z0-9_-]{1,64}$` for OpenAI).
    pub name: String,
    /// What the function does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// One complete call of a tool by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// Provider-assigned id, echoed back in [`ChatMessage::Tool`].
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments as JSON text exactly as the model produced them (`{}` when it sent none);
    /// not validated — the model may produce invalid JSON.
    pub arguments: String,
}

/// Token counts of one request, as reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens of the request (conversation and tools).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The next piece of the reply text, in order.
    TextDelta(String),
    /// A tool call, emitted once it is complete (when the model finished its turn).
    ToolCall(ToolCall),
    /// The reply is complete; always the last event.
    Done {
        /// Why the model stopped: `stop`, `length`, `tool_calls`, `content_filter`, … if sent.
        finish_reason: Option<String>,
        /// Token counts, if the provider sent them.
        usage: Option<Usage>,
    },
}

/// The JSON body of a streaming chat-completions request.
pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    }
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(max_tokens) = request.max_tokens {
        body["max_tokens"] = json!(max_tokens);
    }
    body
}

fn message_json(message: &ChatMessage) -> Value {
    match message {
        ChatMessage::System(text) => json!({ "role": "system", "content": text }),
        ChatMessage::User(text) => json!({ "role": "user", "content": text }),
        ChatMessage::Assistant { text, tool_calls } => {
            let mut value = json!({ "role": "assistant", "content": text });
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments },
                        })
                    })
                    .collect();
                value["tool_calls"] = Value::Array(calls);
            }
            value
        }
        ChatMessage::Tool { call_id, content } => {
            json!({ "role": "tool", "tool_call_id": call_id, "content": content })
        }
    }
}

/// One `chat.completion.chunk` as streamed. Every field is optional: servers differ.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireChunk {
    #[serde(default)]
    pub choices: Vec<WireChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireChoice {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub delta: Option<WireDelta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireDelta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireToolCallDelta {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<WireFunctionDelta>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireFunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

/// The message of an error body: OpenAI's `{"error":{"message","type","code"}}`, or the
/// `{"error":"…"}` / `{"message":"…"}` shapes some compatible servers use.
pub(crate) fn error_message(value: &Value) -> Option<String> {
    let error = value.get("error").unwrap_or(value);
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    let message = error.get("message").and_then(Value::as_str)?;
    let mut text = message.to_owned();
    let kind = error.get("type").and_then(Value::as_str);
    let code = error.get("code").and_then(|code| match code {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match (kind, code) {
        (Some(kind), Some(code)) => text.push_str(&format!(" (type {kind}, code {code})")),
        (Some(kind), None) => text.push_str(&format!(" (type {kind})")),
        (None, Some(code)) => text.push_str(&format!(" (code {code})")),
        (None, None) => {}
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_has_openai_shape() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::System("be brief".into()),
                ChatMessage::User("book".into()),
                ChatMessage::Assistant {
                    text: None,
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "book".into(),
                        arguments: "{\"day\":\"mon\"}".into(),
                    }],
                },
                ChatMessage::Tool {
                    call_id: "call_1".into(),
                    content: "ok".into(),
                },
            ],
            tools: vec![ToolDefinition {
                name: "book".into(),
                description: "Book a slot".into(),
                parameters: json!({"type": "object"}),
            }],
            temperature: Some(0.5),
            max_tokens: Some(100),
        };
        let body = request_body("m", &request);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "book"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function",
                         "function": {"name": "book", "arguments": "{\"day\":\"mon\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {
                    "name": "book", "description": "Book a slot", "parameters": {"type": "object"}
                }}],
                "temperature": 0.5,
                "max_tokens": 100,
            })
        );
    }

    #[test]
    fn error_message_handles_several_shapes() {
        let openai = json!({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}});
        assert_eq!(
            error_message(&openai).as_deref(),
            Some("bad key (type invalid_request_error, code invalid_api_key)")
        );
        assert_eq!(
            error_message(&json!({"error": "model not found"})).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            error_message(&json!({"message": "nope"})).as_deref(),
            Some("nope")
        );
        assert_eq!(error_message(&json!({"other": 1})), None);
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut config = LlmConfig::new("https://api.openai.com/v1", "gpt-4o-mini");
        config.api_key = Some("sk-secret-123".into());
        config.extra_headers = vec![("api-key".into(), "azure-secret-456".into())];
        let text = format!("{config:?}");
        assert!(!text.contains("sk-secret-123"), "{text}");
        assert!(!text.contains("azure-secret-456"), "{text}");
        assert!(text.contains("api-key"), "{text}");
    }
}
