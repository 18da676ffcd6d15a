//! The streaming speech-to-text contract: a per-call stream that takes audio as it arrives
//! and gives back partial and final results.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::transcriber::TranscriptionError;

/// Sample rate the call pipeline delivers (16 kHz mono after resampling).
pub const STREAM_SAMPLE_RATE: u32 = 16_000;

/// How one stream is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Sample rate of the pushed audio in Hz (mono 16-bit PCM). Default 16 000.
    pub sample_rate: u32,
    /// BCP 47 language of the caller such as `hi-IN`, overriding the engine's configured
    /// language; `None` keeps the engine's.
    pub language: Option<String>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            sample_rate: STREAM_SAMPLE_RATE,
            language: None,
        }
    }
}

impl StreamOptions {
    /// Rejects sample rates no engine takes (below 8 kHz or above 48 kHz).
    pub(crate) fn check(&self) -> Result<(), TranscriptionError> {
        if (8_000..=48_000).contains(&self.sample_rate) {
            Ok(())
        } else {
            Err(TranscriptionError::BadSampleRate(self.sample_rate))
        }
    }
}

/// A stretch of recognised speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Recognised text, trimmed.
    pub text: String,
    /// Confidence from 0 to 1 as the provider reports it; 1 when it reports none (OpenAI
    /// without logprobs, Sarvam, the partials of utterance engines).
    pub confidence: f32,
    /// Start of the segment in stream time: milliseconds of audio pushed before it.
    pub start_ms: u64,
    /// End of the segment in stream time.
    pub end_ms: u64,
    /// Language of the text as an ISO 639-1 code such as `hi`; empty when unknown.
    pub language: String,
}

/// What a stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// The provider heard speech start at `at_ms` (stream time). Only from providers with
    /// their own voice activity detection (Deepgram with `vad_events`).
    SpeechStarted {
        /// Stream time of the start of speech.
        at_ms: u64,
    },
    /// An interim hypothesis for the segment being spoken: later partials and the final
    /// replace it (each carries the whole segment's text so far, not a delta).
    Partial(Segment),
    /// The settled text of a segment; it will not change. An utterance may have several.
    Final(Segment),
    /// The utterance ended: every [`Final`](SttEvent::Final) of it has been delivered.
    /// `requested` is true for the answer to [`TranscriptionStream::finish_utterance`]
    /// (exactly one per call, in order), false when the provider's own end-pointing decided.
    /// An `UtteranceEnd` with no `Final` since the previous one carries no new text.
    UtteranceEnd {
        /// Whether this answers `finish_utterance`.
        requested: bool,
    },
    /// Provider bookkeeping: its request id (for support tickets) and, at the end of a
    /// stream, the audio duration it bills.
    Metadata {
        /// The provider's id for this stream or request.
        request_id: String,
        /// Audio the provider counted, when it says.
        billed_ms: Option<u64>,
    },
}

/// Audio accounting of one stream, for per-call pricing of speech-to-text seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SttUsage {
    /// Milliseconds of audio handed to the engine (sent on the socket, or submitted in an
    /// utterance request).
    pub audio_ms_sent: u64,
    /// Milliseconds of audio dropped because the engine's buffer was full.
    pub audio_ms_dropped: u64,
}

/// A boxed future returned by [`StreamingTranscriber::open`].
pub type OpenStreamFuture<'a> = Pin<
    Box<dyn Future<Output = Result<Box<dyn TranscriptionStream>, TranscriptionError>> + Send + 'a>,
>;

/// A boxed future returned by [`TranscriptionStream::next_event`].
pub type NextEventFuture<'a> =
    Pin<Box<dyn Future<Output = Option<Result<SttEvent, TranscriptionError>>> + Send + 'a>>;

/// A speech-to-text engine that transcribes a live audio stream. Shared by all calls; each
/// call opens its own [`TranscriptionStream`].
pub trait StreamingTranscriber: Send + Sync {
    /// Engine name for logs and metrics.
    fn name(&self) -> &str;
    /// Opens a stream (for a cloud engine: connects, within its connect timeout). Must be
    /// awaited inside a tokio runtime: the stream runs a task of its own.
    fn open(&self, options: StreamOptions) -> OpenStreamFuture<'_>;
}

