//! The text-to-speech contract shared by every engine.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What to say and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpeechRequest {
    /// Text to speak (one sentence or a short paragraph).
    pub text: String,
    /// Engine-specific voice name; `None` uses the engine default.
    pub voice: Option<String>,
    /// BCP 47 language tag such as `en-IN` or `hi-IN`; `None` uses the engine default.
    pub language: Option<String>,
    /// Sample rate the caller needs, e.g. 8000 for a G.711 call.
    pub sample_rate: u32,
}

/// Mono 16-bit PCM produced by an engine, at the requested sample rate.
#[derive(Debug, Clone)]
pub struct SynthesizedAudio {
    /// Sample rate of `samples` in Hz.
    pub sample_rate: u32,
    /// The audio, shared so that cached phrases are not copied per call.
    pub samples: Arc<[i16]>,
}

impl SynthesizedAudio {
    /// Duration of the audio in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

/// Why synthesis failed.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("text-to-speech engine `{engine}` could not be started: {source}")]
    Spawn {
        engine: String,
        #[source]
        source: std::io::Error,
    },
    #[error("text-to-speech engine `{engine}` failed: {detail}")]
    EngineFailed { engine: String, detail: String },
    #[error("text-to-speech engine produced unreadable audio: {0}")]
    BadAudio(String),
    #[error("text is empty")]
    EmptyText,
    #[error("text is too long: {len} bytes (limit {limit})")]
    TextTooLong { len: usize, limit: usize },
    #[error("text-to-speech timed out after {0} ms")]
    Timeout(u64),
    /// The text has more characters than the engine (a cloud provider) accepts per request.
    #[error("text is too long: {len} characters (limit {limit})")]
    TooManyCharacters { len: usize, limit: usize },
    /// The engine's configuration cannot work (bad URL, empty key or voice, zero timeout).
    #[error("invalid configuration of text-to-speech engine `{engine}`: {detail}")]
    InvalidConfig { engine: String, detail: String },
    /// The requested sample rate is outside what the engines produce (8–48 kHz).
    #[error("unsupported sample rate {0} Hz")]
    UnsupportedSampleRate(u32),
    /// The provider could not be reached: DNS, TCP connect, TLS, or the connection closed
    /// before the response headers.
    #[error("cannot reach text-to-speech provider `{engine}`: {message}")]
    Connect { engine: String, message: String },
    /// The provider refused the request with an HTTP error status (other than 429).
    #[error("text-to-speech provider `{engine}` returned HTTP {status}: {message}")]
    Http {
        engine: String,
        status: u16,
        /// The provider's own error message (with its code), or the start of the body.
        message: String,
    },
    /// The provider refused for rate or quota reasons (HTTP 429).
    #[error(
        "text-to-speech provider `{engine}` rate-limited the request (retry after {retry_after:?}): {message}"
    )]
    RateLimited {
        engine: String,
        retry_after: Option<std::time::Duration>,
        message: String,
    },
    /// A limit of a streaming engine ran out (see [`TtsTimeoutStage`]).
    #[error("text-to-speech provider `{engine}` timed out waiting for the {stage} ({limit_ms} ms)")]
    StageTimeout {
        engine: String,
        stage: TtsTimeoutStage,
        limit_ms: u64,
    },
    /// The connection broke while audio was streaming.
    #[error("audio stream from text-to-speech provider `{engine}` was interrupted: {message}")]
    StreamInterrupted { engine: String, message: String },
}

impl SpeechError {
    /// Whether the same request may succeed if sent again (to the same or another engine):
    /// rate limits, timeouts, connection failures and 5xx statuses.
    pub fn is_transient(&self) -> bool {
        match self {
            SpeechError::RateLimited { .. }
            | SpeechError::Connect { .. }
            | SpeechError::StageTimeout { .. }
            | SpeechError::StreamInterrupted { .. }
            | SpeechError::Timeout(_) => true,
            SpeechError::Http { status, .. } => *status >= 500,
            SpeechError::Spawn { .. }
            | SpeechError::EngineFailed { .. }
            | SpeechError::BadAudio(_)
            | SpeechError::EmptyText
            | SpeechError::TextTooLong { .. }
            | SpeechError::TooManyCharacters { .. }
            | SpeechError::InvalidConfig { .. }
            | SpeechError::UnsupportedSampleRate(_) => false,
        }
    }
}

/// Which limit of a streaming text-to-speech request ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtsTimeoutStage {
    /// Opening the connection (TCP and TLS).
    Connect,
    /// From sending the request to the response headers and the first audio.
    FirstByte,
    /// The gap between two pieces of audio once audio is flowing (a stalled stream).
    Idle,
    /// The whole request, from sending it to the last audio.
    Total,
}

impl std::fmt::Display for TtsTimeoutStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TtsTimeoutStage::Connect => "connection",
            TtsTimeoutStage::FirstByte => "first audio",
            TtsTimeoutStage::Idle => "next audio (stream stalled)",
            TtsTimeoutStage::Total => "end of the audio",
        })
    }
}

/// A boxed future returned by [`Synthesizer::synthesize`].
pub type SynthesisFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SynthesizedAudio, SpeechError>> + Send + 'a>>;

/// A text-to-speech engine.
///
/// Callers speak sentence by sentence (see [`split_sentences`]) so that the first audio is
/// queued before the whole reply is synthesized.
pub trait Synthesizer: Send + Sync {
    /// Engine name for logs and metrics.
    fn name(&self) -> &str;
    /// Turn text into audio at `request.sample_rate`.
    fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_>;
}

/// Split text into sentences at `.`, `!`, `?` and `।` (Devanagari danda) followed by space or end,
/// so that each can be synthesized and queued as soon as it is ready.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let terminal = matches!(c, '.' | '!' | '?' | '।');
        let boundary = chars.peek().is_none_or(|next| next.is_whitespace());
        if terminal && boundary {
            let trimmed = current.trim();
            if !trimmed.is_empty() {
                sentences.push(trimmed.to_string());
            }
            current.clear();
        }
    }
    let trimmed = current.trim();
    if !trimmed.is_empty() {
        sentences.push(trimmed.to_string());
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_terminal_punctuation_followed_by_space() {
        assert_eq!(
            split_sentences("Hello there. Press 1 to book! Is 10.30 ok? yes"),
            vec!["Hello there.", "Press 1 to book!", "Is 10.30 ok?", "yes"]
        );
    }

    #[test]
    fn splits_hindi_danda_and_ignores_blank_text() {
        assert_eq!(split_sentences("नमस्ते। आप कैसे हैं?"), vec!["नमस्ते।", "आप कैसे हैं?"]);
        assert!(split_sentences("   ").is_empty());
    }

    #[test]
    fn duration_follows_sample_count() {
        let audio = SynthesizedAudio {
            sample_rate: 8000,
            samples: vec![0i16; 4000].into(),
        };
        assert_eq!(audio.duration_ms(), 500);
    }
}
