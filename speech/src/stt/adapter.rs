//! Streaming on top of an utterance engine: [`UtteranceStreamAdapter`] buffers the pushed
//! audio and transcribes it as one utterance when the VAD says the caller stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stream::{
    AudioCounters, NextEventFuture, OpenStreamFuture, Segment, StreamOptions, StreamingTranscriber,
    SttEvent, SttUsage, TranscriptionStream, ms_to_samples, samples_to_ms,
};
use crate::transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
    TranscriptionTimeout,
};

/// Longest utterance the adapter buffers by default before it transcribes what it has
/// (whisper's window, and the limit of Sarvam's REST API).
pub const DEFAULT_MAX_UTTERANCE_MS: u64 = 30_000;
/// Default limit on one utterance's transcription.
pub const DEFAULT_UTTERANCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an [`IncrementalTranscriber`] reports the text decoded so far.
#[derive(Debug, Clone)]
pub struct PartialSink {
    sender: mpsc::UnboundedSender<String>,
}

impl PartialSink {
    /// A sink and the receiver of what is sent to it.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }

    /// Reports the whole text decoded so far (not a delta). Ignored once nobody listens.
    pub fn send(&self, text_so_far: &str) {
        let _ = self.sender.send(text_so_far.to_owned());
    }
}

/// An utterance engine that can also report the text while it decodes (OpenAI's streamed
/// transcriptions), so that the adapter can emit partial results.
pub trait IncrementalTranscriber: Transcriber {
    /// Transcribes one utterance like [`Transcriber::transcribe`], sending the text decoded
    /// so far to `partials` as it grows.
    fn transcribe_incremental(
        &self,
        request: TranscriptionRequest,
        partials: PartialSink,
    ) -> TranscriptionFuture<'_>;
}

#[derive(Clone)]
enum Engine {
    Plain(Arc<dyn Transcriber>),
    Incremental(Arc<dyn IncrementalTranscriber>),
}

impl Engine {
    fn name(&self) -> &str {
        match self {
            Engine::Plain(engine) => engine.name(),
            Engine::Incremental(engine) => engine.name(),
        }
    }
}

/// Makes any utterance [`Transcriber`] (whisper, OpenAI, Sarvam) a [`StreamingTranscriber`].
///
/// Each stream buffers pushed audio. [`finish_utterance`](TranscriptionStream::finish_utterance)
/// sends the buffer for transcription in the background and the stream yields one
/// [`SttEvent::Final`] (unless the text is empty) and then `UtteranceEnd { requested: true }`;
/// with an [`IncrementalTranscriber`] partials come first. Utterances are transcribed one at
/// a time, in order. When the buffer reaches `max_utterance_ms` it is transcribed as is
/// (`UtteranceEnd { requested: false }`) and buffering goes on, so no audio is dropped and
/// `push_audio` never reports `BufferFull`. Stream time counts every pushed sample.
#[derive(Clone)]
pub struct UtteranceStreamAdapter {
    engine: Engine,
    max_utterance_ms: u64,
    utterance_timeout: Duration,
}

impl std::fmt::Debug for UtteranceStreamAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtteranceStreamAdapter")
            .field("engine", &self.engine.name())
            .field("max_utterance_ms", &self.max_utterance_ms)
            .field("utterance_timeout", &self.utterance_timeout)
            .finish()
    }
}

impl UtteranceStreamAdapter {
    /// Streams through `transcriber`, finals only.
    pub fn new(transcriber: Arc<dyn Transcriber>) -> Self {
        Self {
            engine: Engine::Plain(transcriber),
            max_utterance_ms: DEFAULT_MAX_UTTERANCE_MS,
            utterance_timeout: DEFAULT_UTTERANCE_TIMEOUT,
        }
    }

    /// Streams through `transcriber`, with partial results while each utterance decodes.
    pub fn with_partials(transcriber: Arc<dyn IncrementalTranscriber>) -> Self {
        Self {
            engine: Engine::Incremental(transcriber),
            max_utterance_ms: DEFAULT_MAX_UTTERANCE_MS,
            utterance_timeout: DEFAULT_UTTERANCE_TIMEOUT,
        }
    }

