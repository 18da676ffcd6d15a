//! LLM generation for conversations: one tenant's chat model, streamed.
//!
//! [`LlmService`] wraps a [`ChatClient`] built from the tenant's `[tenants.llm]` settings.
//! [`LlmService::spawn_generation`] runs one reply on tokio and reports it over a channel:
//! [`GenerationUpdate::FirstToken`], each complete [`GenerationUpdate::Sentence`] as soon as
//! the [`SentenceChunker`] can cut it (so speech can start before the reply is finished),
//! and one final [`GenerationUpdate::Finished`]. Cancelling or dropping the
//! [`GenerationHandle`] aborts the request (closing the connection stops the provider) and
//! nothing more is delivered. [`LlmService::summarize`] writes a call summary and the
//! caller's sentiment at call end.
//!
//! These types are independent of the plugin sandbox; the call task maps them.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vaani_config::LlmSettings;
use vaani_speech::SentenceChunker;
use vaani_speech::llm::ToolCall;
use vaani_speech::llm::{ChatClient, ChatEvent, ChatMessage, ChatRequest, LlmConfig, LlmError};

/// Updates buffered between the generation task and its reader.
const UPDATE_BUFFER: usize = 64;

/// Instructions for [`LlmService::summarize`].
const SUMMARY_PROMPT: &str = "You summarise phone calls between a business's voice agent and a caller. \
Reply with exactly two lines and nothing else:\n\
SUMMARY: <one to three sentences: who called, what they wanted, what was agreed or done>\n\
SENTIMENT: <positive, neutral or negative: the caller's overall sentiment>";

/// Why the LLM service cannot be set up or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// `api_key_env` names a variable that is not set (or not Unicode).
    #[error("[tenants.llm] api_key_env: environment variable {variable} is not set")]
    MissingApiKey {
        /// The variable's name.
        variable: String,
    },
    /// The chat client refused the settings.
    #[error("[tenants.llm]: {0}")]
    InvalidConfig(LlmError),
    /// The request failed.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The model's summary reply had no summary in it.
    #[error("the model's summary reply is empty or unreadable: {reply:?}")]
    UnreadableSummary {
        /// The start of the reply.
        reply: String,
    },
}

/// One update of a running generation, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationUpdate {
    /// The first text or tool-call token arrived (for latency metrics). Sent once, first.
    FirstToken,
    /// A complete sentence of the reply to speak (only when `speak` was asked).
    Sentence(String),
    /// The reply is complete, or failed (the error's text). Always the last update.
    Finished(Result<GenerationDone, String>),
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerationDone {
    /// The whole reply text.
    pub text: String,
    /// The tools the model called, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Prompt tokens, as reported by the provider (0 if not).
    pub prompt_tokens: u32,
    /// Completion tokens, as reported by the provider (0 if not).
    pub completion_tokens: u32,
}

/// A running generation. Dropping it (or [`cancel`](Self::cancel)) aborts the request.
#[derive(Debug)]
pub struct GenerationHandle {
    updates: mpsc::Receiver<GenerationUpdate>,
    task: JoinHandle<()>,
    cancelled: bool,
}

impl GenerationHandle {
    /// The next update; `None` after [`GenerationUpdate::Finished`] or a cancel.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<GenerationUpdate> {
        if self.cancelled {
            return None;
        }
        self.updates.recv().await
    }

    /// Aborts the request (e.g. the caller barged in). Updates not yet read are discarded,
    /// so no `Finished` (with tool calls or otherwise) is delivered after this.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the call task drops the handle instead")
    )]
    pub fn cancel(&mut self) {
        self.cancelled = true;
        self.task.abort();
        self.updates.close();
        while self.updates.try_recv().is_ok() {}
    }

    /// Whether [`cancel`](Self::cancel) was called.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the call task drops the handle instead")
    )]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

impl Drop for GenerationHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One tenant's language model.
#[derive(Debug, Clone)]
pub struct LlmService {
    client: ChatClient,
    settings: LlmSettings,
}

