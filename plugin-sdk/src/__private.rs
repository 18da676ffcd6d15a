//! Glue used by [`export_plugin!`](crate::export_plugin): conversions between the
//! generated bindings and the SDK types, and the wasm implementation of the host.
//! Not part of the public API.

use crate::bindings::exports::vaani::agent::handler as wit_handler;
use crate::bindings::vaani::agent::{
    call as wit_call, extraction as wit_extraction, http as wit_http, kv as wit_kv, llm as wit_llm,
    log as wit_log, timers as wit_timers, types as wit,
};
use crate::call::{Call, HostApi};
use crate::error::{Error, ErrorKind};
use crate::plugin::{Plugin, dispatch};
use crate::requests::{
    FetchId, FetchOutcome, FetchRequest, FetchResponse, FetchResult, Generation, GenerationId,
    GenerationOutcome, GenerationResult, HttpError, HttpMethod, LlmError, LlmRequest, Role,
    ToolCall,
};
use crate::transfer::{TransferFailure, TransferMode, TransferOptions};
use crate::types::{
    CallerContext, Direction, EndReason, Event, ExpectedInput, ExtractionError, Interruption,
    KvError, LogLevel, PastCall, PastExtraction, PlaybackId, SayOptions, Utterance, Violation,
};

/// [`crate::WORLD_VERSION`] as bytes, for the custom section.
pub const WORLD_VERSION_BYTES: [u8; 5] = *b"0.3.0";

/// Implements `handler.describe` for `P`.
pub fn describe<P: Plugin>() -> wit_handler::PluginInfo {
    let info = P::info();
    wit_handler::PluginInfo {
        name: info.name,
        version: info.version,
        schemas: info
            .schemas
            .into_iter()
            .map(|s| wit_handler::Schema {
                id: s.id,
                description: s.description,
                json_schema: s.json_schema.to_string(),
            })
            .collect(),
    }
}

/// Implements `handler.on-event` for `P`, creating the plugin on first use.
pub fn on_event<P: Plugin>(
    state: &mut Option<P>,
    event: wit::Event,
) -> Result<(), wit::PluginError> {
    let plugin = state.get_or_insert_with(P::default);
    let mut host = WasmHost;
    let mut call = Call::__new(&mut host);
    let mut result = Ok(());
    for event in events_from_wit(event) {
        result = dispatch(plugin, &mut call, event);
        if result.is_err() {
            break;
        }
    }
    result.map_err(plugin_error_to_wit)
}

/// Converts a WIT event into SDK events. A `dtmf` string normally holds one key;
/// if it holds several, each becomes its own event.
pub fn events_from_wit(event: wit::Event) -> Vec<Event> {
    let single = match event {
        wit::Event::CallStarted(ctx) => Event::CallStarted(caller_context_from_wit(ctx)),
        wit::Event::Dtmf(keys) => return keys.chars().map(Event::Dtmf).collect(),
        wit::Event::SpeechStarted(media_ms) => Event::SpeechStarted { media_ms },
        wit::Event::SpeechStopped(duration_ms) => Event::SpeechStopped { duration_ms },
        wit::Event::TranscriptPartial(u) => Event::TranscriptPartial(utterance_from_wit(u)),
        wit::Event::TranscriptFinal(u) => Event::TranscriptFinal(utterance_from_wit(u)),
        wit::Event::SilenceTimeout(ms) => Event::SilenceTimeout(ms),
        wit::Event::BargeIn(i) => Event::BargeIn(Interruption {
            playback: PlaybackId(i.playback),
            heard_ms: i.heard_ms,
            heard_text: i.heard_text,
        }),
        wit::Event::PlaybackFinished(id) => Event::PlaybackFinished(PlaybackId(id)),
        wit::Event::TimerFired(tag) => Event::TimerFired(tag),
        wit::Event::GenerationFinished(r) => Event::GenerationFinished(GenerationResult {
            id: GenerationId(r.id),
            outcome: match r.outcome {
                wit::GenerationOutcome::Completed(g) => GenerationOutcome::Completed(Generation {
                    text: g.text,
                    tool_calls: g.tool_calls.into_iter().map(tool_call_from_wit).collect(),
                    prompt_tokens: g.prompt_tokens,
                    completion_tokens: g.completion_tokens,
                }),
                wit::GenerationOutcome::Cancelled => GenerationOutcome::Cancelled,
                wit::GenerationOutcome::Failed(m) => GenerationOutcome::Failed(m),
            },
        }),
        wit::Event::FetchFinished(r) => Event::FetchFinished(FetchResult {
            id: FetchId(r.id),
            outcome: match r.outcome {
                wit::FetchOutcome::Response(resp) => FetchOutcome::Response(FetchResponse {
                    status: resp.status,
                    headers: resp.headers,
                    body: resp.body,
                }),
                wit::FetchOutcome::Failed(m) => FetchOutcome::Failed(m),
            },
        }),
        wit::Event::TransferFailed(f) => Event::TransferFailed(TransferFailure {
            target: f.target,
            status: f.status,
            reason: f.reason,
        }),
        wit::Event::CallEnded(reason) => Event::CallEnded(end_reason_from_wit(reason)),
    };
    vec![single]
}

