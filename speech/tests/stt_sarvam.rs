//! The Sarvam speech-to-text client against a fake Sarvam (axum on 127.0.0.1) that speaks
//! the real wire format: a multipart `POST /speech-to-text` with `api-subscription-key`,
//! the `{"request_id", "transcript", "language_code", ...}` answer, and Sarvam's
//! `{"error": {"message", "code", "request_id"}}` error bodies (auth failures are 403).

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
use vaani_speech::stt::{HttpTimeouts, SarvamSttConfig, SarvamTranscriber};
use vaani_speech::{
    Segment, StreamOptions, StreamingTranscriber, SttEvent, Transcriber, TranscriptionError,
    TranscriptionRequest, TranscriptionTimeout, UtteranceStreamAdapter,
};

const API_KEY: &str = "sk_sarvam_test_0123";
const HINDI: &str = "मुझे कल सुबह दस बजे का अपॉइंटमेंट चाहिए";

/// What the fake received for one request.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    texts: HashMap<String, String>,
    file: Option<(Option<String>, Option<String>, Vec<u8>)>,
}

impl Received {
    fn text(&self, name: &str) -> Option<&str> {
        self.texts.get(name).map(String::as_str)
    }

    fn wav(&self) -> (u32, Vec<i16>) {
        let (file_name, content_type, data) = self.file.clone().expect("a file field");
        assert_eq!(file_name.as_deref(), Some("utterance.wav"));
        assert_eq!(content_type.as_deref(), Some("audio/wav"));
        let reader = hound::WavReader::new(Cursor::new(data)).expect("a WAV file");
        let rate = reader.spec().sample_rate;
        let samples = reader
            .into_samples::<i16>()
            .map(|sample| sample.expect("sample"))
            .collect();
        (rate, samples)
    }
}

type Responder = Arc<dyn Fn(&Received) -> Response + Send + Sync>;

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Vec<Received>>>,
    respond: Responder,
}

async fn speech_to_text(
    State(fake): State<Fake>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut texts = HashMap::new();
    let mut file = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let data = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        if name == "file" {
            file = Some((file_name, content_type, data));
        } else {
            texts.insert(name, String::from_utf8_lossy(&data).into_owned());
        }
    }
    let received = Received {
        headers,
        texts,
        file,
    };
    let response = (fake.respond)(&received);
    fake.received.lock().expect("lock").push(received);
    response
}

/// Starts a fake; returns its base URL and the requests it received.
async fn start(
    respond: impl Fn(&Received) -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        received: received.clone(),
        respond: Arc::new(respond),
    };
    let app = Router::new()
        .route("/speech-to-text", post(speech_to_text))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), received)
}

fn config(base_url: &str) -> SarvamSttConfig {
    let mut config = SarvamSttConfig::new(API_KEY);
    config.base_url = base_url.to_owned();
    config.timeouts = HttpTimeouts {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(5),
        stall: Duration::from_secs(5),
        total: Duration::from_secs(10),
    };
    config
}

fn request(samples: Vec<i16>, language: Option<&str>) -> TranscriptionRequest {
    TranscriptionRequest {
        samples: samples.into(),
        sample_rate: 16_000,
        language: language.map(str::to_owned),
    }
}

fn speech(len: usize) -> Vec<i16> {
    (0..len).map(|i| ((i * 53) % 3000) as i16 - 1500).collect()
}

/// Sarvam's success answer.
fn answer(transcript: &str, language_code: &str) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({
            "request_id": "20250311_5d1f0a7e-3b7c-4d0c-9a55-6b3e1c2f8a90",
            "transcript": transcript,
            "timestamps": null,
            "diarized_transcript": null,
            "language_code": language_code,
            "language_probability": 0.96
        })
        .to_string(),
    )
        .into_response()
}

/// Sarvam's error body.
fn error_body(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"error": {"message": message, "code": code, "request_id": "20250311_err"}})
            .to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn hindi_utterance_and_request_shape() {
    let (url, received) = start(|_| answer(HINDI, "hi-IN")).await;
    let transcriber = SarvamTranscriber::new(config(&url)).expect("client");
    assert_eq!(transcriber.name(), "sarvam");
    let samples = speech(24_000);
    let transcript = transcriber
        .transcribe(request(samples.clone(), Some("hi")))
        .await
        .expect("transcript");
    assert_eq!(transcript.text, HINDI);
    assert_eq!(transcript.language, "hi");
    assert_eq!(transcript.confidence, 1.0);

    let seen = received.lock().expect("lock")[0].clone();
    assert_eq!(
        seen.headers
            .get("api-subscription-key")
            .and_then(|v| v.to_str().ok()),
        Some(API_KEY)
    );
    assert!(seen.headers.get("authorization").is_none());
    assert_eq!(seen.text("model"), Some("saarika:v2.5"));
    assert_eq!(seen.text("language_code"), Some("hi-IN"));
    assert_eq!(seen.text("mode"), None);
    assert_eq!(seen.wav(), (16_000, samples));
}

