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
