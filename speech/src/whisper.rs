//! The embedded speech-to-text engine: whisper.cpp (through `whisper-rs`) on a bounded pool.
//!
//! The model is loaded once; each utterance is decoded on a blocking thread with one
//! whisper.cpp thread, greedy, no temperature fallback, and an encoder window (`audio_ctx`)
//! sized to the utterance instead of whisper's fixed 30 s, which cuts the CPU cost several
//! times for the short utterances of a phone call. At most `max_concurrent` decodes run at
//! once; further requests wait for a free worker. Decoder states (the KV caches and compute
//! buffers, a few MB each) are kept in a pool and reused.
//!
//! The model file is a whisper.cpp ggml file prepared at set-up time by
//! `scripts/fetch-models.sh`; nothing is downloaded at run time.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use tokio::sync::Semaphore;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::transcriber::{
    Transcriber, Transcript, TranscriptionError, TranscriptionFuture, TranscriptionRequest,
};

/// Sample rate whisper works at.
pub const WHISPER_SAMPLE_RATE: u32 = 16_000;
/// Longest utterance one decode covers (whisper's window).
pub const MAX_UTTERANCE_MS: u64 = 30_000;
/// Encoder positions per second of audio (100 mel frames per second, halved by the encoder).
const AUDIO_CTX_PER_SECOND: usize = 50;
/// The encoder window is rounded up to a multiple of this many positions.
const AUDIO_CTX_STEP: usize = 64;
/// Whisper's full window: 30 s.
const AUDIO_CTX_MAX: usize = 1500;
/// Text tokens allowed per second of audio (speech is about 3-4 tokens a second), plus a base:
/// with the small encoder windows used here whisper sometimes repeats a short utterance over
/// and over ("Yes? Yes? Yes? ..."); the cap stops such a loop early and
/// [`collapse_repetitions`] removes what is left of it.
const MAX_TOKENS_PER_SECOND: usize = 8;
const MAX_TOKENS_BASE: usize = 16;

/// Settings of the whisper engine.
#[derive(Debug, Clone)]
pub struct WhisperConfig {
    /// Path of the ggml model file, e.g. `~/.cache/vaani-models/ggml-tiny.en.bin`.
    pub model_path: PathBuf,
    /// Language used when a request gives none: an ISO 639-1 code such as `en`, or `auto`
    /// to detect it (multilingual models only).
    pub default_language: String,
    /// Most decodes running at once; more requests wait. Default: the number of cores.
    pub max_concurrent: usize,
    /// whisper.cpp threads per decode. One is best on a busy server: more threads spin.
    pub threads_per_decode: usize,
}

impl WhisperConfig {
    /// Defaults for the model at `model_path`: English, one decode per core, one thread each.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            default_language: "en".to_string(),
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads_per_decode: 1,
        }
    }
}

/// Speech-to-text with whisper.cpp, loaded once and shared by all calls.
pub struct WhisperTranscriber {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
}

struct Inner {
    context: WhisperContext,
    /// Idle decoder states; at most `max_concurrent` exist.
    idle_states: Mutex<Vec<WhisperState>>,
    default_language: String,
    threads_per_decode: usize,
    multilingual: bool,
}

impl WhisperTranscriber {
    /// Load the model (blocking, about 0.1–0.3 s for tiny.en: call it at start-up or inside
    /// `spawn_blocking`). whisper.cpp's own log lines are routed to `tracing` from then on.
    pub fn load(config: WhisperConfig) -> Result<Self, TranscriptionError> {
        static LOG_HOOKS: Once = Once::new();
        LOG_HOOKS.call_once(whisper_rs::install_logging_hooks);

        let path = config.model_path.clone();
        if !path.is_file() {
            return Err(TranscriptionError::ModelMissing { path });
        }
        let load_error = |detail: String| TranscriptionError::ModelLoad {
            path: path.clone(),
            detail,
        };
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let context = WhisperContext::new_with_params(&path, params)
            .map_err(|e| load_error(format!("{e} (is it a whisper.cpp ggml file?)")))?;
        let multilingual = context.is_multilingual();
        let default_language = config.default_language.trim().to_ascii_lowercase();
        if default_language == "auto" {
            if !multilingual {
                return Err(TranscriptionError::UnsupportedLanguage(default_language));
            }
        } else {
            check_language(&default_language, multilingual)?;
        }
        // Create one state now: it proves the model is usable before the first call.
        let first_state = context
            .create_state()
            .map_err(|e| load_error(format!("creating a decoder state: {e}")))?;
        let max_concurrent = config.max_concurrent.max(1);
        tracing::info!(
            model = %path.display(),
            multilingual,
            max_concurrent,
            "whisper speech-to-text loaded"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                context,
                idle_states: Mutex::new(vec![first_state]),
                default_language,
                threads_per_decode: config.threads_per_decode.max(1),
                multilingual,
            }),
            permits: Arc::new(Semaphore::new(max_concurrent)),
        })
    }

    /// Whether the loaded model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.inner.multilingual
    }

    async fn run(&self, request: TranscriptionRequest) -> Result<Transcript, TranscriptionError> {
        if request.samples.is_empty() {
            return Err(TranscriptionError::EmptyAudio);
        }
        if request.sample_rate == 0 || request.sample_rate > 192_000 {
            return Err(TranscriptionError::BadSampleRate(request.sample_rate));
        }
        let duration_ms = request.duration_ms();
        if duration_ms > MAX_UTTERANCE_MS {
            return Err(TranscriptionError::TooLong {
                duration_ms,
                limit_ms: MAX_UTTERANCE_MS,
            });
        }
        let language = match request.language.as_deref() {
            Some(tag) => {
                let code = primary_language(tag);
                check_language(&code, self.inner.multilingual)?;
                code
            }
            None => self.inner.default_language.clone(),
        };
        // The permit moves into the blocking task, so a caller that gives up waiting does
        // not free a worker that is still decoding.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| TranscriptionError::ShutDown)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = inner.decode(&request, &language);
            drop(permit);
            result
        })
        .await
        .map_err(|e| TranscriptionError::EngineFailed {
            engine: "whisper".to_string(),
            detail: format!("decode task failed: {e}"),
        })?
    }
}

