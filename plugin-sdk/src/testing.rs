//! A native mock host for unit-testing plugins without building wasm.
//!
//! ```
//! use vaani_plugin_sdk::*;
//! use vaani_plugin_sdk::testing::TestCall;
//!
//! #[derive(Default)]
//! struct Greeter;
//! impl Plugin for Greeter {
//!     fn on_call_started(&mut self, call: &mut Call, _: &CallerContext) -> Result {
//!         call.say("Hi")?;
//!         Ok(())
//!     }
//! }
//!
//! let mut call = TestCall::<Greeter>::new();
//! call.start().unwrap();
//! assert_eq!(call.said(), vec!["Hi"]);
//! ```
//!
//! The mock enforces the host's size limits and checks that extractions use a
//! declared schema id and are valid JSON, but it does not validate the data
//! against the JSON Schema (the real host does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::call::{Call, HostApi};
use crate::error::Result;
use crate::plugin::{Plugin, dispatch};
use crate::requests::{
    FetchId, FetchOutcome, FetchRequest, FetchResponse, FetchResult, Generation, GenerationHandle,
    GenerationId, GenerationOutcome, GenerationResult, HttpError, LlmError, LlmRequest, ToolCall,
};
use crate::transfer::{TransferFailure, TransferMode, TransferOptions};
use crate::types::{
    CallerContext, EndReason, Event, ExpectedInput, ExtractionError, Interruption, KvError,
    LogLevel, PlaybackId, SayOptions, Sentiment, TimerId, Utterance,
};

/// Largest `say` text the host accepts, in bytes.
pub const MAX_SAY_BYTES: usize = 4 * 1024;
/// Largest caller memory the host accepts, in bytes of JSON.
pub const MAX_MEMORY_BYTES: usize = 16 * 1024;
/// Largest extraction the host accepts, in bytes of JSON.
pub const MAX_EXTRACTION_BYTES: usize = 64 * 1024;
/// Longest key-value key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 256;
/// Largest key-value value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 64 * 1024;
/// Largest summary, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 2 * 1024;
/// Largest fetch body, in bytes.
pub const MAX_FETCH_BODY_BYTES: usize = 64 * 1024;
/// Largest generation request (message, tool and schema bytes), in bytes.
pub const MAX_LLM_REQUEST_BYTES: usize = 64 * 1024;
/// Default most generations per call.
pub const MAX_LLM_REQUESTS_PER_CALL: u32 = 50;
/// Default most fetches per call.
pub const MAX_HTTP_REQUESTS_PER_CALL: u32 = 20;
/// Longest transfer target, in bytes.
pub const MAX_TRANSFER_TARGET_BYTES: usize = 256;
/// Longest summary of a bridged transfer, in bytes.
pub const MAX_TRANSFER_SUMMARY_BYTES: usize = 2 * 1024;
/// Most keys one `send_dtmf` sends.
pub const MAX_DTMF_DIGITS: usize = 32;

/// One thing a plugin asked the mock host to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MockAction {
    /// `say` / `say_with`.
    Say {
        /// Playback id the host handed back.
        id: PlaybackId,
        /// Text to speak.
        text: String,
        /// Voice, language, interruptibility.
        options: SayOptions,
    },
    /// `play_asset`.
    PlayAsset {
        /// Playback id the host handed back.
        id: PlaybackId,
        /// Asset to play.
        asset_id: String,
        /// Whether speech may interrupt it.
        interruptible: bool,
    },
    /// `stop_playback`.
    StopPlayback(Option<PlaybackId>),
    /// `hangup` / `hangup_with_reason`.
    Hangup(Option<String>),
    /// `set_memory`, parsed.
    SetMemory(serde_json::Value),
    /// `set_caller_name`.
    SetCallerName(String),
    /// An accepted extraction, parsed.
    Extraction {
        /// Declared schema id.
        schema_id: String,
        /// Submitted data.
        data: serde_json::Value,
    },
    /// `log`.
    Log {
        /// Severity.
        level: LogLevel,
        /// Message.
        message: String,
    },
    /// `set_timer`.
    SetTimer {
        /// Timer id the host handed back.
        id: TimerId,
        /// Delay.
        after: Duration,
        /// Tag delivered to `on_timer`.
        tag: String,
    },
    /// `cancel_timer`.
    CancelTimer(TimerId),
    /// An accepted `generate`.
    Generate {
        /// Id and playback the host handed back.
        handle: GenerationHandle,
        /// The request.
        request: LlmRequest,
    },
    /// `cancel_generation` of a pending generation.
    CancelGeneration(GenerationId),
    /// An accepted `fetch`.
    Fetch {
        /// Id the host handed back.
        id: FetchId,
        /// The request.
        request: FetchRequest,
    },
    /// `expect_input`.
    ExpectInput(ExpectedInput),
    /// An accepted `set_summary`.
    SetSummary {
        /// Summary text.
        summary: String,
        /// Sentiment, if given.
        sentiment: Option<Sentiment>,
    },
    /// An accepted `transfer`.
    Transfer {
        /// The target as the plugin gave it.
        target: String,
        /// Mode and summary.
        options: TransferOptions,
    },
    /// An accepted `send_dtmf`, with the keys upper case as the host sends them.
    SendDtmf(String),
}

