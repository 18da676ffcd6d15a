//! The embedded text-to-speech engine: the `espeak-ng` program, run as a separate process.
//!
//! espeak-ng is GPL-licensed, so vaani only ever executes it; nothing of it is linked in.
//! Text goes in on standard input (never on the command line, so it cannot be read as an
//! option), audio comes back as a WAV file in a private temporary directory, which is read
//! with `hound` and resampled to the call's rate.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::synthesizer::{
    SpeechError, SpeechRequest, SynthesisFuture, SynthesizedAudio, Synthesizer,
};

/// Settings of the espeak-ng engine.
#[derive(Debug, Clone)]
pub struct EspeakConfig {
    /// Program to run, looked up on `PATH` when not absolute.
    pub program: PathBuf,
    /// Voice used when a request names none (`en`, `en-us`, `hi`, ...).
    pub default_voice: String,
    /// Speaking rate in words per minute.
    pub rate_wpm: u32,
    /// Most espeak-ng processes running at once; more requests wait.
    pub max_concurrent: usize,
    /// Longest a single synthesis may take.
    pub timeout: Duration,
    /// Longest text accepted, in bytes.
    pub max_text_bytes: usize,
    /// Total audio kept in the phrase cache, in samples (prompts repeat across calls).
    pub cache_samples: usize,
    /// Longest text that is cached, in bytes; longer, one-off replies are not.
    pub cache_max_text_bytes: usize,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("espeak-ng"),
            default_voice: "en".to_string(),
            rate_wpm: 160,
            max_concurrent: 4,
            timeout: Duration::from_secs(10),
            max_text_bytes: 4096,
            // Ten minutes of 8 kHz audio: about 9.6 MB.
            cache_samples: 8000 * 600,
            cache_max_text_bytes: 200,
        }
    }
}

/// Text-to-speech through the espeak-ng process, with a small phrase cache.
pub struct EspeakSynthesizer {
    config: EspeakConfig,
    permits: Semaphore,
    cache: Mutex<PhraseCache>,
    /// Private scratch directory (random name, mode 0700), removed on drop.
    scratch_dir: tempfile::TempDir,
    next_file: AtomicU64,
}

impl EspeakSynthesizer {
    /// Create the engine; fails if its scratch directory cannot be created.
    pub fn new(config: EspeakConfig) -> Result<Self, SpeechError> {
        let scratch_dir = tempfile::Builder::new()
            .prefix("vaani-espeak-")
            .tempdir()
            .map_err(|source| SpeechError::Spawn {
                engine: "espeak-ng".to_string(),
                source,
            })?;
        Ok(Self {
            permits: Semaphore::new(config.max_concurrent.max(1)),
            cache: Mutex::new(PhraseCache::new(config.cache_samples)),
            config,
            scratch_dir,
            next_file: AtomicU64::new(0),
        })
    }

    fn voice_for(&self, request: &SpeechRequest) -> String {
        let chosen = request
            .voice
            .clone()
            .or_else(|| request.language.as_deref().map(language_to_voice))
            .unwrap_or_else(|| self.config.default_voice.clone());
        // Voice names are short identifiers; anything else falls back to the default.
        if !chosen.is_empty()
            && chosen.len() <= 32
            && chosen
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
        {
            chosen
        } else {
            self.config.default_voice.clone()
        }
    }

