//! The hibari voice end to end: text → phonemes → ONNX → vocoder → 8 kHz phone audio, heard
//! back by whisper tiny.en. The models come from `scripts/fetch-models.sh` (linked under
//! `data/models/`); these tests fail, never skip, when they are missing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use vaani_speech::{
    EspeakConfig, EspeakSynthesizer, HIBARI_SAMPLE_RATE, HibariConfig, HibariError,
    HibariSynthesizer, SpeechError, SpeechRequest, Synthesizer, Transcriber, TranscriptionRequest,
    WhisperConfig, WhisperTranscriber, word_error_rate,
};

/// Phone audio rate.
const PHONE_RATE: u32 = 8000;

/// What a phone agent says, and how whisper should write it back.
const SENTENCES: [&str; 5] = [
    "I would like to book an appointment for tomorrow at ten.",
    "Thank you for calling, how can I help you today?",
    "Your table for four is confirmed for Friday evening.",
    "Please hold while I check the schedule.",
    "Could you spell your last name for me, please?",
];

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models")
}

fn hibari_config() -> HibariConfig {
    let config = HibariConfig::in_models_dir(models_dir());
    assert!(
        config.model_dir.join("hibari.onnx").is_file() && config.onnxruntime_library.is_file(),
        "hibari voice or ONNX Runtime missing under {}: run scripts/fetch-models.sh first",
        models_dir().display()
    );
    config
}

fn load_hibari() -> (HibariSynthesizer, f64) {
    let started = Instant::now();
    let synthesizer = HibariSynthesizer::load(hibari_config()).expect("loading the hibari voice");
    (synthesizer, started.elapsed().as_secs_f64())
}

fn load_whisper() -> WhisperTranscriber {
    let path = models_dir().join("ggml-tiny.en.bin");
    assert!(
        path.is_file(),
        "whisper model {} is missing: run scripts/fetch-models.sh first",
        path.display()
    );
    WhisperTranscriber::load(WhisperConfig::new(path)).expect("loading whisper")
}

fn request(text: &str, sample_rate: u32) -> SpeechRequest {
    SpeechRequest {
        text: text.to_string(),
        voice: None,
        language: Some("en-US".to_string()),
        sample_rate,
    }
}