    /// Sets the longest utterance buffered before it is transcribed anyway (at least 1 s).
    pub fn max_utterance_ms(mut self, max_utterance_ms: u64) -> Self {
        self.max_utterance_ms = max_utterance_ms.max(1_000);
        self
    }

    /// Sets the limit on one utterance's transcription; past it the stream fails with
    /// [`TranscriptionError::Timeout`].
    pub fn utterance_timeout(mut self, timeout: Duration) -> Self {
        self.utterance_timeout = timeout;
        self
    }

    fn open_stream(&self, options: StreamOptions) -> Result<UtteranceStream, TranscriptionError> {
        options.check()?;
        let (jobs, job_receiver) = mpsc::unbounded_channel();
        let (event_sender, events) = mpsc::unbounded_channel();
        let counters = Arc::new(AudioCounters::default());
        let worker = tokio::spawn(run_worker(
            self.engine.clone(),
            self.utterance_timeout,
            job_receiver,
            event_sender,
            counters.clone(),
        ));
        Ok(UtteranceStream {
            engine_name: self.engine.name().to_owned(),
            jobs: Some(jobs),
            events,
            worker,
            buffer: Vec::new(),
            buffer_start: 0,
            samples_pushed: 0,
            max_utterance_samples: ms_to_samples(self.max_utterance_ms, options.sample_rate).max(1),
            sample_rate: options.sample_rate,
            language: options.language,
            counters,
        })
    }
}

impl StreamingTranscriber for UtteranceStreamAdapter {
    fn name(&self) -> &str {
        self.engine.name()
    }

    fn open(&self, options: StreamOptions) -> OpenStreamFuture<'_> {
        Box::pin(async move {
            self.open_stream(options)
                .map(|stream| Box::new(stream) as Box<dyn TranscriptionStream>)
        })
    }
}

/// Work for the background task, in order.
enum Job {
    Utterance {
        request: TranscriptionRequest,
        start_ms: u64,
        end_ms: u64,
        requested: bool,
    },
    /// `finish_utterance` with nothing buffered: only the `UtteranceEnd`.
    EndMarker,
}

/// The stream of an [`UtteranceStreamAdapter`].
struct UtteranceStream {
    engine_name: String,
    /// `None` after `close`.
    jobs: Option<mpsc::UnboundedSender<Job>>,
    events: mpsc::UnboundedReceiver<Result<SttEvent, TranscriptionError>>,
    worker: JoinHandle<()>,
    buffer: Vec<i16>,
    /// Stream position (in samples) of the buffer's first sample.
    buffer_start: u64,
    samples_pushed: u64,
    max_utterance_samples: u64,
    sample_rate: u32,
    language: Option<String>,
    counters: Arc<AudioCounters>,
}

impl UtteranceStream {
    fn ended(&self) -> TranscriptionError {
        TranscriptionError::StreamEnded {
            engine: self.engine_name.clone(),
        }
    }

    /// Hands the buffered audio to the worker (or just an end marker when there is none).
    fn submit(&mut self, requested: bool) -> Result<(), TranscriptionError> {
        let Some(jobs) = &self.jobs else {
            return Err(self.ended());
        };
        let job = if self.buffer.is_empty() {
            Job::EndMarker
        } else {
            let samples: Arc<[i16]> = std::mem::take(&mut self.buffer).into();
            let start = self.buffer_start;
            let end = start + samples.len() as u64;
            self.buffer_start = end;
            Job::Utterance {
                request: TranscriptionRequest {
                    samples,
                    sample_rate: self.sample_rate,
                    language: self.language.clone(),
                },
                start_ms: samples_to_ms(start, self.sample_rate),
                end_ms: samples_to_ms(end, self.sample_rate),
                requested,
            }
        };
        if !requested && matches!(job, Job::EndMarker) {
            return Ok(());
        }
        jobs.send(job).map_err(|_| self.ended())
    }
}