/// Records what a plugin asks for and answers like the real host would.
/// An LLM is available unless [`set_llm_available`](Self::set_llm_available)
/// says otherwise.
#[derive(Debug)]
pub struct MockHost {
    actions: Vec<MockAction>,
    next_playback: u64,
    next_timer: u64,
    active_timers: BTreeMap<u64, String>,
    declared_schemas: BTreeSet<String>,
    kv: BTreeMap<String, Vec<u8>>,
    llm_available: bool,
    llm_requests: u32,
    next_generation: u64,
    pending_generations: BTreeSet<u64>,
    http_requests: u32,
    next_fetch: u64,
    pending_fetches: BTreeSet<u64>,
    pending_transfer: Option<String>,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost {
            actions: Vec::new(),
            next_playback: 0,
            next_timer: 0,
            active_timers: BTreeMap::new(),
            declared_schemas: BTreeSet::new(),
            kv: BTreeMap::new(),
            llm_available: true,
            llm_requests: 0,
            next_generation: 0,
            pending_generations: BTreeSet::new(),
            http_requests: 0,
            next_fetch: 0,
            pending_fetches: BTreeSet::new(),
            pending_transfer: None,
        }
    }
}

impl MockHost {
    /// A mock host that accepts extractions for these schema ids.
    pub fn with_schemas(schema_ids: impl IntoIterator<Item = String>) -> Self {
        MockHost {
            declared_schemas: schema_ids.into_iter().collect(),
            ..MockHost::default()
        }
    }

    /// Everything recorded so far, in order.
    pub fn actions(&self) -> &[MockAction] {
        &self.actions
    }

    /// Removes and returns everything recorded so far.
    pub fn take_actions(&mut self) -> Vec<MockAction> {
        std::mem::take(&mut self.actions)
    }

    /// The tenant key-value store as the plugin left it.
    pub fn kv(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.kv
    }

    /// Pre-loads the key-value store (e.g. with data from "earlier calls").
    pub fn kv_insert(&mut self, key: &str, value: &[u8]) {
        self.kv.insert(key.to_string(), value.to_vec());
    }

    /// Timers set and not cancelled (and not yet fired through [`TestCall::fire_timer`]).
    pub fn active_timers(&self) -> Vec<(TimerId, String)> {
        self.active_timers
            .iter()
            .map(|(id, tag)| (TimerId(*id), tag.clone()))
            .collect()
    }

    /// Whether `generate` works (the real host follows
    /// [`CallerContext::llm_available`]); `true` by default.
    pub fn set_llm_available(&mut self, available: bool) {
        self.llm_available = available;
    }

    /// Whether `generate` works.
    pub fn llm_available(&self) -> bool {
        self.llm_available
    }

    /// Generations started and not yet finished, oldest first.
    pub fn pending_generations(&self) -> Vec<GenerationId> {
        self.pending_generations
            .iter()
            .copied()
            .map(GenerationId)
            .collect()
    }

    /// Fetches started and not yet finished, oldest first.
    pub fn pending_fetches(&self) -> Vec<FetchId> {
        self.pending_fetches.iter().copied().map(FetchId).collect()
    }

