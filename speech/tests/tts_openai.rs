//! The OpenAI engine against a local fake that speaks OpenAI's speech wire protocol:
//! `POST /v1/audio/speech` with bearer auth and `"response_format": "pcm"`, raw 24 kHz 16-bit
//! PCM streamed back, `{"error": {"message", "type", "code"}}` errors.

mod tts_fake;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use tts_fake::{Fake, Reply, pcm_bytes, pieces, tone, upward_crossings};
use vaani_speech::tts::{
    OPENAI_PCM_RATE, OpenAiSynthesizer, OpenAiTtsConfig, StreamingSynthesizer, TtsTimeouts,
};
use vaani_speech::{SpeechError, SpeechRequest, Synthesizer, TtsTimeoutStage};

const API_KEY: &str = "sk-proj-test-0123456789abcdef";

fn config(base_url: &str) -> OpenAiTtsConfig {
    let mut config = OpenAiTtsConfig::new(API_KEY);
    config.base_url = format!("{base_url}/v1");
    config
}

fn engine(base_url: &str) -> OpenAiSynthesizer {
    OpenAiSynthesizer::new(config(base_url)).expect("engine")
}

fn request(text: &str, sample_rate: u32) -> SpeechRequest {
    SpeechRequest {
        text: text.to_owned(),
        voice: None,
        language: None,
        sample_rate,
    }
}

#[tokio::test]
async fn streamed_24k_pcm_is_converted_to_the_call_rate_as_it_arrives() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let mut config = config(&fake.base_url);
    config.instructions = Some("Calm, friendly clinic receptionist.".into());
    config.speed = Some(1.25);
    let tts = OpenAiSynthesizer::new(config).expect("engine");
    assert_eq!(
        tts.url(),
        format!("{}/v1/audio/speech", fake.base_url).as_str()
    );
    let mut speech = request("Your appointment is at ten.", 8000);
    speech.voice = Some("coral".into());
    let (stream, feeder) = tokio::join!(tts.stream(speech), fake.feeder());
    let mut stream = stream.expect("headers arrive");

    // One second of a 400 Hz tone at 24 kHz, in odd-sized pieces.
    let audio = tone(400.0, OPENAI_PCM_RATE, 24000, 10000.0);
    let bytes = pcm_bytes(&audio);
    let sent = pieces(&bytes, &[2881, 1, 4799, 3, 1000]);
    // 2881 bytes = 60 ms: enough for the first converted frames.
    feeder.send(&sent[0]).await;
    let first = stream.next_chunk().await.expect("chunk").expect("audio");
    assert_eq!(first.sample_rate, 8000);
    assert!(
        !first.samples.is_empty() && first.samples.len() <= 480,
        "{}",
        first.samples.len()
    );
    let mut received = first.samples;
    for piece in &sent[1..] {
        feeder.send(piece).await;
    }
    feeder.finish();
    while let Some(chunk) = stream.next_chunk().await {
        received.extend(chunk.expect("audio").samples);
    }
    assert_eq!(received.len(), 8000, "exactly one second at 8 kHz");
    let middle = &received[1000..7000];
    let crossings = upward_crossings(middle);
    assert!(
        (298..=302).contains(&crossings),
        "{crossings} crossings (400 Hz)"
    );
    let peak = middle.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!((9000..11000).contains(&peak), "peak {peak}");
    assert_eq!(stream.usage().samples, 8000);
    assert_eq!(stream.usage().characters, 27);

    let request = fake.single_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/v1/audio/speech");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(request.body["model"], "gpt-4o-mini-tts");
    assert_eq!(request.body["input"], "Your appointment is at ten.");
    assert_eq!(request.body["voice"], "coral");
    assert_eq!(request.body["response_format"], "pcm");
    assert_eq!(
        request.body["instructions"],
        "Calm, friendly clinic receptionist."
    );
    assert_eq!(request.body["speed"], 1.25);
}

#[tokio::test]
async fn whole_text_interface_and_a_root_without_v1() {
    let fake = Fake::start(|_| Reply::Paced {
        content_type: "audio/pcm",
        pieces: pieces(&pcm_bytes(&tone(200.0, 24000, 12001, 6000.0)), &[4097, 333]),
        pause: Duration::from_millis(2),
    })
    .await;
    let mut config = config(&fake.base_url);
    config.base_url = fake.base_url.clone();
    let tts = OpenAiSynthesizer::new(config).expect("engine");
    let audio = tts
        .synthesize(request("Hello.", 16000))
        .await
        .expect("audio");
    assert_eq!(audio.sample_rate, 16000);
    assert_eq!(audio.samples.len(), 8001, "ceil(12001 * 16000 / 24000)");
    assert_eq!(fake.single_request().path, "/v1/audio/speech");
    assert!(fake.single_request().body.get("instructions").is_none());
}

