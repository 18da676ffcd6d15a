//! The OpenAI transcription client against a fake OpenAI (axum on 127.0.0.1) that speaks
//! the real wire format: a multipart `POST /v1/audio/transcriptions`, a JSON answer or,
//! with `stream=true`, server-sent `transcript.text.delta` / `transcript.text.done`
//! events, and OpenAI's error bodies.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::mpsc;
use vaani_speech::stt::{HttpTimeouts, OpenAiSttConfig, OpenAiTranscriber};
use vaani_speech::{
    Segment, StreamOptions, StreamingTranscriber, SttEvent, Transcriber, TranscriptionError,
    TranscriptionRequest, TranscriptionTimeout, UtteranceStreamAdapter,
};

const API_KEY: &str = "sk-test-0123456789";

/// One multipart field as the fake received it.
#[derive(Debug, Clone)]
struct Field {
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

/// What the fake received for one request.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    fields: HashMap<String, Field>,
}

impl Received {
    fn text(&self, name: &str) -> Option<String> {
        self.fields
            .get(name)
            .map(|field| String::from_utf8_lossy(&field.data).into_owned())
    }

    /// The uploaded WAV: its sample rate and samples.
    fn wav(&self) -> (u32, Vec<i16>) {
        let field = self.fields.get("file").expect("a file field");
        assert_eq!(field.file_name.as_deref(), Some("utterance.wav"));
        assert_eq!(field.content_type.as_deref(), Some("audio/wav"));
        let reader = hound::WavReader::new(Cursor::new(field.data.clone())).expect("a WAV file");
        let spec = reader.spec();
        assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
        let samples = reader
            .into_samples::<i16>()
            .map(|sample| sample.expect("sample"))
            .collect();
        (spec.sample_rate, samples)
    }
}

type Responder = Arc<dyn Fn(&Received) -> Response + Send + Sync>;

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Vec<Received>>>,
    respond: Responder,
}

async fn transcriptions(
    State(fake): State<Fake>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut fields = HashMap::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let data = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        fields.insert(
            name,
            Field {
                file_name,
                content_type,
                data,
            },
        );
    }
    let received = Received { headers, fields };
    let response = (fake.respond)(&received);
    fake.received.lock().expect("lock").push(received);
    response
}

/// Starts a fake; returns its base URL (`http://127.0.0.1:port/v1`) and the requests.
async fn start(
    respond: impl Fn(&Received) -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        received: received.clone(),
        respond: Arc::new(respond),
    };
    let app = Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}/v1"), received)
}

fn config(base_url: &str) -> OpenAiSttConfig {
    let mut config = OpenAiSttConfig::new(API_KEY);
    config.base_url = base_url.to_owned();
    config.timeouts = HttpTimeouts {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(5),
        stall: Duration::from_secs(5),
        total: Duration::from_secs(10),
    };
    config
}

fn request(samples: Vec<i16>, sample_rate: u32, language: Option<&str>) -> TranscriptionRequest {
    TranscriptionRequest {
        samples: samples.into(),
        sample_rate,
        language: language.map(str::to_owned),
    }
}

fn speech(len: usize) -> Vec<i16> {
    (0..len).map(|i| ((i * 37) % 2000) as i16 - 1000).collect()
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn sse_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(body)
        .expect("response")
}

/// A streamed body whose pieces are written one at a time, `gap` apart; an `Err` piece
/// breaks the connection.
fn paced_body(pieces: Vec<Result<String, ()>>, gap: Duration) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for piece in pieces {
            let item = piece
                .map(Bytes::from)
                .map_err(|()| std::io::Error::other("connection dropped"));
            if tx.send(item).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}

fn delta(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"type": "transcript.text.delta", "delta": text, "logprobs": [{"token": text, "logprob": -0.1, "bytes": text.as_bytes()}]})
    )
}

fn done(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({
            "type": "transcript.text.done",
            "text": text,
            "logprobs": [{"token": "I'd", "logprob": -0.1}, {"token": " like", "logprob": -0.3}],
            "usage": {"type": "tokens", "input_tokens": 26, "input_token_details": {"text_tokens": 0, "audio_tokens": 26}, "output_tokens": 8, "total_tokens": 34}
        })
    )
}