    /// The target of the transfer asked for and not yet failed, if any (while
    /// it is pending, the host refuses another transfer).
    pub fn pending_transfer(&self) -> Option<&str> {
        self.pending_transfer.as_deref()
    }

    fn allocate_playback(&mut self) -> PlaybackId {
        self.next_playback += 1;
        PlaybackId(self.next_playback)
    }
}

impl HostApi for MockHost {
    fn say(&mut self, text: &str, options: &SayOptions) -> Result<u64, String> {
        if text.len() > MAX_SAY_BYTES {
            return Err(format!(
                "say text is {} bytes; the limit is {MAX_SAY_BYTES}",
                text.len()
            ));
        }
        let id = self.allocate_playback();
        self.actions.push(MockAction::Say {
            id,
            text: text.to_string(),
            options: options.clone(),
        });
        Ok(id.0)
    }

    fn play_asset(&mut self, asset_id: &str, interruptible: bool) -> Result<u64, String> {
        if asset_id.is_empty() {
            return Err("empty asset id".to_string());
        }
        let id = self.allocate_playback();
        self.actions.push(MockAction::PlayAsset {
            id,
            asset_id: asset_id.to_string(),
            interruptible,
        });
        Ok(id.0)
    }

    fn stop_playback(&mut self, id: Option<u64>) {
        self.actions
            .push(MockAction::StopPlayback(id.map(PlaybackId)));
    }

    fn hangup(&mut self, reason: Option<&str>) {
        self.actions
            .push(MockAction::Hangup(reason.map(str::to_string)));
    }

    fn set_memory(&mut self, memory_json: &str) -> Result<(), String> {
        if memory_json.len() > MAX_MEMORY_BYTES {
            return Err(format!(
                "memory is {} bytes; the limit is {MAX_MEMORY_BYTES}",
                memory_json.len()
            ));
        }
        let value = serde_json::from_str(memory_json).map_err(|e| e.to_string())?;
        self.actions.push(MockAction::SetMemory(value));
        Ok(())
    }

    fn set_caller_name(&mut self, name: &str) -> Result<(), String> {
        if name.trim().is_empty() || name.len() > 256 {
            return Err("caller name must be 1-256 bytes".to_string());
        }
        self.actions
            .push(MockAction::SetCallerName(name.to_string()));
        Ok(())
    }

    fn submit_extraction(
        &mut self,
        schema_id: &str,
        data_json: &str,
    ) -> Result<(), ExtractionError> {
        if !self.declared_schemas.contains(schema_id) {
            return Err(ExtractionError::UnknownSchema);
        }
        if data_json.len() > MAX_EXTRACTION_BYTES {
            return Err(ExtractionError::TooLarge);
        }
        let data = serde_json::from_str(data_json)
            .map_err(|e| ExtractionError::InvalidJson(e.to_string()))?;
        self.actions.push(MockAction::Extraction {
            schema_id: schema_id.to_string(),
            data,
        });
        Ok(())
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        Ok(self.kv.get(key).cloned())
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_KV_VALUE_BYTES {
            return Err(KvError::TooLarge);
        }
        self.kv.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), KvError> {
        check_key(key)?;
        self.kv.remove(key);
        Ok(())
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.actions.push(MockAction::Log {
            level,
            message: message.to_string(),
        });
    }

    fn set_timer(&mut self, after_ms: u32, tag: &str) -> Result<u64, String> {
        self.next_timer += 1;
        let id = TimerId(self.next_timer);
        self.active_timers.insert(id.0, tag.to_string());
        self.actions.push(MockAction::SetTimer {
            id,
            after: Duration::from_millis(u64::from(after_ms)),
            tag: tag.to_string(),
        });
        Ok(id.0)
    }

    fn cancel_timer(&mut self, id: u64) {
        self.active_timers.remove(&id);
        self.actions.push(MockAction::CancelTimer(TimerId(id)));
    }