/// Whisper writes small numbers as digits; the references spell them.
fn spelled_numbers(text: &str) -> String {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    text.split_whitespace()
        .map(|word| {
            let digits: String = word.chars().filter(char::is_ascii_digit).collect();
            let rest: String = word.chars().filter(|c| !c.is_ascii_digit()).collect();
            match digits.parse::<usize>() {
                Ok(n) if n < WORDS.len() && rest.chars().all(|c| c.is_ascii_punctuation()) => {
                    format!("{}{rest}", WORDS[n])
                }
                _ => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Transcribe 8 kHz speech padded with 0.3 s of silence before and 0.6 s after, as a VAD
/// segment would be; returns the text and its word error rate against `reference`.
async fn hear(whisper: &WhisperTranscriber, reference: &str, speech: &[i16]) -> (String, f64) {
    let mut audio = vec![0i16; PHONE_RATE as usize * 3 / 10];
    audio.extend_from_slice(speech);
    audio.extend(std::iter::repeat_n(0i16, PHONE_RATE as usize * 6 / 10));
    let transcript = whisper
        .transcribe(TranscriptionRequest {
            samples: audio.into(),
            sample_rate: PHONE_RATE,
            language: None,
        })
        .await
        .expect("transcription");
    let heard = spelled_numbers(&transcript.text);
    let wer = word_error_rate(reference, &heard);
    (transcript.text, wer)
}

/// Phonemes from hibari's own Python package (hibari-tts 0.2.1) for the same text: the Rust
/// port reads numbers, times, dates, money, part-of-speech homographs, unknown words (the
/// OOV net: "www") and inline pronunciations the same way. (On a 450-sentence corpus the two
/// gave identical phonemes for every sentence.)
const PYTHON_PHONEMES: [(&str, &[&str]); 11] = [
    (
        "Your appointment is confirmed for Monday, March 3rd at 9:30 am.",
        &["jˌʊɹ əpˈYntmənt ɪz kənfˈɜɹmd fɔɹ mˈʌndˌA, mˈɑɹʧ θˈɜɹd æt nˈIn θˈɜɹTi ˌAˈɛm"],
    ),
    (
        "The total comes to $45.50, including tax.",
        &["ðə tˈOTᵊl kˈʌmz tə fˈɔɹTi fˈIv dˈɑləɹz ænd fˈɪfti sˈɛnts, ɪnklˈudɪŋ tˈæks."],
    ),
    (
        "Please call us back at 555-123-4567 if anything changes.",
        &[
            "plˈiz kˈɔl ˌʌs bˈæk æt fˈIv fˈIv fˈIv, wˈʌn tˈu θɹˈi, fˈɔɹ fˈIv sˈɪks sˈɛvən ɪf ˈɛniθˌɪŋ ʧˈAnʤᵻz.",
        ],
    ),
    (
        "Dr. Smith will see you on 10/12/2024 at 2:15pm.",
        &[
            "dˈɑktəɹ smˈɪθ wɪl sˈi ju ˌɔn ɑktˈObəɹ twˈɛlfθ, twˈɛnti twˈɛnti fˈɔɹ æt tˈu fˌɪftˈin pˌiˈɛm",
        ],
    ),
    (
        "The temperature today is 25°C, about 77°F.",
        &[
            "ðə tˈɛmpɹəʧəɹ tədˈA ɪz twˈɛnti fˈIv dəɡɹˈiz sˈɛlsiəs, əbˈWt sˈɛvənti sˈɛvən dəɡɹˈiz fˈɛɹənhˌIt.",
        ],
    ),
    (
        "She read the book yesterday and will read another one tomorrow.",
        &["ʃˌi ɹˈɛd ðə bˈʊk jˈɛstəɹdˌA ænd wɪl ɹˈid ənˈʌðəɹ wˈʌn təmˈɑɹO."],
    ),
    (
        "I used to work there, but I'm used to the commute now.",
        &["ˌI jˈust tə wˈɜɹk ðˈɛɹ, bˌʌt ˌIm jˈuzd tə ðə kəmjˈut nˈW."],
    ),
    (
        "NASA launched the Apollo XI mission in 1969.",
        &["nˈæsə lˈɔnʧt ði əpˈɑlO əlˈɛvᵊn mˈɪʃən ɪn nˌIntˈin sˈɪksti nˈIn."],
    ),
    (
        "Email us at help@example.com or visit www.example.com.",
        &["ˈimˌAl ˌʌs æt hˈɛlp æt ɪɡzˈæmpəl dˌɑt kˈɑm ɔɹ vˈɪzət dʊˌʊuə ɛɡzˈæmpᵊl kˈɑm."],
    ),
    (
        "It costs ₹1,200 per month, or Rs. 12000 per year.",
        &[
            "ˌɪt kˈɔsts wˈʌn θˈWzᵊnd tˈu hˈʌndɹəd ɹupˈiz pɜɹ mˈʌnθ, ɔɹ ˌɑɹɹˈɛs.",
            "twˈɛlv θˈWzᵊnd pɜɹ jˈɪɹ.",
        ],
    ),
    ("[hibari](/hibˈɑɹi/) says hi.", &["hibˈɑɹi sˈɛz hˈI."]),
];

#[test]
fn phonemes_match_hibaris_python_front_end() {
    let (hibari, _) = load_hibari();
    for (text, expected) in PYTHON_PHONEMES {
        assert_eq!(hibari.phonemize(text), expected, "phonemes of {text:?}");
    }
}

#[tokio::test]
async fn whisper_understands_the_hibari_voice_at_8k_better_than_espeak() {
    let (hibari, load_seconds) = load_hibari();
    let whisper = load_whisper();
    let espeak = EspeakSynthesizer::new(EspeakConfig::default()).expect("espeak-ng engine");

    let (mut hibari_wer, mut espeak_wer) = (0.0, 0.0);
    let (mut audio_seconds, mut synthesis_seconds) = (0.0, 0.0);
    for (i, reference) in SENTENCES.iter().enumerate() {
        let started = Instant::now();
        let speech = hibari
            .synthesize(request(reference, PHONE_RATE))
            .await
            .expect("hibari synthesis");
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(speech.sample_rate, PHONE_RATE);
        let seconds = speech.samples.len() as f64 / f64::from(PHONE_RATE);
        assert!(
            (0.8..12.0).contains(&seconds),
            "{seconds:.2} s of audio for {reference:?}"
        );
        audio_seconds += seconds;
        synthesis_seconds += elapsed;
        let (heard, wer) = hear(&whisper, reference, &speech.samples).await;

        let robot = espeak
            .synthesize(SpeechRequest {
                voice: Some("en-us".to_string()),
                ..request(reference, PHONE_RATE)
            })
            .await
            .expect("espeak-ng synthesis (is espeak-ng installed?)");
        let (robot_heard, robot_wer) = hear(&whisper, reference, &robot.samples).await;
        eprintln!(
            "{reference:?}\n  hibari {seconds:.2} s audio in {:.0} ms (RTF {:.3}): heard {heard:?}, WER {:.0}%\n  espeak-ng: heard {robot_heard:?}, WER {:.0}%",
            elapsed * 1000.0,
            elapsed / seconds,
            wer * 100.0,
            robot_wer * 100.0,
        );
        if i == 0 {
            assert!(
                wer <= 0.10,
                "WER {wer:.2} > 0.10 for {reference:?}: heard {heard:?}"
            );
        }
        hibari_wer += wer;
        espeak_wer += robot_wer;
    }
    let count = SENTENCES.len() as f64;
    let (hibari_wer, espeak_wer) = (hibari_wer / count, espeak_wer / count);
    eprintln!(
        "hibari: load {load_seconds:.2} s, synthesis RTF {:.3} ({synthesis_seconds:.2} s for {audio_seconds:.1} s of 8 kHz audio), mean WER {:.1}%; espeak-ng mean WER {:.1}%",
        synthesis_seconds / audio_seconds,
        hibari_wer * 100.0,
        espeak_wer * 100.0
    );
    assert!(hibari_wer <= 0.10, "mean WER {hibari_wer:.3} > 0.10");
    assert!(
        hibari_wer <= espeak_wer,
        "hibari (WER {hibari_wer:.3}) is not understood better than espeak-ng ({espeak_wer:.3})"
    );
}

#[tokio::test]
async fn output_is_deterministic_at_the_model_rate_and_resampled_to_the_call_rate() {
    let (hibari, _) = load_hibari();
    let text = "Hello there, this is hibari.";
    let native = hibari
        .synthesize(request(text, HIBARI_SAMPLE_RATE))
        .await
        .expect("synthesis at 24 kHz");
    let again = hibari
        .synthesize(request(text, HIBARI_SAMPLE_RATE))
        .await
        .expect("second synthesis");
    assert_eq!(native.samples, again.samples, "same text, different audio");
    let peak = native
        .samples
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!(peak > 3000, "peak {peak}: the voice is too quiet or silent");
    let phone = hibari
        .synthesize(request(text, PHONE_RATE))
        .await
        .expect("synthesis at 8 kHz");
    assert_eq!(phone.sample_rate, PHONE_RATE);
    let expected = native.samples.len().div_ceil(3);
    assert!(
        phone.samples.len().abs_diff(expected) <= 2,
        "{} samples at 8 kHz for {} at 24 kHz",
        phone.samples.len(),
        native.samples.len()
    );
    assert_eq!(hibari.phonemize(text), vec!["həlˈO ðˈɛɹ, ðɪs ɪz hɪbˈɑɹɹi."]);
}

#[tokio::test]
async fn concurrent_requests_beyond_the_pool_size_all_complete() {
    let mut config = hibari_config();
    config.max_concurrent = 1;
    let hibari = Arc::new(HibariSynthesizer::load(config).expect("loading"));
    let mut tasks = Vec::new();
    for text in ["Good morning.", "Good evening.", "Good morning."] {
        let hibari = Arc::clone(&hibari);
        tasks.push(tokio::spawn(async move {
            hibari.synthesize(request(text, PHONE_RATE)).await
        }));
    }
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.expect("task").expect("synthesis"));
    }
    assert_eq!(outputs[0].samples, outputs[2].samples);
    assert_ne!(outputs[0].samples, outputs[1].samples);
}

#[tokio::test]
async fn rejects_what_it_cannot_say() {
    let (hibari, _) = load_hibari();
    assert!(matches!(
        hibari.synthesize(request("   ", PHONE_RATE)).await,
        Err(SpeechError::EmptyText)
    ));
    assert!(matches!(
        hibari
            .synthesize(request(&"word ".repeat(1000), PHONE_RATE))
            .await,
        Err(SpeechError::TextTooLong { .. })
    ));
    let hindi = SpeechRequest {
        language: Some("hi-IN".to_string()),
        ..request("namaste", PHONE_RATE)
    };
    assert!(matches!(
        hibari.synthesize(hindi).await,
        Err(SpeechError::EngineFailed { .. })
    ));
    // Only punctuation: nothing to say, but not an error.
    let silence = hibari
        .synthesize(request("...", PHONE_RATE))
        .await
        .expect("punctuation only");
    assert!(silence.samples.len() < PHONE_RATE as usize);
}

#[test]
fn missing_files_name_the_set_up_script() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = HibariConfig::new(
        dir.path().join("hibari"),
        hibari_config().onnxruntime_library,
    );
    let error = HibariSynthesizer::load(config)
        .err()
        .expect("load must fail");
    assert!(
        matches!(error, HibariError::ModelMissing { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("scripts/fetch-models.sh"),
        "{error}"
    );

    let config = HibariConfig::new(
        hibari_config().model_dir,
        dir.path().join("libonnxruntime.so"),
    );
    let error = HibariSynthesizer::load(config)
        .err()
        .expect("load must fail");
    assert!(
        matches!(error, HibariError::RuntimeMissing { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("scripts/fetch-models.sh"),
        "{error}"
    );
}