fn caller_context_from_wit(ctx: wit::CallerContext) -> CallerContext {
    CallerContext {
        call_id: ctx.call_id,
        tenant_id: ctx.tenant_id,
        direction: match ctx.direction {
            wit::Direction::Inbound => Direction::Inbound,
            wit::Direction::Outbound => Direction::Outbound,
        },
        caller: ctx.caller,
        dialled: ctx.dialled,
        caller_name: ctx.caller_name,
        memory_json: ctx.memory_json,
        previous_calls: ctx.previous_calls,
        config_json: ctx.config_json,
        started_at_unix_ms: ctx.started_at_unix_ms,
        recent_calls: ctx
            .recent_calls
            .into_iter()
            .map(|c| PastCall {
                call_id: c.call_id,
                started_at_unix_ms: c.started_at_unix_ms,
                duration_secs: c.duration_secs,
                summary: c.summary,
                extractions: c
                    .extractions
                    .into_iter()
                    .map(|e| PastExtraction {
                        schema_id: e.schema_id,
                        data_json: e.data_json,
                    })
                    .collect(),
            })
            .collect(),
        llm_available: ctx.llm_available,
        external_id: ctx.external_id,
        sip_headers: ctx.sip_headers,
    }
}

fn tool_call_from_wit(c: wit::ToolCall) -> ToolCall {
    ToolCall {
        id: c.id,
        name: c.name,
        arguments_json: c.arguments_json,
    }
}

fn tool_call_to_wit(c: &ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id.clone(),
        name: c.name.clone(),
        arguments_json: c.arguments_json.clone(),
    }
}

fn generate_request_to_wit(r: &LlmRequest) -> wit_llm::GenerateRequest {
    wit_llm::GenerateRequest {
        messages: r
            .messages
            .iter()
            .map(|m| wit_llm::Message {
                role: match m.role {
                    Role::System => wit_llm::Role::System,
                    Role::User => wit_llm::Role::User,
                    Role::Assistant => wit_llm::Role::Assistant,
                    Role::Tool => wit_llm::Role::Tool,
                },
                content: m.content.clone(),
                tool_calls: m.tool_calls.iter().map(tool_call_to_wit).collect(),
                tool_call_id: m.tool_call_id.clone(),
            })
            .collect(),
        tools: r
            .tools
            .iter()
            .map(|t| wit_llm::Tool {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters_json: t.parameters.to_string(),
            })
            .collect(),
        temperature: r.temperature,
        max_tokens: r.max_tokens,
        speak: r.speak,
        interruptible: r.interruptible,
    }
}

fn fetch_request_to_wit(r: &FetchRequest) -> wit_http::FetchRequest {
    wit_http::FetchRequest {
        method: match r.method {
            HttpMethod::Get => wit_http::Method::Get,
            HttpMethod::Post => wit_http::Method::Post,
            HttpMethod::Put => wit_http::Method::Put,
            HttpMethod::Patch => wit_http::Method::Patch,
            HttpMethod::Delete => wit_http::Method::Delete,
        },
        url: r.url.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
        timeout_ms: r.timeout_ms,
    }
}

fn utterance_from_wit(u: wit::Utterance) -> Utterance {
    Utterance {
        text: u.text,
        confidence: u.confidence,
        start_ms: u.start_ms,
        end_ms: u.end_ms,
    }
}

