//! Utterances on top of a streaming engine: [`StreamingUtteranceTranscriber`] makes any
//! [`StreamingTranscriber`] (Deepgram) a per-utterance [`Transcriber`], the reverse of
//! [`UtteranceStreamAdapter`](super::UtteranceStreamAdapter).

use std::time::{Duration, Instant};

use super::stream::{
    StreamOptions, StreamingTranscriber, SttEvent, TranscriptionStream, ms_to_samples,
    primary_language,
};
use crate::transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
    TranscriptionTimeout,
};

/// Default audio per pushed chunk.
pub const DEFAULT_UTTERANCE_CHUNK_MS: u64 = 100;
/// Default fixed part of the limit on one utterance; the audio's duration is added to it.
pub const DEFAULT_UTTERANCE_BASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before pushing again when the engine's audio buffer is full.
const BUFFER_FULL_RETRY: Duration = Duration::from_millis(5);

/// Makes any [`StreamingTranscriber`] a [`Transcriber`] that transcribes one utterance per
/// stream.
///
/// For each utterance it opens a stream (the request's language, else the one set with
/// [`language`](Self::language), else the engine's), pushes the audio in chunks of
/// `chunk_ms` as fast as the engine takes them (waiting briefly whenever the engine reports
/// [`TranscriptionError::BufferFull`]), calls
/// [`finish_utterance`](TranscriptionStream::finish_utterance) and
/// [`close`](TranscriptionStream::close), and collects the [`SttEvent::Final`] segments until
/// the answer to `finish_utterance` (`UtteranceEnd { requested: true }`) or the end of the
/// stream. The transcript is the finals' texts joined by spaces, with their mean
/// confidence and the language of the first final that names one.
///
/// Errors are the engine's (connection, credentials, stream closed, stall); the whole
/// utterance, opening included, is limited to `base_timeout` plus the audio's duration,
/// past which it fails with [`TranscriptionError::Timeout`] at stage
/// [`TranscriptionTimeout::Total`] and the stream is abandoned. Empty audio gives an empty
/// transcript without opening a stream.
#[derive(Clone)]
pub struct StreamingUtteranceTranscriber<S> {
    engine: S,
    language: Option<String>,
    chunk_ms: u64,
    base_timeout: Duration,
}

impl<S: StreamingTranscriber> std::fmt::Debug for StreamingUtteranceTranscriber<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingUtteranceTranscriber")
            .field("engine", &self.engine.name())
            .field("language", &self.language)
            .field("chunk_ms", &self.chunk_ms)
            .field("base_timeout", &self.base_timeout)
            .finish()
    }
}

impl<S: StreamingTranscriber> StreamingUtteranceTranscriber<S> {
    /// Transcribes utterances through `engine` with the defaults: the engine's language,
    /// 100 ms chunks, 10 s plus the audio's duration per utterance.
    pub fn new(engine: S) -> Self {
        Self {
            engine,
            language: None,
            chunk_ms: DEFAULT_UTTERANCE_CHUNK_MS,
            base_timeout: DEFAULT_UTTERANCE_BASE_TIMEOUT,
        }
    }

    /// Sets the language (a BCP 47 tag) of requests that name none; `None` keeps the
    /// engine's.
    pub fn language(mut self, language: Option<String>) -> Self {
        self.language = language
            .map(|language| language.trim().to_owned())
            .filter(|language| !language.is_empty());
        self
    }

    /// Sets the audio per pushed chunk, clamped to 20–100 ms.
    pub fn chunk_ms(mut self, chunk_ms: u64) -> Self {
        self.chunk_ms = chunk_ms.clamp(20, 100);
        self
    }

    /// Sets the fixed part of the limit on one utterance (the audio's duration is added).
    pub fn base_timeout(mut self, timeout: Duration) -> Self {
        self.base_timeout = timeout;
        self
    }

    /// The streaming engine underneath.
    pub fn engine(&self) -> &S {
        &self.engine
    }

