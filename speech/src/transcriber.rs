//! The speech-to-text contract shared by every engine.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// One utterance to transcribe, as cut by the voice activity detector.
#[derive(Debug, Clone)]
pub struct TranscriptionRequest {
    /// Mono 16-bit PCM of the whole utterance (leading and trailing silence may be included).
    pub samples: Arc<[i16]>,
    /// Sample rate of `samples` in Hz (8000 for a G.711 call; engines resample as they need).
    pub sample_rate: u32,
    /// BCP 47 language hint such as `en-IN`; `None` uses the engine default.
    pub language: Option<String>,
}

impl TranscriptionRequest {
    /// Duration of the audio in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate)
    }
}

/// What an engine heard in one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Recognised text, trimmed; empty when the utterance held no speech.
    pub text: String,
    /// Engine confidence from 0 to 1 (for whisper: the mean probability of the text tokens);
    /// 0 when `text` is empty.
    pub confidence: f32,
    /// Language of the text as an ISO 639-1 code such as `en`.
    pub language: String,
    /// Time the engine spent decoding, excluding the wait for a free worker.
    pub processing: Duration,
}

/// Why transcription failed.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptionError {
    #[error(
        "speech-to-text model {path} not found: run scripts/fetch-models.sh (or set the model path)"
    )]
    ModelMissing { path: PathBuf },
    #[error("speech-to-text model {path} could not be loaded: {detail}")]
    ModelLoad { path: PathBuf, detail: String },
    #[error("utterance holds no audio")]
    EmptyAudio,
    #[error("sample rate {0} Hz is not supported")]
    BadSampleRate(u32),
    #[error("utterance is too long: {duration_ms} ms (limit {limit_ms} ms)")]
    TooLong { duration_ms: u64, limit_ms: u64 },
    #[error("language `{0}` is not supported by this model")]
    UnsupportedLanguage(String),
    #[error("speech-to-text engine `{engine}` failed: {detail}")]
    EngineFailed { engine: String, detail: String },
    #[error("speech-to-text engine is shut down")]
    ShutDown,
    /// The configuration of a cloud engine cannot work (empty key, bad URL, zero timeout).
    #[error("invalid {engine} speech-to-text configuration: {detail}")]
    InvalidConfig { engine: String, detail: String },
    /// The provider could not be reached: DNS, TCP, TLS, or the connection closed before
    /// it answered.
    #[error("cannot reach speech-to-text provider {engine}: {detail}")]
    Connect { engine: String, detail: String },
    /// The provider refused the credentials (HTTP 401 or 403).
    #[error("speech-to-text provider {engine} refused the credentials (HTTP {status}): {message}")]
    Unauthorized {
        engine: String,
        status: u16,
        message: String,
    },
    /// The provider refused for rate or quota reasons (HTTP 429).
    #[error(
        "speech-to-text provider {engine} rate-limited the request (retry after {retry_after:?}): {message}"
    )]
    RateLimited {
        engine: String,
        retry_after: Option<Duration>,
        message: String,
    },
    /// The provider answered with another error status.
    #[error("speech-to-text provider {engine} returned HTTP {status}: {message}")]
    Http {
        engine: String,
        status: u16,
        message: String,
    },
    /// A time limit of the engine's configuration ran out.
    #[error("speech-to-text provider {engine} timed out {stage}")]
    Timeout {
        engine: String,
        stage: TranscriptionTimeout,
    },
    /// The provider closed a streaming connection with an error (a WebSocket close frame
    /// other than the answer to our own close).
    #[error("speech-to-text provider {engine} closed the stream (code {code}): {reason}")]
    StreamClosed {
        engine: String,
        code: u16,
        reason: String,
    },
    /// The connection broke while a stream or response was in progress.
    #[error("connection to speech-to-text provider {engine} lost: {detail}")]
    Disconnected { engine: String, detail: String },
    /// The provider sent something that does not follow its protocol.
    #[error("malformed message from speech-to-text provider {engine}: {detail}")]
    MalformedResponse { engine: String, detail: String },
    /// A streaming engine could not keep up: the audio frame was dropped.
    #[error("{engine} audio buffer is full ({buffered_ms} ms queued): the frame was dropped")]
    BufferFull { engine: String, buffered_ms: u64 },
    /// The transcription stream has ended (closed, or failed earlier): no more audio is taken.
    #[error("the {engine} transcription stream has ended")]
    StreamEnded { engine: String },
}

