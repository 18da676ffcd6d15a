//! Sarvam Bulbul text-to-speech for Hindi and other Indian languages:
//! `POST {base}/text-to-speech` with the key in `api-subscription-key` and
//! `{"text", "target_language_code", "speaker", "model", "speech_sample_rate", "pitch"?,
//! "pace"?, "loudness"?, "enable_preprocessing"?}`; the answer is JSON
//! `{"request_id", "audios": ["<base64 WAV>"]}`, not streamed, so each request yields one
//! chunk (feed it sentence by sentence). Errors are
//! `{"error": {"message", "code", "request_id"?}}` (403 `invalid_api_key_error`, 429
//! `insufficient_quota_error` / `rate_limit_exceeded_error`).

use std::fmt;
use std::io::Cursor;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{
    HttpTts, TtsTimeouts, endpoint_url, invalid_config, is_plain_name, primary_language,
};
use super::stream::{
    AudioStream, AudioStreamFuture, ReadyAudioStream, StreamingSynthesizer, checked_text,
    synthesize_by_streaming,
};
use crate::synthesizer::{SpeechError, SpeechRequest, SynthesisFuture, Synthesizer};

const ENGINE: &str = "sarvam";

/// `speech_sample_rate` values every Bulbul model accepts; others are converted from
/// [`FALLBACK_RATE`].
const NATIVE_RATES: [u32; 4] = [8000, 16000, 22050, 24000];
const FALLBACK_RATE: u32 = 24000;

/// Languages Bulbul speaks: primary subtag → Sarvam code.
const LANGUAGES: &[(&str, &str)] = &[
    ("bn", "bn-IN"),
    ("en", "en-IN"),
    ("gu", "gu-IN"),
    ("hi", "hi-IN"),
    ("kn", "kn-IN"),
    ("ml", "ml-IN"),
    ("mr", "mr-IN"),
    ("od", "od-IN"),
    ("or", "od-IN"),
    ("pa", "pa-IN"),
    ("ta", "ta-IN"),
    ("te", "te-IN"),
];

/// Settings of the Sarvam Bulbul engine.
#[derive(Clone)]
pub struct SarvamTtsConfig {
    /// Sent as `api-subscription-key`. Never logged.
    pub api_key: String,
    /// API root, `https://api.sarvam.ai` by default.
    pub base_url: String,
    /// `bulbul:v2` by default (`bulbul:v3` also works; its speakers differ).
    pub model: String,
    /// Speaker used when a request names none: `anushka` by default (bulbul:v2).
    pub speaker: String,
    /// Language used when a request names none or one Bulbul does not speak: `hi-IN`.
    pub language: String,
    /// -0.75–0.75 (bulbul:v2 only); provider default when `None`.
    pub pitch: Option<f32>,
    /// Speaking rate, 0.3–3.0 (v2) or 0.5–2.0 (v3); provider default when `None`.
    pub pace: Option<f32>,
    /// 0.3–3.0 (bulbul:v2 only); provider default when `None`.
    pub loudness: Option<f32>,
    /// Normalise English words and numbers in Indian-language text (bulbul:v2).
    pub enable_preprocessing: Option<bool>,
    /// Longest text accepted per request, in characters (bulbul:v2 takes 1500).
    pub max_text_chars: usize,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
    /// Connection, first-byte, stall and total limits (the first byte is the start of the
    /// JSON, which comes after the whole text is synthesized).
    pub timeouts: TtsTimeouts,
}

impl SarvamTtsConfig {
    /// The defaults with the given API key.
    pub fn new(api_key: impl Into<String>) -> Self {
        SarvamTtsConfig {
            api_key: api_key.into(),
            base_url: "https://api.sarvam.ai".to_owned(),
            model: "bulbul:v2".to_owned(),
            speaker: "anushka".to_owned(),
            language: "hi-IN".to_owned(),
            pitch: None,
            pace: None,
            loudness: None,
            enable_preprocessing: None,
            max_text_chars: 1500,
            max_response_bytes: 16 * 1024 * 1024,
            timeouts: TtsTimeouts::default(),
        }
    }
}

