//! Per-instance store data: WASI context, limits, quotas, recorded actions, and
//! the host side of the `vaani:agent` imports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_io::IoView;

use crate::config::{
    MAX_ACTIONS_PER_EVENT, MAX_DTMF_DIGITS, MAX_FETCH_BODY_BYTES, MAX_FETCH_URL_BYTES,
    MAX_KV_KEY_BYTES, MAX_KV_VALUE_BYTES, MAX_LLM_REQUEST_BYTES, MAX_LOG_MESSAGE_BYTES,
    MAX_MEMORY_JSON_BYTES, MAX_SUMMARY_BYTES, MAX_TRANSFER_SUMMARY_BYTES,
    MAX_TRANSFER_TARGET_BYTES, PluginLimits, TIMER_RANGE_MS,
};
use crate::event::{
    Action, Event, ExpectedInput, FetchRequest, LlmRequest, LogLevel, TransferMode,
};
use crate::extraction::{ExtractionRejection, ExtractionSchemas, truncate};
use crate::kv::{KvError, KvStore};
use crate::stdio::CapturedOutput;

/// Most WASI resources (streams, pollables) one instance may hold.
const MAX_RESOURCES: usize = 256;
/// Longest voice name or language tag.
const MAX_VOICE_BYTES: usize = 64;
/// Longest asset id.
const MAX_ASSET_ID_BYTES: usize = 128;
/// Longest hangup reason (longer ones are truncated).
const MAX_REASON_BYTES: usize = 256;
/// Longest caller name.
const MAX_CALLER_NAME_BYTES: usize = 128;
/// Longest timer tag.
const MAX_TIMER_TAG_BYTES: usize = 128;

/// The guest broke a quota through an import without an error type; raised as a trap.
#[derive(Debug, thiserror::Error)]
#[error("quota exceeded: {0}")]
pub(crate) struct QuotaTrap(pub(crate) String);

/// The guest tried to grow memory past its limit; raised as a trap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {desired} bytes)")]
pub(crate) struct MemoryLimitTrap {
    pub(crate) limit: usize,
    pub(crate) desired: usize,
}

/// Caps linear memory and tables, and records that the cap was hit so a trap can
/// be classified as [`FailureKind::MemoryLimit`](crate::FailureKind::MemoryLimit).
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) memory_limit_hit: bool,
    pub(crate) peak_memory_bytes: usize,
}

/// Most table elements per table.
const MAX_TABLE_ELEMENTS: usize = 10_000;

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = maximum.map_or(self.memory_bytes, |m| m.min(self.memory_bytes));
        if desired > limit {
            self.memory_limit_hit = true;
            return Err(wasmtime::Error::new(MemoryLimitTrap { limit, desired }));
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_limit_hit = true;
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = maximum.map_or(MAX_TABLE_ELEMENTS, |m| m.min(MAX_TABLE_ELEMENTS));
        if desired > limit {
            return Err(wasmtime::Error::new(QuotaTrap(format!(
                "table growth to {desired} elements (limit {limit})"
            ))));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        2
    }
}

/// Wall-clock state of the event currently running.
pub(crate) struct EventClock {
    /// When the running event must stop.
    pub(crate) deadline: Instant,
    /// Its budget, for messages.
    pub(crate) budget: Duration,
    /// Yield to tokio at each epoch tick (inside `handle`); otherwise just continue.
    pub(crate) yield_to_tokio: bool,
    /// Set by the epoch callback when it interrupted the guest.
    pub(crate) timed_out: bool,
}

/// Everything a plugin instance's `Store` holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) limits: PluginLimits,
    schemas: Arc<ExtractionSchemas>,
    kv: Arc<dyn KvStore>,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
    pub(crate) clock: EventClock,
    /// Set when a quota trap was raised, for classification.
    pub(crate) quota_breach: Option<String>,
    actions: Vec<Action>,
    next_playback_id: u64,
    next_timer_id: u64,
    active_timers: BTreeMap<u64, String>,
    says: u32,
    log_bytes: usize,
    kv_writes: u32,
    extractions: u32,
    /// Set from `CallerContext::llm_available` when `call-started` is delivered.
    llm_available: bool,
    llm_requests: u32,
    next_generation_id: u64,
    active_generations: BTreeSet<u64>,
    http_requests: u32,
    next_fetch_id: u64,
    /// Set by an accepted `call.transfer`, cleared when `transfer-failed` is delivered.
    transfer_pending: bool,
}

