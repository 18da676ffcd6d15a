//! The Sarvam Bulbul engine against a local fake that speaks Sarvam's text-to-speech wire
//! protocol: `POST /text-to-speech` with `api-subscription-key`, JSON
//! `{"request_id", "audios": ["<base64 WAV>"]}` back, `{"error": {"message", "code"}}` errors.

mod tts_fake;

use std::io::Cursor;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use tts_fake::{Fake, Reply, pieces, tone};
use vaani_speech::tts::{SarvamSynthesizer, SarvamTtsConfig, StreamingSynthesizer, TtsTimeouts};
use vaani_speech::{SpeechError, SpeechRequest, Synthesizer, TtsTimeoutStage};

const API_KEY: &str = "sk_sarvam_0f1e2d3c4b5a69788796a5b4";
const HINDI: &str = "नमस्ते, आपका अपॉइंटमेंट कल सुबह दस बजे है।";

fn config(base_url: &str) -> SarvamTtsConfig {
    let mut config = SarvamTtsConfig::new(API_KEY);
    config.base_url = base_url.to_owned();
    config
}

fn engine(base_url: &str) -> SarvamSynthesizer {
    SarvamSynthesizer::new(config(base_url)).expect("engine")
}

fn request(text: &str, sample_rate: u32) -> SpeechRequest {
    SpeechRequest {
        text: text.to_owned(),
        voice: None,
        language: Some("hi-IN".into()),
        sample_rate,
    }
}

fn wav(rate: u32, samples: &[i16]) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("writer");
    for &sample in samples {
        writer.write_sample(sample).expect("sample");
    }
    writer.finalize().expect("finalize");
    cursor.into_inner()
}

