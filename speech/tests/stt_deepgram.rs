//! The Deepgram live-streaming client against a fake Deepgram (a tokio-tungstenite
//! WebSocket server on 127.0.0.1) that speaks the real protocol: the `/v1/listen` query,
//! `Authorization: Token`, binary linear16 audio, `KeepAlive`/`Finalize`/`CloseStream`,
//! `Results`/`Metadata`/`SpeechStarted` messages, handshake refusals with `dg-error`, and
//! close frames such as 1008 `DATA-0000` and 1011 `NET-0001`.

mod stt_deepgram_fake;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use vaani_speech::stt::{DeepgramSttConfig, DeepgramTranscriber};
use vaani_speech::{
    StreamOptions, StreamingTranscriber, SttEvent, TranscriptionError, TranscriptionStream,
    TranscriptionTimeout,
};

use stt_deepgram_fake::{
    API_KEY, REQUEST_ID, Refusal, config, realistic, results, script, silent_reader, start,
};

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
