//! The Deepgram live-streaming client against a fake Deepgram (a tokio-tungstenite
//! WebSocket server on 127.0.0.1) that speaks the real protocol: the `/v1/listen` query,
//! `Authorization: Token`, binary linear16 audio, `KeepAlive`/`Finalize`/`CloseStream`,
//! `Results`/`Metadata`/`SpeechStarted` messages, handshake refusals with `dg-error`, and
//! close frames such as 1008 `DATA-0000` and 1011 `NET-0001`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use vaani_speech::stt::{DeepgramSttConfig, DeepgramTranscriber};
use vaani_speech::{
    StreamOptions, StreamingTranscriber, SttEvent, TranscriptionError, TranscriptionStream,
    TranscriptionTimeout,
};

const API_KEY: &str = "dg-test-key-0123";
const REQUEST_ID: &str = "7b2bb4a5-6c27-4fa5-9a2e-5e9b2d4c5f10";

/// What the fake received on one connection.
#[derive(Debug, Default, Clone)]
struct Received {
    authorization: Option<String>,
    path: String,
    query: Vec<(String, String)>,
    /// Audio bytes in arrival order.
    audio: Vec<u8>,
    /// Binary frames received (an empty one would end a real Deepgram stream).
    audio_frames: usize,
    /// Text (control) messages in arrival order.
    controls: Vec<String>,
}

impl Received {
    fn query(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn control_types(&self) -> Vec<String> {
        self.controls
            .iter()
            .filter_map(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .filter_map(|value| value["type"].as_str().map(str::to_owned))
            .collect()
    }
}

type Shared = Arc<Mutex<Received>>;
type Socket = WebSocketStream<TcpStream>;
type Script = Arc<dyn Fn(Socket, Shared) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Refusal of the WebSocket upgrade: status, extra headers, body.
#[derive(Clone)]
struct Refusal {
    status: StatusCode,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
}

/// Starts a fake Deepgram; each connection is upgraded (or refused) and then driven by
/// `script`. Returns the listen URL and what the last connection received.
async fn start(refusal: Option<Refusal>, script: Script) -> (String, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shared: Shared = Arc::new(Mutex::new(Received::default()));
    let received = shared.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let received = received.clone();
            let refusal = refusal.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let record = received.clone();
                // The callback's signature (and its large error type) is tungstenite's.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &Request, mut response: Response| {
                    let mut seen = record.lock().expect("lock");
                    seen.authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.path = request.uri().path().to_owned();
                    seen.query = url_pairs(request.uri().query().unwrap_or_default());
                    if let Some(refusal) = refusal {
                        let mut error = ErrorResponse::new(Some(refusal.body.to_owned()));
                        *error.status_mut() = refusal.status;
                        for (name, value) in refusal.headers {
                            error
                                .headers_mut()
                                .insert(name, value.parse().expect("header"));
                        }
                        error
                            .headers_mut()
                            .insert("dg-request-id", REQUEST_ID.parse().expect("header"));
                        return Err(error);
                    }
                    response
                        .headers_mut()
                        .insert("dg-request-id", REQUEST_ID.parse().expect("header"));
                    Ok(response)
                };
                if let Ok(socket) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                    script(socket, received).await;
                }
            });
        }
    });
    (format!("ws://{addr}/v1/listen"), shared)
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://fake/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn script<F, Fut>(f: F) -> Script
where
    F: Fn(Socket, Shared) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |socket, shared| Box::pin(f(socket, shared)))
}

fn config(url: &str) -> DeepgramSttConfig {
    let mut config = DeepgramSttConfig::new(API_KEY);
    config.base_url = url.to_owned();
    config.connect_timeout = Duration::from_secs(2);
    config.stall_timeout = Duration::from_secs(3);
    config
}

async fn open(config: DeepgramSttConfig) -> Box<dyn TranscriptionStream> {
    DeepgramTranscriber::new(config)
        .expect("valid config")
        .open(StreamOptions::default())
        .await
        .expect("open")
}

async fn open_error(config: DeepgramSttConfig) -> TranscriptionError {
    match DeepgramTranscriber::new(config)
        .expect("valid config")
        .open(StreamOptions::default())
        .await
    {
        Ok(_) => panic!("the stream opened"),
        Err(error) => error,
    }
}

