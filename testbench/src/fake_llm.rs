//! A fake OpenAI-compatible chat-completions server for end-to-end tests.
//!
//! [`FakeLlm::start`] serves `POST /v1/chat/completions` on 127.0.0.1 (a free port) from its own
//! tokio runtime on a background thread, so synchronous tests can use it. A script decides each
//! reply from the request body; every request body is recorded ([`FakeLlm::requests`]).
//!
//! Replies use OpenAI's real wire format. Streaming (`"stream": true`, what vaani sends):
//! server-sent events of `chat.completion.chunk` objects — a first chunk with
//! `delta.role = "assistant"`, the text in several `delta.content` pieces, tool calls as
//! `delta.tool_calls[{index, id, type: "function", function: {name, arguments}}]` with the
//! arguments split over several chunks, a last chunk with `finish_reason` (`stop` or
//! `tool_calls`), a usage chunk with empty `choices` when `stream_options.include_usage` is set,
//! then `data: [DONE]`. Without `stream` it answers one `chat.completion` object. An
//! [`FakeReply::Error`] answers that status with OpenAI's error body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// A plain text reply (`finish_reason: "stop"`).
    Text(String),
    /// One tool call and no text (`finish_reason: "tool_calls"`).
    ToolCall {
        /// Function name.
        name: String,
        /// Arguments as JSON text.
        arguments_json: String,
    },
    /// Text followed by tool calls (name, arguments JSON) in one reply.
    TextAndToolCalls {
        /// The text, streamed first.
        text: String,
        /// The tool calls, in order.
        tool_calls: Vec<(String, String)>,
    },
    /// An HTTP error status with an OpenAI-style error body.
    Error(u16),
}

impl FakeReply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        FakeReply::Text(text.into())
    }

    /// A tool call with these arguments.
    pub fn tool_call(name: impl Into<String>, arguments: &Value) -> Self {
        FakeReply::ToolCall {
            name: name.into(),
            arguments_json: arguments.to_string(),
        }
    }
}

/// Decides the reply from the request body.
pub type Script = dyn Fn(&Value) -> FakeReply + Send + Sync;

/// How the fake paces its replies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pacing {
    /// Wait before the first chunk (or before a non-streamed answer or an error).
    pub first_chunk_delay: Duration,
    /// Wait between later chunks.
    pub chunk_delay: Duration,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<Value>>>,
    pacing: Pacing,
}

/// A running fake server; stopped on drop.
pub struct FakeLlm {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeLlm {
    /// Starts a fake that answers every request with `script(request body)`, at once.
    pub fn start(script: impl Fn(&Value) -> FakeReply + Send + Sync + 'static) -> Self {
        Self::start_paced(Pacing::default(), script)
    }

    /// Starts a fake that waits `first_chunk_delay` before it answers.
    pub fn start_delayed(
        first_chunk_delay: Duration,
        script: impl Fn(&Value) -> FakeReply + Send + Sync + 'static,
    ) -> Self {
        Self::start_paced(
            Pacing {
                first_chunk_delay,
                ..Pacing::default()
            },
            script,
        )
    }

    /// Starts a fake with explicit pacing.
    pub fn start_paced(
        pacing: Pacing,
        script: impl Fn(&Value) -> FakeReply + Send + Sync + 'static,
    ) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            script: Arc::new(script),
            requests: requests.clone(),
            pacing,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake LLM");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("fake LLM address");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-llm".to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("fake LLM runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = Router::new()
                        .route("/v1/chat/completions", post(completions))
                        .with_state(shared);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
                // In-flight streams are dropped with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("start fake LLM thread");
        FakeLlm {
            addr,
            requests,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>/v1`, for `[tenants.llm] base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request body received so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn completions(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(400, &format!("We could not parse the JSON body: {error}"));
        }
    };
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(request.clone());
    let reply = (shared.script)(&request);
    let model = request["model"]
        .as_str()
        .unwrap_or("fake-model")
        .to_string();
    let stream = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let pacing = shared.pacing;
    if let FakeReply::Error(status) = reply {
        tokio::time::sleep(pacing.first_chunk_delay).await;
        return error_response(status, "The fake LLM was told to fail this request.");
    }
    let (text, tool_calls) = match reply {
        FakeReply::Text(text) => (text, Vec::new()),
        FakeReply::ToolCall {
            name,
            arguments_json,
        } => (String::new(), vec![(name, arguments_json)]),
        FakeReply::TextAndToolCalls { text, tool_calls } => (text, tool_calls),
        FakeReply::Error(_) => unreachable!("answered above"),
    };
    let prompt_tokens = approximate_tokens(&request["messages"].to_string());
    let completion_tokens = approximate_tokens(&text)
        + tool_calls
            .iter()
            .map(|(n, a)| approximate_tokens(n) + approximate_tokens(a))
            .sum::<u32>();
    let ids = Ids::new(&model);
    if !stream {
        tokio::time::sleep(pacing.first_chunk_delay).await;
        let body = completion_json(&ids, &text, &tool_calls, prompt_tokens, completion_tokens);
        return (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let mut events: Vec<String> = stream_chunks(&ids, &text, &tool_calls)
        .into_iter()
        .map(|chunk| chunk.to_string())
        .collect();
    if include_usage {
        events.push(usage_chunk(&ids, prompt_tokens, completion_tokens).to_string());
    }
    events.push("[DONE]".to_string());
    let body = futures_util::stream::unfold(
        (events.into_iter(), true),
        move |(mut rest, first)| async move {
            let event = rest.next()?;
            let delay = if first {
                pacing.first_chunk_delay
            } else {
                pacing.chunk_delay
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {event}\n\n"))),
                (rest, false),
            ))
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .expect("stream response")
}

/// Ids and metadata shared by the chunks of one reply.
struct Ids {
    id: String,
    created: u64,
    model: String,
}

impl Ids {
    fn new(model: &str) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ids {
            id: format!("chatcmpl-fake{:x}", now.as_nanos()),
            created: now.as_secs(),
            model: model.to_string(),
        }
    }

    fn chunk(&self, choices: Value, usage: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": usage,
        })
    }
}

fn choice(delta: Value, finish_reason: Option<&str>) -> Value {
    json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }])
}

