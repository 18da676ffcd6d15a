//! An embedded neural text-to-speech voice: hibari (Apache-2.0), a 7.9 MB ONNX model distilled
//! from Kokoro-82M's `af_heart` voice (American English, female, 24 kHz), with its own
//! grapheme-to-phoneme front end ported here from hibari's Python package, so neither Python
//! nor espeak-ng is involved:
//!
//! 1. split into sentences; normalise times, dates, units, money, abbreviations;
//! 2. tokenize with spaCy's English rules, tag parts of speech (averaged perceptron);
//! 3. look words up in misaki's lexicon (stems, stress, numbers, context rules), guess
//!    unknown words with a small ONNX character model;
//! 4. phoneme ids → acoustic ONNX model → five spectra per 12.5 ms frame + F0;
//! 5. vocoder: pulse train, shaped noise, inverse STFT → 24 kHz, resampled to the call rate.
//!
//! The files come from the PyPI wheels `hibari-tts==0.2.1` and `onnxruntime==1.31.1`,
//! fetched, checked and unpacked at set-up time by `scripts/fetch-models.sh`; nothing is
//! downloaded at run time. Models load once; each synthesis runs on a blocking thread with
//! one ONNX Runtime thread, at most `max_concurrent` at once.

mod dsp;
mod g2p;
mod lexicon;
mod normalize;
mod numbers;
mod onnx;
mod tagger;
mod text;
mod token;
mod tokenize;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ort::session::Session;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::synthesizer::{
    SpeechError, SpeechRequest, SynthesisFuture, SynthesizedAudio, Synthesizer,
};

pub use dsp::SAMPLE_RATE as HIBARI_SAMPLE_RATE;

/// Name of the engine in logs and errors.
const ENGINE: &str = "hibari";
/// Voice names this engine answers to (the one bundled voice).
const VOICE_NAMES: [&str; 3] = ["heart", "af_heart", "hibari"];

/// Why the hibari voice could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HibariError {
    #[error("hibari voice file {path} is missing: run scripts/fetch-models.sh")]
    ModelMissing { path: PathBuf },
    #[error("ONNX Runtime library {path} is missing: run scripts/fetch-models.sh")]
    RuntimeMissing { path: PathBuf },
    #[error("loading ONNX Runtime from {path} failed: {detail}")]
    Runtime { path: PathBuf, detail: String },
    #[error("reading {path} failed: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid hibari data file: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("loading the ONNX model {path} failed: {detail}")]
    Model { path: PathBuf, detail: String },
    #[error("hibari {what} pattern does not compile: {detail}")]
    Pattern { what: String, detail: String },
}

/// Settings of the hibari engine.
#[derive(Debug, Clone)]
pub struct HibariConfig {
    /// Directory with the voice and its G2P data (`hibari.onnx`, `oov.onnx`, lexicons, ...),
    /// e.g. `data/models/hibari`.
    pub model_dir: PathBuf,
    /// ONNX Runtime shared library, e.g. `data/models/onnxruntime/libonnxruntime.so`.
    pub onnxruntime_library: PathBuf,
    /// Most syntheses running at once; more requests wait. Default: the number of cores.
    pub max_concurrent: usize,
    /// Speaking rate: durations are divided by this (1.0 as trained, 0.5–2.0).
    pub speed: f32,
    /// Longest text accepted, in bytes.
    pub max_text_bytes: usize,
}

impl HibariConfig {
    /// Defaults for the given files: one synthesis per core, trained pace, 4 KiB of text.
    pub fn new(model_dir: impl Into<PathBuf>, onnxruntime_library: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            onnxruntime_library: onnxruntime_library.into(),
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            speed: 1.0,
            max_text_bytes: 4096,
        }
    }

    /// Defaults for the layout `scripts/fetch-models.sh` makes under a models directory
    /// (`data/models` or `~/.cache/vaani-models`): `hibari/` and
    /// `onnxruntime/libonnxruntime.so`.
    pub fn in_models_dir(models_dir: impl AsRef<Path>) -> Self {
        let dir = models_dir.as_ref();
        Self::new(
            dir.join("hibari"),
            dir.join("onnxruntime").join("libonnxruntime.so"),
        )
    }
}

/// Text-to-speech with the hibari voice, loaded once and shared by all calls.
pub struct HibariSynthesizer {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
    max_text_bytes: usize,
}

