//! The chat client against a fake OpenAI-compatible server (axum on 127.0.0.1) that speaks
//! the real chat-completions streaming wire format: `chat.completion.chunk` JSON in
//! server-sent events, tool-call deltas, the usage chunk with empty `choices`, `[DONE]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use vaani_speech::llm::{
    ChatClient, ChatEvent, ChatMessage, ChatRequest, LlmConfig, LlmError, TimeoutStage, ToolCall,
    ToolDefinition, Usage,
};

const MODEL: &str = "gpt-4o-mini-2024-07-18";
const API_KEY: &str = "sk-test-0123456789";

/// What the fake server received for one request.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Value,
    peer: SocketAddr,
}

/// How the fake server answers: a fresh response for every request.
type Responder = Arc<dyn Fn() -> Response + Send + Sync>;

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Vec<Received>>>,
    respond: Responder,
}

async fn completions(
    State(fake): State<Fake>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.received.lock().expect("lock").push(Received {
        headers,
        body,
        peer,
    });
    (fake.respond)()
}

/// Starts a fake server; returns its base URL (`http://127.0.0.1:port/v1`) and the requests.
async fn start(
    respond: impl Fn() -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        received: received.clone(),
        respond: Arc::new(respond),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}/v1"), received)
}

fn config(base_url: &str) -> LlmConfig {
    let mut config = LlmConfig::new(base_url, MODEL);
    config.api_key = Some(API_KEY.to_owned());
    config.timeout = Duration::from_secs(20);
    config.first_token_timeout = Duration::from_secs(10);
    config
}

fn client(base_url: &str) -> ChatClient {
    ChatClient::new(config(base_url)).expect("client")
}

fn simple_request() -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::User("Hello".into())],
        ..ChatRequest::default()
    }
}

/// One streamed chunk exactly as OpenAI sends it with `include_usage` (note `"usage":null`).
fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": null,
    })
}

/// The last chunk with `include_usage`: empty `choices` and the token counts.
fn usage_chunk(prompt: u32, completion: u32) -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
            }
        }
    })
}

/// `data: {json}\n\n` events followed by `data: [DONE]\n\n`.
fn sse_body(chunks: &[Value]) -> String {
    let mut body = String::new();
    for chunk in chunks {
        body.push_str("data: ");
        body.push_str(&chunk.to_string());
        body.push_str("\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    body
}

fn text_reply_chunks() -> Vec<Value> {
    vec![
        chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        ),
        chunk(json!({"content": "Your appointment"}), None),
        chunk(json!({"content": " is booked"}), None),
        chunk(json!({"content": " for ten."}), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(57, 9),
    ]
}

/// Two parallel tool calls, each split over several deltas, as OpenAI streams them.
fn tool_reply_chunks() -> Vec<Value> {
    vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
                "function": {"name": "check_slot", "arguments": ""}
            }], "refusal": null}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"da"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "te\": \"2025-"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "03-11\", \"time\""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ": \"10:00\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{
                "index": 1, "id": "call_ABaqMw3tqkXGnSpYmK9FXhpU", "type": "function",
                "function": {"name": "lookup_caller", "arguments": ""}
            }]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"phone\": \"+91 98"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "765 43210\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(120, 48),
    ]
}

fn expected_tool_calls() -> Vec<ChatEvent> {
    vec![
        ChatEvent::ToolCall(ToolCall {
            id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
            name: "check_slot".into(),
            arguments: "{\"date\": \"2025-03-11\", \"time\": \"10:00\"}".into(),
        }),
        ChatEvent::ToolCall(ToolCall {
            id: "call_ABaqMw3tqkXGnSpYmK9FXhpU".into(),
            name: "lookup_caller".into(),
            arguments: "{\"phone\": \"+91 98765 43210\"}".into(),
        }),
        ChatEvent::Done {
            finish_reason: Some("tool_calls".into()),
            usage: Some(Usage {
                prompt_tokens: 120,
                completion_tokens: 48,
            }),
        },
    ]
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(body)
        .expect("response")
}

/// A streamed body whose pieces are sent by `feed` through a channel, so that each is its
/// own write on the connection.
fn channel_body() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Body) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, Body::from_stream(stream))
}

async fn all_events(
    stream: &mut vaani_speech::llm::ChatStream,
) -> Vec<Result<ChatEvent, LlmError>> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    events
}