impl LlmService {
    /// Builds the client from the tenant's settings, reading the API key from the
    /// environment variable `api_key_env` names (now, once).
    pub fn from_settings(settings: &LlmSettings) -> Result<LlmService, GenerationError> {
        let api_key = match &settings.api_key_env {
            Some(variable) => {
                Some(
                    std::env::var(variable).map_err(|_| GenerationError::MissingApiKey {
                        variable: variable.clone(),
                    })?,
                )
            }
            None => None,
        };
        LlmService::with_api_key(settings, api_key)
    }

    /// Like [`from_settings`](Self::from_settings) with the key given directly.
    pub fn with_api_key(
        settings: &LlmSettings,
        api_key: Option<String>,
    ) -> Result<LlmService, GenerationError> {
        let mut config = LlmConfig::new(settings.base_url.clone(), settings.model.clone());
        config.api_key = api_key.filter(|key| !key.trim().is_empty());
        config.first_token_timeout = Duration::from_millis(settings.first_token_timeout_ms);
        config.timeout = Duration::from_millis(settings.total_timeout_ms);
        let client = ChatClient::new(config).map_err(GenerationError::InvalidConfig)?;
        Ok(LlmService {
            client,
            settings: settings.clone(),
        })
    }

    /// The settings this service was built from.
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Starts `request` on the current tokio runtime. The tenant's temperature and
    /// `max_tokens` apply where the request sets none. With `speak`, complete sentences are
    /// sent as [`GenerationUpdate::Sentence`]s while the reply streams.
    pub fn spawn_generation(&self, request: ChatRequest, speak: bool) -> GenerationHandle {
        let request = self.with_defaults(request);
        let (sender, updates) = mpsc::channel(UPDATE_BUFFER);
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            let result = generate(&client, request, speak, &sender).await;
            // `None`: the reader is gone; nothing to report.
            if let Some(result) = result {
                let _ = sender.send(GenerationUpdate::Finished(result)).await;
            }
        });
        GenerationHandle {
            updates,
            task,
            cancelled: false,
        }
    }

    /// A summary of the call and the caller's sentiment (`positive`, `neutral` or
    /// `negative`, if the model gave one). `transcript` is (speaker, text) in order.
    pub async fn summarize(
        &self,
        transcript: &[(String, String)],
    ) -> Result<(String, Option<String>), GenerationError> {
        let mut conversation = String::new();
        for (speaker, text) in transcript {
            conversation.push_str(speaker);
            conversation.push_str(": ");
            conversation.push_str(text.trim());
            conversation.push('\n');
        }
        let request = ChatRequest {
            messages: vec![
                ChatMessage::System(SUMMARY_PROMPT.to_owned()),
                ChatMessage::User(format!("Transcript:\n{conversation}")),
            ],
            tools: Vec::new(),
            temperature: Some(0.0),
            max_tokens: Some(self.settings.max_tokens.max(200)),
        };
        let reply = self.client.stream(request).await?.collect().await?;
        parse_summary(&reply.text).ok_or_else(|| GenerationError::UnreadableSummary {
            reply: reply.text.chars().take(200).collect(),
        })
    }

    fn with_defaults(&self, mut request: ChatRequest) -> ChatRequest {
        if request.temperature.is_none() {
            request.temperature = self.settings.temperature;
        }
        if request.max_tokens.is_none() {
            request.max_tokens = Some(self.settings.max_tokens);
        }
        request
    }
}

