//! `UtteranceStreamAdapter` over fake utterance engines: buffering, stream timestamps,
//! ordering, automatic cuts at the length limit, partials from an incremental engine,
//! failures, timeouts, close and drop.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vaani_speech::stt::{IncrementalTranscriber, PartialSink};
use vaani_speech::{
    Segment, StreamOptions, StreamingTranscriber, SttEvent, SttUsage, Transcriber, Transcript,
    TranscriptionError, TranscriptionFuture, TranscriptionRequest, TranscriptionStream,
    TranscriptionTimeout, UtteranceStreamAdapter,
};

/// How the fake engine behaves.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Answers "heard N ms" at once.
    Answer,
    /// Answers with empty text (silence).
    Silence,
    /// Fails with an engine error.
    Fail,
    /// Never answers.
    Hang,
}

/// A fake utterance engine that records what it was asked.
struct FakeEngine {
    behaviour: Behaviour,
    requests: Mutex<Vec<TranscriptionRequest>>,
    /// Futures dropped before they finished (cancelled work).
    cancelled: Arc<AtomicUsize>,
}

impl FakeEngine {
    fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour,
            requests: Mutex::new(Vec::new()),
            cancelled: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn requests(&self) -> Vec<TranscriptionRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

/// Counts a future dropped before it completed.
struct CancelGuard {
    cancelled: Arc<AtomicUsize>,
    done: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.done {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl FakeEngine {
    async fn run(
        &self,
        request: TranscriptionRequest,
        partials: Option<PartialSink>,
    ) -> Result<Transcript, TranscriptionError> {
        self.requests.lock().expect("lock").push(request.clone());
        let mut guard = CancelGuard {
            cancelled: self.cancelled.clone(),
            done: false,
        };
        let text = format!("heard {} ms", request.duration_ms());
        if let Some(partials) = &partials {
            // Like a network reply: pieces arrive over separate polls.
            let words: Vec<&str> = text.split(' ').collect();
            for end in 1..words.len() {
                partials.send(&words[..end].join(" "));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let result = match self.behaviour {
            Behaviour::Answer => Ok(Transcript {
                text: format!(" {text} "),
                confidence: 0.8,
                language: "en".into(),
                processing: Duration::from_millis(1),
            }),
            Behaviour::Silence => Ok(Transcript {
                text: String::new(),
                confidence: 0.0,
                language: "en".into(),
                processing: Duration::from_millis(1),
            }),
            Behaviour::Fail => Err(TranscriptionError::EngineFailed {
                engine: "fake".into(),
                detail: "model exploded".into(),
            }),
            Behaviour::Hang => std::future::pending().await,
        };
        guard.done = true;
        result
    }
}

impl Transcriber for FakeEngine {
    fn name(&self) -> &str {
        "fake"
    }

    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request, None))
    }
}

impl IncrementalTranscriber for FakeEngine {
    fn transcribe_incremental(
        &self,
        request: TranscriptionRequest,
        partials: PartialSink,
    ) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request, Some(partials)))
    }
}

/// `ms` of 16 kHz audio in 20 ms frames; sample values count up so order is checkable.
fn push_ms(stream: &mut dyn TranscriptionStream, ms: u64, first_value: &mut i16) {
    for _ in 0..ms / 20 {
        let frame: Vec<i16> = (0..320)
            .map(|_| {
                *first_value = first_value.wrapping_add(1);
                *first_value
            })
            .collect();
        stream.push_audio(&frame).expect("push");
    }
}

async fn next(
    stream: &mut dyn TranscriptionStream,
) -> Option<Result<SttEvent, TranscriptionError>> {
    tokio::time::timeout(Duration::from_secs(5), stream.next_event())
        .await
        .expect("an event within 5 s")
}

async fn next_ok(stream: &mut dyn TranscriptionStream) -> SttEvent {
    next(stream).await.expect("an event").expect("no error")
}

fn final_segment(text: &str, start_ms: u64, end_ms: u64) -> SttEvent {
    SttEvent::Final(Segment {
        text: text.into(),
        confidence: 0.8,
        start_ms,
        end_ms,
        language: "en".into(),
    })
}

#[tokio::test]
async fn utterances_become_finals_with_stream_timestamps() {
    let engine = FakeEngine::new(Behaviour::Answer);
    let adapter = UtteranceStreamAdapter::new(engine.clone());
    assert_eq!(adapter.name(), "fake");
    let mut stream = adapter
        .open(StreamOptions {
            language: Some("en-IN".into()),
            ..StreamOptions::default()
        })
        .await
        .expect("open");
    let mut value = 0i16;
    push_ms(stream.as_mut(), 1000, &mut value);
    stream.finish_utterance().expect("finish");
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 1000 ms", 0, 1000)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: true }
    );

    // The second utterance continues the stream clock.
    push_ms(stream.as_mut(), 500, &mut value);
    stream.finish_utterance().expect("finish");
    // Nothing buffered: only the end marker, in order after the second utterance.
    stream.finish_utterance().expect("finish");
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 500 ms", 1000, 1500)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: true }
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: true }
    );
    assert_eq!(
        stream.usage(),
        SttUsage {
            audio_ms_sent: 1500,
            audio_ms_dropped: 0
        }
    );

    let requests = engine.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].sample_rate, 16_000);
    assert_eq!(requests[0].language.as_deref(), Some("en-IN"));
    assert_eq!(requests[0].samples.len(), 16_000);
    // The audio arrives whole and in order.
    assert_eq!(requests[0].samples[0], 1);
    assert_eq!(requests[0].samples[15_999], 16_000);
    assert_eq!(requests[1].samples[0], 16_001);

    stream.close();
    assert!(next(stream.as_mut()).await.is_none());
    assert!(matches!(
        stream.push_audio(&[0; 320]),
        Err(TranscriptionError::StreamEnded { .. })
    ));
}