async fn next(
    stream: &mut dyn TranscriptionStream,
) -> Option<Result<SttEvent, TranscriptionError>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next_event())
        .await
        .expect("an event within 5 s")
}

/// A `Results` message shaped like Deepgram's (nova-3, one channel).
fn results(
    transcript: &str,
    start: f64,
    duration: f64,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
) -> Message {
    let words: Vec<serde_json::Value> = transcript
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            json!({"word": word.to_lowercase(), "start": start + i as f64 * 0.3,
                   "end": start + i as f64 * 0.3 + 0.25, "confidence": 0.98,
                   "punctuated_word": word})
        })
        .collect();
    Message::text(
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.97, "words": words}]},
            "metadata": {
                "request_id": REQUEST_ID,
                "model_info": {"name": "general-nova-3", "version": "2024-12-20.0", "arch": "nova-3"},
                "model_uuid": "40bd3654-e622-47c4-a111-63a61b23bd4f"
            }
        })
        .to_string(),
    )
}

/// The summary Deepgram sends after `CloseStream`.
fn metadata(duration: f64) -> Message {
    Message::text(
        json!({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": REQUEST_ID,
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "created": "2025-03-11T10:15:00.000Z",
            "duration": duration,
            "channels": 1
        })
        .to_string(),
    )
}

/// A conversation like Deepgram's: speech start, an interim and a final result as audio
/// arrives, the `from_finalize` result for `Finalize`, and `Metadata` then a normal close
/// for `CloseStream`.
async fn realistic(mut socket: Socket, shared: Shared) {
    let mut announced = 0;
    while let Some(Ok(message)) = socket.next().await {
        match message {
            Message::Binary(bytes) => {
                let total = {
                    let mut seen = shared.lock().expect("lock");
                    seen.audio.extend_from_slice(&bytes);
                    seen.audio_frames += 1;
                    seen.audio.len()
                };
                // 16 kHz × 2 bytes: 3200 bytes = 100 ms.
                if announced == 0 && total >= 3_200 {
                    announced = 1;
                    let started =
                        json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.1});
                    let _ = socket.send(Message::text(started.to_string())).await;
                }
                if announced == 1 && total >= 16_000 {
                    announced = 2;
                    let _ = socket
                        .send(results("book an", 0.0, 0.5, false, false, false))
                        .await;
                }
                if announced == 2 && total >= 32_000 {
                    announced = 3;
                    let _ = socket
                        .send(results("Book an appointment", 0.0, 1.0, true, false, false))
                        .await;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_owned));
                shared
                    .lock()
                    .expect("lock")
                    .controls
                    .push(text.as_str().to_owned());
                match kind.as_deref() {
                    Some("Finalize") => {
                        let _ = socket
                            .send(results("for tomorrow.", 1.0, 0.6, true, false, true))
                            .await;
                    }
                    Some("CloseStream") => {
                        let seconds = shared.lock().expect("lock").audio.len() as f64 / 32_000.0;
                        let _ = socket.send(metadata(seconds)).await;
                        let _ = socket
                            .close(Some(CloseFrame {
                                code: CloseCode::Normal,
                                reason: "".into(),
                            }))
                            .await;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// Reads everything, answers nothing.
async fn silent_reader(mut socket: Socket, shared: Shared) {
    while let Some(Ok(message)) = socket.next().await {
        let mut seen = shared.lock().expect("lock");
        match message {
            Message::Binary(bytes) => {
                seen.audio.extend_from_slice(&bytes);
                seen.audio_frames += 1;
            }
            Message::Text(text) => seen.controls.push(text.as_str().to_owned()),
            _ => {}
        }
    }
}

#[tokio::test]
async fn streams_audio_and_gets_partials_finals_and_metadata() {
    let (url, received) = start(None, script(realistic)).await;
    let mut stream = open(config(&url)).await;
    // 1.2 s of audio in 20 ms frames with a recognisable pattern.
    let mut pushed = Vec::new();
    for frame in 0..60i16 {
        let samples: Vec<i16> = (0..320i16)
            .map(|i| frame.wrapping_mul(1000).wrapping_add(i))
            .collect();
        stream.push_audio(&samples).expect("push");
        pushed.extend_from_slice(&samples);
    }
    stream.push_audio(&[]).expect("an empty push is a no-op");

    let mut events = Vec::new();
    while events.len() < 3 {
        events.push(next(stream.as_mut()).await.expect("event").expect("ok"));
    }
    assert_eq!(events[0], SttEvent::SpeechStarted { at_ms: 100 });
    assert!(matches!(&events[1], SttEvent::Partial(s) if s.text == "book an" && s.end_ms == 500));
    match &events[2] {
        SttEvent::Final(segment) => {
            assert_eq!(segment.text, "Book an appointment");
            assert_eq!((segment.start_ms, segment.end_ms), (0, 1000));
            assert!((segment.confidence - 0.97).abs() < 1e-6);
            assert_eq!(segment.language, "en");
        }
        other => panic!("expected a final, got {other:?}"),
    }

    stream.finish_utterance().expect("finalize");
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Ok(SttEvent::Final(ref s))) if s.text == "for tomorrow." && s.start_ms == 1000 && s.end_ms == 1600
    ));
    assert_eq!(
        next(stream.as_mut()).await.expect("event").expect("ok"),
        SttEvent::UtteranceEnd { requested: true }
    );

    stream.close();
    assert!(matches!(
        stream.push_audio(&[1; 320]),
        Err(TranscriptionError::StreamEnded { .. })
    ));
    assert_eq!(
        next(stream.as_mut()).await.expect("event").expect("ok"),
        SttEvent::Metadata {
            request_id: REQUEST_ID.into(),
            billed_ms: Some(1200)
        }
    );
    assert!(next(stream.as_mut()).await.is_none());
    assert_eq!(stream.usage().audio_ms_sent, 1200);
    assert_eq!(stream.usage().audio_ms_dropped, 0);

    let seen = received.lock().expect("lock").clone();
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Token dg-test-key-0123")
    );
    assert_eq!(seen.path, "/v1/listen");
    assert_eq!(seen.query("model"), ["nova-3"]);
    assert_eq!(seen.query("encoding"), ["linear16"]);
    assert_eq!(seen.query("sample_rate"), ["16000"]);
    assert_eq!(seen.query("channels"), ["1"]);
    assert_eq!(seen.query("interim_results"), ["true"]);
    assert_eq!(seen.query("punctuate"), ["true"]);
    assert_eq!(seen.query("smart_format"), ["true"]);
    assert_eq!(seen.query("endpointing"), ["300"]);
    assert_eq!(seen.query("language"), ["en"]);
    // Every sample arrived, in order, as little-endian 16-bit PCM, one frame per push.
    let expected: Vec<u8> = pushed.iter().flat_map(|s| s.to_le_bytes()).collect();
    assert_eq!(seen.audio, expected);
    assert_eq!(seen.audio_frames, 60);
    assert_eq!(seen.control_types(), ["Finalize", "CloseStream"]);
}