    async fn run(&self, request: TranscriptionRequest) -> Result<Transcript, TranscriptionError> {
        let started = Instant::now();
        let language = request
            .language
            .as_deref()
            .map(str::trim)
            .filter(|language| !language.is_empty())
            .map(str::to_owned)
            .or_else(|| self.language.clone());
        if request.samples.is_empty() {
            return Ok(Transcript {
                text: String::new(),
                confidence: 0.0,
                language: language
                    .as_deref()
                    .map(primary_language)
                    .unwrap_or_default(),
                processing: started.elapsed(),
            });
        }
        let options = StreamOptions {
            sample_rate: request.sample_rate,
            language: language.clone(),
        };
        options.check()?;
        let limit = self
            .base_timeout
            .saturating_add(Duration::from_millis(request.duration_ms()));
        let collected = tokio::time::timeout(limit, self.stream_utterance(options, &request))
            .await
            .map_err(|_| TranscriptionError::Timeout {
                engine: self.engine.name().to_owned(),
                stage: TranscriptionTimeout::Total,
            })??;
        let text = collected.texts.join(" ");
        let confidence = if text.is_empty() || collected.confidences.is_empty() {
            0.0
        } else {
            collected.confidences.iter().sum::<f32>() / collected.confidences.len() as f32
        };
        let language = collected
            .language
            .or_else(|| language.as_deref().map(primary_language))
            .unwrap_or_default();
        Ok(Transcript {
            text,
            confidence,
            language,
            processing: started.elapsed(),
        })
    }

    /// Opens a stream, pushes the utterance, and collects its finals.
    async fn stream_utterance(
        &self,
        options: StreamOptions,
        request: &TranscriptionRequest,
    ) -> Result<Collected, TranscriptionError> {
        let chunk = ms_to_samples(self.chunk_ms, options.sample_rate).max(1) as usize;
        let mut stream = self.engine.open(options).await?;
        for samples in request.samples.chunks(chunk) {
            loop {
                match stream.push_audio(samples) {
                    Ok(()) => break,
                    Err(TranscriptionError::BufferFull { .. }) => {
                        tokio::time::sleep(BUFFER_FULL_RETRY).await;
                    }
                    Err(error) => return Err(stream_failure(stream.as_mut(), error).await),
                }
            }
        }
        if let Err(error) = stream.finish_utterance() {
            return Err(stream_failure(stream.as_mut(), error).await);
        }
        stream.close();
        let mut collected = Collected::default();
        while let Some(event) = stream.next_event().await {
            match event? {
                SttEvent::Final(segment) => {
                    let text = segment.text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    collected.texts.push(text.to_owned());
                    collected.confidences.push(segment.confidence);
                    if collected.language.is_none() && !segment.language.is_empty() {
                        collected.language = Some(segment.language);
                    }
                }
                // Every final of the utterance has been delivered; the engine finishes the
                // close on its own once the stream is dropped.
                SttEvent::UtteranceEnd { requested: true } => break,
                SttEvent::UtteranceEnd { requested: false }
                | SttEvent::SpeechStarted { .. }
                | SttEvent::Partial(_)
                | SttEvent::Metadata { .. } => {}
            }
        }
        Ok(collected)
    }
}

/// The finals of one utterance.
#[derive(Debug, Default)]
struct Collected {
    texts: Vec<String>,
    confidences: Vec<f32>,
    language: Option<String>,
}

/// The error to report when pushing to a stream failed: the stream's own failure (a
/// provider error, a stall) when it has one, else `error`.
async fn stream_failure(
    stream: &mut dyn TranscriptionStream,
    error: TranscriptionError,
) -> TranscriptionError {
    if !matches!(error, TranscriptionError::StreamEnded { .. }) {
        return error;
    }
    while let Some(event) = stream.next_event().await {
        if let Err(failure) = event {
            return failure;
        }
    }
    error
}

impl<S: StreamingTranscriber> Transcriber for StreamingUtteranceTranscriber<S> {
    fn name(&self) -> &str {
        self.engine.name()
    }

    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::stt::stream::{NextEventFuture, OpenStreamFuture, Segment, SttUsage};

    /// What the scripted engine saw.
    #[derive(Debug, Default)]
    struct Seen {
        opened: Vec<StreamOptions>,
        chunks: Vec<usize>,
        full_once: bool,
    }

    /// An engine whose streams answer `finish_utterance` with `finals`, after one
    /// `BufferFull` refusal.
    struct Scripted {
        finals: Vec<(&'static str, f32, &'static str)>,
        seen: Arc<Mutex<Seen>>,
    }