    fn generate(&mut self, request: &LlmRequest) -> Result<(u64, Option<u64>), LlmError> {
        if !self.llm_available {
            return Err(LlmError::NotConfigured);
        }
        let bytes: usize = request
            .messages
            .iter()
            .map(|m| m.content.len())
            .chain(request.tools.iter().map(|t| t.parameters.to_string().len()))
            .sum();
        if bytes > MAX_LLM_REQUEST_BYTES {
            return Err(LlmError::TooLarge);
        }
        if request.messages.is_empty() {
            return Err(LlmError::InvalidRequest(
                "a request needs at least one message".to_string(),
            ));
        }
        if self.llm_requests >= MAX_LLM_REQUESTS_PER_CALL {
            return Err(LlmError::QuotaExceeded);
        }
        self.llm_requests += 1;
        self.next_generation += 1;
        let id = GenerationId(self.next_generation);
        let playback = request.speak.then(|| self.allocate_playback());
        self.pending_generations.insert(id.0);
        self.actions.push(MockAction::Generate {
            handle: GenerationHandle { id, playback },
            request: request.clone(),
        });
        Ok((id.0, playback.map(|p| p.0)))
    }

    fn cancel_generation(&mut self, id: u64) {
        if self.pending_generations.contains(&id) {
            self.actions
                .push(MockAction::CancelGeneration(GenerationId(id)));
        }
    }

    fn fetch(&mut self, request: &FetchRequest) -> Result<u64, HttpError> {
        let rest = request
            .url
            .strip_prefix("https://")
            .or_else(|| request.url.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => {
                return Err(HttpError::InvalidUrl(format!(
                    "{:?} is not an http(s) URL",
                    request.url
                )));
            }
        }
        if request
            .body
            .as_ref()
            .is_some_and(|b| b.len() > MAX_FETCH_BODY_BYTES)
        {
            return Err(HttpError::TooLarge);
        }
        if self.http_requests >= MAX_HTTP_REQUESTS_PER_CALL {
            return Err(HttpError::QuotaExceeded);
        }
        self.http_requests += 1;
        self.next_fetch += 1;
        let id = FetchId(self.next_fetch);
        self.pending_fetches.insert(id.0);
        self.actions.push(MockAction::Fetch {
            id,
            request: request.clone(),
        });
        Ok(id.0)
    }

    fn expect_input(&mut self, kind: ExpectedInput) {
        self.actions.push(MockAction::ExpectInput(kind));
    }

    fn set_summary(&mut self, summary: &str, sentiment: Option<&str>) -> Result<(), String> {
        if summary.len() > MAX_SUMMARY_BYTES {
            return Err(format!(
                "summary is {} bytes; the limit is {MAX_SUMMARY_BYTES}",
                summary.len()
            ));
        }
        if summary.trim().is_empty() {
            return Err("summary is empty".to_string());
        }
        let sentiment = match sentiment {
            None => None,
            Some("positive") => Some(Sentiment::Positive),
            Some("neutral") => Some(Sentiment::Neutral),
            Some("negative") => Some(Sentiment::Negative),
            Some(other) => return Err(format!("unknown sentiment {other:?}")),
        };
        self.actions.push(MockAction::SetSummary {
            summary: summary.to_string(),
            sentiment,
        });
        Ok(())
    }

    fn transfer(&mut self, target: &str, options: &TransferOptions) -> Result<(), String> {
        if self.pending_transfer.is_some() {
            return Err(
                "a transfer of this call is already pending; wait for transfer-failed".to_string(),
            );
        }
        check_transfer(target, options)?;
        self.pending_transfer = Some(target.to_string());
        self.actions.push(MockAction::Transfer {
            target: target.to_string(),
            options: options.clone(),
        });
        Ok(())
    }

    fn send_dtmf(&mut self, digits: &str) -> Result<(), String> {
        let count = digits.chars().count();
        if count == 0 || count > MAX_DTMF_DIGITS {
            return Err(format!(
                "send-dtmf needs 1-{MAX_DTMF_DIGITS} keys; got {count}"
            ));
        }
        let digits = digits
            .chars()
            .map(|c| match c.to_ascii_uppercase() {
                k @ ('0'..='9' | '*' | '#' | 'A'..='D') => Ok(k),
                _ => Err(format!("{c:?} is not a DTMF key (0-9 * # A-D)")),
            })
            .collect::<Result<String, String>>()?;
        self.actions.push(MockAction::SendDtmf(digits));
        Ok(())
    }
}

