//! Plain data types of the plugin contract, independent of the generated bindings.

use std::fmt;

/// Identifies one queued playback (a `say` or `play_asset`); events such as
/// barge-in and playback-finished refer back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaybackId(pub u64);

/// Identifies one timer set with [`Call::set_timer`](crate::Call::set_timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// Whether the call came in to the tenant or was placed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// The caller dialled the tenant's number.
    #[default]
    Inbound,
    /// vaani placed the call on the tenant's behalf.
    Outbound,
}

/// Who is calling and what the host knows about them, given at call start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallerContext {
    /// vaani's id for this call.
    pub call_id: String,
    /// The tenant this call belongs to.
    pub tenant_id: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Caller number or URI user part (E.164 when the trunk sends it).
    pub caller: String,
    /// Dialled number.
    pub dialled: String,
    /// Caller's name, if an earlier call learnt it.
    pub caller_name: Option<String>,
    /// Plugin-owned JSON memory saved by earlier calls with this caller.
    pub memory_json: Option<String>,
    /// Number of earlier calls from this caller to this tenant.
    pub previous_calls: u32,
    /// Tenant configuration for this plugin (a JSON object).
    pub config_json: String,
    /// Call start, Unix time in milliseconds.
    pub started_at_unix_ms: u64,
    /// The caller's most recent earlier calls, newest first (at most 5).
    pub recent_calls: Vec<PastCall>,
    /// Whether the tenant has an LLM configured ([`Call::generate`](crate::Call::generate) works).
    pub llm_available: bool,
    /// The provider's id for the call (e.g. Twilio's CallSid), when the trunk sends one.
    pub external_id: Option<String>,
    /// INVITE headers the trunk lets through (its `plugin_headers`), as (name, value) in the
    /// order received.
    pub sip_headers: Vec<(String, String)>,
}

/// One extraction stored with an earlier call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PastExtraction {
    /// Schema id it was submitted against.
    pub schema_id: String,
    /// The data as JSON text.
    pub data_json: String,
}

impl PastExtraction {
    /// The data parsed as JSON (`Value::Null` if it does not parse).
    pub fn data(&self) -> serde_json::Value {
        serde_json::from_str(&self.data_json).unwrap_or(serde_json::Value::Null)
    }
}

/// What the host remembers of one earlier call from the same caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PastCall {
    /// vaani's id of that call.
    pub call_id: String,
    /// When it started, Unix time in ms.
    pub started_at_unix_ms: u64,
    /// How long it lasted.
    pub duration_secs: u32,
    /// The summary stored when it ended (the plugin's or the LLM's).
    pub summary: Option<String>,
    /// Extractions stored with it.
    pub extractions: Vec<PastExtraction>,
}

/// The caller spoke over a playback and the host stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// The playback that was cut.
    pub playback: PlaybackId,
    /// How much of it the caller heard, in ms of audio sent.
    pub heard_ms: u32,
    /// The text the caller heard, estimated from `heard_ms` (spoken text only).
    pub heard_text: Option<String>,
}

/// What the plugin expects the caller to say next; the host waits longer for
/// the end of a turn when digits or a number are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedInput {
    /// Free speech.
    #[default]
    Speech,
    /// Digits (keys or spoken).
    Digits,
    /// A spoken number.
    Number,
}

/// Sentiment stored with the call by [`Call::set_summary`](crate::Call::set_summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sentiment {
    /// The caller was satisfied.
    Positive,
    /// Neither.
    Neutral,
    /// The caller was unhappy.
    Negative,
}

impl Sentiment {
    /// The name the host stores (`positive`, `neutral`, `negative`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Neutral => "neutral",
            Sentiment::Negative => "negative",
        }
    }
}

impl CallerContext {
    /// The caller memory parsed as JSON, if there is any and it parses.
    pub fn memory(&self) -> Option<serde_json::Value> {
        self.memory_json
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
    }

    /// The tenant configuration parsed as JSON (`Value::Null` if it does not parse).
    pub fn config(&self) -> serde_json::Value {
        serde_json::from_str(&self.config_json).unwrap_or(serde_json::Value::Null)
    }