#[tokio::test]
async fn json_answer_and_request_shape() {
    let (url, received) = start(|_| {
        json_response(
            StatusCode::OK,
            json!({
                "text": " Book a table for two. ",
                "logprobs": [{"token": "Book", "logprob": -0.05, "bytes": [66, 111, 111, 107]}, {"token": " a", "logprob": -0.15, "bytes": [32, 97]}],
                "usage": {"type": "tokens", "input_tokens": 14, "input_token_details": {"text_tokens": 0, "audio_tokens": 14}, "output_tokens": 7, "total_tokens": 21}
            }),
        )
    })
    .await;
    let transcriber = OpenAiTranscriber::new(config(&url)).expect("client");
    assert_eq!(transcriber.name(), "openai");
    let samples = speech(12_000);
    let transcript = transcriber
        .transcribe(request(samples.clone(), 8_000, Some("en-IN")))
        .await
        .expect("transcript");
    assert_eq!(transcript.text, "Book a table for two.");
    assert_eq!(transcript.language, "en");
    assert!((transcript.confidence - (-0.1f32).exp()).abs() < 1e-4);

    let requests = received.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(
        seen.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer sk-test-0123456789")
    );
    assert!(
        seen.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data; boundary="))
    );
    assert_eq!(
        seen.text("model").as_deref(),
        Some("gpt-4o-mini-transcribe")
    );
    assert_eq!(seen.text("response_format").as_deref(), Some("json"));
    assert_eq!(seen.text("language").as_deref(), Some("en"));
    assert_eq!(seen.text("include[]").as_deref(), Some("logprobs"));
    assert_eq!(seen.text("stream"), None, "no partials wanted, no stream");
    assert_eq!(seen.wav(), (8_000, samples));
}

#[tokio::test]
async fn streamed_answer_gives_partials_then_the_final() {
    let (url, received) = start(|_| {
        sse_response(paced_body(
            vec![
                Ok(delta("I'd")),
                Ok(delta(" like")),
                // One event split over two writes.
                Ok(delta(" to book")[..12].to_owned()),
                Ok(delta(" to book")[12..].to_owned()),
                Ok(done("I'd like to book.")),
            ],
            Duration::from_millis(15),
        ))
    })
    .await;
    let mut config = config(&url);
    config.language = Some("en".into());
    config.prompt = Some("Dental clinic booking.".into());
    let transcriber = Arc::new(OpenAiTranscriber::new(config).expect("client"));
    let adapter = UtteranceStreamAdapter::with_partials(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&speech(16_000)).expect("push");
    stream.finish_utterance().expect("finish");
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next_event())
            .await
            .expect("in time")
            .expect("event")
            .expect("ok");
        let end = matches!(event, SttEvent::UtteranceEnd { .. });
        events.push(event);
        if end {
            break;
        }
    }
    let segment = |text: &str, confidence: f32| Segment {
        text: text.into(),
        confidence,
        start_ms: 0,
        end_ms: 1000,
        language: String::new(),
    };
    assert_eq!(
        events[..3],
        [
            SttEvent::Partial(segment("I'd", 1.0)),
            SttEvent::Partial(segment("I'd like", 1.0)),
            SttEvent::Partial(segment("I'd like to book", 1.0)),
        ]
    );
    match &events[3] {
        SttEvent::Final(segment) => {
            assert_eq!(segment.text, "I'd like to book.");
            assert_eq!(segment.language, "en");
            assert!((segment.confidence - (-0.2f32).exp()).abs() < 1e-4);
        }
        other => panic!("expected the final, got {other:?}"),
    }
    assert_eq!(events[4], SttEvent::UtteranceEnd { requested: true });
    assert_eq!(events.len(), 5);
    assert_eq!(stream.usage().audio_ms_sent, 1000);

    let seen = received.lock().expect("lock")[0].clone();
    assert_eq!(seen.text("stream").as_deref(), Some("true"));
    assert_eq!(seen.text("language").as_deref(), Some("en"));
    assert_eq!(
        seen.text("prompt").as_deref(),
        Some("Dental clinic booking.")
    );
}

