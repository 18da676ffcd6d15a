//! Deepgram as a per-utterance `Transcriber` (`StreamingUtteranceTranscriber`), against the
//! fake Deepgram WebSocket server of the streaming client's tests: one stream per
//! utterance, the finals joined, provider errors and stalls as typed errors.

mod stt_deepgram_fake;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use vaani_speech::stt::{DeepgramSttConfig, DeepgramTranscriber};
use vaani_speech::{
    StreamingUtteranceTranscriber, Transcriber, TranscriptionError, TranscriptionRequest,
    TranscriptionTimeout,
};

use stt_deepgram_fake::{Refusal, config, realistic, script, silent_reader, start};

fn transcriber(config: DeepgramSttConfig) -> StreamingUtteranceTranscriber<DeepgramTranscriber> {
    StreamingUtteranceTranscriber::new(DeepgramTranscriber::new(config).expect("valid config"))
}

/// `ms` of 16 kHz audio with a recognisable pattern.
fn audio(ms: usize) -> Vec<i16> {
    (0..ms * 16).map(|i| (i % 2_000) as i16 - 1_000).collect()
}

fn request(samples: &[i16], language: Option<&str>) -> TranscriptionRequest {
    TranscriptionRequest {
        samples: samples.into(),
        sample_rate: 16_000,
        language: language.map(str::to_owned),
    }
}

async fn transcribe(
    transcriber: &StreamingUtteranceTranscriber<DeepgramTranscriber>,
    request: TranscriptionRequest,
) -> Result<vaani_speech::Transcript, TranscriptionError> {
    tokio::time::timeout(Duration::from_secs(8), transcriber.transcribe(request))
        .await
        .expect("an answer within 8 s")
}

#[tokio::test]
async fn utterance_comes_back_as_the_joined_finals() {
    let (url, received) = start(None, script(realistic)).await;
    let transcriber = transcriber(config(&url)).language(Some("en-IN".into()));
    assert_eq!(transcriber.name(), "deepgram");
    let pushed = audio(1_200);
    let transcript = transcribe(&transcriber, request(&pushed, None))
        .await
        .expect("transcript");
    // The final heard while audio arrived, then the `from_finalize` one.
    assert_eq!(transcript.text, "Book an appointment for tomorrow.");
    assert!((transcript.confidence - 0.97).abs() < 1e-6);
    assert_eq!(transcript.language, "en");
    assert!(transcript.processing < Duration::from_secs(5));

    // Give the fake a moment to record the CloseStream sent as the stream was let go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = received.lock().expect("lock").clone();
    assert_eq!(seen.connections, 1);
    assert_eq!(seen.query("language"), ["en-IN"]);
    assert_eq!(seen.query("sample_rate"), ["16000"]);
    // All the audio, in order, in 100 ms frames, pushed without real-time pacing.
    let expected: Vec<u8> = pushed.iter().flat_map(|s| s.to_le_bytes()).collect();
    assert_eq!(seen.audio, expected);
    assert_eq!(seen.audio_frames, 12);
    assert_eq!(seen.control_types(), ["Finalize", "CloseStream"]);

    // The next utterance opens a stream of its own, in the request's language. (The fake
    // counts audio across connections: start it from zero again.)
    received.lock().expect("lock").audio.clear();
    let transcript = transcribe(&transcriber, request(&audio(300), Some("hi")))
        .await
        .expect("transcript");
    // Under a second of audio: the fake only answers the Finalize.
    assert_eq!(transcript.text, "for tomorrow.");
    let seen = received.lock().expect("lock").clone();
    assert_eq!(seen.connections, 2);
    assert_eq!(seen.query("language"), ["hi"]);
}

#[tokio::test]
async fn long_utterance_waits_for_room_in_the_buffer() {
    let (url, received) = start(None, script(realistic)).await;
    let mut config = config(&url);
    // 8 s of audio through a 200 ms buffer: the pusher has to wait for the socket.
    config.max_buffered_ms = 200;
    let transcript = transcribe(&transcriber(config), request(&audio(8_000), None))
        .await
        .expect("transcript");
    assert_eq!(transcript.text, "Book an appointment for tomorrow.");
    assert_eq!(received.lock().expect("lock").audio.len(), 8_000 * 32);
}

#[tokio::test]
async fn provider_errors_are_typed() {
    // Refused at the handshake.
    let refusal = Refusal {
        status: StatusCode::UNAUTHORIZED,
        headers: vec![("dg-error", "Invalid credentials.")],
        body: r#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials.","request_id":"u"}"#,
    };
    let (url, _) = start(Some(refusal), script(|_, _| async {})).await;
    let error = transcribe(&transcriber(config(&url)), request(&audio(200), None))
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, TranscriptionError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );

    // Closed mid-stream the way Deepgram refuses undecodable audio.
    let (url, _) = start(
        None,
        script(|mut socket, _| async move {
            if let Some(Ok(Message::Binary(_))) = socket.next().await {
                let _ = socket
                    .close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "DATA-0000".into(),
                    }))
                    .await;
            }
            while socket.next().await.is_some() {}
        }),
    )
    .await;
    let error = transcribe(&transcriber(config(&url)), request(&audio(500), None))
        .await
        .expect_err("closed");
    assert!(
        matches!(&error, TranscriptionError::StreamClosed { code: 1008, reason, .. }
            if reason == "DATA-0000"),
        "{error:?}"
    );
    assert!(!error.is_transient());
}

#[tokio::test]
async fn stalled_provider_is_a_timeout() {
    // Accepts the WebSocket, then neither reads nor writes: the stream's stall detection.
    let (url, _) = start(
        None,
        script(|socket, _| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        }),
    )
    .await;
    let mut stalled = config(&url);
    stalled.stall_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = transcribe(&transcriber(stalled), request(&audio(200), None))
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

    // Alive (it answers pings) but never answers the Finalize: the overall limit.
    let (url, _) = start(None, script(silent_reader)).await;
    let mut silent = config(&url);
    silent.finalize_timeout = Duration::from_secs(30);
    let transcriber = transcriber(silent).base_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let error = transcribe(&transcriber, request(&audio(200), None))
        .await
        .expect_err("timed out");
    assert!(
        matches!(
            error,
            TranscriptionError::Timeout {
                stage: TranscriptionTimeout::Total,
                ..
            }
        ),
        "{error:?}"
    );
    let waited = started.elapsed();
    // 400 ms plus the 200 ms of audio.
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn empty_audio_is_empty_text_without_a_connection() {
    let (url, received) = start(None, script(realistic)).await;
    let transcriber = transcriber(config(&url)).language(Some("hi-IN".into()));
    let transcript = transcribe(&transcriber, request(&[], None))
        .await
        .expect("transcript");
    assert_eq!(transcript.text, "");
    assert_eq!(transcript.confidence, 0.0);
    assert_eq!(transcript.language, "hi");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received.lock().expect("lock").connections, 0);
}