impl Transcriber for WhisperTranscriber {
    fn name(&self) -> &str {
        "whisper"
    }

    fn transcribe(&self, request: TranscriptionRequest) -> TranscriptionFuture<'_> {
        Box::pin(self.run(request))
    }
}

impl Inner {
    /// Decode one utterance on the current (blocking) thread.
    fn decode(
        &self,
        request: &TranscriptionRequest,
        language: &str,
    ) -> Result<Transcript, TranscriptionError> {
        let started = Instant::now();
        let audio = to_whisper_input(&request.samples, request.sample_rate);
        let mut state = match self.idle_states.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(state) => state,
            None => self
                .context
                .create_state()
                .map_err(|e| failed(format!("creating a decoder state: {e}")))?,
        };
        let result = self.run_model(&mut state, &audio, language, started);
        // A state is reusable after an error too: whisper_full resets it on each call.
        if let Ok(mut idle) = self.idle_states.lock() {
            idle.push(state);
        }
        result
    }

    fn run_model(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        language: &str,
        started: Instant,
    ) -> Result<Transcript, TranscriptionError> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.threads_per_decode).unwrap_or(1));
        params.set_language(Some(language));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_single_segment(true);
        // Timestamp decoding stays on: whisper.cpp's no-speech check (which turns silence
        // into an empty result instead of the classic hallucinated "you") relies on it.
        params.set_no_timestamps(false);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_audio_ctx(audio_ctx_for(audio.len()) as i32);
        params.set_max_tokens(max_tokens_for(audio.len()) as i32);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);

        state
            .full(params, audio)
            .map_err(|e| failed(format!("decoding: {e}")))?;

        let end_of_text = self.context.token_eot();
        let mut text = String::new();
        let mut probability_sum = 0.0f64;
        let mut text_tokens = 0usize;
        for segment in state.as_iter() {
            let segment_text = segment
                .to_str_lossy()
                .map_err(|e| failed(format!("reading the text: {e}")))?;
            text.push_str(&segment_text);
            for index in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(index)
                    && token.token_id() < end_of_text
                {
                    probability_sum += f64::from(token.token_probability());
                    text_tokens += 1;
                }
            }
        }
        let text = collapse_repetitions(text.trim());
        let confidence = if text.is_empty() || text_tokens == 0 {
            0.0
        } else {
            (probability_sum / text_tokens as f64).clamp(0.0, 1.0) as f32
        };
        let language = if language == "auto" {
            whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("und")
                .to_string()
        } else {
            language.to_string()
        };
        Ok(Transcript {
            text,
            confidence,
            language,
            processing: started.elapsed(),
        })
    }
}

/// Encoder window for `samples` of 16 kHz audio: the audio's length in encoder positions
/// (50 per second), rounded up to a multiple of 64, between 64 and 1500.
pub fn audio_ctx_for(samples: usize) -> usize {
    let positions = samples.div_ceil(WHISPER_SAMPLE_RATE as usize / AUDIO_CTX_PER_SECOND);
    positions
        .div_ceil(AUDIO_CTX_STEP)
        .max(1)
        .saturating_mul(AUDIO_CTX_STEP)
        .min(AUDIO_CTX_MAX)
}

