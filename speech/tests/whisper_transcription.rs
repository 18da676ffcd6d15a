//! Speech-to-text with the real whisper tiny.en model on espeak-ng speech.
//!
//! The model comes from `scripts/fetch-models.sh` (cached in `$VAANI_MODEL_DIR`, default
//! `~/.cache/vaani-models`). These tests fail, never skip, when it is missing.

use std::path::PathBuf;
use std::sync::Arc;

use vaani_speech::{
    EspeakConfig, EspeakSynthesizer, SpeechRequest, Synthesizer, Transcriber, TranscriptionError,
    TranscriptionRequest, WhisperConfig, WhisperTranscriber, word_error_rate,
};

const REFERENCE: &str = "I would like to book an appointment for tomorrow morning";
/// Phone audio rate of the fixture.
const PHONE_RATE: u32 = 8000;

fn model_path() -> PathBuf {
    let dir = std::env::var_os("VAANI_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/vaani-models")
        });
    let path = dir.join("ggml-tiny.en.bin");
    assert!(
        path.is_file(),
        "whisper model {} is missing: run scripts/fetch-models.sh first",
        path.display()
    );
    path
}

fn load(max_concurrent: usize) -> WhisperTranscriber {
    let mut config = WhisperConfig::new(model_path());
    config.max_concurrent = max_concurrent;
    WhisperTranscriber::load(config).expect("loading the whisper model")
}

/// The reference sentence spoken by espeak-ng at 8 kHz, with 0.3 s of silence before and
/// 0.6 s after, as a VAD segment would have.
async fn phone_fixture() -> Vec<i16> {
    let espeak = EspeakSynthesizer::new(EspeakConfig::default()).expect("espeak-ng engine");
    let speech = espeak
        .synthesize(SpeechRequest {
            text: REFERENCE.to_string(),
            voice: Some("en-us".to_string()),
            language: None,
            sample_rate: PHONE_RATE,
        })
        .await
        .expect("espeak-ng synthesis (is espeak-ng installed?)");
    assert!(
        speech.duration_ms() > 2000,
        "espeak-ng produced too little audio"
    );
    let mut audio = vec![0i16; PHONE_RATE as usize * 3 / 10];
    audio.extend_from_slice(&speech.samples);
    audio.extend(std::iter::repeat_n(0i16, PHONE_RATE as usize * 6 / 10));
    audio
}

/// CPU time (user + system) this process has used, from /proc (Linux), in seconds.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); after the name, field 3 is at index 0.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[tokio::test]
async fn transcribes_a_phone_utterance_upsampled_to_16k() {
    let transcriber = load(1);
    let phone = phone_fixture().await;
    let wideband = vaani_media::resample::resample_buffer(&phone, PHONE_RATE, 16_000);
    let request = TranscriptionRequest {
        samples: wideband.into(),
        sample_rate: 16_000,
        language: None,
    };
    let audio_seconds = request.duration_ms() as f64 / 1000.0;

    let cpu_before = process_cpu_seconds();
    let transcript = transcriber
        .transcribe(request)
        .await
        .expect("transcription");
    let cpu_after = process_cpu_seconds();

    let wer = word_error_rate(REFERENCE, &transcript.text);
    let cpu_rtf = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| (after - before) / audio_seconds);
    eprintln!(
        "heard {:?} (confidence {:.2}, WER {:.0}%) for {audio_seconds:.2} s of audio; \
         decode {:?} (wall-RTF {:.3}), process CPU-RTF {:?}",
        transcript.text,
        transcript.confidence,
        wer * 100.0,
        transcript.processing,
        transcript.processing.as_secs_f64() / audio_seconds,
        cpu_rtf,
    );
    assert!(
        wer <= 0.30,
        "word error rate {wer:.2} > 0.30: heard {:?}",
        transcript.text
    );
    assert_eq!(transcript.language, "en");
    assert!(
        transcript.confidence > 0.3 && transcript.confidence <= 1.0,
        "confidence {} out of range",
        transcript.confidence
    );
}