/// Sarvam's success body for one text.
fn success_body(rate: u32, samples: &[i16]) -> Vec<u8> {
    json!({
        "request_id": "20250611_8f2c6a1d-3b7e-4c59-9f0a-1e2d3c4b5a69",
        "audios": [BASE64.encode(wav(rate, samples))],
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn one_chunk_per_request_with_the_sarvam_request_shape() {
    let audio = tone(300.0, 8000, 6000, 9000.0);
    let body = success_body(8000, &audio);
    // The JSON itself arrives in pieces.
    let fake = Fake::start(move |_| Reply::Paced {
        content_type: "application/json",
        pieces: pieces(&body, &[1000, 7, 4093]),
        pause: Duration::from_millis(2),
    })
    .await;
    let mut config = config(&fake.base_url);
    config.pace = Some(1.2);
    config.enable_preprocessing = Some(true);
    let tts = SarvamSynthesizer::new(config).expect("engine");
    let mut stream = tts.stream(request(HINDI, 8000)).await.expect("stream");
    let chunk = stream.next_chunk().await.expect("chunk").expect("audio");
    assert_eq!(chunk.sample_rate, 8000);
    assert_eq!(chunk.samples, audio);
    assert!(stream.next_chunk().await.is_none(), "one chunk per request");
    let usage = stream.usage();
    assert_eq!(usage.characters, HINDI.chars().count() as u64);
    assert_eq!(usage.samples, 6000);
    assert!(usage.time_to_first_audio.is_some());

    let request = fake.single_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/text-to-speech");
    assert_eq!(request.header("api-subscription-key"), Some(API_KEY));
    assert_eq!(request.body["text"], HINDI);
    assert_eq!(request.body["target_language_code"], "hi-IN");
    assert_eq!(request.body["speaker"], "anushka");
    assert_eq!(request.body["model"], "bulbul:v2");
    assert_eq!(request.body["speech_sample_rate"], 8000);
    assert_eq!(request.body["enable_preprocessing"], true);
    assert!(
        request.body["pace"]
            .as_f64()
            .is_some_and(|pace| (pace - 1.2).abs() < 1e-6)
    );
    assert!(request.body.get("pitch").is_none());
}

#[tokio::test]
async fn other_rates_are_converted_and_languages_mapped() {
    let fake = Fake::start(|request| {
        let rate = request.body["speech_sample_rate"].as_u64().unwrap_or(0) as u32;
        Reply::Whole {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".to_owned())],
            body: success_body(rate, &vec![1500i16; rate as usize / 10]),
        }
    })
    .await;
    let tts = engine(&fake.base_url);
    let mut speech = request("வணக்கம்", 48000);
    speech.language = Some("ta".into());
    speech.voice = Some("Vidya".into());
    let audio = tts.synthesize(speech).await.expect("audio");
    assert_eq!(audio.sample_rate, 48000);
    assert_eq!(audio.samples.len(), 4800, "100 ms at 48 kHz");
    let request = fake.single_request();
    assert_eq!(request.body["speech_sample_rate"], 24000);
    assert_eq!(request.body["target_language_code"], "ta-IN");
    assert_eq!(request.body["speaker"], "vidya");
}

#[tokio::test]
async fn error_statuses_carry_sarvam_messages() {
    let fake = Fake::start(|request| match request.body["text"].as_str() {
        Some("403") => Reply::json(
            StatusCode::FORBIDDEN,
            json!({"error": {"message": "Invalid API key or subscription key", "code": "invalid_api_key_error", "request_id": "20250611_aa"}}),
        ),
        Some("422") => Reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": {"message": "Speaker 'meera' is not compatible with model bulbul:v2", "code": "unprocessable_entity_error"}}),
        ),
        Some("429") => Reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"message": "You have exhausted your credits", "code": "insufficient_quota_error"}}),
        ),
        _ => Reply::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": "Internal server error", "code": "internal_server_error"}}),
        ),
    })
    .await;
    let tts = engine(&fake.base_url);
    match tts.stream(request("403", 8000)).await.err() {
        Some(error @ SpeechError::Http { status: 403, .. }) => {
            let text = error.to_string();
            assert!(
                text.contains("Invalid API key or subscription key"),
                "{text}"
            );
            assert!(text.contains("code invalid_api_key_error"), "{text}");
            assert!(!format!("{text} {error:?}").contains(API_KEY));
        }
        other => panic!("expected Http 403, got {other:?}"),
    }
    match tts.stream(request("422", 8000)).await.err() {
        Some(SpeechError::Http {
            status: 422,
            message,
            ..
        }) => assert!(message.contains("not compatible"), "{message}"),
        other => panic!("expected Http 422, got {other:?}"),
    }
    match tts.stream(request("429", 8000)).await.err() {
        Some(SpeechError::RateLimited { message, .. }) => {
            assert!(message.contains("insufficient_quota_error"), "{message}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    match tts.stream(request("500", 8000)).await.err() {
        Some(error @ SpeechError::Http { status: 500, .. }) => assert!(error.is_transient()),
        other => panic!("expected Http 500, got {other:?}"),
    }
}

#[tokio::test]
async fn stalls_broken_connections_and_bad_bodies() {
    let body = success_body(8000, &[100i16; 800]);
    let fake = Fake::start(move |request| match request.body["text"].as_str() {
        Some("silent") => Reply::Silent,
        Some("fed") => Reply::Fed {
            content_type: "application/json",
        },
        Some("garbage") => Reply::Whole {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".to_owned())],
            body: b"{\"request_id\": \"x\", \"audios\": [\"UklGRg==\"]}".to_vec(),
        },
        Some("not json") => Reply::Whole {
            status: StatusCode::OK,
            headers: vec![],
            body: b"<html>maintenance</html>".to_vec(),
        },
        _ => Reply::Whole {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.clone(),
        },
    })
    .await;
    let mut config = config(&fake.base_url);
    config.timeouts = TtsTimeouts {
        first_byte: Duration::from_millis(300),
        idle: Duration::from_millis(300),
        ..TtsTimeouts::default()
    };
    config.max_response_bytes = 4096;
    let tts = SarvamSynthesizer::new(config).expect("engine");

    let started = Instant::now();
    assert!(matches!(
        tts.stream(request("silent", 8000)).await.err(),
        Some(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::FirstByte,
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Headers, then silence: the body never starts.
    let (result, _feeder) = tokio::join!(tts.stream(request("fed", 8000)), fake.feeder());
    assert!(matches!(
        result.err(),
        Some(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::FirstByte,
            ..
        })
    ));

    // Part of the JSON, then a stall.
    let (result, _feeder) = tokio::join!(tts.stream(request("fed", 8000)), async {
        let feeder = fake.feeder().await;
        feeder.send(b"{\"request_id\": \"x\", \"aud").await;
        feeder
    });
    assert!(matches!(
        result.err(),
        Some(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::Idle,
            ..
        })
    ));

    // Part of the JSON, then the connection breaks.
    let (result, ()) = tokio::join!(tts.stream(request("fed", 8000)), async {
        let feeder = fake.feeder().await;
        feeder.send(b"{\"request_id\": \"x\", \"aud").await;
        feeder.break_connection().await;
    });
    assert!(matches!(
        result.err(),
        Some(SpeechError::StreamInterrupted { .. })
    ));

    // A body over the size limit.
    let (result, ()) = tokio::join!(tts.stream(request("fed", 8000)), async {
        let feeder = fake.feeder().await;
        feeder.send(&[b' '; 3000]).await;
        feeder.send(&[b' '; 3000]).await;
    });
    match result.err() {
        Some(SpeechError::BadAudio(message)) => assert!(message.contains("4096"), "{message}"),
        other => panic!("expected BadAudio, got {other:?}"),
    }

    for text in ["garbage", "not json"] {
        assert!(
            matches!(
                tts.stream(request(text, 8000)).await.err(),
                Some(SpeechError::BadAudio(_))
            ),
            "{text}"
        );
    }
    // And a good one still works on the same engine.
    let audio = tts.synthesize(request("ok", 8000)).await.expect("audio");
    assert_eq!(audio.samples.len(), 800);
}