/// Splits `text` into pieces of a few words each, as models stream.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, word) in text.split_inclusive(' ').enumerate() {
        current.push_str(word);
        if i % 3 == 2 {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits JSON text into short fragments (OpenAI streams arguments a few characters at a time).
fn fragments(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

fn stream_chunks(ids: &Ids, text: &str, tool_calls: &[(String, String)]) -> Vec<Value> {
    let mut chunks = Vec::new();
    let opening = if text.is_empty() && !tool_calls.is_empty() {
        json!({ "role": "assistant", "content": null, "refusal": null })
    } else {
        json!({ "role": "assistant", "content": "", "refusal": null })
    };
    if tool_calls.is_empty() || !text.is_empty() {
        chunks.push(ids.chunk(choice(opening, None), Value::Null));
        for piece in pieces(text) {
            chunks.push(ids.chunk(choice(json!({ "content": piece }), None), Value::Null));
        }
    }
    for (index, (name, arguments)) in tool_calls.iter().enumerate() {
        let call_id = format!(
            "call_fake{index}{}",
            &ids.id[ids.id.len().saturating_sub(8)..]
        );
        let mut start = json!({ "tool_calls": [{
            "index": index,
            "id": call_id,
            "type": "function",
            "function": { "name": name, "arguments": "" },
        }]});
        if index == 0 && text.is_empty() {
            start["role"] = json!("assistant");
            start["content"] = Value::Null;
            start["refusal"] = Value::Null;
        }
        chunks.push(ids.chunk(choice(start, None), Value::Null));
        for fragment in fragments(arguments, 7) {
            chunks.push(ids.chunk(
                choice(
                    json!({ "tool_calls": [{ "index": index, "function": { "arguments": fragment } }] }),
                    None,
                ),
                Value::Null,
            ));
        }
    }
    let finish = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    chunks.push(ids.chunk(choice(json!({}), Some(finish)), Value::Null));
    chunks
}

fn usage_chunk(ids: &Ids, prompt_tokens: u32, completion_tokens: u32) -> Value {
    ids.chunk(json!([]), usage(prompt_tokens, completion_tokens))
}

fn usage(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
    })
}

fn completion_json(
    ids: &Ids,
    text: &str,
    tool_calls: &[(String, String)],
    prompt_tokens: u32,
    completion_tokens: u32,
) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = tool_calls
            .iter()
            .enumerate()
            .map(|(index, (name, arguments))| {
                json!({
                    "id": format!("call_fake{index}"),
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                })
            })
            .collect();
    }
    json!({
        "id": ids.id,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": if tool_calls.is_empty() { "stop" } else { "tool_calls" },
        }],
        "usage": usage(prompt_tokens, completion_tokens),
    })
}

/// About four characters per token.
fn approximate_tokens(text: &str) -> u32 {
    u32::try_from(text.len().div_ceil(4)).unwrap_or(u32::MAX)
}

fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = json!({
        "error": { "message": message, "type": kind, "param": null, "code": null }
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Text of the messages of a request with this role, in order.
pub fn messages_with_role(request: &Value, role: &str) -> Vec<String> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == role)
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect()
}