#[tokio::test]
async fn error_statuses_carry_openai_messages() {
    let fake = Fake::start(|request| match request.body["input"].as_str() {
        Some("401") => Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"error": {
                "message": "Incorrect API key provided: sk-proj-****cdef. You can find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"
            }}),
        ),
        Some("400") => Reply::json(
            StatusCode::BAD_REQUEST,
            json!({"error": {
                "message": "[{'type': 'string_too_long', 'loc': ('body', 'input'), 'msg': 'String should have at most 4096 characters'}]",
                "type": "invalid_request_error", "param": null, "code": null
            }}),
        ),
        Some("429") => Reply::json_with(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after-ms", "1200".to_owned())],
            json!({"error": {
                "message": "Rate limit reached for gpt-4o-mini-tts on requests per min (RPM): Limit 50, Used 50, Requested 1.",
                "type": "requests", "param": null, "code": "rate_limit_exceeded"
            }}),
        ),
        _ => Reply::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}),
        ),
    })
    .await;
    let tts = engine(&fake.base_url);
    match tts.stream(request("401", 8000)).await.err() {
        Some(error @ SpeechError::Http { status: 401, .. }) => {
            let text = error.to_string();
            assert!(text.contains("Incorrect API key provided"), "{text}");
            assert!(text.contains("code invalid_api_key"), "{text}");
            assert!(!text.contains(API_KEY));
            assert!(!error.is_transient());
        }
        other => panic!("expected Http 401, got {other:?}"),
    }
    match tts.stream(request("400", 8000)).await.err() {
        Some(SpeechError::Http {
            status: 400,
            message,
            ..
        }) => assert!(message.contains("at most 4096 characters"), "{message}"),
        other => panic!("expected Http 400, got {other:?}"),
    }
    match tts.stream(request("429", 8000)).await.err() {
        Some(SpeechError::RateLimited {
            retry_after,
            message,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_millis(1200)));
            assert!(message.contains("code rate_limit_exceeded"), "{message}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    match tts.stream(request("500", 8000)).await.err() {
        Some(error @ SpeechError::Http { status: 500, .. }) => assert!(error.is_transient()),
        other => panic!("expected Http 500, got {other:?}"),
    }
}

#[tokio::test]
async fn stalls_and_broken_connections_are_typed_errors() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let mut config = config(&fake.base_url);
    config.timeouts = TtsTimeouts {
        first_byte: Duration::from_millis(300),
        idle: Duration::from_millis(300),
        ..TtsTimeouts::default()
    };
    let tts = OpenAiSynthesizer::new(config).expect("engine");

    // Headers, then nothing.
    let (stream, _feeder) = tokio::join!(tts.stream(request("Hi.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    let started = Instant::now();
    assert!(matches!(
        stream.next_chunk().await,
        Some(Err(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::FirstByte,
            ..
        }))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Less than one converted frame, then nothing: still no audio, so still the first-audio
    // limit (the bytes arrived but could not be played yet).
    let (stream, feeder) = tokio::join!(tts.stream(request("Hi.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[1i16; 100])).await;
    match stream.next_chunk().await {
        Some(Err(SpeechError::StageTimeout { stage, .. })) => {
            assert!(
                matches!(stage, TtsTimeoutStage::FirstByte | TtsTimeoutStage::Idle),
                "{stage:?}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    // Audio, then the connection breaks.
    let (stream, feeder) = tokio::join!(tts.stream(request("Hi.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[1i16; 2400])).await;
    let first = stream.next_chunk().await.expect("chunk").expect("audio");
    assert!(!first.samples.is_empty());
    feeder.break_connection().await;
    let mut saw_interruption = false;
    while let Some(item) = stream.next_chunk().await {
        if let Err(error) = item {
            assert!(
                matches!(error, SpeechError::StreamInterrupted { .. }),
                "{error:?}"
            );
            saw_interruption = true;
        }
    }
    assert!(saw_interruption);
}
