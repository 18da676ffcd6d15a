//! Streaming speech-to-text: partial and final results, embedded and cloud engines.
//!
//! * [`StreamingTranscriber`] / [`TranscriptionStream`]: the contract. A call opens one
//!   stream, pushes 20 ms frames of 16 kHz mono PCM as they arrive, calls
//!   `finish_utterance` when its VAD hears the caller stop, and reads [`SttEvent`]s
//!   (partials, finals, utterance ends) from its own task. [`SttUsage`] counts the audio
//!   sent, for pricing speech-to-text seconds per call.
//! * [`UtteranceStreamAdapter`]: any utterance [`Transcriber`](crate::Transcriber)
//!   (whisper, [`OpenAiTranscriber`], [`SarvamTranscriber`]) as a streaming engine;
//!   partials come from an [`IncrementalTranscriber`] (OpenAI with `stream=true`).
//! * [`DeepgramTranscriber`]: Deepgram live streaming over a WebSocket.
//! * [`StreamingUtteranceTranscriber`]: the other direction, any streaming engine
//!   (Deepgram) as an utterance [`Transcriber`](crate::Transcriber): one stream per
//!   utterance, the finals joined.
//!
//! Protocol parsing is sans-IO (the Deepgram decoder, OpenAI's streamed reply, Sarvam's
//! reply) and unit-tested without sockets; the cloud clients share the crate's TLS set-up
//! (rustls with `ring`).

mod adapter;
mod deepgram;
mod http;
mod openai;
mod sarvam;
mod stream;
mod utterance;

pub use adapter::{
    DEFAULT_MAX_UTTERANCE_MS, DEFAULT_UTTERANCE_TIMEOUT, IncrementalTranscriber, PartialSink,
    UtteranceStreamAdapter,
};
pub use deepgram::{DEEPGRAM_ENGINE, DeepgramSttConfig, DeepgramTranscriber};
pub use http::HttpTimeouts;
pub use openai::{OPENAI_ENGINE, OpenAiSttConfig, OpenAiTranscriber};
pub use sarvam::{SARVAM_ENGINE, SARVAM_MAX_AUDIO_MS, SarvamSttConfig, SarvamTranscriber};
pub use stream::{
    NextEventFuture, OpenStreamFuture, STREAM_SAMPLE_RATE, Segment, StreamOptions,
    StreamingTranscriber, SttEvent, SttUsage, TranscriptionStream,
};
pub use utterance::{
    DEFAULT_UTTERANCE_BASE_TIMEOUT, DEFAULT_UTTERANCE_CHUNK_MS, StreamingUtteranceTranscriber,
};
