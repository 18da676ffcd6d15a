//! The ElevenLabs engine against a local fake that speaks ElevenLabs' streaming wire
//! protocol: `POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_…` with
//! `xi-api-key`, chunked raw 16-bit PCM back, and `{"detail": {"status", "message"}}` errors.

mod tts_fake;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use tts_fake::{Fake, Reply, closed_port_url, pcm_bytes, pieces, tone};
use vaani_speech::tts::{
    ElevenLabsConfig, ElevenLabsSynthesizer, ElevenLabsVoiceSettings, SentenceChunker,
    StreamingSynthesizer, TtsTimeouts, collect_audio,
};
use vaani_speech::{SpeechError, SpeechRequest, Synthesizer, TtsTimeoutStage};

const API_KEY: &str = "sk_3f9a0c1e2d4b5a6978";
const VOICE: &str = "JBFqnCBsd6RMkjVDRZzb";

fn config(base_url: &str) -> ElevenLabsConfig {
    let mut config = ElevenLabsConfig::new(API_KEY);
    config.base_url = base_url.to_owned();
    config.voice_id = VOICE.to_owned();
    config
}

fn engine(base_url: &str) -> ElevenLabsSynthesizer {
    ElevenLabsSynthesizer::new(config(base_url)).expect("engine")
}

/// An engine with short limits, for the timeout tests.
fn impatient_engine(base_url: &str) -> ElevenLabsSynthesizer {
    let mut config = config(base_url);
    config.timeouts = TtsTimeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_millis(300),
        idle: Duration::from_millis(300),
        total: Duration::from_secs(5),
    };
    ElevenLabsSynthesizer::new(config).expect("engine")
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
async fn first_audio_arrives_before_the_rest_is_sent_and_request_has_elevenlabs_shape() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let mut config = config(&fake.base_url);
    config.voice_settings = Some(ElevenLabsVoiceSettings {
        stability: Some(0.5),
        similarity_boost: Some(0.75),
        ..ElevenLabsVoiceSettings::default()
    });
    let tts = ElevenLabsSynthesizer::new(config).expect("engine");
    let text = "नमस्ते, आपका अपॉइंटमेंट कल सुबह दस बजे है।";
    let mut speech = request(text, 8000);
    speech.language = Some("hi-IN".into());
    let (stream, feeder) = tokio::join!(tts.stream(speech), fake.feeder());
    let mut stream = stream.expect("headers arrive");

    // One second of audio at 8 kHz, sent in pieces of odd sizes.
    let audio = tone(440.0, 8000, 8000, 9000.0);
    let bytes = pcm_bytes(&audio);
    let sent = pieces(&bytes, &[1601, 3, 1, 998, 7, 4001]);
    feeder.send(&sent[0]).await;
    // The first piece plays before the fake has even produced the rest.
    let first = stream.next_chunk().await.expect("a chunk").expect("audio");
    assert_eq!(first.sample_rate, 8000);
    assert_eq!(
        first.samples,
        audio[..800],
        "1601 bytes = 800 samples + half"
    );
    assert!(stream.usage().time_to_first_audio.is_some());

    for piece in &sent[1..] {
        feeder.send(piece).await;
    }
    feeder.finish();
    let mut received = first.samples.clone();
    while let Some(chunk) = stream.next_chunk().await {
        let chunk = chunk.expect("audio");
        assert!(!chunk.samples.is_empty());
        received.extend(chunk.samples);
    }
    assert_eq!(received, audio, "every sample, in order, across odd splits");
    let usage = stream.usage();
    assert_eq!(usage.characters, text.chars().count() as u64);
    assert_eq!(usage.samples, 8000);

    let request = fake.single_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, format!("/v1/text-to-speech/{VOICE}/stream"));
    assert_eq!(request.query_value("output_format"), Some("pcm_8000"));
    assert_eq!(request.header("xi-api-key"), Some(API_KEY));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.body,
        json!({
            "text": text,
            "model_id": "eleven_flash_v2_5",
            "voice_settings": {"stability": 0.5, "similarity_boost": 0.75},
            "language_code": "hi",
        })
    );
}

#[tokio::test]
async fn other_rates_voices_and_the_whole_text_interface() {
    // 16 kHz is produced natively; 48 kHz is converted from 24 kHz.
    let fake = Fake::start(|request| {
        let rate: u32 = request
            .query_value("output_format")
            .and_then(|format| format.strip_prefix("pcm_"))
            .and_then(|rate| rate.parse().ok())
            .unwrap_or(0);
        Reply::Paced {
            content_type: "audio/pcm",
            pieces: pieces(
                &pcm_bytes(&tone(300.0, rate, rate as usize / 2, 8000.0)),
                &[2049, 777],
            ),
            pause: Duration::from_millis(5),
        }
    })
    .await;
    let tts = engine(&fake.base_url);
    let mut speech = request("Good morning.", 16000);
    speech.voice = Some("21m00Tcm4TlvDq8ikWAM".into());
    let audio = tts.synthesize(speech).await.expect("audio");
    assert_eq!(audio.sample_rate, 16000);
    assert_eq!(audio.samples.len(), 8000, "half a second");

    let audio = tts
        .synthesize(request("Good morning.", 48000))
        .await
        .expect("audio");
    assert_eq!(audio.sample_rate, 48000);
    assert_eq!(audio.samples.len(), 24000, "half a second at 48 kHz");
    let peak = audio.samples[2000..22000]
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!((7000..9000).contains(&peak), "peak {peak}");

    let received = fake.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].path,
        "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    );
    assert_eq!(received[0].query_value("output_format"), Some("pcm_16000"));
    assert_eq!(
        received[1].path,
        format!("/v1/text-to-speech/{VOICE}/stream")
    );
    assert_eq!(received[1].query_value("output_format"), Some("pcm_24000"));
    assert!(received[1].body.get("language_code").is_none());
}