#[tokio::test]
async fn detected_language_and_mode_through_the_adapter() {
    let (url, received) = start(|_| answer("Kal ka appointment chahiye", "en-IN")).await;
    let mut config = config(&url);
    config.model = "saaras:v3".into();
    config.mode = Some("codemix".into());
    let transcriber = Arc::new(SarvamTranscriber::new(config).expect("client"));
    let adapter = UtteranceStreamAdapter::new(transcriber);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&[0; 8_000]).expect("push");
    stream.finish_utterance().expect("finish");
    stream.push_audio(&speech(16_000)).expect("push");
    stream.finish_utterance().expect("finish");
    let mut events = Vec::new();
    while events.len() < 4 {
        events.push(stream.next_event().await.expect("event").expect("ok"));
    }
    let segment = |start_ms, end_ms| {
        SttEvent::Final(Segment {
            text: "Kal ka appointment chahiye".into(),
            confidence: 1.0,
            start_ms,
            end_ms,
            language: "en".into(),
        })
    };
    assert_eq!(
        events,
        vec![
            segment(0, 500),
            SttEvent::UtteranceEnd { requested: true },
            segment(500, 1500),
            SttEvent::UtteranceEnd { requested: true },
        ]
    );
    assert_eq!(stream.usage().audio_ms_sent, 1500);
    let requests = received.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].text("language_code"), Some("unknown"));
    assert_eq!(requests[0].text("model"), Some("saaras:v3"));
    assert_eq!(requests[0].text("mode"), Some("codemix"));
}

#[tokio::test]
async fn error_statuses_are_typed() {
    let cases = [
        (
            StatusCode::FORBIDDEN,
            "Invalid API key",
            "invalid_api_key_error",
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded. Please retry after some time.",
            "rate_limit_exceeded_error",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Audio duration exceeds the maximum limit of 30 seconds",
            "invalid_request_error",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error",
            "internal_server_error",
        ),
    ];
    for (status, message, code) in cases {
        let (url, _) = start(move |_| {
            let mut response = error_body(status, message, code);
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert("retry-after", "4".parse().expect("header"));
            }
            response
        })
        .await;
        let transcriber = SarvamTranscriber::new(config(&url)).expect("client");
        let error = transcriber
            .transcribe(request(speech(1_600), None))
            .await
            .expect_err("an error status");
        let expected_message = format!("{message} ({code})");
        match status {
            StatusCode::FORBIDDEN => assert!(
                matches!(&error, TranscriptionError::Unauthorized { status: 403, message, .. } if *message == expected_message),
                "{error:?}"
            ),
            StatusCode::TOO_MANY_REQUESTS => assert!(
                matches!(&error, TranscriptionError::RateLimited { retry_after: Some(wait), message, .. }
                    if *wait == Duration::from_secs(4) && *message == expected_message),
                "{error:?}"
            ),
            _ => {
                assert!(
                    matches!(&error, TranscriptionError::Http { status: s, message, .. }
                        if *s == status.as_u16() && *message == expected_message),
                    "{error:?}"
                );
                assert_eq!(error.is_transient(), status.is_server_error());
            }
        }
        assert!(!error.to_string().contains(API_KEY));
    }
}

#[tokio::test]
async fn malformed_answer_is_an_error_not_a_panic() {
    let (url, _) = start(|_| {
        (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><body>Gateway</body></html>",
        )
            .into_response()
    })
    .await;
    let transcriber = SarvamTranscriber::new(config(&url)).expect("client");
    let error = transcriber
        .transcribe(request(speech(1_600), None))
        .await
        .expect_err("not JSON");
    assert!(
        matches!(error, TranscriptionError::MalformedResponse { .. }),
        "{error:?}"
    );
}

/// A body that sends `first`, then waits `gap`, then optionally breaks the connection.
fn paced_body(first: &'static str, gap: Duration, then_break: bool) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        if tx
            .send(Ok(Bytes::from_static(first.as_bytes())))
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(gap).await;
        if then_break {
            let _ = tx.send(Err(std::io::Error::other("gone"))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn answer_that_stalls_mid_body_is_a_stall_timeout() {
    let (url, _) = start(|_| {
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(paced_body(
                r#"{"request_id":"x","transcript":"मु"#,
                Duration::from_secs(30),
                false,
            ))
            .expect("response")
    })
    .await;
    let mut config = config(&url);
    config.timeouts.stall = Duration::from_millis(300);
    let transcriber = SarvamTranscriber::new(config).expect("client");
    let started = Instant::now();
    let error = transcriber
        .transcribe(request(speech(1_600), None))
        .await
        .expect_err("stalled");
    assert!(
        matches!(
            error,
            TranscriptionError::Timeout {
                stage: TranscriptionTimeout::Stalled,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn server_that_never_answers_is_a_response_timeout() {
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
    let mut config = config(&format!("http://{addr}"));
    config.timeouts.response = Duration::from_millis(300);
    let transcriber = SarvamTranscriber::new(config).expect("client");
    let started = Instant::now();
    let error = transcriber
        .transcribe(request(speech(1_600), None))
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
async fn connection_dropped_mid_body_is_reported() {
    let (url, _) = start(|_| {
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(paced_body(
                r#"{"request_id":"x","#,
                Duration::from_millis(20),
                true,
            ))
            .expect("response")
    })
    .await;
    let transcriber = SarvamTranscriber::new(config(&url)).expect("client");
    let error = transcriber
        .transcribe(request(speech(1_600), None))
        .await
        .expect_err("dropped");
    assert!(
        matches!(error, TranscriptionError::Disconnected { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn requests_it_cannot_serve_are_refused_locally() {
    let (url, received) = start(|_| answer("unused", "hi-IN")).await;
    let transcriber = SarvamTranscriber::new(config(&url)).expect("client");
    assert!(matches!(
        transcriber
            .transcribe(request(vec![0; 16_000 * 31], None))
            .await,
        Err(TranscriptionError::TooLong {
            duration_ms: 31_000,
            limit_ms: 30_000
        })
    ));
    assert!(matches!(
        transcriber.transcribe(request(speech(160), Some("Hindi"))).await,
        Err(TranscriptionError::UnsupportedLanguage(ref tag)) if tag == "Hindi"
    ));
    assert!(received.lock().expect("lock").is_empty());
}