    /// The first INVITE header named `name` (case-insensitive) the trunk let through.
    pub fn sip_header(&self, name: &str) -> Option<&str> {
        self.sip_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A recognised stretch of caller speech.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Utterance {
    /// The recognised text.
    pub text: String,
    /// Recogniser confidence, 0.0 to 1.0.
    pub confidence: f32,
    /// Start, in milliseconds of media time from call start.
    pub start_ms: u32,
    /// End, in milliseconds of media time from call start.
    pub end_ms: u32,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up.
    CallerHangup,
    /// The plugin called [`Call::hangup`](crate::Call::hangup).
    PluginHangup,
    /// Media stopped arriving.
    MediaTimeout,
    /// The plugin trapped or overran its budget.
    PluginFailure,
    /// The server is shutting down.
    HostShutdown,
    /// The caller never acknowledged the answer.
    NoAck,
    /// The tenant's maximum call duration was reached.
    MaxDuration,
    /// A transfer asked for with [`Call::transfer`](crate::Call::transfer)
    /// succeeded: the caller was handed over.
    Transferred,
}

/// Everything the host tells a plugin about its call, in delivery order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The call was answered.
    CallStarted(CallerContext),
    /// One DTMF key: 0-9 * # A-D.
    Dtmf(char),
    /// The caller started speaking, at this media time in ms.
    SpeechStarted {
        /// Media time in ms from call start.
        media_ms: u32,
    },
    /// The caller stopped speaking.
    SpeechStopped {
        /// How long the speech lasted, in ms.
        duration_ms: u32,
    },
    /// An interim recognition result; may still change.
    TranscriptPartial(Utterance),
    /// A final recognition result.
    TranscriptFinal(Utterance),
    /// No caller speech or key for this many ms after the agent finished speaking.
    SilenceTimeout(u32),
    /// The caller spoke over a playback and it was stopped.
    BargeIn(Interruption),
    /// This playback was played to the end.
    PlaybackFinished(PlaybackId),
    /// A timer fired; the value is the tag given to `set_timer`.
    TimerFired(String),
    /// A generation finished (for a spoken one: after its speech was queued).
    GenerationFinished(crate::requests::GenerationResult),
    /// A fetch finished.
    FetchFinished(crate::requests::FetchResult),
    /// A transfer did not happen; the call goes on.
    TransferFailed(crate::transfer::TransferFailure),
    /// The call ended; this is the last event.
    CallEnded(EndReason),
}

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something failed.
    Error,
}

/// How to speak one `say`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SayOptions {
    /// Voice name understood by the tenant's text-to-speech engine.
    pub voice: Option<String>,
    /// BCP 47 language tag, e.g. "en-IN" or "hi-IN".
    pub language: Option<String>,
    /// Whether caller speech may cut this playback short.
    pub interruptible: bool,
}

impl Default for SayOptions {
    fn default() -> Self {
        SayOptions {
            voice: None,
            language: None,
            interruptible: true,
        }
    }
}

/// An extraction schema the plugin may submit data against.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Id used with [`Call::extract`](crate::Call::extract).
    pub id: String,
    /// What the extracted record means.
    pub description: String,
    /// JSON Schema document (draft 2020-12).
    pub json_schema: serde_json::Value,
}

/// Builds a [`Schema`].
pub fn schema(
    id: impl Into<String>,
    description: impl Into<String>,
    json_schema: serde_json::Value,
) -> Schema {
    Schema {
        id: id.into(),
        description: description.into(),
        json_schema,
    }
}

/// What `describe()` reports: the plugin's name, version and extraction schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Extraction schemas the plugin may submit against.
    pub schemas: Vec<Schema>,
}

/// One reason an extraction failed schema validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why the host refused an extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractionError {
    /// The schema id was not declared in `schemas()`.
    UnknownSchema,
    /// The data did not serialize or parse as JSON.
    InvalidJson(String),
    /// The data does not match the schema.
    SchemaViolation(Vec<Violation>),
    /// The data is larger than the host accepts (64 KiB).
    TooLarge,
    /// Too many extractions on this call.
    QuotaExceeded,
}

impl fmt::Display for ExtractionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractionError::UnknownSchema => write!(f, "extraction schema was not declared"),
            ExtractionError::InvalidJson(e) => write!(f, "extraction is not valid JSON: {e}"),
            ExtractionError::SchemaViolation(v) => {
                write!(f, "extraction violates its schema:")?;
                for violation in v {
                    write!(f, " {}: {};", violation.path, violation.message)?;
                }
                Ok(())
            }
            ExtractionError::TooLarge => write!(f, "extraction is too large"),
            ExtractionError::QuotaExceeded => write!(f, "extraction quota exceeded"),
        }
    }
}

impl std::error::Error for ExtractionError {}

/// Why a key-value operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvError {
    /// The key is empty or too long.
    InvalidKey,
    /// The value is too large.
    TooLarge,
    /// The tenant's store or this call's write quota is full.
    QuotaExceeded,
    /// The store is not reachable right now.
    Unavailable,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KvError::InvalidKey => "invalid key",
            KvError::TooLarge => "value too large",
            KvError::QuotaExceeded => "key-value quota exceeded",
            KvError::Unavailable => "key-value store unavailable",
        })
    }
}

impl std::error::Error for KvError {}