#[tokio::test]
async fn whisper_1_ignores_stream_and_answers_json() {
    let (url, received) =
        start(|_| json_response(StatusCode::OK, json!({"text": "Yes, please."}))).await;
    let mut config = config(&url);
    config.model = "whisper-1".into();
    let transcriber = Arc::new(OpenAiTranscriber::new(config).expect("client"));
    let adapter = UtteranceStreamAdapter::with_partials(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&speech(8_000)).expect("push");
    stream.finish_utterance().expect("finish");
    let first = stream.next_event().await.expect("event").expect("ok");
    assert!(
        matches!(&first, SttEvent::Final(s) if s.text == "Yes, please." && s.confidence == 1.0),
        "{first:?}"
    );
    assert_eq!(
        stream.next_event().await.expect("event").expect("ok"),
        SttEvent::UtteranceEnd { requested: true }
    );
    let seen = received.lock().expect("lock")[0].clone();
    assert_eq!(seen.text("model").as_deref(), Some("whisper-1"));
    assert_eq!(
        seen.text("include[]"),
        None,
        "logprobs only for gpt-4o models"
    );
}

/// An error status, extra headers, and the JSON body.
type ErrorCase = (
    StatusCode,
    Vec<(&'static str, &'static str)>,
    serde_json::Value,
);