impl TranscriptionStream for UtteranceStream {
    fn push_audio(&mut self, samples: &[i16]) -> Result<(), TranscriptionError> {
        if self.jobs.is_none() || self.worker.is_finished() {
            return Err(self.ended());
        }
        let mut rest = samples;
        while !rest.is_empty() {
            let room = (self.max_utterance_samples - self.buffer.len() as u64) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            if self.buffer.is_empty() {
                self.buffer_start = self.samples_pushed;
            }
            self.buffer.extend_from_slice(now);
            self.samples_pushed += now.len() as u64;
            rest = later;
            if self.buffer.len() as u64 >= self.max_utterance_samples {
                self.submit(false)?;
            }
        }
        Ok(())
    }

    fn finish_utterance(&mut self) -> Result<(), TranscriptionError> {
        self.submit(true)
    }

    fn next_event(&mut self) -> NextEventFuture<'_> {
        Box::pin(self.events.recv())
    }

    fn close(&mut self) {
        if self.jobs.is_some() && !self.buffer.is_empty() {
            let _ = self.submit(false);
        }
        self.jobs = None;
    }

    fn usage(&self) -> SttUsage {
        self.counters.usage(self.sample_rate)
    }
}

impl Drop for UtteranceStream {
    fn drop(&mut self) {
        self.worker.abort();
    }
}

/// Transcribes the queued utterances in order and reports their events; stops at the
/// first error (the stream is then over) or when the stream is closed and all is done.
async fn run_worker(
    engine: Engine,
    timeout: Duration,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::UnboundedSender<Result<SttEvent, TranscriptionError>>,
    counters: Arc<AudioCounters>,
) {
    while let Some(job) = jobs.recv().await {
        let (request, start_ms, end_ms, requested) = match job {
            Job::EndMarker => {
                let _ = events.send(Ok(SttEvent::UtteranceEnd { requested: true }));
                continue;
            }
            Job::Utterance {
                request,
                start_ms,
                end_ms,
                requested,
            } => (request, start_ms, end_ms, requested),
        };
        counters.add_sent(request.samples.len() as u64);
        let segment = |text: String, confidence: f32, language: String| Segment {
            text,
            confidence,
            start_ms,
            end_ms,
            language,
        };
        let result = match &engine {
            Engine::Plain(engine) => tokio::time::timeout(timeout, engine.transcribe(request))
                .await
                .ok(),
            Engine::Incremental(engine) => {
                let (sink, mut partials) = PartialSink::channel();
                let language = request
                    .language
                    .as_deref()
                    .map(super::stream::primary_language)
                    .unwrap_or_default();
                let transcription = engine.transcribe_incremental(request, sink);
                tokio::time::timeout(timeout, async {
                    tokio::pin!(transcription);
                    loop {
                        tokio::select! {
                            biased;
                            Some(text) = partials.recv() => {
                                let text = text.trim();
                                if !text.is_empty() {
                                    let partial = segment(text.to_owned(), 1.0, language.clone());
                                    let _ = events.send(Ok(SttEvent::Partial(partial)));
                                }
                            }
                            // Partials sent in the poll that finished are superseded by
                            // the final and dropped.
                            result = &mut transcription => break result,
                        }
                    }
                })
                .await
                .ok()
            }
        };
        let transcript: Transcript = match result {
            None => {
                let _ = events.send(Err(TranscriptionError::Timeout {
                    engine: engine.name().to_owned(),
                    stage: TranscriptionTimeout::Total,
                }));
                return;
            }
            Some(Err(error)) => {
                let _ = events.send(Err(error));
                return;
            }
            Some(Ok(transcript)) => transcript,
        };
        let text = transcript.text.trim();
        if !text.is_empty() {
            let fin = segment(
                text.to_owned(),
                transcript.confidence,
                transcript.language.clone(),
            );
            let _ = events.send(Ok(SttEvent::Final(fin)));
        }
        let _ = events.send(Ok(SttEvent::UtteranceEnd { requested }));
    }
}