impl HostState {
    pub(crate) fn new(
        limits: PluginLimits,
        schemas: Arc<ExtractionSchemas>,
        kv: Arc<dyn KvStore>,
    ) -> Self {
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        // No preopens, no environment, no arguments, closed stdin, no network.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .max_random_size(4 << 10)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let memory_bytes = limits
            .memory_bytes
            .min(crate::config::POOL_MAX_MEMORY_BYTES);
        HostState {
            wasi,
            table,
            limiter: Limiter {
                memory_bytes,
                memory_limit_hit: false,
                peak_memory_bytes: 0,
            },
            limits,
            schemas,
            kv,
            stdout,
            stderr,
            clock: EventClock {
                deadline: Instant::now(),
                budget: Duration::ZERO,
                yield_to_tokio: false,
                timed_out: false,
            },
            quota_breach: None,
            actions: Vec::new(),
            next_playback_id: 0,
            next_timer_id: 0,
            active_timers: BTreeMap::new(),
            says: 0,
            log_bytes: 0,
            kv_writes: 0,
            extractions: 0,
            llm_available: false,
            llm_requests: 0,
            next_generation_id: 0,
            active_generations: BTreeSet::new(),
            http_requests: 0,
            next_fetch_id: 0,
            transfer_pending: false,
        }
    }

    /// Resets the per-event state before the guest runs.
    pub(crate) fn begin_event(&mut self, budget: Duration, yield_to_tokio: bool) {
        self.clock = EventClock {
            deadline: Instant::now() + budget,
            budget,
            yield_to_tokio,
            timed_out: false,
        };
        self.quota_breach = None;
        self.actions.clear();
    }

    /// Takes the actions of the event that just ran, with captured stdout/stderr
    /// appended as log lines (within the log quota).
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        for (level, text) in [
            (LogLevel::Info, self.stdout.drain()),
            (LogLevel::Warn, self.stderr.drain()),
        ] {
            let text = text.trim_end();
            if text.is_empty() {
                continue;
            }
            let message = truncate(text.to_string(), MAX_LOG_MESSAGE_BYTES);
            if self.log_bytes + message.len() <= self.limits.max_logs_bytes_per_call {
                self.log_bytes += message.len();
                self.actions.push(Action::Log { level, message });
            }
        }
        std::mem::take(&mut self.actions)
    }

    /// Appends a log action on the host's behalf (not counted against the quota).
    pub(crate) fn push_host_log(&mut self, level: LogLevel, message: String) {
        self.actions.push(Action::Log {
            level,
            message: truncate(message, MAX_LOG_MESSAGE_BYTES),
        });
    }

    /// Updates per-call state from an event about to be delivered: the LLM
    /// switch at call start, fired timers, finished generations and failed
    /// transfers (which let the plugin ask for another).
    pub(crate) fn observe(&mut self, event: &Event) {
        match event {
            Event::CallStarted(ctx) => self.llm_available = ctx.llm_available,
            Event::TimerFired(tag) => self.timer_fired(tag),
            Event::GenerationFinished { id, .. } => {
                self.active_generations.remove(id);
            }
            Event::TransferFailed(_) => self.transfer_pending = false,
            _ => {}
        }
    }

    /// Forgets a timer that fired (the first active one with this tag).
    fn timer_fired(&mut self, tag: &str) {
        let id = self
            .active_timers
            .iter()
            .find(|(_, t)| t.as_str() == tag)
            .map(|(id, _)| *id);
        if let Some(id) = id {
            self.active_timers.remove(&id);
        }
    }

    fn quota_trap(&mut self, what: String) -> wasmtime::Error {
        self.quota_breach = Some(what.clone());
        wasmtime::Error::new(QuotaTrap(what))
    }

    /// Records an action, trapping if the event already produced too many.
    fn push_action(&mut self, action: Action) -> wasmtime::Result<()> {
        if self.actions.len() >= MAX_ACTIONS_PER_EVENT {
            return Err(self.quota_trap(format!(
                "more than {MAX_ACTIONS_PER_EVENT} actions in one event"
            )));
        }
        self.actions.push(action);
        Ok(())
    }

    fn allocate_playback(&mut self) -> Result<u64, String> {
        if self.says >= self.limits.max_says_per_call {
            return Err(format!(
                "playback quota of {} per call exceeded",
                self.limits.max_says_per_call
            ));
        }
        self.says += 1;
        self.next_playback_id += 1;
        Ok(self.next_playback_id)
    }
}