#[tokio::test]
async fn language_option_goes_into_the_query() {
    let (url, received) = start(None, script(silent_reader)).await;
    let transcriber = DeepgramTranscriber::new(config(&url)).expect("valid");
    let mut stream = transcriber
        .open(StreamOptions {
            sample_rate: 8_000,
            language: Some("hi".into()),
        })
        .await
        .expect("open");
    stream.push_audio(&[0; 160]).expect("push");
    drop(stream);
    let seen = received.lock().expect("lock").clone();
    assert_eq!(seen.query("language"), ["hi"]);
    assert_eq!(seen.query("sample_rate"), ["8000"]);
}

#[tokio::test]
async fn idle_stream_sends_keepalives() {
    let (url, received) = start(None, script(silent_reader)).await;
    let mut config = config(&url);
    config.keepalive_interval = Duration::from_millis(100);
    let mut stream = open(config).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    stream.close();
    let keepalives = received
        .lock()
        .expect("lock")
        .control_types()
        .iter()
        .filter(|kind| *kind == "KeepAlive")
        .count();
    assert!(keepalives >= 3, "{keepalives} keep-alives");
}

#[tokio::test]
async fn silent_but_alive_server_still_ends_the_utterance() {
    let (url, received) = start(None, script(silent_reader)).await;
    let mut config = config(&url);
    config.stall_timeout = Duration::from_millis(400);
    config.finalize_timeout = Duration::from_millis(700);
    config.close_timeout = Duration::from_millis(300);
    let mut stream = open(config).await;
    stream.push_audio(&[5; 3200]).expect("push");
    stream.finish_utterance().expect("finalize");
    let started = Instant::now();
    // The fake answers pings (it keeps reading), so this is no stall: the Finalize
    // deadline ends the utterance.
    assert_eq!(
        next(stream.as_mut()).await.expect("event").expect("ok"),
        SttEvent::UtteranceEnd { requested: true }
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // close: the fake never closes, so the client stops after close_timeout.
    stream.close();
    assert!(next(stream.as_mut()).await.is_none());
    assert_eq!(
        received.lock().expect("lock").control_types(),
        ["Finalize", "CloseStream"]
    );
}

#[tokio::test]
async fn stalled_server_is_a_timeout_not_a_hang() {
    // Accepts the WebSocket, then neither reads nor writes (so it answers no ping).
    let (url, _received) = start(
        None,
        script(|socket, _| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        }),
    )
    .await;
    let mut config = config(&url);
    config.stall_timeout = Duration::from_millis(300);
    let mut stream = open(config).await;
    stream.push_audio(&[1; 320]).expect("push");
    let started = Instant::now();
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Err(TranscriptionError::Timeout {
            stage: TranscriptionTimeout::Stalled,
            ..
        }))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(next(stream.as_mut()).await.is_none());
}