/// `text` with sentences that repeat the previous one dropped, and a cut-off repeat at the end
/// removed: "Yes? Yes? Yes? Ye" becomes "Yes?".
pub fn collapse_repetitions(text: &str) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let end = i + c.len_utf8();
            let sentence = text[start..end].trim();
            if !sentence.is_empty() {
                sentences.push(sentence);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    let key = |s: &str| s.trim_end_matches(['.', '?', '!']).trim().to_lowercase();
    let mut kept: Vec<&str> = Vec::new();
    for sentence in sentences {
        if kept.last().is_none_or(|last| key(last) != key(sentence)) {
            kept.push(sentence);
        }
    }
    let cut_off_repeat = kept
        .last()
        .is_some_and(|last| !rest.is_empty() && key(last).starts_with(&rest.to_lowercase()));
    if !rest.is_empty() && !cut_off_repeat {
        kept.push(rest);
    }
    kept.join(" ")
}

/// Most text tokens to decode for `samples` of 16 kHz audio.
pub fn max_tokens_for(samples: usize) -> usize {
    MAX_TOKENS_BASE + samples.div_ceil(WHISPER_SAMPLE_RATE as usize) * MAX_TOKENS_PER_SECOND
}

/// Resample to 16 kHz if needed and scale to whisper's -1..1 floats.
fn to_whisper_input(samples: &[i16], sample_rate: u32) -> Vec<f32> {
    let scale = |s: &i16| f32::from(*s) / 32768.0;
    if sample_rate == WHISPER_SAMPLE_RATE {
        samples.iter().map(scale).collect()
    } else {
        vaani_media::resample::resample_buffer(samples, sample_rate, WHISPER_SAMPLE_RATE)
            .iter()
            .map(scale)
            .collect()
    }
}

/// `en-IN` → `en`.
fn primary_language(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn check_language(code: &str, multilingual: bool) -> Result<(), TranscriptionError> {
    let known = if multilingual {
        whisper_rs::get_lang_id(code).is_some()
    } else {
        code == "en"
    };
    if known {
        Ok(())
    } else {
        Err(TranscriptionError::UnsupportedLanguage(code.to_string()))
    }
}

fn failed(detail: String) -> TranscriptionError {
    TranscriptionError::EngineFailed {
        engine: "whisper".to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_sentences_collapse() {
        assert_eq!(collapse_repetitions("Yes? Yes? Yes? Ye"), "Yes?");
        assert_eq!(
            collapse_repetitions(
                "My name is John Smith. My name is John Smith. my name is john smith."
            ),
            "My name is John Smith."
        );
        assert_eq!(
            collapse_repetitions("Tomorrow. At ten. Tomorrow."),
            "Tomorrow. At ten. Tomorrow."
        );
        assert_eq!(
            collapse_repetitions("I would like an appointment"),
            "I would like an appointment"
        );
        assert_eq!(collapse_repetitions(""), "");
    }

    #[test]
    fn token_cap_grows_with_the_audio() {
        assert_eq!(max_tokens_for(0), 16);
        assert_eq!(max_tokens_for(16_000), 24);
        assert_eq!(max_tokens_for(16_001), 32);
    }

    #[test]
    fn audio_ctx_covers_the_utterance_in_steps_of_64() {
        assert_eq!(audio_ctx_for(0), 64);
        assert_eq!(audio_ctx_for(1), 64);
        // 1.28 s = 64 positions exactly
        assert_eq!(audio_ctx_for(20_480), 64);
        assert_eq!(audio_ctx_for(20_481), 128);
        // 4.2 s = 210 positions -> 256
        assert_eq!(audio_ctx_for(67_200), 256);
        // 30 s and beyond are capped at whisper's window
        assert_eq!(audio_ctx_for(480_000), 1500);
        assert_eq!(audio_ctx_for(10_000_000), 1500);
    }

    #[test]
    fn language_tags_reduce_to_their_primary_subtag() {
        assert_eq!(primary_language("en-IN"), "en");
        assert_eq!(primary_language("HI_in"), "hi");
    }

    #[test]
    fn english_only_models_refuse_other_languages() {
        assert!(check_language("en", false).is_ok());
        assert!(matches!(
            check_language("hi", false),
            Err(TranscriptionError::UnsupportedLanguage(code)) if code == "hi"
        ));
    }

    #[test]
    fn input_is_scaled_to_unit_range_and_resampled_to_16k() {
        let audio = to_whisper_input(&[i16::MIN, 0, 16384], 16_000);
        assert_eq!(audio, vec![-1.0, 0.0, 0.5]);
        let upsampled = to_whisper_input(&vec![0i16; 8000], 8000);
        assert_eq!(upsampled.len(), 16_000);
    }
}