impl IoView for HostState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_optional_tag(value: &Option<String>, what: &str) -> Result<(), String> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_VOICE_BYTES || has_control_chars(v) => Err(
            format!("{what} must be 1-{MAX_VOICE_BYTES} printable bytes"),
        ),
        _ => Ok(()),
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES || has_control_chars(key) {
        Err(KvError::InvalidKey)
    } else {
        Ok(())
    }
}

/// Why `extraction.submit` refused data (mapped to each world's error type).
pub(crate) enum SubmitRefusal {
    /// Too many extractions on this call.
    QuotaExceeded,
    /// Validation failed.
    Rejected(ExtractionRejection),
}

/// Why `llm.generate` refused a request (mapped to the world's `llm-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LlmRefusal {
    NotConfigured,
    InvalidRequest(String),
    TooLarge,
    QuotaExceeded,
}

/// Why `http.fetch` refused a request (mapped to the world's `http-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchRefusal {
    InvalidUrl(String),
    TooLarge,
    QuotaExceeded,
}

/// Why `call.transfer` refused a request (sent to the guest as its message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TransferRefusal {
    #[error(
        "transfer target must be 1-{MAX_TRANSFER_TARGET_BYTES} bytes without whitespace or control characters"
    )]
    InvalidTarget,
    #[error("transfer summary is empty")]
    EmptySummary,
    #[error("transfer summary is {0} bytes; the limit is {MAX_TRANSFER_SUMMARY_BYTES}")]
    SummaryTooLarge(usize),
    #[error("a summary is spoken only in a bridged transfer")]
    SummaryWithBlind,
    #[error("a transfer of this call is already pending; wait for transfer-failed")]
    AlreadyPending,
}

/// Why `call.send-dtmf` refused keys (sent to the guest as its message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DtmfRefusal {
    #[error("send-dtmf needs 1-{MAX_DTMF_DIGITS} keys; got {0}")]
    Length(usize),
    #[error("{0:?} is not a DTMF key (0-9 * # A-D)")]
    InvalidKey(char),
}

/// Checks the shape of a transfer request (the server checks the tenant's
/// transfer targets).
fn check_transfer(
    target: &str,
    mode: TransferMode,
    summary: Option<&str>,
) -> Result<(), TransferRefusal> {
    if target.is_empty()
        || target.len() > MAX_TRANSFER_TARGET_BYTES
        || target.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(TransferRefusal::InvalidTarget);
    }
    if let Some(summary) = summary {
        if mode == TransferMode::Blind {
            return Err(TransferRefusal::SummaryWithBlind);
        }
        if summary.len() > MAX_TRANSFER_SUMMARY_BYTES {
            return Err(TransferRefusal::SummaryTooLarge(summary.len()));
        }
        if summary.trim().is_empty() {
            return Err(TransferRefusal::EmptySummary);
        }
    }
    Ok(())
}

/// Checks DTMF keys and returns them upper case.
fn normalize_dtmf(digits: &str) -> Result<String, DtmfRefusal> {
    // Count characters, not bytes, so that the message names what the plugin sent.
    let count = digits.chars().count();
    if count == 0 || count > MAX_DTMF_DIGITS {
        return Err(DtmfRefusal::Length(count));
    }
    digits
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            k @ ('0'..='9' | '*' | '#' | 'A'..='D') => Ok(k),
            _ => Err(DtmfRefusal::InvalidKey(c)),
        })
        .collect()
}

/// Most messages in one generation request.
const MAX_LLM_MESSAGES: usize = 256;
/// Most tools in one generation request.
const MAX_LLM_TOOLS: usize = 64;
/// Most headers in one fetch request.
const MAX_FETCH_HEADERS: usize = 64;
/// Sentiments `call.set-summary` accepts.
const SENTIMENTS: [&str; 3] = ["positive", "neutral", "negative"];