#[tokio::test]
async fn long_speech_is_cut_at_the_limit_and_nothing_is_dropped() {
    let engine = FakeEngine::new(Behaviour::Answer);
    let adapter = UtteranceStreamAdapter::new(engine.clone()).max_utterance_ms(1000);
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    let mut value = 0i16;
    // One push larger than the limit is split too.
    let big: Vec<i16> = vec![7; 16_000 * 2 + 8_000];
    stream.push_audio(&big).expect("never BufferFull");
    stream.finish_utterance().expect("finish");
    push_ms(stream.as_mut(), 40, &mut value);
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 1000 ms", 0, 1000)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: false }
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 1000 ms", 1000, 2000)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: false }
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 500 ms", 2000, 2500)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: true }
    );
    // close() transcribes what is left (40 ms), then the stream ends.
    stream.close();
    assert_eq!(
        next_ok(stream.as_mut()).await,
        final_segment("heard 40 ms", 2500, 2540)
    );
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: false }
    );
    assert!(next(stream.as_mut()).await.is_none());
    assert_eq!(stream.usage().audio_ms_sent, 2540);
    assert_eq!(stream.usage().audio_ms_dropped, 0);
    assert_eq!(engine.requests().len(), 4);
}

#[tokio::test]
async fn silence_gives_only_the_utterance_end() {
    let adapter = UtteranceStreamAdapter::new(FakeEngine::new(Behaviour::Silence));
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&[0; 3200]).expect("push");
    stream.finish_utterance().expect("finish");
    assert_eq!(
        next_ok(stream.as_mut()).await,
        SttEvent::UtteranceEnd { requested: true }
    );
}

#[tokio::test]
async fn incremental_engine_gives_partials_before_the_final() {
    let engine = FakeEngine::new(Behaviour::Answer);
    let adapter = UtteranceStreamAdapter::with_partials(engine);
    let mut stream = adapter
        .open(StreamOptions {
            sample_rate: 8_000,
            language: Some("en-US".into()),
        })
        .await
        .expect("open");
    stream.push_audio(&[1; 8_000]).expect("push");
    stream.finish_utterance().expect("finish");
    let mut events = Vec::new();
    loop {
        let event = next_ok(stream.as_mut()).await;
        let end = matches!(event, SttEvent::UtteranceEnd { .. });
        events.push(event);
        if end {
            break;
        }
    }
    let partial = |text: &str| {
        SttEvent::Partial(Segment {
            text: text.into(),
            confidence: 1.0,
            start_ms: 0,
            end_ms: 1000,
            language: "en".into(),
        })
    };
    assert_eq!(
        events,
        vec![
            partial("heard"),
            partial("heard 1000"),
            final_segment("heard 1000 ms", 0, 1000),
            SttEvent::UtteranceEnd { requested: true },
        ]
    );
}

#[tokio::test]
async fn engine_failure_ends_the_stream() {
    let adapter = UtteranceStreamAdapter::new(FakeEngine::new(Behaviour::Fail));
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&[1; 320]).expect("push");
    stream.finish_utterance().expect("finish");
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Err(TranscriptionError::EngineFailed { ref detail, .. })) if detail == "model exploded"
    ));
    assert!(next(stream.as_mut()).await.is_none());
    assert!(matches!(
        stream.push_audio(&[1; 320]),
        Err(TranscriptionError::StreamEnded { .. })
    ));
}

#[tokio::test]
async fn hung_engine_times_out() {
    let engine = FakeEngine::new(Behaviour::Hang);
    let adapter =
        UtteranceStreamAdapter::new(engine.clone()).utterance_timeout(Duration::from_millis(100));
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&[1; 320]).expect("push");
    stream.finish_utterance().expect("finish");
    let started = std::time::Instant::now();
    assert!(matches!(
        next(stream.as_mut()).await,
        Some(Err(TranscriptionError::Timeout {
            stage: TranscriptionTimeout::Total,
            ..
        }))
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(engine.cancelled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_the_stream_cancels_pending_work() {
    let engine = FakeEngine::new(Behaviour::Hang);
    let adapter = UtteranceStreamAdapter::new(engine.clone());
    let mut stream = adapter.open(StreamOptions::default()).await.expect("open");
    stream.push_audio(&[1; 320]).expect("push");
    stream.finish_utterance().expect("finish");
    // Let the worker start the transcription.
    for _ in 0..50 {
        if !engine.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(engine.requests().len(), 1);
    drop(stream);
    let cancelled = Arc::new(AtomicBool::new(false));
    for _ in 0..100 {
        if engine.cancelled.load(Ordering::SeqCst) == 1 {
            cancelled.store(true, Ordering::SeqCst);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the pending transcription was not cancelled"
    );
}

#[tokio::test]
async fn bad_sample_rate_is_refused_at_open() {
    let adapter = UtteranceStreamAdapter::new(FakeEngine::new(Behaviour::Answer));
    let result = adapter
        .open(StreamOptions {
            sample_rate: 0,
            language: None,
        })
        .await;
    assert!(matches!(result, Err(TranscriptionError::BadSampleRate(0))));
}