#[tokio::test]
async fn text_arrives_as_ordered_deltas_and_request_has_openai_shape() {
    let (base, received) = start(|| sse_response(Body::from(sse_body(&text_reply_chunks())))).await;
    let mut config = config(&base);
    config.extra_headers = vec![("x-tenant".into(), "clinic".into())];
    let client = ChatClient::new(config).expect("client");
    let request = ChatRequest {
        messages: vec![
            ChatMessage::System("You are a clinic receptionist.".into()),
            ChatMessage::User("Is ten tomorrow free?".into()),
            ChatMessage::Assistant {
                text: None,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "check_slot".into(),
                    arguments: "{\"time\":\"10:00\"}".into(),
                }],
            },
            ChatMessage::Tool {
                call_id: "call_1".into(),
                content: "{\"free\":true}".into(),
            },
        ],
        tools: vec![ToolDefinition {
            name: "check_slot".into(),
            description: "Whether a slot is free".into(),
            parameters: json!({"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]}),
        }],
        temperature: Some(0.25),
        max_tokens: Some(200),
    };
    let mut stream = client.stream(request).await.expect("stream");
    let events: Vec<ChatEvent> = all_events(&mut stream)
        .await
        .into_iter()
        .map(|event| event.expect("event"))
        .collect();
    assert_eq!(
        events,
        vec![
            ChatEvent::TextDelta("Your appointment".into()),
            ChatEvent::TextDelta(" is booked".into()),
            ChatEvent::TextDelta(" for ten.".into()),
            ChatEvent::Done {
                finish_reason: Some("stop".into()),
                usage: Some(Usage {
                    prompt_tokens: 57,
                    completion_tokens: 9
                }),
            },
        ]
    );
    assert!(stream.next().await.is_none(), "nothing after the end");

    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(
        request
            .headers
            .get("x-tenant")
            .and_then(|v| v.to_str().ok()),
        Some("clinic")
    );
    assert_eq!(
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        request.body,
        json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a clinic receptionist."},
                {"role": "user", "content": "Is ten tomorrow free?"},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "check_slot", "arguments": "{\"time\":\"10:00\"}"}
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"free\":true}"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "check_slot",
                "description": "Whether a slot is free",
                "parameters": {"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]},
            }}],
            "temperature": 0.25,
            "max_tokens": 200,
            "stream": true,
            "stream_options": {"include_usage": true},
        })
    );
}

#[tokio::test]
async fn parallel_tool_calls_split_over_chunks_are_assembled_exactly() {
    let (base, _) = start(|| sse_response(Body::from(sse_body(&tool_reply_chunks())))).await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    let events: Vec<ChatEvent> = all_events(&mut stream)
        .await
        .into_iter()
        .map(|event| event.expect("event"))
        .collect();
    assert_eq!(events, expected_tool_calls());
}

#[tokio::test]
async fn body_written_in_one_to_seven_byte_pieces_with_crlf_and_comments() {
    // Text and tool calls in one reply; CRLF line ends and keep-alive comments as some
    // proxies and compatible servers send them.
    let mut chunks = text_reply_chunks();
    chunks.truncate(4); // role + three text deltas
    chunks.extend(tool_reply_chunks());
    let body = format!(
        ": keep-alive\r\n\r\n{}",
        sse_body(&chunks).replace("\n", "\r\n")
    );
    let body = Bytes::from(body);
    let (base, _) = start(move || {
        let (tx, response_body) = channel_body();
        let body = body.clone();
        tokio::spawn(async move {
            let sizes = [1usize, 7, 3, 2, 5, 1, 6, 4];
            let mut offset = 0;
            let mut turn = 0;
            while offset < body.len() {
                let end = (offset + sizes[turn % sizes.len()]).min(body.len());
                if tx.send(Ok(body.slice(offset..end))).await.is_err() {
                    return;
                }
                offset = end;
                turn += 1;
                if turn % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        sse_response(response_body)
    })
    .await;
    let reply = client(&base)
        .stream(simple_request())
        .await
        .expect("stream")
        .collect()
        .await
        .expect("reply");
    assert_eq!(reply.text, "Your appointment is booked for ten.");
    let expected: Vec<ToolCall> = expected_tool_calls()
        .into_iter()
        .filter_map(|event| match event {
            ChatEvent::ToolCall(call) => Some(call),
            _ => None,
        })
        .collect();
    assert_eq!(reply.tool_calls, expected);
    assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 120,
            completion_tokens: 48
        })
    );
}