/// Bytes of everything a generation request carries.
fn llm_request_bytes(request: &LlmRequest) -> usize {
    let tool_call_bytes = |calls: &[crate::event::ToolCall]| -> usize {
        calls
            .iter()
            .map(|c| c.id.len() + c.name.len() + c.arguments_json.len())
            .sum()
    };
    let messages: usize = request
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + tool_call_bytes(&m.tool_calls)
                + m.tool_call_id.as_ref().map_or(0, String::len)
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.parameters_json.len())
        .sum();
    messages + tools
}

fn check_llm_request(request: &LlmRequest) -> Result<(), LlmRefusal> {
    let invalid = |m: &str| Err(LlmRefusal::InvalidRequest(m.to_string()));
    if request.messages.len() > MAX_LLM_MESSAGES || request.tools.len() > MAX_LLM_TOOLS {
        return Err(LlmRefusal::TooLarge);
    }
    if llm_request_bytes(request) > MAX_LLM_REQUEST_BYTES {
        return Err(LlmRefusal::TooLarge);
    }
    if request.messages.is_empty() {
        return invalid("a request needs at least one message");
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return invalid("temperature must be between 0 and 2");
    }
    if request.max_tokens == Some(0) {
        return invalid("max-tokens must be positive");
    }
    for tool in &request.tools {
        let name_ok = !tool.name.is_empty()
            && tool.name.len() <= 64
            && tool
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !name_ok {
            return invalid("tool names must be 1-64 characters of [A-Za-z0-9_-]");
        }
        if serde_json::from_str::<serde_json::Value>(&tool.parameters_json).is_err() {
            return Err(LlmRefusal::InvalidRequest(format!(
                "parameters of tool {:?} are not JSON",
                tool.name
            )));
        }
    }
    Ok(())
}

fn check_fetch_request(request: &FetchRequest) -> Result<(), FetchRefusal> {
    if request.url.len() > MAX_FETCH_URL_BYTES {
        return Err(FetchRefusal::InvalidUrl(format!(
            "URL is longer than {MAX_FETCH_URL_BYTES} bytes"
        )));
    }
    let url =
        url::Url::parse(&request.url).map_err(|e| FetchRefusal::InvalidUrl(format!("{e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchRefusal::InvalidUrl(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FetchRefusal::InvalidUrl("URL has no host".to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchRefusal::InvalidUrl(
            "credentials in the URL are not allowed; use a header".to_string(),
        ));
    }
    if request
        .body
        .as_ref()
        .is_some_and(|b| b.len() > MAX_FETCH_BODY_BYTES)
    {
        return Err(FetchRefusal::TooLarge);
    }
    let header_bytes: usize = request.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if request.headers.len() > MAX_FETCH_HEADERS || header_bytes > MAX_FETCH_BODY_BYTES {
        return Err(FetchRefusal::TooLarge);
    }
    Ok(())
}