struct Inner {
    g2p: g2p::G2p,
    splitter: g2p::SentenceSplitter,
    vocab: HashMap<char, i64>,
    vocoder: dsp::Vocoder,
    /// Idle acoustic-model sessions; at most `max_concurrent` exist.
    idle_sessions: Mutex<Vec<Session>>,
    onnxruntime_library: PathBuf,
    model_path: PathBuf,
    speed: f32,
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, HibariError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            HibariError::ModelMissing {
                path: path.to_path_buf(),
            }
        } else {
            HibariError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| HibariError::Parse {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// A data file's key → value table as one-character keys.
fn char_table(path: &Path, table: HashMap<String, i64>) -> Result<HashMap<char, i64>, HibariError> {
    table
        .into_iter()
        .map(|(key, id)| {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok((c, id)),
                _ => Err(HibariError::Parse {
                    path: path.to_path_buf(),
                    detail: format!("vocabulary key {key:?} is not one character"),
                }),
            }
        })
        .collect()
}

impl HibariSynthesizer {
    /// Load the voice, its G2P data and ONNX Runtime (blocking, about 0.5–1 s: call it at
    /// start-up or inside `spawn_blocking`).
    pub fn load(config: HibariConfig) -> Result<Self, HibariError> {
        let started = Instant::now();
        let dir = &config.model_dir;
        let library = &config.onnxruntime_library;
        let model_path = dir.join("hibari.onnx");
        // The acoustic model first: it proves the runtime and the voice are there.
        let first_session = onnx::open_session(library, &model_path)?;

        let vocab_path = dir.join("vocab.json");
        let vocab = char_table(&vocab_path, read_json(&vocab_path)?)?;
        let gold = lexicon::Dict::new(read_json(&dir.join("lexicon_us_gold.json"))?);
        let silver = lexicon::Dict::new(read_json(&dir.join("lexicon_us_silver.json"))?);
        let tagger = tagger::Tagger::new(read_json(&dir.join("tagger.json"))?);
        let tokenizer =
            tokenize::Tokenizer::new(read_json(&dir.join("tokenizer_exceptions.json"))?)?;
        let tables: normalize::NormalizeTables = read_json(&dir.join("normalize.json"))?;
        let titles: Vec<String> = tables.titles.keys().cloned().collect();
        let normalizer = normalize::Normalizer::new(tables)?;
        let oov_path = dir.join("oov.onnx");
        let oov_meta: onnx::OovMeta = read_json(&dir.join("oov.json"))?;
        let oov = Arc::new(onnx::OovModel::new(
            onnx::open_session(library, &oov_path)?,
            oov_meta,
            oov_path,
        ));
        let guesser: g2p::OovGuesser = Box::new(move |word: &str| oov.guess(word));
        let g2p = g2p::G2p::new(
            lexicon::Lexicon::new(gold, silver),
            tokenizer,
            tagger,
            normalizer,
            Some(guesser),
        )?;
        let max_concurrent = config.max_concurrent.max(1);
        tracing::info!(
            model = %model_path.display(),
            max_concurrent,
            load_ms = started.elapsed().as_millis() as u64,
            "hibari text-to-speech loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                g2p,
                splitter: g2p::SentenceSplitter::new(titles)?,
                vocab,
                vocoder: dsp::Vocoder::new(),
                idle_sessions: Mutex::new(vec![first_session]),
                onnxruntime_library: library.clone(),
                model_path,
                speed: config.speed.clamp(0.5, 2.0),
            }),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_text_bytes: config.max_text_bytes,
        })
    }

    /// The phoneme strings the model would read for `text`, one per sentence chunk (misaki
    /// alphabet, e.g. `həlˈO ðˈɛɹ.`). For diagnostics and tests.
    pub fn phonemize(&self, text: &str) -> Vec<String> {
        self.inner.phonemize(text)
    }

    /// Synthesize on the calling thread, outside the worker pool: for tools and test
    /// fixtures. The server uses [`Synthesizer::synthesize`].
    pub fn synthesize_blocking(
        &self,
        request: &SpeechRequest,
    ) -> Result<SynthesizedAudio, SpeechError> {
        let text = self.check(request)?;
        self.inner.synthesize(text, request.sample_rate)
    }

    /// The request's text, trimmed, if this engine can say it.
    fn check<'r>(&self, request: &'r SpeechRequest) -> Result<&'r str, SpeechError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Err(SpeechError::EmptyText);
        }
        if text.len() > self.max_text_bytes {
            return Err(SpeechError::TextTooLong {
                len: text.len(),
                limit: self.max_text_bytes,
            });
        }
        if let Some(language) = request.language.as_deref() {
            let primary = language.split(['-', '_']).next().unwrap_or("");
            if !primary.eq_ignore_ascii_case("en") {
                return Err(failed(format!(
                    "hibari speaks English only, not `{language}`"
                )));
            }
        }
        if let Some(voice) = request.voice.as_deref()
            && !VOICE_NAMES.iter().any(|v| v.eq_ignore_ascii_case(voice))
        {
            tracing::debug!(voice, "hibari has one voice; using it");
        }
        if request.sample_rate == 0 || request.sample_rate > 192_000 {
            return Err(SpeechError::BadAudio(format!(
                "unsupported sample rate {}",
                request.sample_rate
            )));
        }
        Ok(text)
    }

    async fn run(&self, request: SpeechRequest) -> Result<SynthesizedAudio, SpeechError> {
        let text = self.check(&request)?.to_string();
        let sample_rate = request.sample_rate;
        // The permit moves into the blocking task, so a caller that gives up waiting does not
        // free a worker that is still synthesizing.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| failed("the engine is shut down".to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = inner.synthesize(&text, sample_rate);
            drop(permit);
            result
        })
        .await
        .map_err(|e| failed(format!("synthesis task failed: {e}")))?
    }
}