/// The host's shape checks of a transfer (the server checks the tenant's targets).
fn check_transfer(target: &str, options: &TransferOptions) -> Result<(), String> {
    if target.is_empty()
        || target.len() > MAX_TRANSFER_TARGET_BYTES
        || target.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "transfer target must be 1-{MAX_TRANSFER_TARGET_BYTES} bytes without whitespace or control characters"
        ));
    }
    if let Some(summary) = &options.summary {
        if options.mode == TransferMode::Blind {
            return Err("a summary is spoken only in a bridged transfer".to_string());
        }
        if summary.len() > MAX_TRANSFER_SUMMARY_BYTES {
            return Err(format!(
                "transfer summary is {} bytes; the limit is {MAX_TRANSFER_SUMMARY_BYTES}",
                summary.len()
            ));
        }
        if summary.trim().is_empty() {
            return Err("transfer summary is empty".to_string());
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
        Err(KvError::InvalidKey)
    } else {
        Ok(())
    }
}

/// A plugin instance wired to a [`MockHost`]: drive events, then assert on what
/// the plugin did.
pub struct TestCall<P: Plugin> {
    plugin: P,
    host: MockHost,
}

impl<P: Plugin> Default for TestCall<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Plugin> TestCall<P> {
    /// A fresh plugin (`P::default()`) on a mock host that knows `P::schemas()`.
    pub fn new() -> Self {
        Self::with_plugin(P::default())
    }

    /// Uses an already-built plugin value.
    pub fn with_plugin(plugin: P) -> Self {
        TestCall {
            plugin,
            host: MockHost::with_schemas(P::schemas().into_iter().map(|s| s.id)),
        }
    }

    /// A caller context for tests: an inbound call from +919800000001 to
    /// +918000000001 on tenant "test", no name, no memory, config `{}`.
    pub fn default_context() -> CallerContext {
        CallerContext {
            call_id: "test-call".to_string(),
            tenant_id: "test".to_string(),
            caller: "+919800000001".to_string(),
            dialled: "+918000000001".to_string(),
            config_json: "{}".to_string(),
            ..CallerContext::default()
        }
    }

    /// Delivers any event. As on the real host, delivering
    /// [`Event::TransferFailed`] clears the pending transfer.
    pub fn send(&mut self, event: Event) -> Result {
        if matches!(event, Event::TransferFailed(_)) {
            self.host.pending_transfer = None;
        }
        let mut call = Call::__new(&mut self.host);
        dispatch(&mut self.plugin, &mut call, event)
    }

    /// No LLM for this call: `generate` answers `NotConfigured` and the
    /// context of [`start`](Self::start) says `llm_available: false`.
    pub fn without_llm(mut self) -> Self {
        self.host.set_llm_available(false);
        self
    }

    /// `call-started` with [`default_context`](Self::default_context), whose
    /// `llm_available` follows the mock host (true unless [`without_llm`](Self::without_llm)).
    pub fn start(&mut self) -> Result {
        let ctx = CallerContext {
            llm_available: self.host.llm_available,
            ..Self::default_context()
        };
        self.send(Event::CallStarted(ctx))
    }

    /// `call-started` with the given context; as on the real host, its
    /// `llm_available` decides whether `generate` works.
    pub fn start_with(&mut self, ctx: CallerContext) -> Result {
        self.host.set_llm_available(ctx.llm_available);
        self.send(Event::CallStarted(ctx))
    }

    /// The caller spoke over `playback` after hearing `heard_ms` of it.
    pub fn barge_in(
        &mut self,
        playback: PlaybackId,
        heard_ms: u32,
        heard_text: Option<&str>,
    ) -> Result {
        self.send(Event::BargeIn(Interruption {
            playback,
            heard_ms,
            heard_text: heard_text.map(str::to_string),
        }))
    }