/// Header checks that are not about size: the error goes back as `invalid-url`
/// (the only non-size error `http.fetch` has) with a message naming the header.
fn check_fetch_headers(request: &FetchRequest) -> Result<(), FetchRefusal> {
    for (name, value) in &request.headers {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok {
            return Err(FetchRefusal::InvalidUrl(format!(
                "header name {name:?} is not a valid token"
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(FetchRefusal::InvalidUrl(format!(
                "header {name:?} has a control character in its value"
            )));
        }
    }
    Ok(())
}

/// The host side of every import, independent of the world version. The
/// per-version trait impls (`world_v0_1`, `world_v0_2`) convert types and call these.
impl HostState {
    pub(crate) fn say(
        &mut self,
        text: String,
        voice: Option<String>,
        language: Option<String>,
        interruptible: bool,
    ) -> wasmtime::Result<Result<u64, String>> {
        if text.len() > self.limits.max_say_bytes {
            return Ok(Err(format!(
                "say text is {} bytes; the limit is {}",
                text.len(),
                self.limits.max_say_bytes
            )));
        }
        if text.trim().is_empty() {
            return Ok(Err("say text is empty".to_string()));
        }
        if let Err(e) = check_optional_tag(&voice, "voice")
            .and_then(|()| check_optional_tag(&language, "language"))
        {
            return Ok(Err(e));
        }
        let id = match self.allocate_playback() {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        self.push_action(Action::Say {
            id,
            text,
            voice,
            language,
            interruptible,
        })?;
        Ok(Ok(id))
    }

    pub(crate) fn play_asset(
        &mut self,
        asset_id: String,
        interruptible: bool,
    ) -> wasmtime::Result<Result<u64, String>> {
        let valid = !asset_id.is_empty()
            && asset_id.len() <= MAX_ASSET_ID_BYTES
            && asset_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Ok(Err(format!(
                "asset id must be 1-{MAX_ASSET_ID_BYTES} characters of [A-Za-z0-9._-]"
            )));
        }
        let id = match self.allocate_playback() {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        self.push_action(Action::PlayAsset {
            id,
            asset_id,
            interruptible,
        })?;
        Ok(Ok(id))
    }

    pub(crate) fn stop_playback(&mut self, id: Option<u64>) -> wasmtime::Result<()> {
        self.push_action(Action::StopPlayback(id))
    }

    pub(crate) fn hangup(&mut self, reason: Option<String>) -> wasmtime::Result<()> {
        let reason = reason.map(|r| truncate(r, MAX_REASON_BYTES));
        self.push_action(Action::Hangup { reason })
    }

    pub(crate) fn set_memory(
        &mut self,
        memory_json: String,
    ) -> wasmtime::Result<Result<(), String>> {
        if memory_json.len() > MAX_MEMORY_JSON_BYTES {
            return Ok(Err(format!(
                "memory is {} bytes; the limit is {MAX_MEMORY_JSON_BYTES}",
                memory_json.len()
            )));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&memory_json) {
            return Ok(Err(format!("memory is not valid JSON: {e}")));
        }
        self.push_action(Action::SetMemory(memory_json))?;
        Ok(Ok(()))
    }

    pub(crate) fn set_caller_name(&mut self, name: String) -> wasmtime::Result<Result<(), String>> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_CALLER_NAME_BYTES || has_control_chars(name) {
            return Ok(Err(format!(
                "caller name must be 1-{MAX_CALLER_NAME_BYTES} printable bytes"
            )));
        }
        self.push_action(Action::SetCallerName(name.to_string()))?;
        Ok(Ok(()))
    }

    pub(crate) fn expect_input(&mut self, kind: ExpectedInput) -> wasmtime::Result<()> {
        self.push_action(Action::ExpectInput(kind))
    }

    pub(crate) fn set_summary(
        &mut self,
        summary: String,
        sentiment: Option<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        if summary.len() > MAX_SUMMARY_BYTES {
            return Ok(Err(format!(
                "summary is {} bytes; the limit is {MAX_SUMMARY_BYTES}",
                summary.len()
            )));
        }
        if summary.trim().is_empty() {
            return Ok(Err("summary is empty".to_string()));
        }
        if let Some(s) = &sentiment
            && !SENTIMENTS.contains(&s.as_str())
        {
            return Ok(Err(format!(
                "sentiment must be one of {}",
                SENTIMENTS.join(", ")
            )));
        }
        self.push_action(Action::SetSummary { summary, sentiment })?;
        Ok(Ok(()))
    }

    pub(crate) fn transfer(
        &mut self,
        target: String,
        mode: TransferMode,
        summary: Option<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        let checked = if self.transfer_pending {
            Err(TransferRefusal::AlreadyPending)
        } else {
            check_transfer(&target, mode, summary.as_deref())
        };
        if let Err(refusal) = checked {
            return Ok(Err(refusal.to_string()));
        }
        self.push_action(Action::Transfer {
            target,
            mode,
            summary,
        })?;
        self.transfer_pending = true;
        Ok(Ok(()))
    }

    pub(crate) fn send_dtmf(&mut self, digits: String) -> wasmtime::Result<Result<(), String>> {
        match normalize_dtmf(&digits) {
            Ok(digits) => {
                self.push_action(Action::SendDtmf { digits })?;
                Ok(Ok(()))
            }
            Err(refusal) => Ok(Err(refusal.to_string())),
        }
    }

    pub(crate) fn generate(
        &mut self,
        request: LlmRequest,
    ) -> wasmtime::Result<Result<(u64, Option<u64>), LlmRefusal>> {
        if !self.llm_available {
            return Ok(Err(LlmRefusal::NotConfigured));
        }
        if let Err(refusal) = check_llm_request(&request) {
            return Ok(Err(refusal));
        }
        if self.llm_requests >= self.limits.max_llm_requests_per_call {
            return Ok(Err(LlmRefusal::QuotaExceeded));
        }
        let playback = if request.speak {
            match self.allocate_playback() {
                Ok(id) => Some(id),
                Err(_) => return Ok(Err(LlmRefusal::QuotaExceeded)),
            }
        } else {
            None
        };
        self.llm_requests += 1;
        self.next_generation_id += 1;
        let id = self.next_generation_id;
        self.active_generations.insert(id);
        self.push_action(Action::Generate {
            id,
            playback,
            request,
        })?;
        Ok(Ok((id, playback)))
    }

    pub(crate) fn cancel_generation(&mut self, id: u64) -> wasmtime::Result<()> {
        if self.active_generations.remove(&id) {
            self.push_action(Action::CancelGeneration(id))?;
        }
        Ok(())
    }

    pub(crate) fn fetch(
        &mut self,
        request: FetchRequest,
    ) -> wasmtime::Result<Result<u64, FetchRefusal>> {
        if let Err(refusal) =
            check_fetch_request(&request).and_then(|()| check_fetch_headers(&request))
        {
            return Ok(Err(refusal));
        }
        if self.http_requests >= self.limits.max_http_requests_per_call {
            return Ok(Err(FetchRefusal::QuotaExceeded));
        }
        self.http_requests += 1;
        self.next_fetch_id += 1;
        let id = self.next_fetch_id;
        self.push_action(Action::Fetch { id, request })?;
        Ok(Ok(id))
    }

    pub(crate) fn submit_extraction(
        &mut self,
        schema_id: String,
        data_json: String,
    ) -> wasmtime::Result<Result<(), SubmitRefusal>> {
        if self.extractions >= self.limits.max_extractions_per_call {
            return Ok(Err(SubmitRefusal::QuotaExceeded));
        }
        match self.schemas.validate(&schema_id, &data_json) {
            Ok(data) => {
                self.extractions += 1;
                self.push_action(Action::Extraction { schema_id, data })?;
                Ok(Ok(()))
            }
            Err(rejection) => Ok(Err(SubmitRefusal::Rejected(rejection))),
        }
    }

    fn count_kv_write(&mut self) -> Result<(), KvError> {
        if self.kv_writes >= self.limits.max_kv_writes_per_call {
            return Err(KvError::QuotaExceeded);
        }
        self.kv_writes += 1;
        Ok(())
    }

    pub(crate) fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        check_key(&key)?;
        self.kv.get(&key)
    }

    pub(crate) fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        check_key(&key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(KvError::TooLarge);
        }
        self.count_kv_write()?;
        self.kv.set(&key, &value)
    }

    pub(crate) fn kv_delete(&mut self, key: String) -> Result<(), KvError> {
        check_key(&key)?;
        self.count_kv_write()?;
        self.kv.delete(&key)
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let message = truncate(message, MAX_LOG_MESSAGE_BYTES);
        if self.log_bytes + message.len() > self.limits.max_logs_bytes_per_call {
            return Err(self.quota_trap(format!(
                "log quota of {} bytes per call exceeded",
                self.limits.max_logs_bytes_per_call
            )));
        }
        self.log_bytes += message.len();
        self.push_action(Action::Log { level, message })
    }

    pub(crate) fn set_timer(
        &mut self,
        after_ms: u32,
        tag: String,
    ) -> wasmtime::Result<Result<u64, String>> {
        if !TIMER_RANGE_MS.contains(&after_ms) {
            return Ok(Err(format!(
                "timer delay must be {} to {} ms",
                TIMER_RANGE_MS.start(),
                TIMER_RANGE_MS.end()
            )));
        }
        if tag.is_empty() || tag.len() > MAX_TIMER_TAG_BYTES || has_control_chars(&tag) {
            return Ok(Err(format!(
                "timer tag must be 1-{MAX_TIMER_TAG_BYTES} printable bytes"
            )));
        }
        if self.active_timers.len() >= self.limits.max_timers as usize {
            return Ok(Err(format!(
                "at most {} timers may be active",
                self.limits.max_timers
            )));
        }
        self.next_timer_id += 1;
        let id = self.next_timer_id;
        self.active_timers.insert(id, tag.clone());
        self.push_action(Action::SetTimer { id, after_ms, tag })?;
        Ok(Ok(id))
    }

    pub(crate) fn cancel_timer(&mut self, id: u64) -> wasmtime::Result<()> {
        if self.active_timers.remove(&id).is_some() {
            self.push_action(Action::CancelTimer(id))?;
        }
        Ok(())
    }
}

/// Implements the imports every world version shares (`call` minus the 0.2.0
/// and 0.3.0 additions, `extraction`, `kv`, `log`, `timers`, `types`) for [`HostState`].
/// Invoked inside a `world_v0_*` module, where `call`, `extraction`, … name
/// that version's generated interface modules; extra `call` functions are
/// passed in.
macro_rules! impl_shared_imports {
    ($($call_extra:tt)*) => {
        impl types::Host for HostState {}

        impl call::Host for HostState {
            fn say(
                &mut self,
                text: String,
                options: call::SayOptions,
            ) -> wasmtime::Result<Result<u64, String>> {
                HostState::say(self, text, options.voice, options.language, options.interruptible)
            }

            fn play_asset(
                &mut self,
                asset_id: String,
                interruptible: bool,
            ) -> wasmtime::Result<Result<u64, String>> {
                HostState::play_asset(self, asset_id, interruptible)
            }

            fn stop_playback(&mut self, id: Option<u64>) -> wasmtime::Result<()> {
                HostState::stop_playback(self, id)
            }

            fn hangup(&mut self, reason: Option<String>) -> wasmtime::Result<()> {
                HostState::hangup(self, reason)
            }

            fn set_memory(&mut self, memory_json: String) -> wasmtime::Result<Result<(), String>> {
                HostState::set_memory(self, memory_json)
            }

            fn set_caller_name(&mut self, name: String) -> wasmtime::Result<Result<(), String>> {
                HostState::set_caller_name(self, name)
            }

            $($call_extra)*
        }

        impl extraction::Host for HostState {
            fn submit(
                &mut self,
                schema_id: String,
                data_json: String,
            ) -> wasmtime::Result<Result<(), extraction::ExtractionError>> {
                use crate::extraction::ExtractionRejection;
                use crate::state::SubmitRefusal;
                use extraction::ExtractionError as E;
                Ok(HostState::submit_extraction(self, schema_id, data_json)?.map_err(|refusal| {
                    match refusal {
                        SubmitRefusal::QuotaExceeded => E::QuotaExceeded,
                        SubmitRefusal::Rejected(ExtractionRejection::UnknownSchema) => {
                            E::UnknownSchema
                        }
                        SubmitRefusal::Rejected(ExtractionRejection::InvalidJson(e)) => {
                            E::InvalidJson(e)
                        }
                        SubmitRefusal::Rejected(ExtractionRejection::TooLarge) => E::TooLarge,
                        SubmitRefusal::Rejected(ExtractionRejection::SchemaViolation(v)) => {
                            E::SchemaViolation(
                                v.into_iter()
                                    .map(|v| extraction::Violation {
                                        path: v.path,
                                        message: v.message,
                                    })
                                    .collect(),
                            )
                        }
                    }
                }))
            }
        }

        fn kv_error_to_wit(error: crate::kv::KvError) -> kv::KvError {
            use crate::kv::KvError as E;
            match error {
                E::InvalidKey => kv::KvError::InvalidKey,
                E::TooLarge => kv::KvError::TooLarge,
                E::QuotaExceeded => kv::KvError::QuotaExceeded,
                E::Unavailable(reason) => {
                    tracing::warn!(%reason, "plugin key-value store unavailable");
                    kv::KvError::Unavailable
                }
            }
        }

        impl kv::Host for HostState {
            fn get(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::KvError>> {
                Ok(HostState::kv_get(self, key).map_err(kv_error_to_wit))
            }

            fn set(
                &mut self,
                key: String,
                value: Vec<u8>,
            ) -> wasmtime::Result<Result<(), kv::KvError>> {
                Ok(HostState::kv_set(self, key, value).map_err(kv_error_to_wit))
            }

            fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), kv::KvError>> {
                Ok(HostState::kv_delete(self, key).map_err(kv_error_to_wit))
            }
        }

        impl log::Host for HostState {
            fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
                use crate::event::LogLevel;
                let level = match level {
                    log::Level::Trace => LogLevel::Trace,
                    log::Level::Debug => LogLevel::Debug,
                    log::Level::Info => LogLevel::Info,
                    log::Level::Warn => LogLevel::Warn,
                    log::Level::Error => LogLevel::Error,
                };
                HostState::log(self, level, message)
            }
        }

        impl timers::Host for HostState {
            fn set_timer(
                &mut self,
                after_ms: u32,
                tag: String,
            ) -> wasmtime::Result<Result<u64, String>> {
                HostState::set_timer(self, after_ms, tag)
            }

            fn cancel_timer(&mut self, id: u64) -> wasmtime::Result<()> {
                HostState::cancel_timer(self, id)
            }
        }
    };
}