/// The tool names a request offers.
pub fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(base: &str, body: &Value) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .expect("post");
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().expect("body"))
    }

    fn events(body: &str) -> Vec<String> {
        body.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn streams_text_with_usage_and_done() {
        let fake = FakeLlm::start(|_| FakeReply::text("Sure. May I have the patient's name?"));
        let (status, body) = post(
            &fake.base_url(),
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "stream": true, "stream_options": {"include_usage": true}}),
        );
        assert_eq!(status, 200);
        let events = events(&body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Sure. May I have the patient's name?");
        let n = chunks.len();
        assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[n - 1]["choices"], json!([]));
        assert!(chunks[n - 1]["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
        assert_eq!(fake.requests().len(), 1);
        assert_eq!(fake.requests()[0]["messages"][0]["content"], "hi");
    }

    #[test]
    fn streams_tool_calls_in_fragments() {
        let args = json!({"date": "2025-03-11", "time": "10:00"});
        let fake = FakeLlm::start(move |_| FakeReply::tool_call("book", &args));
        let (_, body) = post(
            &fake.base_url(),
            &json!({"model": "m", "messages": [], "stream": true}),
        );
        let events = events(&body);
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let mut arguments = String::new();
        let mut name = String::new();
        for chunk in &chunks {
            for call in chunk["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert_eq!(call["index"], 0);
                if let Some(n) = call["function"]["name"].as_str() {
                    name.push_str(n);
                    assert_eq!(call["type"], "function");
                    assert!(call["id"].as_str().unwrap().starts_with("call_"));
                }
                arguments.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        assert_eq!(name, "book");
        let parsed: Value = serde_json::from_str(&arguments).unwrap();
        assert_eq!(parsed["time"], "10:00");
        assert!(chunks.len() > 4, "arguments are split over chunks");
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        // No usage chunk without include_usage.
        assert!(chunks.iter().all(|c| c["usage"].is_null()));
    }

    /// vaani's own chat client reads the fake's replies (text, tool calls, usage, errors).
    #[test]
    fn vaanis_chat_client_understands_the_fake() {
        use vaani_speech::llm::{
            ChatClient, ChatMessage, ChatRequest, LlmConfig, LlmError, ToolDefinition,
        };
        let fake = FakeLlm::start_paced(
            Pacing {
                first_chunk_delay: Duration::from_millis(50),
                chunk_delay: Duration::from_millis(5),
            },
            |request| match request["messages"][0]["content"].as_str() {
                Some("text") => FakeReply::text("You're booked for tomorrow at ten. Goodbye."),
                Some("both") => FakeReply::TextAndToolCalls {
                    text: "Goodbye.".into(),
                    tool_calls: vec![
                        (
                            "book".into(),
                            r#"{"time":"10:00","date":"2025-03-11"}"#.into(),
                        ),
                        ("end_call".into(), "{}".into()),
                    ],
                },
                _ => FakeReply::Error(500),
            },
        );
        let client = ChatClient::new(LlmConfig::new(fake.base_url(), "fake-model")).unwrap();
        let request = |content: &str| ChatRequest {
            messages: vec![ChatMessage::User(content.into())],
            tools: vec![ToolDefinition {
                name: "book".into(),
                description: "Book".into(),
                parameters: json!({"type": "object"}),
            }],
            ..ChatRequest::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let reply = client
                .stream(request("text"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            assert_eq!(reply.text, "You're booked for tomorrow at ten. Goodbye.");
            assert!(reply.tool_calls.is_empty());
            assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
            assert!(reply.usage.is_some_and(|u| u.prompt_tokens > 0));

            let reply = client
                .stream(request("both"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            assert_eq!(reply.text, "Goodbye.");
            let calls: Vec<_> = reply
                .tool_calls
                .iter()
                .map(|c| (c.name.as_str(), c.arguments.as_str()))
                .collect();
            assert_eq!(
                calls,
                [
                    ("book", r#"{"time":"10:00","date":"2025-03-11"}"#),
                    ("end_call", "{}")
                ]
            );
            assert_ne!(reply.tool_calls[0].id, reply.tool_calls[1].id);

            match client.stream(request("fail")).await {
                Err(LlmError::Http { status, .. }) => assert_eq!(status, 500),
                other => panic!("expected HTTP 500, got {other:?}"),
            }
        });
        let requests = fake.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0]["model"], "fake-model");
        assert_eq!(tool_names(&requests[0]), ["book"]);
        assert_eq!(messages_with_role(&requests[1], "user"), ["both"]);
    }

    #[test]
    fn answers_without_streaming_and_fails_on_request() {
        let fake = FakeLlm::start(|request| {
            if request["messages"][0]["content"] == "fail" {
                FakeReply::Error(500)
            } else {
                FakeReply::text("Hello there.")
            }
        });
        let (status, body) = post(
            &fake.base_url(),
            &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], "Hello there.");
        let (status, body) = post(
            &fake.base_url(),
            &json!({"model": "m", "messages": [{"role": "user", "content": "fail"}], "stream": true}),
        );
        assert_eq!(status, 500);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"]["message"].is_string());
        assert_eq!(fake.requests().len(), 2);
    }
}
