//! The streaming text-to-speech contract: audio comes back in chunks as the engine produces
//! it, so playback starts before the whole text is synthesized.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::synthesizer::{
    SpeechError, SpeechRequest, SynthesisFuture, SynthesizedAudio, Synthesizer,
};

/// Lowest and highest sample rate a request may ask for.
pub(crate) const SAMPLE_RATE_RANGE: std::ops::RangeInclusive<u32> = 8000..=48000;

/// A piece of synthesized speech: mono 16-bit PCM at the requested sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioChunk {
    /// Sample rate of `samples` in Hz (the request's `sample_rate`).
    pub sample_rate: u32,
    /// The samples, in playback order; never empty.
    pub samples: Vec<i16>,
}

impl AudioChunk {
    /// Duration of the chunk in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

/// What one request cost and how fast it was, for billing and metrics. Providers price
/// text-to-speech per character, so `characters` is what the caller is billed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtsUsage {
    /// Characters (Unicode scalar values) of the text sent to the engine.
    pub characters: u64,
    /// Samples delivered so far, at the request's sample rate.
    pub samples: u64,
    /// Time from the request to the first audio chunk, once it arrived.
    pub time_to_first_audio: Option<Duration>,
}

/// A boxed future returned by [`AudioStream::next_chunk`].
pub type ChunkFuture<'a> =
    Pin<Box<dyn Future<Output = Option<Result<AudioChunk, SpeechError>>> + Send + 'a>>;

/// The audio of one request, chunk by chunk. Dropping it before the end cancels the
/// synthesis (a streaming provider's connection is closed).
pub trait AudioStream: Send {
    /// The next chunk; `None` after the last one or after an error. Cancel-safe: dropping
    /// the future (e.g. in `tokio::select!`) loses no audio.
    fn next_chunk(&mut self) -> ChunkFuture<'_>;
    /// Characters billed, samples delivered so far and the time to first audio.
    fn usage(&self) -> TtsUsage;
}

/// A boxed future returned by [`StreamingSynthesizer::stream`].
pub type AudioStreamFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn AudioStream>, SpeechError>> + Send + 'a>>;

/// A text-to-speech engine that delivers audio as it is produced.
///
/// `stream` resolves once the engine accepted the request (for a cloud provider: the
/// response headers arrived with a success status); the audio follows through
/// [`AudioStream::next_chunk`]. Feed it one sentence at a time (see
/// [`SentenceChunker`](super::SentenceChunker)) to start speaking before an LLM reply is
/// complete.
pub trait StreamingSynthesizer: Send + Sync {
    /// Engine name for logs and metrics.
    fn name(&self) -> &str;
    /// Start synthesizing `request.text` as mono 16-bit PCM at `request.sample_rate`.
    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_>;
}

/// Reads a stream to its end and joins its chunks into one clip.
pub async fn collect_audio(
    mut stream: Box<dyn AudioStream>,
    sample_rate: u32,
) -> Result<SynthesizedAudio, SpeechError> {
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        samples.extend_from_slice(&chunk?.samples);
    }
    Ok(SynthesizedAudio {
        sample_rate,
        samples: samples.into(),
    })
}

/// Checks the parts of a request every engine needs: text that is not blank and not longer
/// than `max_chars` characters, and a sample rate in 8–48 kHz. Returns the trimmed text and
/// its length in characters.
pub(crate) fn checked_text(
    request: &SpeechRequest,
    max_chars: usize,
) -> Result<(&str, usize), SpeechError> {
    if !SAMPLE_RATE_RANGE.contains(&request.sample_rate) {
        return Err(SpeechError::UnsupportedSampleRate(request.sample_rate));
    }
    let text = request.text.trim();
    if text.is_empty() {
        return Err(SpeechError::EmptyText);
    }
    let characters = text.chars().count();
    if characters > max_chars {
        return Err(SpeechError::TooManyCharacters {
            len: characters,
            limit: max_chars,
        });
    }
    Ok((text, characters))
}

/// A stream of audio that is already complete, delivered as one chunk.
pub(crate) struct ReadyAudioStream {
    chunk: Option<AudioChunk>,
    usage: TtsUsage,
}

impl ReadyAudioStream {
    /// One chunk of `samples` (none if empty), billed for `characters`, ready after
    /// `elapsed`.
    pub(crate) fn new(
        sample_rate: u32,
        samples: Vec<i16>,
        characters: u64,
        elapsed: Duration,
    ) -> Self {
        let delivered = samples.len() as u64;
        let chunk = (!samples.is_empty()).then_some(AudioChunk {
            sample_rate,
            samples,
        });
        ReadyAudioStream {
            usage: TtsUsage {
                characters,
                samples: if chunk.is_some() { delivered } else { 0 },
                time_to_first_audio: chunk.as_ref().map(|_| elapsed),
            },
            chunk,
        }
    }
}