#[tokio::test]
async fn transcribes_8k_input_resampled_by_the_engine() {
    let transcriber = load(1);
    let request = TranscriptionRequest {
        samples: phone_fixture().await.into(),
        sample_rate: PHONE_RATE,
        language: Some("en-IN".to_string()),
    };
    let transcript = transcriber
        .transcribe(request)
        .await
        .expect("transcription");
    let wer = word_error_rate(REFERENCE, &transcript.text);
    assert!(
        wer <= 0.30,
        "word error rate {wer:.2} > 0.30: heard {:?}",
        transcript.text
    );
    assert_eq!(transcript.language, "en");
}

#[tokio::test]
async fn silence_and_faint_line_noise_give_empty_text() {
    let transcriber = load(2);
    let digital_silence = vec![0i16; 32_000];
    // Faint hiss (about -60 dBFS) from a fixed linear congruential generator.
    let mut seed = 0x2545_f491_u32;
    let hiss: Vec<i16> = (0..32_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 16) as i16) >> 10
        })
        .collect();
    for (label, samples) in [("digital silence", digital_silence), ("hiss", hiss)] {
        let transcript = transcriber
            .transcribe(TranscriptionRequest {
                samples: Arc::from(samples),
                sample_rate: 16_000,
                language: None,
            })
            .await
            .expect("transcription");
        assert_eq!(transcript.text, "", "{label} was heard as words");
        assert_eq!(transcript.confidence, 0.0);
    }
}

#[tokio::test]
async fn concurrent_requests_beyond_the_pool_size_all_complete() {
    let transcriber = Arc::new(load(1));
    let phone: Arc<[i16]> = phone_fixture().await.into();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let transcriber = Arc::clone(&transcriber);
        let samples = Arc::clone(&phone);
        tasks.push(tokio::spawn(async move {
            transcriber
                .transcribe(TranscriptionRequest {
                    samples,
                    sample_rate: PHONE_RATE,
                    language: None,
                })
                .await
        }));
    }
    let mut texts = Vec::new();
    for task in tasks {
        texts.push(task.await.expect("task").expect("transcription").text);
    }
    // Greedy decoding is deterministic: both get the same words, through reused states.
    assert_eq!(texts[0], texts[1]);
    assert!(
        word_error_rate(REFERENCE, &texts[0]) <= 0.30,
        "heard {:?}",
        texts[0]
    );
}

#[tokio::test]
async fn rejects_what_it_cannot_transcribe() {
    let transcriber = load(1);
    let request =
        |samples: Vec<i16>, sample_rate: u32, language: Option<&str>| TranscriptionRequest {
            samples: samples.into(),
            sample_rate,
            language: language.map(str::to_string),
        };
    assert!(matches!(
        transcriber.transcribe(request(vec![], 16_000, None)).await,
        Err(TranscriptionError::EmptyAudio)
    ));
    assert!(matches!(
        transcriber.transcribe(request(vec![0; 100], 0, None)).await,
        Err(TranscriptionError::BadSampleRate(0))
    ));
    assert!(matches!(
        transcriber
            .transcribe(request(vec![0; 8000 * 31], 8000, None))
            .await,
        Err(TranscriptionError::TooLong {
            limit_ms: 30_000,
            ..
        })
    ));
    // tiny.en knows English only.
    assert!(!transcriber.is_multilingual());
    assert!(matches!(
        transcriber.transcribe(request(vec![0; 16_000], 16_000, Some("hi-IN"))).await,
        Err(TranscriptionError::UnsupportedLanguage(code)) if code == "hi"
    ));
}

#[test]
fn a_missing_model_is_reported_with_the_fix() {
    let error = WhisperTranscriber::load(WhisperConfig::new("/nonexistent/ggml-tiny.en.bin"))
        .err()
        .expect("loading must fail");
    assert!(matches!(error, TranscriptionError::ModelMissing { .. }));
    assert!(error.to_string().contains("scripts/fetch-models.sh"));
}

#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("not-a-model.bin");
    std::fs::write(&path, b"definitely not ggml").expect("write");
    let error = WhisperTranscriber::load(WhisperConfig::new(&path))
        .err()
        .expect("loading must fail");
    assert!(
        matches!(error, TranscriptionError::ModelLoad { .. }),
        "{error}"
    );
}