impl fmt::Debug for SarvamTtsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SarvamTtsConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("speaker", &self.speaker)
            .field("language", &self.language)
            .field("pitch", &self.pitch)
            .field("pace", &self.pace)
            .field("loudness", &self.loudness)
            .field("enable_preprocessing", &self.enable_preprocessing)
            .field("max_text_chars", &self.max_text_chars)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// The success body.
#[derive(Debug, Deserialize)]
struct SarvamResponse {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    audios: Vec<String>,
}

/// Text-to-speech through Sarvam Bulbul (one chunk per request).
pub struct SarvamSynthesizer {
    http: HttpTts,
    config: SarvamTtsConfig,
}

impl fmt::Debug for SarvamSynthesizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SarvamSynthesizer")
            .field("config", &self.config)
            .finish()
    }
}

impl SarvamSynthesizer {
    /// Checks the configuration and prepares the HTTP client. Opens no connection.
    pub fn new(config: SarvamTtsConfig) -> Result<Self, SpeechError> {
        if config.api_key.trim().is_empty() {
            return Err(invalid_config(ENGINE, "api_key is empty"));
        }
        for (field, value) in [("model", &config.model), ("speaker", &config.speaker)] {
            if !is_plain_name(value) {
                return Err(invalid_config(
                    ENGINE,
                    format!("{field} {value:?} is not a plain name"),
                ));
            }
        }
        if sarvam_language(&config.language).is_none() {
            return Err(invalid_config(
                ENGINE,
                format!("language {:?} is not one Bulbul speaks", config.language),
            ));
        }
        if config.max_text_chars == 0 || config.max_response_bytes == 0 {
            return Err(invalid_config(
                ENGINE,
                "max_text_chars and max_response_bytes must be positive",
            ));
        }
        endpoint_url(ENGINE, &config.base_url, &[])?;
        let http = HttpTts::new(
            ENGINE,
            HeaderName::from_static("api-subscription-key"),
            config.api_key.trim(),
            config.timeouts,
        )?;
        Ok(SarvamSynthesizer { http, config })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SarvamTtsConfig {
        &self.config
    }

    fn provider_rate(sample_rate: u32) -> u32 {
        if NATIVE_RATES.contains(&sample_rate) {
            sample_rate
        } else {
            FALLBACK_RATE
        }
    }

    fn request_body(&self, text: &str, request: &SpeechRequest, rate: u32) -> Value {
        let language = request
            .language
            .as_deref()
            .and_then(sarvam_language)
            .or_else(|| sarvam_language(&self.config.language))
            .unwrap_or("hi-IN");
        let speaker = match request.voice.as_deref() {
            Some(voice) if is_plain_name(voice) => voice.to_ascii_lowercase(),
            Some(voice) => {
                tracing::warn!(
                    voice,
                    "not a Sarvam speaker name; using the default speaker"
                );
                self.config.speaker.clone()
            }
            None => self.config.speaker.clone(),
        };
        let mut body = json!({
            "text": text,
            "target_language_code": language,
            "speaker": speaker,
            "model": self.config.model,
            "speech_sample_rate": rate,
        });
        for (field, value) in [
            ("pitch", self.config.pitch),
            ("pace", self.config.pace),
            ("loudness", self.config.loudness),
        ] {
            if let Some(value) = value {
                body[field] = json!(value);
            }
        }
        if let Some(enable) = self.config.enable_preprocessing {
            body["enable_preprocessing"] = json!(enable);
        }
        body
    }

    async fn start(&self, request: SpeechRequest) -> Result<Box<dyn AudioStream>, SpeechError> {
        let (text, characters) = checked_text(&request, self.config.max_text_chars)?;
        let rate = Self::provider_rate(request.sample_rate);
        let url = endpoint_url(ENGINE, &self.config.base_url, &["text-to-speech"])?;
        let body = self.request_body(text, &request, rate);
        let (response, deadlines) = self.http.post_json(url, &body).await?;
        let body = self
            .http
            .read_body(response, deadlines, self.config.max_response_bytes)
            .await?;
        let samples = decode_response(&body, request.sample_rate)?;
        Ok(Box::new(ReadyAudioStream::new(
            request.sample_rate,
            samples,
            characters as u64,
            deadlines.started.elapsed(),
        )))
    }
}

/// The Sarvam code for a BCP 47 tag (`hi`, `hi-IN` → `hi-IN`), if Bulbul speaks it.
fn sarvam_language(tag: &str) -> Option<&'static str> {
    let primary = primary_language(tag)?;
    LANGUAGES
        .iter()
        .find(|(subtag, _)| *subtag == primary)
        .map(|(_, code)| *code)
}