impl AudioStream for ReadyAudioStream {
    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        let chunk = self.chunk.take();
        Box::pin(async move { chunk.map(Ok) })
    }

    fn usage(&self) -> TtsUsage {
        self.usage
    }
}

/// Makes a whole-text [`Synthesizer`] (such as espeak-ng) usable where a
/// [`StreamingSynthesizer`] is expected: each request yields its audio as one chunk.
pub struct WholeTextStreaming<S: ?Sized> {
    inner: Arc<S>,
}

impl<S: Synthesizer + ?Sized> WholeTextStreaming<S> {
    /// Wraps `synthesizer` (e.g. an `Arc<dyn Synthesizer>`).
    pub fn new(synthesizer: Arc<S>) -> Self {
        WholeTextStreaming { inner: synthesizer }
    }

    /// The wrapped engine.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
}

impl<S: Synthesizer + ?Sized> StreamingSynthesizer for WholeTextStreaming<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            let characters = request.text.trim().chars().count() as u64;
            let audio = self.inner.synthesize(request).await?;
            let stream = ReadyAudioStream::new(
                audio.sample_rate,
                audio.samples.to_vec(),
                characters,
                started.elapsed(),
            );
            Ok(Box::new(stream) as Box<dyn AudioStream>)
        })
    }
}

/// [`Synthesizer::synthesize`] for a streaming engine: stream, then join the chunks.
pub(crate) fn synthesize_by_streaming<'a, T: StreamingSynthesizer>(
    engine: &'a T,
    request: SpeechRequest,
) -> SynthesisFuture<'a> {
    Box::pin(async move {
        let sample_rate = request.sample_rate;
        let stream = engine.stream(request).await?;
        collect_audio(stream, sample_rate).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole-text engine that returns a fixed clip, or fails on the text "fail".
    struct FixedClip;

    impl Synthesizer for FixedClip {
        fn name(&self) -> &str {
            "fixed"
        }

        fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_> {
            Box::pin(async move {
                if request.text == "fail" {
                    return Err(SpeechError::EngineFailed {
                        engine: "fixed".into(),
                        detail: "asked to".into(),
                    });
                }
                Ok(SynthesizedAudio {
                    sample_rate: request.sample_rate,
                    samples: vec![7i16; 800].into(),
                })
            })
        }
    }

    fn request(text: &str) -> SpeechRequest {
        SpeechRequest {
            text: text.into(),
            voice: None,
            language: None,
            sample_rate: 8000,
        }
    }

    #[tokio::test]
    async fn whole_text_engine_streams_one_chunk_and_bills_characters() {
        let engine: Arc<dyn Synthesizer> = Arc::new(FixedClip);
        let streaming = WholeTextStreaming::new(engine);
        assert_eq!(streaming.name(), "fixed");
        let mut stream = streaming.stream(request(" नमस्ते। ")).await.expect("stream");
        let chunk = stream.next_chunk().await.expect("one chunk").expect("ok");
        assert_eq!(chunk.samples.len(), 800);
        assert_eq!(chunk.duration_ms(), 100);
        assert!(stream.next_chunk().await.is_none());
        let usage = stream.usage();
        assert_eq!(usage.characters, 7);
        assert_eq!(usage.samples, 800);
        assert!(usage.time_to_first_audio.is_some());
        assert!(matches!(
            streaming.stream(request("fail")).await.err(),
            Some(SpeechError::EngineFailed { .. })
        ));
    }

    #[tokio::test]
    async fn collect_joins_chunks() {
        let stream = ReadyAudioStream::new(8000, vec![1, 2, 3], 3, Duration::ZERO);
        let audio = collect_audio(Box::new(stream), 8000).await.expect("audio");
        assert_eq!(&audio.samples[..], &[1, 2, 3]);
        let empty = ReadyAudioStream::new(8000, Vec::new(), 3, Duration::ZERO);
        assert_eq!(empty.usage().time_to_first_audio, None);
    }

    #[test]
    fn request_checks() {
        assert!(matches!(
            checked_text(&request("  "), 10),
            Err(SpeechError::EmptyText)
        ));
        assert!(matches!(
            checked_text(&request("abcdefghijk"), 10),
            Err(SpeechError::TooManyCharacters { len: 11, limit: 10 })
        ));
        // Characters, not bytes: ten Devanagari letters are 30 bytes.
        assert_eq!(
            checked_text(&request(" कखगघङचछजझञ "), 10).expect("ok"),
            ("कखगघङचछजझञ", 10)
        );
        let mut bad_rate = request("hi");
        bad_rate.sample_rate = 0;
        assert!(matches!(
            checked_text(&bad_rate, 10),
            Err(SpeechError::UnsupportedSampleRate(0))
        ));
    }
}