fn failed(detail: String) -> SpeechError {
    SpeechError::EngineFailed {
        engine: ENGINE.to_string(),
        detail,
    }
}

impl Inner {
    fn phonemize(&self, text: &str) -> Vec<String> {
        let mut chunks = Vec::new();
        for sentence in self.splitter.split(text) {
            let phonemes = self.g2p.phonemize(&sentence);
            if !phonemes.is_empty() {
                chunks.extend(g2p::chunk_phonemes(&phonemes));
            }
        }
        chunks
    }

    fn ids(&self, phonemes: &str) -> Vec<i64> {
        let mut ids = vec![0];
        ids.extend(phonemes.chars().filter_map(|c| self.vocab.get(&c).copied()));
        ids.push(0);
        ids
    }

    /// Synthesize on the current (blocking) thread.
    fn synthesize(&self, text: &str, sample_rate: u32) -> Result<SynthesizedAudio, SpeechError> {
        let started = Instant::now();
        let chunks = self.phonemize(text);
        let g2p_seconds = started.elapsed().as_secs_f64();
        let mut session = match self
            .idle_sessions
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
        {
            Some(session) => session,
            None => onnx::open_session(&self.onnxruntime_library, &self.model_path)
                .map_err(|e| failed(e.to_string()))?,
        };
        let result = self.render(&mut session, &chunks);
        if let Ok(mut idle) = self.idle_sessions.lock() {
            idle.push(session);
        }
        let audio = result?;
        let pcm: Vec<i16> = audio
            .iter()
            .map(|x| (x.clamp(-1.0, 1.0) * 32767.0) as i16)
            .collect();
        let samples = if sample_rate == dsp::SAMPLE_RATE {
            pcm
        } else {
            vaani_media::resample::resample_buffer(&pcm, dsp::SAMPLE_RATE, sample_rate)
        };
        let audio_seconds = audio.len() as f64 / f64::from(dsp::SAMPLE_RATE);
        let elapsed = started.elapsed().as_secs_f64();
        tracing::debug!(
            audio_ms = (audio_seconds * 1000.0) as u64,
            g2p_ms = (g2p_seconds * 1000.0) as u64,
            synthesis_ms = (elapsed * 1000.0) as u64,
            rtf = if audio_seconds > 0.0 {
                elapsed / audio_seconds
            } else {
                0.0
            },
            "hibari synthesized"
        );
        Ok(SynthesizedAudio {
            sample_rate,
            samples: samples.into(),
        })
    }

    /// 24 kHz float audio for the phoneme chunks, one after another.
    fn render(&self, session: &mut Session, chunks: &[String]) -> Result<Vec<f32>, SpeechError> {
        // Fixed seed: the same text always gives the same audio.
        let mut noise = dsp::Noise::new(0);
        let mut audio = Vec::new();
        for chunk in chunks {
            let ids = self.ids(chunk);
            if ids.len() < 3 {
                continue;
            }
            let out = onnx::run_acoustic(session, ids, self.speed, dsp::BINS)
                .map_err(|detail| failed(format!("acoustic model: {detail}")))?;
            let spectra = dsp::Spectra {
                frames: out.frames.min(out.f0.len()),
                harmonic_log_magnitude: &out.harmonic_log_magnitude,
                harmonic_phase: &out.harmonic_phase,
                noise_log_magnitude: &out.noise_log_magnitude,
                residual_log_magnitude: &out.residual_log_magnitude,
                residual_phase: &out.residual_phase,
                f0: &out.f0,
            };
            audio.extend(self.vocoder.synthesize(&spectra, &mut noise));
        }
        Ok(audio)
    }
}

impl Synthesizer for HibariSynthesizer {
    fn name(&self) -> &str {
        ENGINE
    }

    fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_> {
        Box::pin(self.run(request))
    }
}
