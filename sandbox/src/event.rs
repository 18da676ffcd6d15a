//! Plain Rust mirrors of the WIT types: what the server sends a plugin (events)
//! and what the plugin asks for (actions).

/// Whether the call came in to the tenant or was placed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// The caller dialled the tenant's number.
    #[default]
    Inbound,
    /// vaani placed the call.
    Outbound,
}

/// Who is calling and what the host knows about them; sent with `call-started`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// Caller's name if an earlier call learnt it.
    pub caller_name: Option<String>,
    /// Plugin-owned JSON memory saved by earlier calls with this caller.
    pub memory_json: Option<String>,
    /// Number of earlier calls from this caller to this tenant.
    pub previous_calls: u32,
    /// Tenant configuration for this plugin (JSON object).
    pub config_json: String,
    /// Call start, Unix time in ms.
    pub started_at_unix_ms: u64,
}

/// A recognised stretch of caller speech.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Utterance {
    /// Recognised text.
    pub text: String,
    /// Recogniser confidence, 0.0 to 1.0.
    pub confidence: f32,
    /// Start, ms of media time from call start.
    pub start_ms: u32,
    /// End, ms of media time from call start.
    pub end_ms: u32,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up.
    CallerHangup,
    /// The plugin hung up.
    PluginHangup,
    /// Media stopped arriving.
    MediaTimeout,
    /// The plugin failed and the call went to the fallback.
    PluginFailure,
    /// The server is shutting down.
    HostShutdown,
    /// The caller never acknowledged the answer.
    NoAck,
}

/// Something that happened on the call, delivered to the plugin in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The call was answered.
    CallStarted(CallerContext),
    /// One DTMF key: 0-9 * # A-D.
    Dtmf(char),
    /// The caller started speaking.
    SpeechStarted {
        /// Media time in ms from call start.
        media_ms: u32,
    },
    /// The caller stopped speaking.
    SpeechStopped {
        /// Length of the speech in ms.
        duration_ms: u32,
    },
    /// Interim transcript.
    TranscriptPartial(Utterance),
    /// Final transcript.
    TranscriptFinal(Utterance),
    /// No speech or key for this many ms after the agent finished speaking.
    SilenceTimeout(u32),
    /// The caller spoke over this playback and it was stopped.
    BargeIn(u64),
    /// This playback played to the end.
    PlaybackFinished(u64),
    /// A timer fired; the tag given to `set-timer`.
    TimerFired(String),
    /// The call ended (last event).
    CallEnded(EndReason),
}

impl Event {
    /// Whether this event gets the (longer) lifecycle budget rather than the
    /// real-time event budget.
    pub fn is_lifecycle(&self) -> bool {
        matches!(self, Event::CallStarted(_) | Event::CallEnded(_))
    }
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
    /// Unexpected but handled.
    Warn,
    /// Failure.
    Error,
}

/// Something the plugin asked the server to do, in the order it asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Speak text; `id` is the playback id handed to the plugin.
    Say {
        /// Playback id (per call, from 1).
        id: u64,
        /// Text to speak (≤ `max_say_bytes`).
        text: String,
        /// Voice name, if the plugin chose one.
        voice: Option<String>,
        /// BCP 47 language tag, if the plugin chose one.
        language: Option<String>,
        /// Whether caller speech may cut it short.
        interruptible: bool,
    },
    /// Play a tenant asset.
    PlayAsset {
        /// Playback id (per call, shared counter with `Say`).
        id: u64,
        /// Tenant asset id (validated characters only).
        asset_id: String,
        /// Whether caller speech may cut it short.
        interruptible: bool,
    },
    /// Stop one playback, or everything queued when `None`.
    StopPlayback(Option<u64>),
    /// End the call after queued playback.
    Hangup {
        /// Plugin-given reason, truncated to 256 bytes.
        reason: Option<String>,
    },
    /// Replace the caller memory (valid JSON, ≤ 16 KiB).
    SetMemory(String),
    /// Remember the caller's name.
    SetCallerName(String),
    /// A validated extraction.
    Extraction {
        /// Declared schema id.
        schema_id: String,
        /// Data that passed validation.
        data: serde_json::Value,
    },
    /// A plugin log line (or captured stdout/stderr, or an error the plugin returned).
    Log {
        /// Severity.
        level: LogLevel,
        /// Message (≤ 1 KiB).
        message: String,
    },
    /// Start a timer; deliver `Event::TimerFired(tag)` after `after_ms`.
    SetTimer {
        /// Timer id (per call, from 1).
        id: u64,
        /// Delay in ms (within 100 ms ..= 10 min).
        after_ms: u32,
        /// Tag to deliver.
        tag: String,
    },
    /// Cancel an active timer.
    CancelTimer(u64),
}