#[tokio::test]
async fn error_statuses_are_typed() {
    let cases: Vec<ErrorCase> = vec![
        (
            StatusCode::UNAUTHORIZED,
            vec![],
            json!({"error": {"message": "Incorrect API key provided: sk-test-***6789. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "7")],
            json!({"error": {"message": "Rate limit reached for gpt-4o-mini-transcribe in organization org-abc on requests per min (RPM): Limit 50, Used 50, Requested 1.", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
        ),
        (
            StatusCode::BAD_REQUEST,
            vec![],
            json!({"error": {"message": "Audio file might be corrupted or unsupported", "type": "invalid_request_error", "param": "file", "code": "invalid_value"}}),
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![],
            json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}}),
        ),
    ];
    for (status, headers, body) in cases {
        let headers_for_reply = headers.clone();
        let body_for_reply = body.clone();
        let (url, _) = start(move |_| {
            let mut response = json_response(status, body_for_reply.clone());
            for (name, value) in &headers_for_reply {
                response
                    .headers_mut()
                    .insert(*name, value.parse().expect("header"));
            }
            response
        })
        .await;
        let transcriber = OpenAiTranscriber::new(config(&url)).expect("client");
        let error = transcriber
            .transcribe(request(speech(1_600), 16_000, None))
            .await
            .expect_err("an error status");
        match status {
            StatusCode::UNAUTHORIZED => assert!(
                matches!(&error, TranscriptionError::Unauthorized { status: 401, message, .. }
                    if message.starts_with("Incorrect API key provided") && message.ends_with("(invalid_api_key)")),
                "{error:?}"
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(
                    matches!(&error, TranscriptionError::RateLimited { retry_after: Some(wait), message, .. }
                        if *wait == Duration::from_secs(7) && message.ends_with("(rate_limit_exceeded)")),
                    "{error:?}"
                );
                assert!(error.is_transient());
            }
            StatusCode::BAD_REQUEST => {
                assert!(
                    matches!(&error, TranscriptionError::Http { status: 400, message, .. }
                        if message.contains("corrupted")),
                    "{error:?}"
                );
                assert!(!error.is_transient());
            }
            _ => {
                assert!(
                    matches!(&error, TranscriptionError::Http { status: 500, message, .. }
                        if message.ends_with("(server_error)")),
                    "{error:?}"
                );
                assert!(error.is_transient());
            }
        }
        assert!(!error.to_string().contains(API_KEY));
    }
}

#[tokio::test]
async fn malformed_answers_are_errors_not_panics() {
    let (url, _) = start(|received| {
        if received.text("stream").is_some() {
            sse_response(Body::from("data: {\"type\":\"transcript.text.delta\"\n\n"))
        } else {
            json_response(StatusCode::OK, json!({"transcript": "wrong field"}))
        }
    })
    .await;
    let transcriber = Arc::new(OpenAiTranscriber::new(config(&url)).expect("client"));
    let error = transcriber
        .transcribe(request(speech(1_600), 16_000, None))
        .await
        .expect_err("malformed JSON");
    assert!(
        matches!(error, TranscriptionError::MalformedResponse { .. }),
        "{error:?}"
    );
    let adapter = UtteranceStreamAdapter::with_partials(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&speech(1_600)).expect("push");
    stream.finish_utterance().expect("finish");
    assert!(matches!(
        stream.next_event().await,
        Some(Err(TranscriptionError::MalformedResponse { .. }))
    ));
    assert!(stream.next_event().await.is_none());
}

#[tokio::test]
async fn server_that_never_answers_is_a_response_timeout() {
    // Accepts connections, reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut config = config(&format!("http://{addr}/v1"));
    config.timeouts.response = Duration::from_millis(300);
    let transcriber = OpenAiTranscriber::new(config).expect("client");
    let started = Instant::now();
    let error = transcriber
        .transcribe(request(speech(1_600), 16_000, None))
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            error,
            TranscriptionError::Timeout {
                stage: TranscriptionTimeout::Response,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stream_that_stalls_mid_answer_is_a_stall_timeout() {
    let (url, _) = start(|_| {
        sse_response(paced_body(
            vec![Ok(delta("I'd")), Ok(done("never sent in time"))],
            Duration::from_secs(30),
        ))
    })
    .await;
    let mut config = config(&url);
    config.timeouts.stall = Duration::from_millis(300);
    let transcriber = Arc::new(OpenAiTranscriber::new(config).expect("client"));
    let adapter = UtteranceStreamAdapter::with_partials(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&speech(1_600)).expect("push");
    stream.finish_utterance().expect("finish");
    let started = Instant::now();
    assert!(matches!(
        stream.next_event().await,
        Some(Ok(SttEvent::Partial(ref s))) if s.text == "I'd"
    ));
    assert!(matches!(
        stream.next_event().await,
        Some(Err(TranscriptionError::Timeout {
            stage: TranscriptionTimeout::Stalled,
            ..
        }))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(stream.next_event().await.is_none());
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_reported() {
    let (url, _) = start(|_| {
        sse_response(paced_body(
            vec![Ok(delta("Hello")), Err(())],
            Duration::from_millis(20),
        ))
    })
    .await;
    let transcriber = Arc::new(OpenAiTranscriber::new(config(&url)).expect("client"));
    let adapter = UtteranceStreamAdapter::with_partials(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&speech(1_600)).expect("push");
    stream.finish_utterance().expect("finish");
    assert!(matches!(
        stream.next_event().await,
        Some(Ok(SttEvent::Partial(ref s))) if s.text == "Hello"
    ));
    assert!(matches!(
        stream.next_event().await,
        Some(Err(TranscriptionError::Disconnected { .. }))
    ));
    assert!(stream.next_event().await.is_none());
}

#[tokio::test]
async fn stream_ending_without_done_is_reported() {
    let (url, _) = start(|_| sse_response(Body::from(delta("Hel") + &delta("lo")))).await;
    let transcriber = OpenAiTranscriber::new(config(&url)).expect("client");
    // Plain transcribe does not ask for a stream, but the server may send one anyway.
    let error = transcriber
        .transcribe(request(speech(1_600), 16_000, None))
        .await
        .expect_err("no done event");
    assert!(
        matches!(&error, TranscriptionError::Disconnected { detail, .. } if detail.contains("transcript.text.done")),
        "{error:?}"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_before_sending() {
    let (url, received) = start(|_| json_response(StatusCode::OK, json!({"text": "unused"}))).await;
    let transcriber = OpenAiTranscriber::new(config(&url)).expect("client");
    assert!(matches!(
        transcriber
            .transcribe(request(Vec::new(), 16_000, None))
            .await,
        Err(TranscriptionError::EmptyAudio)
    ));
    assert!(matches!(
        transcriber
            .transcribe(request(vec![0; 10], 4_000, None))
            .await,
        Err(TranscriptionError::BadSampleRate(4_000))
    ));
    assert!(received.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn unreachable_endpoint_is_a_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let transcriber = OpenAiTranscriber::new(config(&format!("http://{addr}/v1"))).expect("client");
    let error = transcriber
        .transcribe(request(speech(1_600), 16_000, None))
        .await
        .expect_err("nothing listens");
    assert!(
        matches!(error, TranscriptionError::Connect { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}