/// Runs one reply, sending updates; the final result, or `None` if the reader went away.
async fn generate(
    client: &ChatClient,
    request: ChatRequest,
    speak: bool,
    sender: &mpsc::Sender<GenerationUpdate>,
) -> Option<Result<GenerationDone, String>> {
    let mut stream = match client.stream(request).await {
        Ok(stream) => stream,
        Err(error) => return Some(Err(error.to_string())),
    };
    let mut done = GenerationDone::default();
    let mut chunker = SentenceChunker::default();
    let mut first_token = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => return Some(Err(error.to_string())),
        };
        let is_token = matches!(event, ChatEvent::TextDelta(_) | ChatEvent::ToolCall(_));
        if is_token && !first_token {
            first_token = true;
            sender.send(GenerationUpdate::FirstToken).await.ok()?;
        }
        match event {
            ChatEvent::TextDelta(text) => {
                done.text.push_str(&text);
                if speak {
                    for sentence in chunker.push(&text) {
                        sender
                            .send(GenerationUpdate::Sentence(sentence))
                            .await
                            .ok()?;
                    }
                }
            }
            ChatEvent::ToolCall(call) => done.tool_calls.push(call),
            ChatEvent::Done { usage, .. } => {
                if let Some(usage) = usage {
                    done.prompt_tokens = usage.prompt_tokens;
                    done.completion_tokens = usage.completion_tokens;
                }
            }
        }
    }
    if speak && let Some(rest) = chunker.finish() {
        sender.send(GenerationUpdate::Sentence(rest)).await.ok()?;
    }
    Some(Ok(done))
}

/// Reads a `SUMMARY: …` / `SENTIMENT: …` reply. Tolerant: labels in any case, with
/// markdown emphasis or list marks around them, a summary over several lines, the lines in
/// either order; without a `SUMMARY:` label the text other than the sentiment line is the
/// summary. The sentiment is `positive`, `neutral` or `negative` (`mixed` counts as
/// neutral; anything else is `None`). `None` if there is no summary text.
pub fn parse_summary(reply: &str) -> Option<(String, Option<String>)> {
    let mut summary_lines: Vec<String> = Vec::new();
    let mut unlabelled: Vec<String> = Vec::new();
    let mut sentiment = None;
    let mut in_summary = false;
    for line in reply.lines() {
        let cleaned = line
            .trim()
            .trim_start_matches(['-', '*', '#', '>', ' '])
            .replace("**", "")
            .replace("__", "");
        let cleaned = cleaned.trim();
        if cleaned.is_empty() {
            continue;
        }
        if let Some(rest) = strip_label(cleaned, "sentiment") {
            sentiment = normalise_sentiment(rest);
            in_summary = false;
        } else if let Some(rest) = strip_label(cleaned, "summary") {
            in_summary = true;
            if !rest.is_empty() {
                summary_lines.push(rest.to_owned());
            }
        } else if in_summary {
            summary_lines.push(cleaned.to_owned());
        } else {
            unlabelled.push(cleaned.to_owned());
        }
    }
    let summary = if summary_lines.is_empty() {
        unlabelled.join(" ")
    } else {
        summary_lines.join(" ")
    };
    let summary = summary.trim().to_owned();
    (!summary.is_empty()).then_some((summary, sentiment))
}

/// The text after `label:` (or `label -`), case-insensitive.
fn strip_label<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let head = line.get(..label.len())?;
    if !head.eq_ignore_ascii_case(label) {
        return None;
    }
    let rest = line[label.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix('-'))
        .or_else(|| rest.strip_prefix('='))?;
    Some(rest.trim())
}

