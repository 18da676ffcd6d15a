//! Deepgram live-streaming protocol, sans-IO: the listen URL, the client's control
//! messages, and a decoder that turns the server's JSON messages into [`SttEvent`]s.
//!
//! Server messages (text frames): `Results` (interim with `is_final: false`, settled with
//! `is_final: true`; `speech_final` when end-pointing saw a pause, `from_finalize` when it
//! answers a `Finalize`), `Metadata` (request id, billed duration), `UtteranceEnd`,
//! `SpeechStarted`. Client control messages: `KeepAlive`, `Finalize`, `CloseStream`.

use std::collections::VecDeque;

use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use super::super::stream::{Segment, SttEvent, primary_language};
use super::DEEPGRAM_ENGINE;
use super::DeepgramSttConfig;
use crate::transcriber::TranscriptionError;

/// `{"type":"KeepAlive"}`: keeps an idle stream open (Deepgram closes one that gets
/// nothing for 10 s).
pub(crate) const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
/// `{"type":"Finalize"}`: transcribe the audio received so far now.
pub(crate) const FINALIZE: &str = r#"{"type":"Finalize"}"#;
/// `{"type":"CloseStream"}`: finish, send the last results and `Metadata`, then close.
pub(crate) const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// The listen URL with the stream's query parameters.
pub(crate) fn listen_url(
    config: &DeepgramSttConfig,
    sample_rate: u32,
    language: Option<&str>,
) -> Result<Url, TranscriptionError> {
    let invalid = |detail: String| TranscriptionError::InvalidConfig {
        engine: DEEPGRAM_ENGINE.to_owned(),
        detail,
    };
    let mut url = Url::parse(config.base_url.trim())
        .map_err(|error| invalid(format!("base_url {:?}: {error}", config.base_url)))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(invalid(format!(
            "base_url {:?} is not ws or wss",
            config.base_url
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "base_url must not contain credentials; use api_key".to_owned(),
        ));
    }
    let bool_text = |value: bool| if value { "true" } else { "false" };
    let language = language
        .map(str::trim)
        .filter(|language| !language.is_empty())
        .unwrap_or(config.language.trim());
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("model", config.model.trim())
            .append_pair("encoding", "linear16")
            .append_pair("sample_rate", &sample_rate.to_string())
            .append_pair("channels", "1")
            .append_pair("interim_results", bool_text(config.interim_results))
            .append_pair("punctuate", bool_text(config.punctuate))
            .append_pair("smart_format", bool_text(config.smart_format))
            .append_pair("vad_events", bool_text(config.vad_events));
        match config.endpointing_ms {
            Some(ms) => query.append_pair("endpointing", &ms.to_string()),
            None => query.append_pair("endpointing", "false"),
        };
        if let Some(ms) = config.utterance_end_ms {
            query.append_pair("utterance_end_ms", &ms.to_string());
        }
        if !language.is_empty() {
            query.append_pair("language", language);
        }
        for keyterm in config
            .keyterms
            .iter()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
        {
            query.append_pair("keyterm", keyterm);
        }
    }
    Ok(url)
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum ServerMessage {
    Results(Results),
    Metadata {
        #[serde(default)]
        request_id: String,
        #[serde(default)]
        duration: Option<f64>,
    },
    UtteranceEnd {},
    SpeechStarted {
        #[serde(default)]
        timestamp: f64,
    },
    Error {
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        variant: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Results {
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    start: f64,
    duration: f64,
    channel: Channel,
}

#[derive(Debug, Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Deserialize)]
struct Alternative {
    transcript: String,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    languages: Vec<String>,
}

/// Seconds of stream time to milliseconds (negative or not finite: 0).
fn seconds_to_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Turns the server's messages into events; tracks the `Finalize` messages not answered
/// yet so that each `finish_utterance` gets exactly one `UtteranceEnd { requested: true }`
/// (from the `from_finalize` result, or at its deadline when Deepgram had nothing
/// buffered and sent none).
#[derive(Debug)]
pub(crate) struct DeepgramDecoder {
    /// Language reported when the result names none (ISO 639-1, may be empty).
    language: String,
    /// Deadlines of the `Finalize` messages not answered yet, oldest first.
    finalize_deadlines: VecDeque<Instant>,
}

impl DeepgramDecoder {
    /// A decoder for a stream in `language` (a BCP 47 tag, `multi`, or empty).
    pub(crate) fn new(language: &str) -> Self {
        Self {
            language: primary_language(language),
            finalize_deadlines: VecDeque::new(),
        }
    }

    /// A `Finalize` was sent; its answer is due by `deadline`.
    pub(crate) fn finalize_sent(&mut self, deadline: Instant) {
        self.finalize_deadlines.push_back(deadline);
    }

    /// When the oldest unanswered `Finalize` is due.
    pub(crate) fn next_finalize_deadline(&self) -> Option<Instant> {
        self.finalize_deadlines.front().copied()
    }

    /// `UtteranceEnd { requested: true }` for every `Finalize` due by `now` (Deepgram sends
    /// no `from_finalize` result when it had no audio left to transcribe).
    pub(crate) fn expire_finalizes(&mut self, now: Instant) -> Vec<SttEvent> {
        let mut events = Vec::new();
        while self
            .finalize_deadlines
            .front()
            .is_some_and(|deadline| *deadline <= now)
        {
            self.finalize_deadlines.pop_front();
            tracing::debug!("Deepgram sent no from_finalize result in time; utterance ended");
            events.push(SttEvent::UtteranceEnd { requested: true });
        }
        events
    }

    /// `UtteranceEnd { requested: true }` for every `Finalize` still unanswered, at the
    /// graceful end of the stream.
    pub(crate) fn end_of_stream(&mut self) -> Vec<SttEvent> {
        let pending = self.finalize_deadlines.len();
        self.finalize_deadlines.clear();
        vec![SttEvent::UtteranceEnd { requested: true }; pending]
    }

    /// The events of one text message from the server.
    pub(crate) fn message(&mut self, text: &str) -> Result<Vec<SttEvent>, TranscriptionError> {
        let malformed = |detail: String| TranscriptionError::MalformedResponse {
            engine: DEEPGRAM_ENGINE.to_owned(),
            detail,
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
            malformed(format!(
                "message is not JSON ({error}): {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        let message: ServerMessage = serde_json::from_value(value)
            .map_err(|error| malformed(format!("unexpected message shape: {error}")))?;
        let mut events = Vec::new();
        match message {
            ServerMessage::Results(results) => self.results(results, &mut events),
            ServerMessage::Metadata {
                request_id,
                duration,
            } => events.push(SttEvent::Metadata {
                request_id,
                billed_ms: duration.map(seconds_to_ms),
            }),
            ServerMessage::UtteranceEnd {} => {
                events.push(SttEvent::UtteranceEnd { requested: false });
            }
            ServerMessage::SpeechStarted { timestamp } => events.push(SttEvent::SpeechStarted {
                at_ms: seconds_to_ms(timestamp),
            }),
            ServerMessage::Error {
                description,
                message,
                variant,
            } => {
                let detail = [description, message, variant]
                    .into_iter()
                    .flatten()
                    .filter(|part| !part.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(": ");
                return Err(TranscriptionError::EngineFailed {
                    engine: DEEPGRAM_ENGINE.to_owned(),
                    detail: if detail.is_empty() {
                        "error message without a description".to_owned()
                    } else {
                        detail
                    },
                });
            }
            ServerMessage::Other => {
                tracing::debug!(
                    message = %text.chars().take(200).collect::<String>(),
                    "Deepgram message of an unknown type ignored"
                );
            }
        }
        Ok(events)
    }

    fn results(&mut self, results: Results, events: &mut Vec<SttEvent>) {
        let alternative = results.channel.alternatives.into_iter().next();
        let (text, confidence, language) = match alternative {
            Some(alternative) => (
                alternative.transcript.trim().to_owned(),
                alternative.confidence.unwrap_or(1.0).clamp(0.0, 1.0) as f32,
                alternative
                    .languages
                    .first()
                    .map(|language| primary_language(language)),
            ),
            None => (String::new(), 0.0, None),
        };
        if !text.is_empty() {
            let start_ms = seconds_to_ms(results.start);
            let segment = Segment {
                text,
                confidence,
                start_ms,
                end_ms: start_ms + seconds_to_ms(results.duration),
                language: language.unwrap_or_else(|| self.language.clone()),
            };
            events.push(if results.is_final {
                SttEvent::Final(segment)
            } else {
                SttEvent::Partial(segment)
            });
        }
        if !results.is_final {
            return;
        }
        if results.from_finalize && self.finalize_deadlines.pop_front().is_some() {
            events.push(SttEvent::UtteranceEnd { requested: true });
        } else if results.speech_final {
            events.push(SttEvent::UtteranceEnd { requested: false });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A `Results` message in the shape Deepgram sends (nova-3, one channel).
    fn results(
        transcript: &str,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> String {
        serde_json::json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 1.02,
            "start": 2.5,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": transcript,
                "confidence": 0.9876,
                "words": [{"word": "book", "start": 2.6, "end": 2.9, "confidence": 0.99, "punctuated_word": "Book"}]
            }]},
            "metadata": {
                "request_id": "7b2bb4a5-6c27-4fa5-9a2e-5e9b2d4c5f10",
                "model_info": {"name": "general-nova-3", "version": "2024-12-20.0", "arch": "nova-3"},
                "model_uuid": "40bd3654-e622-47c4-a111-63a61b23bd4f"
            }
        })
        .to_string()
    }

    #[test]
    fn listen_url_carries_the_stream_settings() {
        let mut config = DeepgramSttConfig::new("key");
        config.keyterms = vec!["Dr. Rao".into(), " ".into()];
        let url = listen_url(&config, 16_000, Some("hi")).expect("valid");
        assert_eq!(url.scheme(), "wss");
        assert_eq!(url.host_str(), Some("api.deepgram.com"));
        assert_eq!(url.path(), "/v1/listen");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |key: &str| {
            query
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("model"), ["nova-3"]);
        assert_eq!(get("encoding"), ["linear16"]);
        assert_eq!(get("sample_rate"), ["16000"]);
        assert_eq!(get("channels"), ["1"]);
        assert_eq!(get("interim_results"), ["true"]);
        assert_eq!(get("endpointing"), ["300"]);
        assert_eq!(get("language"), ["hi"]);
        assert_eq!(get("keyterm"), ["Dr. Rao"]);
        assert!(get("utterance_end_ms").is_empty());

        config.endpointing_ms = None;
        config.base_url = "https://api.deepgram.com/v1/listen".into();
        assert!(matches!(
            listen_url(&config, 16_000, None),
            Err(TranscriptionError::InvalidConfig { .. })
        ));
        config.base_url = "ws://127.0.0.1:1234/v1/listen".into();
        let url = listen_url(&config, 8_000, None).expect("valid");
        assert!(url.as_str().contains("endpointing=false"));
        assert!(url.as_str().contains("language=en"));
    }

    #[test]
    fn interim_then_final_then_endpoint() {
        let mut decoder = DeepgramDecoder::new("en-US");
        let events = decoder
            .message(&results("book an", false, false, false))
            .expect("valid");
        assert_eq!(
            events,
            vec![SttEvent::Partial(Segment {
                text: "book an".into(),
                confidence: 0.9876,
                start_ms: 2500,
                end_ms: 3520,
                language: "en".into(),
            })]
        );
        let events = decoder
            .message(&results("Book an appointment.", true, true, false))
            .expect("valid");
        assert!(matches!(&events[0], SttEvent::Final(s) if s.text == "Book an appointment."));
        assert_eq!(events[1], SttEvent::UtteranceEnd { requested: false });
        // Empty interim results (silence) give nothing.
        assert!(
            decoder
                .message(&results("", false, false, false))
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn finalize_is_answered_once_by_from_finalize_or_deadline() {
        let now = Instant::now();
        let mut decoder = DeepgramDecoder::new("multi");
        decoder.finalize_sent(now + Duration::from_secs(2));
        let events = decoder
            .message(&results("tomorrow at ten", true, false, true))
            .expect("valid");
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], SttEvent::Final(s) if s.language.is_empty()));
        assert_eq!(events[1], SttEvent::UtteranceEnd { requested: true });
        assert_eq!(decoder.next_finalize_deadline(), None);

        // No answer: the deadline ends the utterance.
        decoder.finalize_sent(now + Duration::from_secs(2));
        assert!(decoder.expire_finalizes(now).is_empty());
        assert_eq!(
            decoder.expire_finalizes(now + Duration::from_secs(2)),
            vec![SttEvent::UtteranceEnd { requested: true }]
        );
        decoder.finalize_sent(now);
        assert_eq!(
            decoder.end_of_stream(),
            vec![SttEvent::UtteranceEnd { requested: true }]
        );
    }

    #[test]
    fn metadata_speech_started_utterance_end_and_unknown_types() {
        let mut decoder = DeepgramDecoder::new("en");
        let metadata = r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"8c8ebea9-dbec-45fa-a035-e4632cb05b5f","sha256":"e3b0c442","created":"2024-08-29T22:37:55.202Z","duration":12.34,"channels":1}"#;
        assert_eq!(
            decoder.message(metadata).expect("valid"),
            vec![SttEvent::Metadata {
                request_id: "8c8ebea9-dbec-45fa-a035-e4632cb05b5f".into(),
                billed_ms: Some(12_340)
            }]
        );
        assert_eq!(
            decoder
                .message(r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":1.52}"#)
                .expect("valid"),
            vec![SttEvent::SpeechStarted { at_ms: 1520 }]
        );
        assert_eq!(
            decoder
                .message(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.395}"#)
                .expect("valid"),
            vec![SttEvent::UtteranceEnd { requested: false }]
        );
        assert!(
            decoder
                .message(r#"{"type":"SomethingNew","x":1}"#)
                .expect("ignored")
                .is_empty()
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors_not_panics() {
        let mut decoder = DeepgramDecoder::new("en");
        for text in [
            "not json",
            "[1,2,3]",
            r#"{"no_type":true}"#,
            r#"{"type":"Results","start":"zero","duration":1,"channel":{"alternatives":[]}}"#,
            r#"{"type":"Results","start":0,"duration":1}"#,
        ] {
            assert!(
                matches!(
                    decoder.message(text),
                    Err(TranscriptionError::MalformedResponse { .. })
                ),
                "{text}"
            );
        }
        assert!(matches!(
            decoder.message(r#"{"type":"Error","description":"Audio could not be decoded","variant":"DATA-0000"}"#),
            Err(TranscriptionError::EngineFailed { ref detail, .. }) if detail.contains("DATA-0000")
        ));
        // Results with no alternatives or absurd times are tolerated.
        assert!(
            decoder
                .message(r#"{"type":"Results","start":-1,"duration":1e308,"is_final":true,"channel":{"alternatives":[]}}"#)
                .expect("tolerated")
                .is_empty()
        );
    }
}