    /// Generations the plugin started (accepted ones), in order, with their requests.
    pub fn generations(&self) -> Vec<(GenerationHandle, LlmRequest)> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Generate { handle, request } => Some((*handle, request.clone())),
                _ => None,
            })
            .collect()
    }

    /// The request of the most recent generation.
    pub fn last_generation(&self) -> Option<LlmRequest> {
        self.generations().pop().map(|(_, request)| request)
    }

    /// Finishes a pending generation with any outcome and delivers it to the
    /// plugin. Errors (without delivering) if `id` is not pending.
    pub fn finish_generation(&mut self, id: GenerationId, outcome: GenerationOutcome) -> Result {
        if !self.host.pending_generations.remove(&id.0) {
            return Err(crate::Error::invalid_state(format!(
                "generation {} is not pending",
                id.0
            )));
        }
        self.send(Event::GenerationFinished(GenerationResult { id, outcome }))
    }

    /// Completes a pending generation with this reply and tool calls.
    pub fn complete_generation(
        &mut self,
        id: GenerationId,
        text: &str,
        tool_calls: Vec<ToolCall>,
    ) -> Result {
        self.finish_generation(
            id,
            GenerationOutcome::Completed(Generation {
                text: text.to_string(),
                tool_calls,
                ..Generation::default()
            }),
        )
    }

    /// Completes the most recent pending generation with a plain text reply.
    pub fn reply_text(&mut self, text: &str) -> Result {
        let id = self.latest_pending_generation()?;
        self.complete_generation(id, text, Vec::new())
    }

    /// Completes the most recent pending generation with one tool call
    /// (id `call-<generation id>`) and no text.
    pub fn reply_tool_call(&mut self, name: &str, arguments: serde_json::Value) -> Result {
        let id = self.latest_pending_generation()?;
        let call = ToolCall::new(format!("call-{}", id.0), name, arguments);
        self.complete_generation(id, "", vec![call])
    }

    /// Fails a pending generation with this message.
    pub fn fail_generation(&mut self, id: GenerationId, message: &str) -> Result {
        self.finish_generation(id, GenerationOutcome::Failed(message.to_string()))
    }

    fn latest_pending_generation(&self) -> Result<GenerationId> {
        self.host
            .pending_generations
            .last()
            .map(|id| GenerationId(*id))
            .ok_or_else(|| crate::Error::invalid_state("no generation is pending"))
    }

    /// Fetches the plugin started (accepted ones), in order.
    pub fn fetches(&self) -> Vec<(FetchId, FetchRequest)> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Fetch { id, request } => Some((*id, request.clone())),
                _ => None,
            })
            .collect()
    }

    /// Finishes a pending fetch with any outcome and delivers it. Errors
    /// (without delivering) if `id` is not pending.
    pub fn finish_fetch(&mut self, id: FetchId, outcome: FetchOutcome) -> Result {
        if !self.host.pending_fetches.remove(&id.0) {
            return Err(crate::Error::invalid_state(format!(
                "fetch {} is not pending",
                id.0
            )));
        }
        self.send(Event::FetchFinished(FetchResult { id, outcome }))
    }

    /// Completes a pending fetch with this status and body (no headers).
    pub fn complete_fetch(&mut self, id: FetchId, status: u16, body: impl Into<Vec<u8>>) -> Result {
        self.finish_fetch(
            id,
            FetchOutcome::Response(FetchResponse {
                status,
                headers: Vec::new(),
                body: body.into(),
            }),
        )
    }

    /// Fails a pending fetch (e.g. refused by the tenant's allow-list).
    pub fn fail_fetch(&mut self, id: FetchId, message: &str) -> Result {
        self.finish_fetch(id, FetchOutcome::Failed(message.to_string()))
    }

    /// Transfers the plugin asked for (accepted ones), in order.
    pub fn transfers(&self) -> Vec<(String, TransferOptions)> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Transfer { target, options } => Some((target.clone(), options.clone())),
                _ => None,
            })
            .collect()
    }

    /// Fails the pending transfer with this SIP status (if any) and reason, and
    /// delivers `transfer-failed` to the plugin. Errors (without delivering) if
    /// no transfer is pending.
    pub fn fail_transfer(&mut self, status: Option<u16>, reason: &str) -> Result {
        let target = self
            .host
            .pending_transfer
            .clone()
            .ok_or_else(|| crate::Error::invalid_state("no transfer is pending"))?;
        self.send(Event::TransferFailed(TransferFailure {
            target,
            status,
            reason: reason.to_string(),
        }))
    }

    /// Completes the pending transfer: the call ends with
    /// [`EndReason::Transferred`]. Errors (without delivering) if no transfer is
    /// pending.
    pub fn complete_transfer(&mut self) -> Result {
        if self.host.pending_transfer.take().is_none() {
            return Err(crate::Error::invalid_state("no transfer is pending"));
        }
        self.end(EndReason::Transferred)
    }

    /// DTMF keys the plugin sent (accepted `send_dtmf` calls, upper case), in order.
    pub fn dtmf_sent(&self) -> Vec<String> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::SendDtmf(digits) => Some(digits.clone()),
                _ => None,
            })
            .collect()
    }

    /// The last summary and sentiment the plugin set.
    pub fn summary(&self) -> Option<(String, Option<Sentiment>)> {
        self.actions().iter().rev().find_map(|a| match a {
            MockAction::SetSummary { summary, sentiment } => Some((summary.clone(), *sentiment)),
            _ => None,
        })
    }

    /// The input kind the plugin last said it expects.
    pub fn expected_input(&self) -> Option<ExpectedInput> {
        self.actions().iter().rev().find_map(|a| match a {
            MockAction::ExpectInput(kind) => Some(*kind),
            _ => None,
        })
    }

    /// One DTMF key.
    pub fn dtmf(&mut self, digit: char) -> Result {
        self.send(Event::Dtmf(digit))
    }

    /// Several DTMF keys, one event each; stops at the first error.
    pub fn dtmf_keys(&mut self, keys: &str) -> Result {
        keys.chars().try_for_each(|k| self.dtmf(k))
    }

    /// A final transcript with confidence 0.9.
    pub fn transcript(&mut self, text: &str) -> Result {
        self.send(Event::TranscriptFinal(Utterance {
            text: text.to_string(),
            confidence: 0.9,
            ..Utterance::default()
        }))
    }

    /// Silence of `ms` milliseconds.
    pub fn silence(&mut self, ms: u32) -> Result {
        self.send(Event::SilenceTimeout(ms))
    }

    /// Fires a timer the plugin set, by tag (the first active one with that tag).
    /// Returns `Ok(false)` if no such timer is active.
    pub fn fire_timer(&mut self, tag: &str) -> Result<bool> {
        let id = self
            .host
            .active_timers
            .iter()
            .find(|(_, t)| t.as_str() == tag)
            .map(|(id, _)| *id);
        match id {
            Some(id) => {
                self.host.active_timers.remove(&id);
                self.send(Event::TimerFired(tag.to_string()))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `call-ended`.
    pub fn end(&mut self, reason: EndReason) -> Result {
        self.send(Event::CallEnded(reason))
    }

    /// The plugin under test.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// The mock host.
    pub fn host(&self) -> &MockHost {
        &self.host
    }

    /// The mock host, to pre-load state.
    pub fn host_mut(&mut self) -> &mut MockHost {
        &mut self.host
    }

    /// Everything the plugin did so far.
    pub fn actions(&self) -> &[MockAction] {
        self.host.actions()
    }

    /// Removes and returns everything the plugin did so far.
    pub fn take_actions(&mut self) -> Vec<MockAction> {
        self.host.take_actions()
    }

    /// Texts of every `say`, in order.
    pub fn said(&self) -> Vec<String> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Say { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Text of the most recent `say`.
    pub fn last_said(&self) -> Option<String> {
        self.said().pop()
    }

    /// Accepted extractions, in order.
    pub fn extractions(&self) -> Vec<(String, serde_json::Value)> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Extraction { schema_id, data } => {
                    Some((schema_id.clone(), data.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Whether the plugin hung up.
    pub fn hung_up(&self) -> bool {
        self.actions()
            .iter()
            .any(|a| matches!(a, MockAction::Hangup(_)))
    }

    /// The last caller memory the plugin set.
    pub fn memory(&self) -> Option<serde_json::Value> {
        self.actions().iter().rev().find_map(|a| match a {
            MockAction::SetMemory(m) => Some(m.clone()),
            _ => None,
        })
    }

    /// Log messages, in order.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.actions()
            .iter()
            .filter_map(|a| match a {
                MockAction::Log { level, message } => Some((*level, message.clone())),
                _ => None,
            })
            .collect()
    }
}