    struct ScriptedStream {
        events: Vec<Result<SttEvent, TranscriptionError>>,
        seen: Arc<Mutex<Seen>>,
    }

    impl StreamingTranscriber for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }

        fn open(&self, options: StreamOptions) -> OpenStreamFuture<'_> {
            self.seen.lock().unwrap().opened.push(options);
            let mut events: Vec<_> = self
                .finals
                .iter()
                .map(|(text, confidence, language)| {
                    Ok(SttEvent::Final(Segment {
                        text: (*text).to_owned(),
                        confidence: *confidence,
                        start_ms: 0,
                        end_ms: 0,
                        language: (*language).to_owned(),
                    }))
                })
                .collect();
            events.push(Ok(SttEvent::UtteranceEnd { requested: true }));
            events.reverse();
            let stream = ScriptedStream {
                events,
                seen: self.seen.clone(),
            };
            Box::pin(async move { Ok(Box::new(stream) as Box<dyn TranscriptionStream>) })
        }
    }

    impl TranscriptionStream for ScriptedStream {
        fn push_audio(&mut self, samples: &[i16]) -> Result<(), TranscriptionError> {
            let mut seen = self.seen.lock().unwrap();
            if !seen.full_once {
                seen.full_once = true;
                return Err(TranscriptionError::BufferFull {
                    engine: "scripted".into(),
                    buffered_ms: 0,
                });
            }
            seen.chunks.push(samples.len());
            Ok(())
        }

        fn finish_utterance(&mut self) -> Result<(), TranscriptionError> {
            Ok(())
        }

        fn next_event(&mut self) -> NextEventFuture<'_> {
            let event = self.events.pop();
            Box::pin(async move { event })
        }

        fn close(&mut self) {}

        fn usage(&self) -> SttUsage {
            SttUsage::default()
        }
    }

    #[tokio::test]
    async fn joins_finals_and_retries_full_buffers() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let transcriber = StreamingUtteranceTranscriber::new(Scripted {
            finals: vec![
                ("book a table", 0.9, ""),
                ("  ", 0.1, "en"),
                ("now.", 0.7, "hi"),
            ],
            seen: seen.clone(),
        })
        .language(Some("en-IN".into()))
        .chunk_ms(500);
        let transcript = transcriber
            .transcribe(TranscriptionRequest {
                samples: vec![0i16; 8_000 + 50].into(),
                sample_rate: 8_000,
                language: None,
            })
            .await
            .expect("transcript");
        assert_eq!(transcript.text, "book a table now.");
        assert!((transcript.confidence - 0.8).abs() < 1e-6);
        assert_eq!(transcript.language, "hi");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.opened[0].language.as_deref(), Some("en-IN"));
        assert_eq!(seen.opened[0].sample_rate, 8_000);
        // 100 ms chunks at 8 kHz, the refused first chunk pushed again.
        let mut expected = vec![800; 10];
        expected.push(50);
        assert_eq!(seen.chunks, expected);
    }

    #[tokio::test]
    async fn request_language_wins_and_bad_rates_are_refused() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let transcriber = StreamingUtteranceTranscriber::new(Scripted {
            finals: vec![],
            seen: seen.clone(),
        })
        .language(Some("en".into()));
        let transcript = transcriber
            .transcribe(TranscriptionRequest {
                samples: vec![1i16; 320].into(),
                sample_rate: 16_000,
                language: Some("hi-IN".into()),
            })
            .await
            .expect("transcript");
        assert_eq!(transcript.text, "");
        assert_eq!(transcript.confidence, 0.0);
        assert_eq!(transcript.language, "hi");
        assert_eq!(
            seen.lock().unwrap().opened[0].language.as_deref(),
            Some("hi-IN")
        );
        let error = transcriber
            .transcribe(TranscriptionRequest {
                samples: vec![1i16; 320].into(),
                sample_rate: 0,
                language: None,
            })
            .await
            .expect_err("bad rate");
        assert!(matches!(error, TranscriptionError::BadSampleRate(0)));
        assert_eq!(seen.lock().unwrap().opened.len(), 1);
    }
}
