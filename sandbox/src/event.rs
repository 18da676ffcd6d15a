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
    /// The caller's most recent earlier calls, newest first (at most 5; only
    /// 0.2.0 plugins see them).
    pub recent_calls: Vec<PastCall>,
    /// Whether the tenant has an LLM configured. This is also the switch for
    /// `llm.generate`: the instance answers `not-configured` until a
    /// `CallStarted` with `llm_available: true` has been delivered.
    pub llm_available: bool,
    /// The provider's id for the call (only 0.2.0 plugins see it).
    pub external_id: Option<String>,
    /// INVITE headers the trunk lets through to the plugin (only 0.2.0 plugins see them).
    pub sip_headers: Vec<(String, String)>,
}

/// One extraction stored with an earlier call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PastExtraction {
    /// Schema id the data was submitted against.
    pub schema_id: String,
    /// The extracted data as JSON.
    pub data_json: String,
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
    /// Summary stored when it ended.
    pub summary: Option<String>,
    /// Extractions stored with it.
    pub extractions: Vec<PastExtraction>,
}

/// The caller spoke over a playback and the host stopped it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interruption {
    /// The playback that was cut.
    pub playback: u64,
    /// How much of it the caller heard, in ms of audio sent.
    pub heard_ms: u32,
    /// The text the caller heard, estimated from `heard_ms` (spoken text only).
    pub heard_text: Option<String>,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    /// The model's id for this call.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON.
    pub arguments_json: String,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Generation {
    /// The whole reply text (for a spoken one: what was queued for speech).
    pub text: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Prompt tokens billed.
    pub prompt_tokens: u32,
    /// Completion tokens billed.
    pub completion_tokens: u32,
}

/// How an `llm.generate` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationOutcome {
    /// The model answered.
    Completed(Generation),
    /// Cancelled by the plugin or by a barge-in.
    Cancelled,
    /// The provider failed, timed out or refused; the message says why.
    Failed(String),
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// How an `http.fetch` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A response arrived (any status).
    Response(FetchResponse),
    /// Refused by policy, failed to connect, timed out or too large.
    Failed(String),
}

/// Who wrote one chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmRole {
    /// Instructions.
    System,
    /// The caller (or the plugin on their behalf).
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// One chat message of an [`LlmRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmMessage {
    /// Author.
    pub role: LlmRole,
    /// Text.
    pub content: String,
    /// For an assistant message that called tools.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the id of the call it answers.
    pub tool_call_id: Option<String>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmTool {
    /// Tool name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of the arguments (checked to be JSON).
    pub parameters_json: String,
}

/// A chat completion request a plugin made (validated and size-checked).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// The conversation so far.
    pub messages: Vec<LlmMessage>,
    /// Tools the model may call.
    pub tools: Vec<LlmTool>,
    /// Sampling temperature (0.0 to 2.0).
    pub temperature: Option<f32>,
    /// Cap on completion tokens.
    pub max_tokens: Option<u32>,
    /// Speak the reply sentence by sentence as it streams.
    pub speak: bool,
    /// Whether caller speech may cut the spoken reply (and cancel the generation).
    pub interruptible: bool,
}

/// HTTP method of a [`FetchRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// An HTTP request a plugin made. The URL parsed and is http or https; the
/// tenant's allow-list is checked by the server, not the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Method.
    pub method: HttpMethod,
    /// Absolute http(s) URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (≤ 64 KiB).
    pub body: Option<Vec<u8>>,
    /// Requested timeout; the server caps it at the tenant's limit.
    pub timeout_ms: Option<u32>,
}

/// What input the plugin expects next (turn-taking waits longer for digits and numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedInput {
    /// Free speech.
    #[default]
    Speech,
    /// DTMF or spoken digits.
    Digits,
    /// A spoken number.
    Number,
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
    /// The tenant's maximum call duration was reached (0.1.0 plugins see `host-shutdown`).
    MaxDuration,
    /// A transfer succeeded: the caller was handed over. 0.1.0 and 0.2.0 plugins,
    /// whose worlds have no such reason, see `caller-hangup`: the caller left the
    /// conversation normally, neither through a failure (`plugin-failure`,
    /// `media-timeout`) nor because the host stopped (`host-shutdown`), and not
    /// at such a plugin's request (it cannot ask for a transfer, so not
    /// `plugin-hangup`).
    Transferred,
}