fn normalise_sentiment(text: &str) -> Option<String> {
    let word: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "positive" | "negative" | "neutral" => Some(word),
        "mixed" => Some("neutral".to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::response::Response;
    use axum::routing::post;
    use serde_json::{Value, json};
    use tokio::sync::oneshot;

    use super::*;

    const MODEL: &str = "gpt-4o-mini-2024-07-18";

    /// One streamed chunk as OpenAI sends it with `include_usage`.
    fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": MODEL,
            "system_fingerprint": "fp_06737a9306",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "usage": null,
        })
    }

    fn usage_chunk(prompt: u32, completion: u32) -> Value {
        json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })
    }

    fn event(chunk: &Value) -> Bytes {
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    fn sse(body: Body) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream; charset=utf-8")
            .body(body)
            .unwrap()
    }

    fn sse_all(chunks: Vec<Value>) -> Response {
        let mut text = String::new();
        for chunk in &chunks {
            text.push_str(&format!("data: {chunk}\n\n"));
        }
        text.push_str("data: [DONE]\n\n");
        sse(Body::from(text))
    }

    type Responder = Arc<dyn Fn(Value) -> Response + Send + Sync>;

    /// A fake chat-completions server; `respond` gets each request's JSON body.
    async fn start(respond: impl Fn(Value) -> Response + Send + Sync + 'static) -> String {
        let respond: Responder = Arc::new(respond);
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move |body: Bytes| {
                let respond = respond.clone();
                async move { respond(serde_json::from_slice(&body).unwrap_or(Value::Null)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/v1")
    }

    fn settings(base_url: &str) -> LlmSettings {
        LlmSettings {
            base_url: base_url.to_owned(),
            model: MODEL.to_owned(),
            api_key_env: None,
            temperature: Some(0.3),
            max_tokens: 300,
            first_token_timeout_ms: 4_000,
            total_timeout_ms: 20_000,
            summarize: true,
        }
    }

    fn service(base_url: &str) -> LlmService {
        LlmService::with_api_key(&settings(base_url), Some("sk-test".into())).unwrap()
    }

    fn user(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::User(text.into())],
            ..ChatRequest::default()
        }
    }

    async fn next(handle: &mut GenerationHandle) -> Option<GenerationUpdate> {
        tokio::time::timeout(Duration::from_secs(10), handle.next())
            .await
            .expect("an update in time")
    }

    #[tokio::test]
    async fn sentences_come_out_in_order_before_the_reply_finishes() {
        // The reply is fed piece by piece; the rest waits until the test saw the first
        // sentence, which proves it was sent before the reply ended.
        let (more_tx, more_rx) = oneshot::channel::<()>();
        let more_rx = Arc::new(Mutex::new(Some(more_rx)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let base = start(move |body| {
            seen.lock().unwrap().push(body);
            let more_rx = more_rx.lock().unwrap().take().expect("one request");
            let stream = async_stream(more_rx);
            sse(Body::from_stream(stream))
        })
        .await;
        let mut handle = service(&base).spawn_generation(user("book me"), true);
        assert_eq!(next(&mut handle).await, Some(GenerationUpdate::FirstToken));
        assert_eq!(
            next(&mut handle).await,
            Some(GenerationUpdate::Sentence(
                "Sure, I can help with that.".into()
            ))
        );
        more_tx.send(()).unwrap();
        assert_eq!(
            next(&mut handle).await,
            Some(GenerationUpdate::Sentence(
                "Your appointment is booked for ten.".into()
            ))
        );
        assert_eq!(
            next(&mut handle).await,
            Some(GenerationUpdate::Sentence("See you then".into()))
        );
        let Some(GenerationUpdate::Finished(Ok(done))) = next(&mut handle).await else {
            panic!("expected Finished(Ok)");
        };
        assert_eq!(
            done.text,
            "Sure, I can help with that. Your appointment is booked for ten. See you then"
        );
        assert!(done.tool_calls.is_empty());
        assert_eq!((done.prompt_tokens, done.completion_tokens), (57, 19));
        assert_eq!(next(&mut handle).await, None);
        // The tenant's defaults were applied to the request.
        let body = requests.lock().unwrap()[0].clone();
        assert_eq!(body["max_tokens"], 300);
        assert!((body["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    }

    /// First sentence, then (after `more`) the rest of the reply.
    fn async_stream(
        more: oneshot::Receiver<()>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        let first = vec![
            event(&chunk(json!({"role": "assistant", "content": ""}), None)),
            event(&chunk(json!({"content": "Sure, I can"}), None)),
            event(&chunk(json!({"content": " help with that. Your"}), None)),
        ];
        let rest = vec![
            event(&chunk(json!({"content": " appointment is booked"}), None)),
            event(&chunk(json!({"content": " for ten. See you then"}), None)),
            event(&chunk(json!({}), Some("stop"))),
            event(&usage_chunk(57, 19)),
            Bytes::from("data: [DONE]\n\n"),
        ];
        let first = futures_util::stream::iter(first.into_iter().map(Ok));
        let rest = futures_util::stream::once(async move {
            let _ = more.await;
            futures_util::stream::iter(rest.into_iter().map(Ok))
        });
        use futures_util::StreamExt;
        first.chain(rest.flatten())
    }

    #[tokio::test]
    async fn tool_calls_are_assembled_without_sentences() {
        let base = start(|_| {
            sse_all(vec![
                chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{
                        "index": 0, "id": "call_1", "type": "function",
                        "function": {"name": "check_slot", "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"time\": "}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"10:00\"}"}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                        "function": {"name": "lookup_caller", "arguments": "{}"}}]}),
                    None,
                ),
                chunk(json!({}), Some("tool_calls")),
                usage_chunk(120, 48),
            ])
        })
        .await;
        let mut handle = service(&base).spawn_generation(user("ten?"), false);
        assert_eq!(next(&mut handle).await, Some(GenerationUpdate::FirstToken));
        let Some(GenerationUpdate::Finished(Ok(done))) = next(&mut handle).await else {
            panic!("expected Finished(Ok)");
        };
        assert_eq!(
            done.tool_calls,
            vec![
                ToolCall {
                    id: "call_1".into(),
                    name: "check_slot".into(),
                    arguments: "{\"time\": \"10:00\"}".into()
                },
                ToolCall {
                    id: "call_2".into(),
                    name: "lookup_caller".into(),
                    arguments: "{}".into()
                },
            ]
        );
        assert_eq!((done.prompt_tokens, done.completion_tokens), (120, 48));
        assert_eq!(done.text, "");
        assert_eq!(next(&mut handle).await, None);
    }

    /// Tells the test when the server's response body is dropped (connection closed).
    struct BodyDropped(Option<oneshot::Sender<()>>);

    impl Drop for BodyDropped {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }

    #[tokio::test]
    async fn cancel_mid_stream_stops_the_request() {
        let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
        let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
        let base = start(move |_| {
            let guard = BodyDropped(dropped_tx.lock().unwrap().take());
            // An endless reply: a sentence every 20 ms, then a tool call would follow.
            let stream = futures_util::stream::unfold((guard, 0u32), |(guard, n)| async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let data = event(&chunk(json!({"content": format!("Sentence {n}. ")}), None));
                Some((Ok::<_, Infallible>(data), (guard, n + 1)))
            });
            sse(Body::from_stream(stream))
        })
        .await;
        let mut handle = service(&base).spawn_generation(user("talk"), true);
        assert_eq!(next(&mut handle).await, Some(GenerationUpdate::FirstToken));
        assert!(matches!(
            next(&mut handle).await,
            Some(GenerationUpdate::Sentence(_))
        ));
        handle.cancel();
        assert!(handle.is_cancelled());
        assert_eq!(handle.next().await, None);
        tokio::time::timeout(Duration::from_secs(10), dropped_rx)
            .await
            .expect("the server saw the connection close")
            .expect("guard sent");
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_request() {
        let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
        let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
        let base = start(move |_| {
            let guard = BodyDropped(dropped_tx.lock().unwrap().take());
            let stream = futures_util::stream::unfold((guard, 0u32), |(guard, n)| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let data = event(&chunk(json!({"content": format!("w{n} ")}), None));
                Some((Ok::<_, Infallible>(data), (guard, n + 1)))
            });
            sse(Body::from_stream(stream))
        })
        .await;
        let mut handle = service(&base).spawn_generation(user("talk"), false);
        assert_eq!(next(&mut handle).await, Some(GenerationUpdate::FirstToken));
        drop(handle);
        tokio::time::timeout(Duration::from_secs(10), dropped_rx)
            .await
            .expect("the server saw the connection close")
            .expect("guard sent");
    }

    #[tokio::test]
    async fn provider_error_finishes_with_an_error() {
        let base = start(|_| {
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"error": {"message": "The server had an error", "type": "server_error"}})
                        .to_string(),
                ))
                .unwrap()
        })
        .await;
        let mut handle = service(&base).spawn_generation(user("hi"), true);
        let Some(GenerationUpdate::Finished(Err(message))) = next(&mut handle).await else {
            panic!("expected Finished(Err)");
        };
        assert!(message.contains("500"), "{message}");
        assert!(message.contains("The server had an error"), "{message}");
        assert_eq!(next(&mut handle).await, None);
    }

    #[tokio::test]
    async fn summarize_asks_for_two_lines_and_parses_them() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let base = start(move |body| {
            seen.lock().unwrap().push(body);
            sse_all(vec![
                chunk(json!({"content": "SUMMARY: Priya booked a check-up"}), None),
                chunk(
                    json!({"content": " for Monday at ten.\nSENTIMENT: positive"}),
                    None,
                ),
                chunk(json!({}), Some("stop")),
            ])
        })
        .await;
        let transcript = vec![
            (
                "caller".to_owned(),
                "I'd like a check-up on Monday.".to_owned(),
            ),
            ("agent".to_owned(), "Booked for ten.".to_owned()),
        ];
        let (summary, sentiment) = service(&base).summarize(&transcript).await.unwrap();
        assert_eq!(summary, "Priya booked a check-up for Monday at ten.");
        assert_eq!(sentiment.as_deref(), Some("positive"));
        let body = requests.lock().unwrap()[0].clone();
        let prompt = body["messages"][1]["content"].as_str().unwrap();
        assert!(
            prompt.contains("caller: I'd like a check-up on Monday.\nagent: Booked for ten."),
            "{prompt}"
        );
        assert!(
            body["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("SENTIMENT:")
        );
    }

    #[test]
    fn missing_api_key_variable_is_reported() {
        let mut settings = settings("https://api.openai.com/v1");
        settings.api_key_env = Some("VAANI_TEST_SURELY_UNSET_KEY_VARIABLE".into());
        let error = LlmService::from_settings(&settings).unwrap_err();
        assert!(
            matches!(error, GenerationError::MissingApiKey { ref variable } if variable == "VAANI_TEST_SURELY_UNSET_KEY_VARIABLE"),
            "{error}"
        );
    }

    #[test]
    fn parse_summary_is_tolerant() {
        let parse = |text: &str| parse_summary(text);
        assert_eq!(
            parse("SUMMARY: Booked a table.\nSENTIMENT: positive"),
            Some(("Booked a table.".into(), Some("positive".into())))
        );
        assert_eq!(
            parse("**Summary:** Asked about fees.\n**Sentiment:** Negative."),
            Some(("Asked about fees.".into(), Some("negative".into())))
        );
        assert_eq!(
            parse("sentiment - neutral\nsummary: Wrong number.\nCaller hung up."),
            Some((
                "Wrong number. Caller hung up.".into(),
                Some("neutral".into())
            ))
        );
        assert_eq!(
            parse("- SUMMARY: Order placed.\n- SENTIMENT: mixed"),
            Some(("Order placed.".into(), Some("neutral".into())))
        );
        assert_eq!(
            parse("The caller ordered biryani.\nSENTIMENT: happy"),
            Some(("The caller ordered biryani.".into(), None))
        );
        assert_eq!(
            parse("Summary:\n  The caller rescheduled.\n\nSentiment: POSITIVE"),
            Some(("The caller rescheduled.".into(), Some("positive".into())))
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("SENTIMENT: positive"), None);
        assert_eq!(parse("SUMMARY:\nSENTIMENT: negative"), None);
    }
}
