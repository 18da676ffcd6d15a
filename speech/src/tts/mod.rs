//! Streaming text-to-speech: first audio before the whole text is synthesized; cloud engines.
//!
//! * [`StreamingSynthesizer`] starts a request and returns an [`AudioStream`] of
//!   [`AudioChunk`]s (mono 16-bit PCM at the request's rate) as the engine produces them,
//!   plus [`TtsUsage`] (characters billed, time to first audio). Any whole-text
//!   [`Synthesizer`](crate::Synthesizer) such as espeak-ng becomes one with
//!   [`WholeTextStreaming`] (one chunk per request).
//! * [`SentenceChunker`] cuts text that arrives in pieces (LLM token deltas) into sentences
//!   as soon as each is complete, sans-IO, so each can be synthesized while the model writes
//!   the next.
//! * Cloud engines, each also a [`Synthesizer`](crate::Synthesizer):
//!   [`ElevenLabsSynthesizer`], [`OpenAiSynthesizer`] and [`DeepgramSynthesizer`] stream raw
//!   PCM over HTTP; [`SarvamSynthesizer`] (Hindi and other Indian languages) answers each
//!   request with one WAV. Audio is converted to the requested rate (rubato, via
//!   vaani-media) when the provider cannot produce it. Limits are in [`TtsTimeouts`];
//!   failures are typed [`SpeechError`](crate::SpeechError)s carrying the provider's message.

mod chunker;
mod deepgram;
mod elevenlabs;
mod http;
mod openai;
mod pcm;
mod sarvam;
mod stream;

pub use chunker::{ChunkerConfig, SentenceChunker};
pub use deepgram::{DeepgramSynthesizer, DeepgramTtsConfig};
pub use elevenlabs::{ElevenLabsConfig, ElevenLabsSynthesizer, ElevenLabsVoiceSettings};
pub use http::TtsTimeouts;
pub use openai::{OPENAI_PCM_RATE, OpenAiSynthesizer, OpenAiTtsConfig};
pub use sarvam::{SarvamSynthesizer, SarvamTtsConfig};
pub use stream::{
    AudioChunk, AudioStream, AudioStreamFuture, ChunkFuture, StreamingSynthesizer, TtsUsage,
    WholeTextStreaming, collect_audio,
};