    async fn run(&self, request: SpeechRequest) -> Result<SynthesizedAudio, SpeechError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Err(SpeechError::EmptyText);
        }
        if text.len() > self.config.max_text_bytes {
            return Err(SpeechError::TextTooLong {
                len: text.len(),
                limit: self.config.max_text_bytes,
            });
        }
        let voice = self.voice_for(&request);
        let key = CacheKey {
            text: text.to_string(),
            voice: voice.clone(),
            sample_rate: request.sample_rate,
        };
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key)) {
            return Ok(hit);
        }

        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SpeechError::EngineFailed {
                engine: self.name().to_string(),
                detail: "engine shut down".to_string(),
            })?;
        let file = self.scratch_dir.path().join(format!(
            "{}.wav",
            self.next_file.fetch_add(1, Ordering::Relaxed)
        ));
        let result = tokio::time::timeout(self.config.timeout, self.spawn(text, &voice, &file))
            .await
            .unwrap_or(Err(SpeechError::Timeout(
                self.config.timeout.as_millis() as u64
            )));
        let sample_rate = request.sample_rate;
        // Reading, resampling and removing the file are blocking work: keep them off the
        // runtime that serves calls.
        let audio = match result {
            Ok(()) => tokio::task::spawn_blocking(move || {
                let audio = read_wav(&file, sample_rate);
                let _ = std::fs::remove_file(&file);
                audio
            })
            .await
            .unwrap_or_else(|e| Err(SpeechError::BadAudio(format!("reader task failed: {e}"))))?,
            Err(error) => {
                let _ = std::fs::remove_file(&file);
                return Err(error);
            }
        };
        if key.text.len() <= self.config.cache_max_text_bytes
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.put(key, audio.clone());
        }
        Ok(audio)
    }

    async fn spawn(
        &self,
        text: &str,
        voice: &str,
        file: &std::path::Path,
    ) -> Result<(), SpeechError> {
        let mut child = Command::new(&self.config.program)
            .arg("-b")
            .arg("1")
            .arg("-v")
            .arg(voice)
            .arg("-s")
            .arg(self.config.rate_wpm.to_string())
            .arg("-w")
            .arg(file)
            .arg("--stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SpeechError::Spawn {
                engine: self.name().to_string(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| self.failed(format!("writing text: {e}")))?;
            drop(stdin);
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| self.failed(format!("waiting for the process: {e}")))?;
        if !output.status.success() {
            return Err(self.failed(format!(
                "exit status {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    fn failed(&self, detail: String) -> SpeechError {
        SpeechError::EngineFailed {
            engine: self.name().to_string(),
            detail,
        }
    }
}

impl Synthesizer for EspeakSynthesizer {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_> {
        Box::pin(self.run(request))
    }
}

/// Map a BCP 47 tag to the closest espeak-ng voice.
fn language_to_voice(language: &str) -> String {
    let primary = language
        .split(['-', '_'])
        .next()
        .unwrap_or("en")
        .to_ascii_lowercase();
    match primary.as_str() {
        "hi" => "hi".to_string(),
        "ta" | "te" | "kn" | "ml" | "mr" | "bn" | "gu" | "pa" => primary,
        _ => "en".to_string(),
    }
}

/// Read a WAV file as mono 16-bit samples resampled to `sample_rate`.
fn read_wav(path: &std::path::Path, sample_rate: u32) -> Result<SynthesizedAudio, SpeechError> {
    let mut reader =
        hound::WavReader::open(path).map_err(|e| SpeechError::BadAudio(e.to_string()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(SpeechError::BadAudio(format!(
            "expected 16-bit PCM, got {:?} {} bits",
            spec.sample_format, spec.bits_per_sample
        )));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| SpeechError::BadAudio(e.to_string()))?;
    let mono: Vec<i16> = if channels == 1 {
        interleaved
    } else {
        interleaved
            .chunks(channels)
            .map(|frame| {
                (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16
            })
            .collect()
    };
    let samples = if spec.sample_rate == sample_rate {
        mono
    } else {
        vaani_media::resample::resample_buffer(&mono, spec.sample_rate, sample_rate)
    };
    Ok(SynthesizedAudio {
        sample_rate,
        samples: samples.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    text: String,
    voice: String,
    sample_rate: u32,
}

/// A first-in-first-out cache of synthesized phrases, bounded by total samples.
struct PhraseCache {
    capacity_samples: usize,
    held_samples: usize,
    entries: HashMap<CacheKey, SynthesizedAudio>,
    order: VecDeque<CacheKey>,
}

impl PhraseCache {
    fn new(capacity_samples: usize) -> Self {
        Self {
            capacity_samples,
            held_samples: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, key: &CacheKey) -> Option<SynthesizedAudio> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: CacheKey, audio: SynthesizedAudio) {
        let size = audio.samples.len();
        if size > self.capacity_samples || self.entries.contains_key(&key) {
            return;
        }
        while self.held_samples + size > self.capacity_samples {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&old) {
                self.held_samples -= evicted.samples.len();
            }
        }
        self.held_samples += size;
        self.order.push_back(key.clone());
        self.entries.insert(key, audio);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn request(text: &str) -> SpeechRequest {
        SpeechRequest {
            text: text.to_string(),
            voice: None,
            language: None,
            sample_rate: 8000,
        }
    }

    #[tokio::test]
    async fn speaks_a_sentence_at_the_call_rate() {
        let tts = EspeakSynthesizer::new(EspeakConfig::default()).expect("engine");
        let audio = tts
            .synthesize(request("You pressed five."))
            .await
            .expect("espeak-ng must be installed by the set-up (make setup)");
        assert_eq!(audio.sample_rate, 8000);
        let ms = audio.duration_ms();
        assert!((300..5000).contains(&ms), "duration {ms} ms");
        let peak = audio
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak > 1000, "audio is silent (peak {peak})");
    }

    #[tokio::test]
    async fn repeated_phrases_come_from_the_cache() {
        let tts = EspeakSynthesizer::new(EspeakConfig::default()).expect("engine");
        let first = tts.synthesize(request("Goodbye.")).await.expect("first");
        let second = tts.synthesize(request("Goodbye.")).await.expect("second");
        assert!(Arc::ptr_eq(&first.samples, &second.samples));
    }

    #[tokio::test]
    async fn text_that_looks_like_an_option_is_spoken_not_parsed() {
        let tts = EspeakSynthesizer::new(EspeakConfig::default()).expect("engine");
        let audio = tts
            .synthesize(request("--help -w /etc/passwd"))
            .await
            .expect("spoken");
        assert!(audio.duration_ms() > 300);
    }

    #[tokio::test]
    async fn rejects_empty_and_oversized_text_and_bad_voices_fall_back() {
        let tts = EspeakSynthesizer::new(EspeakConfig::default()).expect("engine");
        assert!(matches!(
            tts.synthesize(request("  ")).await,
            Err(SpeechError::EmptyText)
        ));
        let long = "a ".repeat(3000);
        assert!(matches!(
            tts.synthesize(request(&long)).await,
            Err(SpeechError::TextTooLong { .. })
        ));
        let mut odd = request("Hello.");
        odd.voice = Some("en; rm -rf /".to_string());
        assert_eq!(tts.voice_for(&odd), "en");
        let audio = tts
            .synthesize(odd)
            .await
            .expect("falls back to default voice");
        assert!(audio.duration_ms() > 100);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let tts = EspeakSynthesizer::new(EspeakConfig {
            program: PathBuf::from("/nonexistent/espeak-ng"),
            ..EspeakConfig::default()
        })
        .expect("engine");
        assert!(matches!(
            tts.synthesize(request("Hello.")).await,
            Err(SpeechError::Spawn { .. })
        ));
    }

    #[test]
    fn the_cache_is_bounded_by_samples_and_evicts_the_oldest() {
        let mut cache = PhraseCache::new(10);
        let key = |t: &str| CacheKey {
            text: t.to_string(),
            voice: "en".to_string(),
            sample_rate: 8000,
        };
        let audio = |n: usize| SynthesizedAudio {
            sample_rate: 8000,
            samples: vec![1i16; n].into(),
        };
        cache.put(key("a"), audio(6));
        cache.put(key("b"), audio(4));
        assert!(cache.get(&key("a")).is_some() && cache.get(&key("b")).is_some());
        cache.put(key("c"), audio(3));
        assert!(cache.get(&key("a")).is_none(), "oldest entry evicted");
        assert!(cache.get(&key("b")).is_some() && cache.get(&key("c")).is_some());
        cache.put(key("huge"), audio(11));
        assert!(
            cache.get(&key("huge")).is_none(),
            "larger than the whole cache"
        );
        assert_eq!(cache.held_samples, 7);
    }

    #[test]
    fn language_tags_map_to_voices() {
        assert_eq!(language_to_voice("hi-IN"), "hi");
        assert_eq!(language_to_voice("en-IN"), "en");
        assert_eq!(language_to_voice("fr"), "en");
    }
}
