//! The Deepgram Aura engine against a local fake that speaks Deepgram's speak wire protocol:
//! `POST /v1/speak?model=…&encoding=linear16&sample_rate=…&container=none` with
//! `Authorization: Token …` and `{"text"}`, raw PCM streamed back, and
//! `{"err_code", "err_msg", "request_id"}` errors.

mod tts_fake;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use tts_fake::{Fake, Reply, pcm_bytes, pieces, tone};
use vaani_speech::tts::{
    DeepgramSynthesizer, DeepgramTtsConfig, StreamingSynthesizer, TtsTimeouts,
};
use vaani_speech::{SpeechError, SpeechRequest, Synthesizer, TtsTimeoutStage};

const API_KEY: &str = "4b2f8e1c9d0a7b6e5f4c3d2e1f0a9b8c7d6e5f4a";
const REQUEST_ID: &str = "3d1a6b6e-7a4c-4d8f-9d4e-2b0e7a1f9c55";

fn engine(base_url: &str) -> DeepgramSynthesizer {
    let mut config = DeepgramTtsConfig::new(API_KEY);
    config.base_url = base_url.to_owned();
    DeepgramSynthesizer::new(config).expect("engine")
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
async fn linear16_at_the_call_rate_streams_in_odd_pieces() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/l16",
    })
    .await;
    let tts = engine(&fake.base_url);
    let (stream, feeder) = tokio::join!(
        tts.stream(request("Hello, this is the clinic.", 8000)),
        fake.feeder()
    );
    let mut stream = stream.expect("headers arrive");
    let audio = tone(250.0, 8000, 4000, 7000.0);
    let bytes = pcm_bytes(&audio);
    let sent = pieces(&bytes, &[321, 1, 1, 2047]);
    feeder.send(&sent[0]).await;
    let first = stream.next_chunk().await.expect("chunk").expect("audio");
    assert_eq!(
        first.samples,
        audio[..160],
        "321 bytes = 160 samples + half"
    );
    for piece in &sent[1..] {
        feeder.send(piece).await;
    }
    feeder.finish();
    let mut received = first.samples;
    while let Some(chunk) = stream.next_chunk().await {
        received.extend(chunk.expect("audio").samples);
    }
    assert_eq!(received, audio);

    let request = fake.single_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/v1/speak");
    assert_eq!(request.query_value("model"), Some("aura-2-thalia-en"));
    assert_eq!(request.query_value("encoding"), Some("linear16"));
    assert_eq!(request.query_value("sample_rate"), Some("8000"));
    assert_eq!(request.query_value("container"), Some("none"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Token {API_KEY}").as_str())
    );
    assert_eq!(request.body, json!({"text": "Hello, this is the clinic."}));
}

#[tokio::test]
async fn voice_models_and_converted_rates() {
    let fake = Fake::start(|request| {
        let rate: usize = request
            .query_value("sample_rate")
            .and_then(|rate| rate.parse().ok())
            .unwrap_or(0);
        Reply::Paced {
            content_type: "audio/l16",
            pieces: pieces(&pcm_bytes(&vec![2000i16; rate / 4]), &[999]),
            pause: Duration::from_millis(1),
        }
    })
    .await;
    let tts = engine(&fake.base_url);
    let mut speech = request("Good evening.", 22050);
    speech.voice = Some("aura-2-andromeda-en".into());
    let audio = tts.synthesize(speech).await.expect("audio");
    assert_eq!(audio.sample_rate, 22050);
    assert_eq!(audio.samples.len(), 5513, "ceil(6000 * 22050 / 24000)");
    // A voice that is not an Aura model falls back to the configured one.
    let mut speech = request("Good evening.", 16000);
    speech.voice = Some("alloy".into());
    let audio = tts.synthesize(speech).await.expect("audio");
    assert_eq!(audio.samples.len(), 4000);

    let received = fake.received();
    assert_eq!(
        received[0].query_value("model"),
        Some("aura-2-andromeda-en")
    );
    assert_eq!(received[0].query_value("sample_rate"), Some("24000"));
    assert_eq!(received[1].query_value("model"), Some("aura-2-thalia-en"));
    assert_eq!(received[1].query_value("sample_rate"), Some("16000"));
}

#[tokio::test]
async fn error_statuses_carry_deepgram_messages() {
    let fake = Fake::start(|request| match request.body["text"].as_str() {
        Some("401") => Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials.", "request_id": REQUEST_ID}),
        ),
        Some("400") => Reply::json(
            StatusCode::BAD_REQUEST,
            json!({"category": "INVALID_JSON", "message": "Invalid JSON submitted.", "details": "Json deserialize error: missing field `text` at line 1 column 2", "request_id": REQUEST_ID}),
        ),
        Some("429") => Reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"err_code": "TOO_MANY_REQUESTS", "err_msg": "Too many requests. Please try again later", "request_id": REQUEST_ID}),
        ),
        _ => Reply::Whole {
            status: StatusCode::BAD_GATEWAY,
            headers: vec![],
            body: Vec::new(),
        },
    })
    .await;
    let tts = engine(&fake.base_url);
    match tts.stream(request("401", 8000)).await.err() {
        Some(SpeechError::Http {
            engine,
            status: 401,
            message,
        }) => {
            assert_eq!(engine, "deepgram");
            assert_eq!(message, "Invalid credentials. (code INVALID_AUTH)");
        }
        other => panic!("expected Http 401, got {other:?}"),
    }
    match tts.stream(request("400", 8000)).await.err() {
        Some(SpeechError::Http {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("missing field `text`"), "{message}");
            assert!(message.contains("category INVALID_JSON"), "{message}");
        }
        other => panic!("expected Http 400, got {other:?}"),
    }
    match tts.stream(request("429", 8000)).await.err() {
        Some(error @ SpeechError::RateLimited { .. }) => {
            assert!(error.is_transient());
            assert!(error.to_string().contains("TOO_MANY_REQUESTS"), "{error}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    match tts.stream(request("502", 8000)).await.err() {
        Some(SpeechError::Http {
            status: 502,
            message,
            ..
        }) => assert_eq!(message, "Bad Gateway", "empty body: the status reason"),
        other => panic!("expected Http 502, got {other:?}"),
    }
}

#[tokio::test]
async fn stall_mid_stream_and_dropped_connection() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/l16",
    })
    .await;
    let mut config = DeepgramTtsConfig::new(API_KEY);
    config.base_url = fake.base_url.clone();
    config.timeouts = TtsTimeouts {
        first_byte: Duration::from_millis(300),
        idle: Duration::from_millis(200),
        ..TtsTimeouts::default()
    };
    let tts = DeepgramSynthesizer::new(config).expect("engine");

    let (stream, feeder) = tokio::join!(tts.stream(request("Hi.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[4i16; 320])).await;
    assert_eq!(
        stream
            .next_chunk()
            .await
            .expect("chunk")
            .expect("audio")
            .samples
            .len(),
        320
    );
    let started = Instant::now();
    match stream.next_chunk().await {
        Some(Err(SpeechError::StageTimeout {
            engine,
            stage: TtsTimeoutStage::Idle,
            limit_ms: 200,
        })) => assert_eq!(engine, "deepgram"),
        other => panic!("expected an idle timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(feeder);

    let (stream, feeder) = tokio::join!(tts.stream(request("Hi.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[4i16; 320])).await;
    assert!(stream.next_chunk().await.expect("chunk").is_ok());
    feeder.break_connection().await;
    assert!(matches!(
        stream.next_chunk().await,
        Some(Err(SpeechError::StreamInterrupted { .. }))
    ));
}