#[tokio::test]
async fn llm_deltas_are_spoken_sentence_by_sentence_before_the_reply_is_complete() {
    // The fake speaks 10 ms of audio per character of the sentence it gets.
    let fake = Fake::start(|request| {
        let chars = request.body["text"].as_str().unwrap_or("").chars().count();
        Reply::Paced {
            content_type: "audio/pcm",
            pieces: vec![pcm_bytes(&vec![1000i16; chars * 80])],
            pause: Duration::ZERO,
        }
    })
    .await;
    let tts = engine(&fake.base_url);
    let mut chunker = SentenceChunker::default();
    let deltas = [
        "Your appoint",
        "ment is booked",
        ". I will",
        " send a re",
        "minder.",
    ];
    let mut spoken = Vec::new();
    for (index, delta) in deltas.iter().enumerate() {
        for sentence in chunker.push(delta) {
            let stream = tts.stream(request(&sentence, 8000)).await.expect("stream");
            let audio = collect_audio(stream, 8000).await.expect("audio");
            spoken.push((index, sentence, audio.samples.len()));
        }
    }
    if let Some(rest) = chunker.finish() {
        let stream = tts.stream(request(&rest, 8000)).await.expect("stream");
        let audio = collect_audio(stream, 8000).await.expect("audio");
        spoken.push((deltas.len(), rest, audio.samples.len()));
    }
    assert_eq!(
        spoken,
        vec![
            // Audio for the first sentence while the model was still writing the second.
            (2, "Your appointment is booked.".to_owned(), 27 * 80),
            (deltas.len(), "I will send a reminder.".to_owned(), 23 * 80),
        ]
    );
}

