//! Speech engines behind traits.
//!
//! * Text-to-speech: the [`Synthesizer`] trait and one embedded engine, [`EspeakSynthesizer`],
//!   which runs the `espeak-ng` program as a separate process (it is GPL, so it is never
//!   linked into vaani).
//! * Speech-to-text: the [`Transcriber`] trait, which transcribes one VAD-segmented utterance,
//!   and one embedded engine, [`WhisperTranscriber`] (whisper.cpp with a ggml model prepared
//!   at set-up time by `scripts/fetch-models.sh`).
//! * Language model: [`llm`], a streaming chat client for OpenAI-compatible
//!   chat-completions endpoints (OpenAI, Azure OpenAI, Groq, llama.cpp, Ollama).

mod espeak;
mod hibari;
pub mod llm;
pub mod stt;
mod synthesizer;
mod tls;
mod transcriber;
pub mod tts;
mod whisper;

pub use espeak::{EspeakConfig, EspeakSynthesizer};
pub use hibari::{HIBARI_SAMPLE_RATE, HibariConfig, HibariError, HibariSynthesizer};
pub use stt::{
    Segment, StreamOptions, StreamingTranscriber, StreamingUtteranceTranscriber, SttEvent,
    SttUsage, TranscriptionStream, UtteranceStreamAdapter,
};
pub use synthesizer::{
    SpeechError, SpeechRequest, SynthesizedAudio, Synthesizer, TtsTimeoutStage, split_sentences,
};
pub use tls::client_config as tls_client_config;
pub use transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
    TranscriptionTimeout, word_error_rate,
};
pub use tts::{AudioChunk, AudioStream, SentenceChunker, StreamingSynthesizer, WholeTextStreaming};
pub use whisper::{
    MAX_UTTERANCE_MS, WHISPER_SAMPLE_RATE, WhisperConfig, WhisperTranscriber, audio_ctx_for,
};