/// How a transfer hands the caller over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// The trunk connects the caller to the target (SIP REFER); the call ends
    /// when the transfer succeeds.
    Blind,
    /// vaani calls the target and connects the two calls, after speaking the
    /// summary (if any) to the person who answers.
    Bridged,
}

/// Why a transfer the plugin asked for did not happen; the call goes on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferFailure {
    /// The target as the plugin gave it in [`Action::Transfer`].
    pub target: String,
    /// The SIP status that ended it, if any (e.g. 486 busy, 603 declined).
    pub status: Option<u16>,
    /// What happened (also a refusal by the tenant's transfer targets), for logs
    /// and the plugin's next words.
    pub reason: String,
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
    /// The caller spoke over a playback and it was stopped (0.1.0 plugins get
    /// only the playback id).
    BargeIn(Interruption),
    /// This playback played to the end.
    PlaybackFinished(u64),
    /// A timer fired; the tag given to `set-timer`.
    TimerFired(String),
    /// An `llm.generate` finished (never delivered to 0.1.0 plugins).
    GenerationFinished {
        /// Id from [`Action::Generate`].
        id: u64,
        /// Result.
        outcome: GenerationOutcome,
    },
    /// An `http.fetch` finished (never delivered to 0.1.0 plugins).
    FetchFinished {
        /// Id from [`Action::Fetch`].
        id: u64,
        /// Result.
        outcome: FetchOutcome,
    },
    /// The pending [`Action::Transfer`] did not happen (refused by the tenant's
    /// transfer targets, busy, declined, unanswered); the call goes on. Delivering
    /// it clears the instance's pending transfer, so the plugin may ask again.
    /// Never delivered to 0.1.0 and 0.2.0 plugins (they cannot transfer).
    TransferFailed(TransferFailure),
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
    /// Start a chat completion; answer with [`Event::GenerationFinished`].
    Generate {
        /// Generation id (per call, from 1).
        id: u64,
        /// Playback id of the spoken reply (from the `say` counter) when `request.speak`.
        playback: Option<u64>,
        /// The validated request.
        request: LlmRequest,
    },
    /// Cancel a running generation (and its speech); answer with
    /// `GenerationFinished { outcome: Cancelled }` unless it already finished.
    CancelGeneration(u64),
    /// Start an HTTP request; answer with [`Event::FetchFinished`] (also when the
    /// tenant's allow-list refuses it).
    Fetch {
        /// Fetch id (per call, from 1).
        id: u64,
        /// The validated request.
        request: FetchRequest,
    },
    /// The plugin expects this kind of input next.
    ExpectInput(ExpectedInput),
    /// Summary and sentiment to store with the call.
    SetSummary {
        /// Summary text (≤ 2 KiB).
        summary: String,
        /// `positive`, `neutral` or `negative`.
        sentiment: Option<String>,
    },
    /// Hand the caller over to `target` (0.3.0). The sandbox checked only the
    /// shape; the server checks `target` against the tenant's transfer targets
    /// and answers a refusal or a failed attempt with
    /// [`Event::TransferFailed`], a success with
    /// `Event::CallEnded(EndReason::Transferred)`. At most one is pending per
    /// call: the instance refuses another until `TransferFailed` is delivered.
    Transfer {
        /// A transfer-target name (e.g. `frontdesk`) or URI (`sip:`, `sips:`,
        /// `tel:`), as the plugin gave it: 1-256 bytes, no whitespace or control
        /// characters.
        target: String,
        /// Blind (SIP REFER) or bridged.
        mode: TransferMode,
        /// Spoken to the person who answers before the caller is connected
        /// (≤ 2 KiB, not blank; only ever set for [`TransferMode::Bridged`]).
        summary: Option<String>,
    },
    /// Send DTMF keys to the far end (0.3.0).
    SendDtmf {
        /// 1-32 keys of `0-9 * # A-D`, upper case.
        digits: String,
    },
}