#[tokio::test]
async fn handshake_refusals_are_typed_errors() {
    let cases = [
        (
            Refusal {
                status: StatusCode::UNAUTHORIZED,
                headers: vec![("dg-error", "Invalid credentials.")],
                body: r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"7b2bb4a5-6c27-4fa5-9a2e-5e9b2d4c5f10"}"#,
            },
            "401",
        ),
        (
            Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                headers: vec![("retry-after", "2")],
                body: r#"{"err_code":"TOO_MANY_REQUESTS","err_msg":"Too many requests. Please try again later","request_id":"u"}"#,
            },
            "429",
        ),
        (
            Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                headers: vec![],
                body: r#"{"category":"INSUFFICIENT_PERMISSIONS","message":"Project does not have enough credits for an API request.","details":"","request_id":"u"}"#,
            },
            "402",
        ),
        (
            Refusal {
                status: StatusCode::BAD_REQUEST,
                headers: vec![(
                    "dg-error",
                    "Bad Request: No such model/language/tier combination found.",
                )],
                body: "",
            },
            "400",
        ),
        (
            Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                headers: vec![],
                body: "upstream connect error",
            },
            "503",
        ),
    ];
    for (refusal, label) in cases {
        let (url, received) = start(Some(refusal), script(|_, _| async {})).await;
        let error = open_error(config(&url)).await;
        assert_eq!(
            received.lock().expect("lock").authorization.as_deref(),
            Some("Token dg-test-key-0123")
        );
        match label {
            "401" => assert!(
                matches!(&error, TranscriptionError::Unauthorized { status: 401, message, .. }
                    if message == "Invalid credentials. (INVALID_AUTH)"),
                "{error:?}"
            ),
            "429" => assert!(
                matches!(&error, TranscriptionError::RateLimited { retry_after: Some(wait), message, .. }
                    if *wait == Duration::from_secs(2) && message.starts_with("Too many requests")),
                "{error:?}"
            ),
            "402" => assert!(
                matches!(&error, TranscriptionError::Http { status: 402, message, .. }
                    if message.contains("enough credits")),
                "{error:?}"
            ),
            "400" => assert!(
                matches!(&error, TranscriptionError::Http { status: 400, message, .. }
                    if message.contains("No such model")),
                "{error:?}"
            ),
            _ => {
                assert!(
                    matches!(&error, TranscriptionError::Http { status: 503, .. }),
                    "{error:?}"
                );
                assert!(error.is_transient());
            }
        }
        assert!(!error.to_string().contains(API_KEY), "{error}");
    }
}

#[tokio::test]
async fn error_close_frames_become_stream_closed_errors() {
    for (code, reason) in [
        (CloseCode::Policy, "DATA-0000"),
        (CloseCode::Error, "NET-0001"),
    ] {
        let (url, _) = start(
            None,
            script(move |mut socket, _| async move {
                // Wait for audio, then refuse it the way Deepgram does.
                if let Some(Ok(Message::Binary(_))) = socket.next().await {
                    let _ = socket
                        .close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        }))
                        .await;
                }
                while socket.next().await.is_some() {}
            }),
        )
        .await;
        let mut stream = open(config(&url)).await;
        stream.push_audio(&[9; 320]).expect("push");
        let error = match next(stream.as_mut()).await {
            Some(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        };
        assert!(
            matches!(&error, TranscriptionError::StreamClosed { code: c, reason: r, .. }
                if *c == u16::from(code) && r == reason),
            "{error:?}"
        );
        assert_eq!(error.is_transient(), code == CloseCode::Error);
        assert!(next(stream.as_mut()).await.is_none());
        assert!(matches!(
            stream.push_audio(&[9; 320]),
            Err(TranscriptionError::StreamEnded { .. })
        ));
    }
}