#[tokio::test]
async fn error_statuses_become_typed_errors_with_the_provider_message() {
    let fake = Fake::start(|request| match request.body["text"].as_str() {
        Some("401") => Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}),
        ),
        Some("quota") => Reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota of 10000. You have 0 credits remaining, while 91 credits are required for this request."}}),
        ),
        Some("422") => Reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body", "voice_settings", "stability"], "msg": "ensure this value is less than or equal to 1.0", "type": "value_error.number.not_le"}]}),
        ),
        Some("429") => Reply::json_with(
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "2".to_owned())],
            json!({"detail": {"status": "too_many_concurrent_requests", "message": "Too many concurrent requests for your subscription."}}),
        ),
        _ => Reply::Whole {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: vec![("content-type", "text/html".to_owned())],
            body: b"<html><body>503 Service Temporarily Unavailable</body></html>".to_vec(),
        },
    })
    .await;
    let tts = engine(&fake.base_url);
    let error = |text: &'static str| {
        let tts = &tts;
        async move {
            tts.stream(request(text, 8000))
                .await
                .err()
                .expect("an error")
        }
    };

    let unauthorized = error("401").await;
    match &unauthorized {
        SpeechError::Http {
            engine,
            status,
            message,
        } => {
            assert_eq!(engine, "elevenlabs");
            assert_eq!(*status, 401);
            assert_eq!(message, "Invalid API key (status invalid_api_key)");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(!unauthorized.is_transient());
    assert!(!format!("{unauthorized} {unauthorized:?}").contains(API_KEY));

    match error("quota").await {
        SpeechError::Http {
            status: 401,
            message,
            ..
        } => assert!(message.contains("quota_exceeded"), "{message}"),
        other => panic!("expected Http 401, got {other:?}"),
    }
    match error("422").await {
        SpeechError::Http {
            status: 422,
            message,
            ..
        } => assert_eq!(
            message,
            "body.voice_settings.stability: ensure this value is less than or equal to 1.0"
        ),
        other => panic!("expected Http 422, got {other:?}"),
    }
    match error("429").await {
        error @ SpeechError::RateLimited { .. } => {
            assert!(error.is_transient());
            let SpeechError::RateLimited {
                retry_after,
                message,
                ..
            } = error
            else {
                unreachable!()
            };
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
            assert!(
                message.starts_with("Too many concurrent requests"),
                "{message}"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    match error("503").await {
        error @ SpeechError::Http { status: 503, .. } => {
            assert!(error.is_transient());
            assert!(
                error
                    .to_string()
                    .contains("503 Service Temporarily Unavailable")
            );
        }
        other => panic!("expected Http 503, got {other:?}"),
    }
}

#[tokio::test]
async fn headers_then_silence_is_a_first_audio_timeout() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let tts = impatient_engine(&fake.base_url);
    let (stream, feeder) = tokio::join!(tts.stream(request("Hello.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    let started = Instant::now();
    match stream.next_chunk().await {
        Some(Err(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::FirstByte,
            limit_ms: 300,
            ..
        })) => {}
        other => panic!("expected a first-audio timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stream.next_chunk().await.is_none(),
        "nothing after the error"
    );
    // The client closed the connection (which cancels the synthesis at the provider).
    tokio::time::timeout(Duration::from_secs(5), feeder.closed())
        .await
        .expect("connection closed");
}

#[tokio::test]
async fn no_headers_at_all_is_a_first_audio_timeout() {
    let fake = Fake::start(|_| Reply::Silent).await;
    let tts = impatient_engine(&fake.base_url);
    let started = Instant::now();
    match tts.stream(request("Hello.", 8000)).await.err() {
        Some(
            error @ SpeechError::StageTimeout {
                stage: TtsTimeoutStage::FirstByte,
                ..
            },
        ) => assert!(error.is_transient()),
        other => panic!("expected a first-audio timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_stall_mid_stream_is_an_idle_timeout_after_the_audio_so_far() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let tts = impatient_engine(&fake.base_url);
    let (stream, feeder) = tokio::join!(tts.stream(request("Hello.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[5i16; 400])).await;
    let first = stream.next_chunk().await.expect("chunk").expect("audio");
    assert_eq!(first.samples.len(), 400);
    let started = Instant::now();
    match stream.next_chunk().await {
        Some(Err(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::Idle,
            ..
        })) => {}
        other => panic!("expected an idle timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn an_endless_stream_hits_the_total_limit() {
    let fake = Fake::start(|_| Reply::Paced {
        content_type: "audio/pcm",
        pieces: vec![pcm_bytes(&[3i16; 80]); 10_000],
        pause: Duration::from_millis(20),
    })
    .await;
    let mut config = config(&fake.base_url);
    config.timeouts.total = Duration::from_millis(400);
    let tts = ElevenLabsSynthesizer::new(config).expect("engine");
    let started = Instant::now();
    match tts.synthesize(request("Hello.", 8000)).await {
        Err(SpeechError::StageTimeout {
            stage: TtsTimeoutStage::Total,
            limit_ms: 400,
            ..
        }) => {}
        other => panic!("expected the total limit, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_dropped_connection_mid_body_is_an_interrupted_stream() {
    let fake = Fake::start(|_| Reply::Fed {
        content_type: "audio/pcm",
    })
    .await;
    let tts = engine(&fake.base_url);
    let (stream, feeder) = tokio::join!(tts.stream(request("Hello.", 8000)), fake.feeder());
    let mut stream = stream.expect("headers arrive");
    feeder.send(&pcm_bytes(&[9i16; 160])).await;
    let first = stream.next_chunk().await.expect("chunk").expect("audio");
    assert_eq!(first.samples, vec![9i16; 160]);
    feeder.break_connection().await;
    match stream.next_chunk().await {
        Some(Err(error @ SpeechError::StreamInterrupted { .. })) => {
            assert!(error.is_transient());
        }
        other => panic!("expected an interrupted stream, got {other:?}"),
    }
    assert!(stream.next_chunk().await.is_none());
}

#[tokio::test]
async fn success_statuses_without_audio_are_errors() {
    let fake = Fake::start(|request| match request.body["text"].as_str() {
        Some("json") => Reply::json(
            StatusCode::OK,
            json!({"detail": {"status": "odd", "message": "not audio"}}),
        ),
        _ => Reply::Whole {
            status: StatusCode::OK,
            headers: vec![("content-type", "audio/pcm".to_owned())],
            body: Vec::new(),
        },
    })
    .await;
    let tts = engine(&fake.base_url);
    match tts.stream(request("json", 8000)).await.err() {
        Some(SpeechError::BadAudio(message)) => assert!(message.contains("not audio"), "{message}"),
        other => panic!("expected BadAudio, got {other:?}"),
    }
    match tts.synthesize(request("empty", 8000)).await {
        Err(SpeechError::BadAudio(message)) => {
            assert!(message.contains("without audio"), "{message}")
        }
        other => panic!("expected BadAudio, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_provider_and_bad_requests() {
    let tts = engine(&closed_port_url().await);
    match tts.stream(request("Hello.", 8000)).await.err() {
        Some(error @ SpeechError::Connect { .. }) => {
            assert!(error.is_transient());
            assert!(!format!("{error:?}").contains(API_KEY));
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // Checked before anything is sent.
    assert!(matches!(
        tts.stream(request("  ", 8000)).await.err(),
        Some(SpeechError::EmptyText)
    ));
    assert!(matches!(
        tts.stream(request(&"a".repeat(5001), 8000)).await.err(),
        Some(SpeechError::TooManyCharacters {
            len: 5001,
            limit: 5000
        })
    ));
    assert!(matches!(
        tts.stream(request("Hello.", 4000)).await.err(),
        Some(SpeechError::UnsupportedSampleRate(4000))
    ));
}