/// One live transcription: audio in, [`SttEvent`]s out. Owned by the call's task.
///
/// * [`push_audio`](Self::push_audio) never blocks: audio goes into a bounded buffer that
///   the stream's own task drains. What happens when it is full depends on the engine and
///   is documented there; it is reported as [`TranscriptionError::BufferFull`].
/// * [`next_event`](Self::next_event) is cancel-safe (use it in `tokio::select!` next to
///   the audio source). After an `Err` the stream is over and the next call returns `None`.
/// * [`close`](Self::close) ends the stream gracefully: audio pushed so far is still
///   transcribed and its events delivered, then `next_event` returns `None`.
/// * Dropping the stream abandons it at once (the connection is closed, pending work is
///   cancelled).
pub trait TranscriptionStream: Send {
    /// Adds mono 16-bit PCM at the stream's sample rate (typically one 20 ms frame).
    /// Errors: [`TranscriptionError::BufferFull`] (this frame was dropped, the stream goes
    /// on) or [`TranscriptionError::StreamEnded`] (after `close` or a failure).
    fn push_audio(&mut self, samples: &[i16]) -> Result<(), TranscriptionError>;
    /// The caller stopped speaking (the VAD says so): transcribe what is pending now. The
    /// remaining finals follow, then `UtteranceEnd { requested: true }`.
    fn finish_utterance(&mut self) -> Result<(), TranscriptionError>;
    /// The next event; `None` once the stream has ended.
    fn next_event(&mut self) -> NextEventFuture<'_>;
    /// Ends the stream after what was pushed is transcribed. Idempotent.
    fn close(&mut self);
    /// Audio sent and dropped so far (valid after the end too).
    fn usage(&self) -> SttUsage;
}

/// Audio counters shared by a stream handle and its task, in samples.
#[derive(Debug, Default)]
pub(crate) struct AudioCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

impl AudioCounters {
    pub(crate) fn add_sent(&self, samples: u64) {
        self.sent.fetch_add(samples, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, samples: u64) {
        self.dropped.fetch_add(samples, Ordering::Relaxed);
    }

    /// Reserves room for `samples` in a buffer of at most `limit` samples: false (and
    /// nothing reserved) when they do not fit.
    pub(crate) fn try_queue(&self, samples: u64, limit: u64) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued + samples <= limit).then_some(queued + samples)
            })
            .is_ok()
    }

    /// Releases `samples` reserved by [`try_queue`](Self::try_queue).
    pub(crate) fn dequeue(&self, samples: u64) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                Some(queued.saturating_sub(samples))
            });
    }

    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    pub(crate) fn usage(&self, sample_rate: u32) -> SttUsage {
        SttUsage {
            audio_ms_sent: samples_to_ms(self.sent.load(Ordering::Relaxed), sample_rate),
            audio_ms_dropped: samples_to_ms(self.dropped.load(Ordering::Relaxed), sample_rate),
        }
    }
}

/// Milliseconds of `samples` at `sample_rate` (rounded down).
pub(crate) fn samples_to_ms(samples: u64, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    samples.saturating_mul(1000) / u64::from(sample_rate)
}

/// Samples in `ms` milliseconds at `sample_rate`.
pub(crate) fn ms_to_samples(ms: u64, sample_rate: u32) -> u64 {
    ms.saturating_mul(u64::from(sample_rate)) / 1000
}

/// The primary language subtag of a BCP 47 tag, lower-cased: `hi-IN` → `hi`. Empty for
/// empty input, `multi` and `unknown`.
pub(crate) fn primary_language(tag: &str) -> String {
    let primary = tag
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if primary == "multi" || primary == "unknown" || primary == "auto" {
        String::new()
    } else {
        primary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_reservation_respects_the_limit() {
        let counters = AudioCounters::default();
        assert!(counters.try_queue(300, 500));
        assert!(!counters.try_queue(300, 500));
        assert_eq!(counters.queued(), 300);
        counters.dequeue(300);
        assert!(counters.try_queue(500, 500));
        counters.dequeue(10_000);
        assert_eq!(counters.queued(), 0);
    }

    #[test]
    fn usage_is_reported_in_milliseconds() {
        let counters = AudioCounters::default();
        counters.add_sent(16_000 * 3 + 8_000);
        counters.add_dropped(320);
        assert_eq!(
            counters.usage(16_000),
            SttUsage {
                audio_ms_sent: 3_500,
                audio_ms_dropped: 20
            }
        );
        assert_eq!(samples_to_ms(1, 0), 0);
        assert_eq!(ms_to_samples(20, 16_000), 320);
    }

    #[test]
    fn primary_language_of_tags() {
        assert_eq!(primary_language("hi-IN"), "hi");
        assert_eq!(primary_language(" EN_us "), "en");
        assert_eq!(primary_language("multi"), "");
        assert_eq!(primary_language("unknown"), "");
        assert_eq!(primary_language(""), "");
    }

    #[test]
    fn options_reject_odd_sample_rates() {
        assert!(StreamOptions::default().check().is_ok());
        let options = StreamOptions {
            sample_rate: 4_000,
            language: None,
        };
        assert!(matches!(
            options.check(),
            Err(TranscriptionError::BadSampleRate(4_000))
        ));
    }
}
