//! Speech engines behind traits.
//!
//! This slice has text-to-speech only: the [`Synthesizer`] trait and one embedded engine,
//! [`EspeakSynthesizer`], which runs the `espeak-ng` program as a separate process (it is GPL,
//! so it is never linked into vaani). Speech-to-text arrives with the conversations issue.

mod espeak;
mod synthesizer;

pub use espeak::{EspeakConfig, EspeakSynthesizer};
pub use synthesizer::{SpeechError, SpeechRequest, SynthesizedAudio, Synthesizer, split_sentences};