impl TranscriptionError {
    /// Whether trying again (the same request, or a new stream) may succeed: rate limits,
    /// timeouts, lost connections, provider-side (5xx) failures and full buffers.
    pub fn is_transient(&self) -> bool {
        match self {
            TranscriptionError::RateLimited { .. }
            | TranscriptionError::Timeout { .. }
            | TranscriptionError::Connect { .. }
            | TranscriptionError::Disconnected { .. }
            | TranscriptionError::BufferFull { .. } => true,
            TranscriptionError::Http { status, .. } => *status >= 500,
            TranscriptionError::StreamClosed { code, .. } => *code == 1011 || *code == 1013,
            _ => false,
        }
    }
}

/// Which time limit of a cloud speech-to-text engine ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptionTimeout {
    /// Opening the connection (TCP, TLS, WebSocket handshake).
    Connect,
    /// Waiting for the provider's answer to a request (an HTTP response's headers, or a
    /// streaming provider's first message).
    Response,
    /// The provider stopped sending in the middle of an answer or a stream.
    Stalled,
    /// The whole request took longer than allowed.
    Total,
}

impl std::fmt::Display for TranscriptionTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TranscriptionTimeout::Connect => "connecting",
            TranscriptionTimeout::Response => "waiting for the response",
            TranscriptionTimeout::Stalled => "mid-stream (the provider stopped answering)",
            TranscriptionTimeout::Total => "on the whole request",
        })
    }
}

/// A boxed future returned by [`Transcriber::transcribe`].
pub type TranscriptionFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Transcript, TranscriptionError>> + Send + 'a>>;

/// A speech-to-text engine that transcribes one VAD-segmented utterance at a time.
pub trait Transcriber: Send + Sync {
    /// Engine name for logs and metrics.
    fn name(&self) -> &str;
    /// Transcribe one utterance.
    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_>;
}

/// Word error rate of `hypothesis` against `reference`: (substitutions + deletions +
/// insertions) / reference words, after lower-casing and dropping punctuation.
/// Used by golden-transcript tests; 0 for two empty texts, 1 per word for an empty reference.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference = normalized_words(reference);
    let hypothesis = normalized_words(hypothesis);
    if reference.is_empty() {
        return hypothesis.len() as f64;
    }
    // Levenshtein distance over words, one row at a time.
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, ref_word) in reference.iter().enumerate() {
        let mut current = Vec::with_capacity(hypothesis.len() + 1);
        current.push(i + 1);
        for (j, hyp_word) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(ref_word != hyp_word);
            let deletion = previous[j + 1] + 1;
            let insertion = current[j] + 1;
            current.push(substitution.min(deletion).min(insertion));
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len() as f64
}

fn normalized_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| {
            word.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_text_has_no_errors_whatever_case_and_punctuation() {
        assert_eq!(word_error_rate("Book it, please.", "book it please"), 0.0);
    }

    #[test]
    fn counts_substitutions_deletions_and_insertions() {
        // one substitution out of four words
        assert_eq!(word_error_rate("a b c d", "a x c d"), 0.25);
        // one deletion
        assert_eq!(word_error_rate("a b c d", "a b d"), 0.25);
        // two insertions
        assert_eq!(word_error_rate("a b", "a x b y"), 1.0);
        // everything missing
        assert_eq!(word_error_rate("a b", ""), 1.0);
    }

    #[test]
    fn empty_reference_counts_every_hypothesis_word() {
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate(" . ", "you"), 1.0);
    }

    #[test]
    fn duration_follows_sample_count() {
        let request = TranscriptionRequest {
            samples: vec![0i16; 12_000].into(),
            sample_rate: 8000,
            language: None,
        };
        assert_eq!(request.duration_ms(), 1500);
    }
}