#[tokio::test]
async fn malformed_message_is_an_error_not_a_panic() {
    let (url, _) = start(
        None,
        script(|mut socket, _| async move {
            let _ = socket
                .send(results("hello", 0.0, 0.5, false, false, false))
                .await;
            let _ = socket
                .send(Message::text("{\"type\":\"Results\",\"channel\":42"))
                .await;
            while socket.next().await.is_some() {}
        }),
    )
    .await;
    let mut stream = open(config(&url)).await;
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Ok(SttEvent::Partial(ref s))) if s.text == "hello"
    ));
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Err(TranscriptionError::MalformedResponse { .. }))
    ));
    assert!(next(stream.as_mut()).await.is_none());
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_reported() {
    let (url, _) = start(
        None,
        script(|mut socket, _| async move {
            let _ = socket.next().await;
            let _ = socket
                .send(results("book", 0.0, 0.3, false, false, false))
                .await;
            // Gone without a close frame.
            drop(socket);
        }),
    )
    .await;
    let mut stream = open(config(&url)).await;
    stream.push_audio(&[3; 320]).expect("push");
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Ok(SttEvent::Partial(ref s))) if s.text == "book"
    ));
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Err(TranscriptionError::Disconnected { .. }))
    ));
    assert!(next(stream.as_mut()).await.is_none());
}

#[tokio::test]
async fn full_buffer_drops_frames_without_blocking() {
    let (url, received) = start(None, script(silent_reader)).await;
    let mut config = config(&url);
    config.max_buffered_ms = 100;
    let mut stream = open(config).await;
    // On this single-threaded runtime the stream's task cannot run between these pushes,
    // so the buffer fills after 100 ms.
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(stream.push_audio(&[2; 320]));
    }
    assert!(outcomes[..5].iter().all(Result::is_ok));
    for outcome in &outcomes[5..] {
        assert!(
            matches!(
                outcome,
                Err(TranscriptionError::BufferFull {
                    buffered_ms: 100,
                    ..
                })
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(stream.usage().audio_ms_dropped, 60);
    // Once the task drains the buffer, audio is taken again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.push_audio(&[2; 320]).expect("room again");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stream.usage().audio_ms_sent, 120);
    assert_eq!(received.lock().expect("lock").audio.len(), 6 * 640);
}

#[tokio::test]
async fn handshake_that_never_completes_is_a_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let mut config = config(&format!("ws://{addr}/v1/listen"));
    config.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = open_error(config).await;
    assert!(
        matches!(
            error,
            TranscriptionError::Timeout {
                stage: TranscriptionTimeout::Connect,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_endpoint_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let error = open_error(config(&format!("ws://{addr}/v1/listen"))).await;
    assert!(
        matches!(error, TranscriptionError::Connect { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[test]
fn config_is_validated() {
    assert!(DeepgramTranscriber::new(DeepgramSttConfig::new("k")).is_ok());
    let check = |change: fn(&mut DeepgramSttConfig)| {
        let mut config = DeepgramSttConfig::new("k");
        change(&mut config);
        DeepgramTranscriber::new(config)
    };
    for bad in [
        check(|c| c.api_key = " ".into()),
        check(|c| c.model = String::new()),
        check(|c| c.base_url = "https://api.deepgram.com/v1/listen".into()),
        check(|c| c.stall_timeout = Duration::ZERO),
        check(|c| c.keepalive_interval = Duration::from_secs(12)),
        check(|c| c.utterance_end_ms = Some(500)),
        check(|c| c.max_buffered_ms = 10),
    ] {
        assert!(
            matches!(bad, Err(TranscriptionError::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
    let transcriber =
        DeepgramTranscriber::new(DeepgramSttConfig::new("dg-secret-key")).expect("ok");
    assert!(!format!("{transcriber:?}").contains("dg-secret-key"));
    assert_eq!(transcriber.name(), "deepgram");
}