fn end_reason_from_wit(reason: wit::EndReason) -> EndReason {
    match reason {
        wit::EndReason::CallerHangup => EndReason::CallerHangup,
        wit::EndReason::PluginHangup => EndReason::PluginHangup,
        wit::EndReason::MediaTimeout => EndReason::MediaTimeout,
        wit::EndReason::PluginFailure => EndReason::PluginFailure,
        wit::EndReason::HostShutdown => EndReason::HostShutdown,
        wit::EndReason::NoAck => EndReason::NoAck,
        wit::EndReason::MaxDuration => EndReason::MaxDuration,
        wit::EndReason::Transferred => EndReason::Transferred,
    }
}

fn transfer_options_to_wit(options: &TransferOptions) -> wit_call::TransferOptions {
    wit_call::TransferOptions {
        mode: match options.mode {
            TransferMode::Blind => wit_call::TransferMode::Blind,
            TransferMode::Bridged => wit_call::TransferMode::Bridged,
        },
        summary: options.summary.clone(),
    }
}

fn plugin_error_to_wit(error: Error) -> wit::PluginError {
    match error.kind() {
        ErrorKind::InvalidState => wit::PluginError::InvalidState(error.message().to_string()),
        ErrorKind::Internal => wit::PluginError::Internal(error.message().to_string()),
    }
}

fn extraction_error_from_wit(error: wit_extraction::ExtractionError) -> ExtractionError {
    match error {
        wit_extraction::ExtractionError::UnknownSchema => ExtractionError::UnknownSchema,
        wit_extraction::ExtractionError::InvalidJson(e) => ExtractionError::InvalidJson(e),
        wit_extraction::ExtractionError::SchemaViolation(v) => ExtractionError::SchemaViolation(
            v.into_iter()
                .map(|v| Violation {
                    path: v.path,
                    message: v.message,
                })
                .collect(),
        ),
        wit_extraction::ExtractionError::TooLarge => ExtractionError::TooLarge,
        wit_extraction::ExtractionError::QuotaExceeded => ExtractionError::QuotaExceeded,
    }
}

fn kv_error_from_wit(error: wit_kv::KvError) -> KvError {
    match error {
        wit_kv::KvError::InvalidKey => KvError::InvalidKey,
        wit_kv::KvError::TooLarge => KvError::TooLarge,
        wit_kv::KvError::QuotaExceeded => KvError::QuotaExceeded,
        wit_kv::KvError::Unavailable => KvError::Unavailable,
    }
}

/// The real host, reached through the component's imports. Only usable inside
/// a wasm component; on native targets the imports are unreachable stubs.
pub struct WasmHost;

impl HostApi for WasmHost {
    fn say(&mut self, text: &str, options: &SayOptions) -> Result<u64, String> {
        wit_call::say(
            text,
            &wit_call::SayOptions {
                voice: options.voice.clone(),
                language: options.language.clone(),
                interruptible: options.interruptible,
            },
        )
    }

    fn play_asset(&mut self, asset_id: &str, interruptible: bool) -> Result<u64, String> {
        wit_call::play_asset(asset_id, interruptible)
    }

    fn stop_playback(&mut self, id: Option<u64>) {
        wit_call::stop_playback(id)
    }

    fn hangup(&mut self, reason: Option<&str>) {
        wit_call::hangup(reason)
    }

    fn set_memory(&mut self, memory_json: &str) -> Result<(), String> {
        wit_call::set_memory(memory_json)
    }

    fn set_caller_name(&mut self, name: &str) -> Result<(), String> {
        wit_call::set_caller_name(name)
    }