#[tokio::test]
async fn error_bodies_become_typed_http_errors() {
    let (base, _) = start(|| {
        (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            json!({"error": {
                "message": "Incorrect API key provided: sk-test-*****6789. You can find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key"
            }})
            .to_string(),
        )
            .into_response()
    })
    .await;
    let error = client(&base)
        .stream(simple_request())
        .await
        .expect_err("401");
    match &error {
        LlmError::Http { status, message } => {
            assert_eq!(*status, 401);
            assert!(
                message.starts_with("Incorrect API key provided"),
                "{message}"
            );
            assert!(message.contains("invalid_api_key"), "{message}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(!error.is_transient());
    assert!(!error.to_string().contains(API_KEY), "{error}");

    let (base, _) = start(|| {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": {
                "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130017 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded"
            }})
            .to_string(),
        )
            .into_response()
    })
    .await;
    match client(&base).stream(simple_request()).await {
        Err(LlmError::Http {
            status: 400,
            message,
        }) => {
            assert!(message.contains("maximum context length"), "{message}");
            assert!(message.contains("context_length_exceeded"), "{message}");
        }
        other => panic!("expected Http 400, got {other:?}"),
    }

    // A server that answers with plain text (a proxy error page, say).
    let (base, _) =
        start(|| (StatusCode::BAD_GATEWAY, "upstream unavailable").into_response()).await;
    let error = client(&base)
        .stream(simple_request())
        .await
        .expect_err("502");
    assert_eq!(
        error,
        LlmError::Http {
            status: 502,
            message: "upstream unavailable".into()
        }
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let (base, _) = start(|| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "20"), ("content-type", "application/json")],
            json!({"error": {
                "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                "type": "requests",
                "param": null,
                "code": "rate_limit_exceeded"
            }})
            .to_string(),
        )
            .into_response()
    })
    .await;
    match client(&base).stream(simple_request()).await {
        Err(error @ LlmError::RateLimited { .. }) => {
            assert!(error.is_transient());
            let LlmError::RateLimited {
                retry_after,
                message,
            } = error
            else {
                unreachable!()
            };
            assert_eq!(retry_after, Some(Duration::from_secs(20)));
            assert!(message.starts_with("Rate limit reached"), "{message}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_server_trips_first_token_timeout() {
    // Never answers at all (not even headers).
    let (base, _) = start_stalling().await;
    let mut config = config(&base);
    config.first_token_timeout = Duration::from_millis(300);
    let client = ChatClient::new(config).expect("client");
    let error = client.stream(simple_request()).await.expect_err("stalled");
    assert_eq!(
        error,
        LlmError::Timeout {
            stage: TimeoutStage::FirstToken
        }
    );

    // Sends headers and the role chunk, then nothing: no token arrives either.
    let (base, _) = start(|| {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            let first = format!(
                "data: {}\n\n",
                chunk(json!({"role": "assistant", "content": ""}), None)
            );
            let _ = tx.send(Ok(Bytes::from(first))).await;
            tx.closed().await;
        });
        sse_response(body)
    })
    .await;
    let mut config = self::config(&base);
    config.first_token_timeout = Duration::from_millis(300);
    let client = ChatClient::new(config).expect("client");
    let mut stream = client
        .stream(simple_request())
        .await
        .expect("headers arrive");
    assert_eq!(
        stream.next().await,
        Some(Err(LlmError::Timeout {
            stage: TimeoutStage::FirstToken
        }))
    );
    assert_eq!(stream.next().await, None);
}

fn unreachable_response() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// A server whose handler never returns.
async fn start_stalling() -> (String, Arc<Mutex<Vec<Received>>>) {
    async fn stall() -> Response {
        std::future::pending::<()>().await;
        unreachable_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/v1/chat/completions", post(stall));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}/v1"), Arc::default())
}