pub(crate) use impl_shared_imports;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_targets_are_checked_for_shape_only() {
        for target in ["frontdesk", "sip:desk@pbx.example.com", "tel:+918000000002"] {
            assert_eq!(check_transfer(target, TransferMode::Blind, None), Ok(()));
        }
        let longest = "a".repeat(MAX_TRANSFER_TARGET_BYTES);
        assert_eq!(check_transfer(&longest, TransferMode::Blind, None), Ok(()));
        let too_long = "a".repeat(MAX_TRANSFER_TARGET_BYTES + 1);
        for target in [
            "",
            "front desk",
            "desk\n",
            "desk\u{0}",
            "\u{a0}desk",
            &too_long,
        ] {
            assert_eq!(
                check_transfer(target, TransferMode::Bridged, None),
                Err(TransferRefusal::InvalidTarget),
                "{target:?}"
            );
        }
    }

    #[test]
    fn transfer_summaries_are_bridged_only_non_blank_and_at_most_2_kib() {
        let bridged = |s: &str| check_transfer("desk", TransferMode::Bridged, Some(s));
        assert_eq!(bridged("A caller from the echo line."), Ok(()));
        assert_eq!(bridged(&"s".repeat(MAX_TRANSFER_SUMMARY_BYTES)), Ok(()));
        assert_eq!(
            bridged(&"s".repeat(MAX_TRANSFER_SUMMARY_BYTES + 1)),
            Err(TransferRefusal::SummaryTooLarge(
                MAX_TRANSFER_SUMMARY_BYTES + 1
            ))
        );
        assert_eq!(bridged(" \t"), Err(TransferRefusal::EmptySummary));
        assert_eq!(
            check_transfer("desk", TransferMode::Blind, Some("hello")),
            Err(TransferRefusal::SummaryWithBlind)
        );
    }

    #[test]
    fn dtmf_keys_are_validated_and_upper_cased() {
        assert_eq!(
            normalize_dtmf("0123456789*#abcdABCD").as_deref(),
            Ok("0123456789*#ABCDABCD")
        );
        assert_eq!(
            normalize_dtmf(&"1".repeat(MAX_DTMF_DIGITS)).map(|d| d.len()),
            Ok(32)
        );
        assert_eq!(normalize_dtmf(""), Err(DtmfRefusal::Length(0)));
        assert_eq!(
            normalize_dtmf(&"1".repeat(MAX_DTMF_DIGITS + 1)),
            Err(DtmfRefusal::Length(MAX_DTMF_DIGITS + 1))
        );
        assert_eq!(normalize_dtmf("12e"), Err(DtmfRefusal::InvalidKey('e')));
        assert_eq!(normalize_dtmf("1 2"), Err(DtmfRefusal::InvalidKey(' ')));
        assert_eq!(normalize_dtmf("١"), Err(DtmfRefusal::InvalidKey('١')));
    }
}