/// Decodes the success body: every base64 WAV in `audios`, joined, as mono samples at
/// `sample_rate`.
fn decode_response(body: &[u8], sample_rate: u32) -> Result<Vec<i16>, SpeechError> {
    let response: SarvamResponse = serde_json::from_slice(body).map_err(|error| {
        SpeechError::BadAudio(format!("sarvam sent an unreadable response: {error}"))
    })?;
    if response.audios.is_empty() {
        return Err(SpeechError::BadAudio(format!(
            "sarvam sent no audio (request {})",
            response.request_id.as_deref().unwrap_or("without id")
        )));
    }
    let mut samples = Vec::new();
    for (index, audio) in response.audios.iter().enumerate() {
        let wav = BASE64.decode(audio.trim()).map_err(|error| {
            SpeechError::BadAudio(format!("sarvam audio {index} is not base64: {error}"))
        })?;
        samples.extend(decode_wav(&wav, sample_rate)?);
    }
    if samples.is_empty() {
        return Err(SpeechError::BadAudio("sarvam sent empty audio".to_owned()));
    }
    Ok(samples)
}

/// Decodes a 16-bit PCM WAV file as mono samples at `sample_rate`.
fn decode_wav(wav: &[u8], sample_rate: u32) -> Result<Vec<i16>, SpeechError> {
    let mut reader = hound::WavReader::new(Cursor::new(wav))
        .map_err(|error| SpeechError::BadAudio(format!("sarvam WAV: {error}")))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(SpeechError::BadAudio(format!(
            "sarvam WAV is {:?} {} bits, expected 16-bit PCM",
            spec.sample_format, spec.bits_per_sample
        )));
    }
    if spec.sample_rate == 0 {
        return Err(SpeechError::BadAudio("sarvam WAV has rate 0".to_owned()));
    }
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|error| SpeechError::BadAudio(format!("sarvam WAV: {error}")))?;
    let mono: Vec<i16> = if channels == 1 {
        interleaved
    } else {
        interleaved
            .chunks(channels)
            .map(|frame| {
                (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / frame.len() as i32) as i16
            })
            .collect()
    };
    Ok(if spec.sample_rate == sample_rate {
        mono
    } else {
        vaani_media::resample::resample_buffer(&mono, spec.sample_rate, sample_rate)
    })
}

impl StreamingSynthesizer for SarvamSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn stream(&self, request: SpeechRequest) -> AudioStreamFuture<'_> {
        Box::pin(self.start(request))
    }
}

impl Synthesizer for SarvamSynthesizer {
    fn name(&self) -> &str {
        self.http.engine()
    }