    fn submit_extraction(
        &mut self,
        schema_id: &str,
        data_json: &str,
    ) -> Result<(), ExtractionError> {
        wit_extraction::submit(schema_id, data_json).map_err(extraction_error_from_wit)
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        wit_kv::get(key).map_err(kv_error_from_wit)
    }

    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        wit_kv::set(key, value).map_err(kv_error_from_wit)
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), KvError> {
        wit_kv::delete(key).map_err(kv_error_from_wit)
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => wit_log::Level::Trace,
            LogLevel::Debug => wit_log::Level::Debug,
            LogLevel::Info => wit_log::Level::Info,
            LogLevel::Warn => wit_log::Level::Warn,
            LogLevel::Error => wit_log::Level::Error,
        };
        wit_log::log(level, message)
    }

    fn set_timer(&mut self, after_ms: u32, tag: &str) -> Result<u64, String> {
        wit_timers::set_timer(after_ms, tag)
    }

    fn cancel_timer(&mut self, id: u64) {
        wit_timers::cancel_timer(id)
    }

    fn generate(&mut self, request: &LlmRequest) -> Result<(u64, Option<u64>), LlmError> {
        wit_llm::generate(&generate_request_to_wit(request))
            .map(|h| (h.id, h.playback))
            .map_err(|e| match e {
                wit_llm::LlmError::NotConfigured => LlmError::NotConfigured,
                wit_llm::LlmError::InvalidRequest(m) => LlmError::InvalidRequest(m),
                wit_llm::LlmError::TooLarge => LlmError::TooLarge,
                wit_llm::LlmError::QuotaExceeded => LlmError::QuotaExceeded,
            })
    }

    fn cancel_generation(&mut self, id: u64) {
        wit_llm::cancel(id)
    }

    fn fetch(&mut self, request: &FetchRequest) -> Result<u64, HttpError> {
        wit_http::fetch(&fetch_request_to_wit(request)).map_err(|e| match e {
            wit_http::HttpError::InvalidUrl(m) => HttpError::InvalidUrl(m),
            wit_http::HttpError::TooLarge => HttpError::TooLarge,
            wit_http::HttpError::QuotaExceeded => HttpError::QuotaExceeded,
        })
    }

    fn expect_input(&mut self, kind: ExpectedInput) {
        wit_call::expect_input(match kind {
            ExpectedInput::Speech => wit_call::ExpectedInput::Speech,
            ExpectedInput::Digits => wit_call::ExpectedInput::Digits,
            ExpectedInput::Number => wit_call::ExpectedInput::Number,
        })
    }

    fn set_summary(&mut self, summary: &str, sentiment: Option<&str>) -> Result<(), String> {
        wit_call::set_summary(summary, sentiment)
    }

    fn transfer(&mut self, target: &str, options: &TransferOptions) -> Result<(), String> {
        wit_call::transfer(target, &transfer_options_to_wit(options))
    }

    fn send_dtmf(&mut self, digits: &str) -> Result<(), String> {
        wit_call::send_dtmf(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_version_bytes_match_the_constant() {
        assert_eq!(&WORLD_VERSION_BYTES[..], crate::WORLD_VERSION.as_bytes());
    }

    #[test]
    fn multi_key_dtmf_becomes_one_event_per_key() {
        let events = events_from_wit(wit::Event::Dtmf("12#".to_string()));
        assert_eq!(
            events,
            vec![Event::Dtmf('1'), Event::Dtmf('2'), Event::Dtmf('#')]
        );
        assert!(events_from_wit(wit::Event::Dtmf(String::new())).is_empty());
    }

    #[test]
    fn transfer_events_and_options_convert() {
        let events = events_from_wit(wit::Event::TransferFailed(wit::TransferFailure {
            target: "frontdesk".to_string(),
            status: Some(486),
            reason: "busy".to_string(),
        }));
        assert_eq!(
            events,
            vec![Event::TransferFailed(TransferFailure {
                target: "frontdesk".to_string(),
                status: Some(486),
                reason: "busy".to_string(),
            })]
        );
        assert_eq!(
            events_from_wit(wit::Event::CallEnded(wit::EndReason::Transferred)),
            vec![Event::CallEnded(EndReason::Transferred)]
        );
        let bridged = transfer_options_to_wit(&TransferOptions::bridged().summary("hi"));
        assert!(matches!(bridged.mode, wit_call::TransferMode::Bridged));
        assert_eq!(bridged.summary.as_deref(), Some("hi"));
        let blind = transfer_options_to_wit(&TransferOptions::blind());
        assert!(matches!(blind.mode, wit_call::TransferMode::Blind));
        assert_eq!(blind.summary, None);
    }

    #[test]
    fn plugin_errors_keep_their_kind() {
        match plugin_error_to_wit(Error::invalid_state("no booking")) {
            wit::PluginError::InvalidState(m) => assert_eq!(m, "no booking"),
            other => panic!("unexpected {other:?}"),
        }
        match plugin_error_to_wit(Error::from("boom")) {
            wit::PluginError::Internal(m) => assert_eq!(m, "boom"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