#[tokio::test]
async fn whole_request_timeout_stops_an_endless_reply() {
    let (base, _) = start(|| {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            loop {
                let data = format!("data: {}\n\n", chunk(json!({"content": "la "}), None));
                if tx.send(Ok(Bytes::from(data))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        sse_response(body)
    })
    .await;
    let mut config = config(&base);
    config.timeout = Duration::from_millis(400);
    config.first_token_timeout = Duration::from_millis(300);
    let client = ChatClient::new(config).expect("client");
    let mut stream = client.stream(simple_request()).await.expect("stream");
    let events = all_events(&mut stream).await;
    let (last, deltas) = events.split_last().expect("events");
    assert_eq!(
        last,
        &Err(LlmError::Timeout {
            stage: TimeoutStage::Total
        })
    );
    assert!(!deltas.is_empty());
    assert!(
        deltas
            .iter()
            .all(|event| event == &Ok(ChatEvent::TextDelta("la ".into())))
    );
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_an_error_not_a_panic() {
    // The server aborts only once the test has seen the first delta (hyper discards
    // unflushed data when a body fails).
    let (abort_tx, abort_rx) = oneshot::channel::<()>();
    let abort_rx = Arc::new(Mutex::new(Some(abort_rx)));
    let (base, _) = start(move || {
        let (tx, body) = channel_body();
        let abort_rx = abort_rx.lock().expect("lock").take();
        tokio::spawn(async move {
            let first = format!(
                "data: {}\n\ndata: {}\n\n",
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(json!({"content": "Let me"}), None)
            );
            let _ = tx.send(Ok(Bytes::from(first))).await;
            // Half an event, then the connection is aborted.
            let _ = tx
                .send(Ok(Bytes::from_static(b"data: {\"id\":\"chatcmpl-")))
                .await;
            if let Some(abort_rx) = abort_rx {
                let _ = abort_rx.await;
            }
            let _ = tx
                .send(Err(std::io::Error::other("upstream went away")))
                .await;
        });
        sse_response(body)
    })
    .await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    assert_eq!(
        stream.next().await,
        Some(Ok(ChatEvent::TextDelta("Let me".into())))
    );
    abort_tx.send(()).expect("server waiting");
    let events = all_events(&mut stream).await;
    assert!(
        matches!(events.as_slice(), [Err(LlmError::StreamInterrupted(_))]),
        "{events:?}"
    );

    // A server that ends the body cleanly before the model finished.
    let (base, _) = start(|| {
        sse_response(Body::from(format!(
            "data: {}\n\n",
            chunk(json!({"content": "Let me"}), None)
        )))
    })
    .await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    let events = all_events(&mut stream).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        matches!(events[1], Err(LlmError::MalformedStream(_))),
        "{events:?}"
    );

    // Garbage instead of JSON.
    let (base, _) = start(|| sse_response(Body::from("data: {\"choices\": [oops\n\n"))).await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    let events = all_events(&mut stream).await;
    assert!(
        matches!(events.as_slice(), [Err(LlmError::MalformedStream(_))]),
        "{events:?}"
    );
}

#[tokio::test]
async fn provider_error_inside_the_stream_is_reported() {
    let (base, _) = start(|| {
        sse_response(Body::from(format!(
            "data: {}\n\ndata: {}\n\n",
            chunk(json!({"content": "Sure"}), None),
            json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}})
        )))
    })
    .await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    let events = all_events(&mut stream).await;
    assert_eq!(
        events,
        vec![
            Ok(ChatEvent::TextDelta("Sure".into())),
            Err(LlmError::Provider(
                "The server had an error while processing your request. (type server_error)".into()
            )),
        ]
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_a_connect_error() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let error = client(&format!("http://{addr}/v1"))
        .stream(simple_request())
        .await
        .expect_err("refused");
    assert!(matches!(error, LlmError::Connect { .. }), "{error:?}");
    assert!(error.is_transient());
}

/// Marks the end of the fake server's response body: dropped when hyper drops the body,
/// which it does once the client has gone.
struct BodyDropped(Option<oneshot::Sender<()>>);

impl Drop for BodyDropped {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_request() {
    let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let (base, _) = start(move || {
        let guard = BodyDropped(dropped_tx.lock().expect("lock").take());
        // An endless reply: a text delta every 20 ms for as long as the body is polled.
        let stream = futures_util::stream::unfold((guard, 0u32), |(guard, n)| async move {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let data = format!(
                "data: {}\n\n",
                chunk(json!({"content": format!("word{n} ")}), None)
            );
            Some((Ok::<_, Infallible>(Bytes::from(data)), (guard, n + 1)))
        });
        sse_response(Body::from_stream(stream))
    })
    .await;
    let mut stream = client(&base)
        .stream(simple_request())
        .await
        .expect("stream");
    assert_eq!(
        stream.next().await,
        Some(Ok(ChatEvent::TextDelta("word0 ".into())))
    );
    drop(stream);
    tokio::time::timeout(Duration::from_secs(10), dropped_rx)
        .await
        .expect("the server saw the connection close")
        .expect("guard sent");
}

#[tokio::test]
async fn finished_reply_leaves_the_connection_reusable() {
    let (base, received) = start(|| {
        // The body's end comes a moment after `[DONE]`, in its own write, as it can from a
        // real server: the client must still read it so the connection goes back to the pool.
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(Bytes::from(sse_body(&text_reply_chunks()))))
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(tx);
        });
        sse_response(body)
    })
    .await;
    let client = client(&base);
    for _ in 0..2 {
        let reply = client
            .stream(simple_request())
            .await
            .expect("stream")
            .collect()
            .await
            .expect("reply");
        assert_eq!(reply.text, "Your appointment is booked for ten.");
    }
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].peer, received[1].peer,
        "second request reused the first connection"
    );
}