    fn synthesize(&self, request: SpeechRequest) -> SynthesisFuture<'_> {
        synthesize_by_streaming(self, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut cursor, spec).expect("writer");
        for &sample in samples {
            writer.write_sample(sample).expect("sample");
        }
        writer.finalize().expect("finalize");
        cursor.into_inner()
    }

    #[test]
    fn languages_map_to_sarvam_codes() {
        assert_eq!(sarvam_language("hi"), Some("hi-IN"));
        assert_eq!(sarvam_language("en-US"), Some("en-IN"));
        assert_eq!(sarvam_language("or-IN"), Some("od-IN"));
        assert_eq!(sarvam_language("fr-FR"), None);
    }

    #[test]
    fn body_has_sarvam_shape() {
        let mut config = SarvamTtsConfig::new("k");
        config.pace = Some(1.1);
        config.enable_preprocessing = Some(true);
        let engine = SarvamSynthesizer::new(config).expect("valid");
        let request = SpeechRequest {
            text: "नमस्ते".into(),
            voice: Some("Karun".into()),
            language: Some("ta".into()),
            sample_rate: 8000,
        };
        let body = engine.request_body("नमस्ते", &request, 8000);
        assert_eq!(body["text"], "नमस्ते");
        assert_eq!(body["target_language_code"], "ta-IN");
        assert_eq!(body["speaker"], "karun");
        assert_eq!(body["model"], "bulbul:v2");
        assert_eq!(body["speech_sample_rate"], 8000);
        assert_eq!(body["enable_preprocessing"], true);
        assert!(body.get("pitch").is_none());
        assert!(
            body["pace"]
                .as_f64()
                .is_some_and(|pace| (pace - 1.1).abs() < 1e-6)
        );
        // An unknown language falls back to the configured one.
        let request = SpeechRequest {
            language: Some("fr".into()),
            voice: None,
            ..request
        };
        let body = engine.request_body("x", &request, 8000);
        assert_eq!(body["target_language_code"], "hi-IN");
        assert_eq!(body["speaker"], "anushka");
    }

    #[test]
    fn responses_decode_and_bad_ones_are_typed_errors() {
        let one = BASE64.encode(wav(8000, 1, &[1, 2, 3]));
        let two = BASE64.encode(wav(8000, 2, &[10, 20, -4, -6]));
        let body = json!({"request_id": "r1", "audios": [one, two]}).to_string();
        assert_eq!(
            decode_response(body.as_bytes(), 8000).expect("audio"),
            vec![1, 2, 3, 15, -5]
        );
        // A WAV at another rate is converted.
        let body = json!({"audios": [BASE64.encode(wav(16000, 1, &[100; 1600]))]}).to_string();
        assert_eq!(
            decode_response(body.as_bytes(), 8000).expect("audio").len(),
            800
        );
        for bad in [
            "not json".to_owned(),
            json!({"request_id": "r", "audios": []}).to_string(),
            json!({"audios": ["***"]}).to_string(),
            json!({"audios": [BASE64.encode(b"RIFF....WAVEjunk")]}).to_string(),
            json!({"audios": [BASE64.encode(wav(8000, 1, &[]))]}).to_string(),
            json!({"audios": 5}).to_string(),
        ] {
            assert!(
                matches!(
                    decode_response(bad.as_bytes(), 8000),
                    Err(SpeechError::BadAudio(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn configuration_is_checked() {
        let config = SarvamTtsConfig::new("sarvam-secret");
        let engine = SarvamSynthesizer::new(config.clone()).expect("valid");
        assert!(!format!("{engine:?}").contains("sarvam-secret"));
        assert_eq!(engine.config().speaker, "anushka");
        assert!(matches!(
            SarvamSynthesizer::new(SarvamTtsConfig {
                language: "fr-FR".into(),
                ..config.clone()
            }),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert!(matches!(
            SarvamSynthesizer::new(SarvamTtsConfig {
                speaker: "a b".into(),
                ..config
            }),
            Err(SpeechError::InvalidConfig { .. })
        ));
        assert_eq!(SarvamSynthesizer::provider_rate(48000), 24000);
        assert_eq!(SarvamSynthesizer::provider_rate(22050), 22050);
    }
}
