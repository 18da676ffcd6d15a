//! Host side of `vaani:agent@0.2.0`: bindings, the shared imports plus `llm`,
//! `http` and the new `call` functions, and the internal event model (which is
//! the 0.2.0 model) converted to the generated types.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/0.2.0",
    world: "agent",
    imports: { default: trappable },
    exports: { default: async },
});

use self::vaani::agent::{call, extraction, http, kv, llm, log, timers, types};
use crate::event::{
    CallerContext, Direction, EndReason, Event, ExpectedInput, FetchOutcome, FetchRequest,
    GenerationOutcome, HttpMethod, LlmMessage, LlmRequest, LlmRole, LlmTool, PastCall,
    PastExtraction, ToolCall, Utterance,
};
use crate::state::{FetchRefusal, HostState, LlmRefusal, impl_shared_imports};

impl_shared_imports! {
    fn expect_input(&mut self, kind: call::ExpectedInput) -> wasmtime::Result<()> {
        HostState::expect_input(
            self,
            match kind {
                call::ExpectedInput::Speech => ExpectedInput::Speech,
                call::ExpectedInput::Digits => ExpectedInput::Digits,
                call::ExpectedInput::Number => ExpectedInput::Number,
            },
        )
    }

    fn set_summary(
        &mut self,
        summary: String,
        sentiment: Option<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        HostState::set_summary(self, summary, sentiment)
    }
}

impl llm::Host for HostState {
    fn generate(
        &mut self,
        request: llm::GenerateRequest,
    ) -> wasmtime::Result<Result<llm::GenerationHandle, llm::LlmError>> {
        Ok(HostState::generate(self, llm_request_from_wit(request))?
            .map(|(id, playback)| llm::GenerationHandle { id, playback })
            .map_err(|refusal| match refusal {
                LlmRefusal::NotConfigured => llm::LlmError::NotConfigured,
                LlmRefusal::InvalidRequest(m) => llm::LlmError::InvalidRequest(m),
                LlmRefusal::TooLarge => llm::LlmError::TooLarge,
                LlmRefusal::QuotaExceeded => llm::LlmError::QuotaExceeded,
            }))
    }

    fn cancel(&mut self, id: u64) -> wasmtime::Result<()> {
        HostState::cancel_generation(self, id)
    }
}

impl http::Host for HostState {
    fn fetch(
        &mut self,
        request: http::FetchRequest,
    ) -> wasmtime::Result<Result<u64, http::HttpError>> {
        let request = FetchRequest {
            method: match request.method {
                http::Method::Get => HttpMethod::Get,
                http::Method::Post => HttpMethod::Post,
                http::Method::Put => HttpMethod::Put,
                http::Method::Patch => HttpMethod::Patch,
                http::Method::Delete => HttpMethod::Delete,
            },
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        };
        Ok(
            HostState::fetch(self, request)?.map_err(|refusal| match refusal {
                FetchRefusal::InvalidUrl(m) => http::HttpError::InvalidUrl(m),
                FetchRefusal::TooLarge => http::HttpError::TooLarge,
                FetchRefusal::QuotaExceeded => http::HttpError::QuotaExceeded,
            }),
        )
    }
}

fn tool_call_from_wit(c: types::ToolCall) -> ToolCall {
    ToolCall {
        id: c.id,
        name: c.name,
        arguments_json: c.arguments_json,
    }
}

fn tool_call_to_wit(c: ToolCall) -> types::ToolCall {
    types::ToolCall {
        id: c.id,
        name: c.name,
        arguments_json: c.arguments_json,
    }
}

fn llm_request_from_wit(r: llm::GenerateRequest) -> LlmRequest {
    LlmRequest {
        messages: r
            .messages
            .into_iter()
            .map(|m| LlmMessage {
                role: match m.role {
                    llm::Role::System => LlmRole::System,
                    llm::Role::User => LlmRole::User,
                    llm::Role::Assistant => LlmRole::Assistant,
                    llm::Role::Tool => LlmRole::Tool,
                },
                content: m.content,
                tool_calls: m.tool_calls.into_iter().map(tool_call_from_wit).collect(),
                tool_call_id: m.tool_call_id,
            })
            .collect(),
        tools: r
            .tools
            .into_iter()
            .map(|t| LlmTool {
                name: t.name,
                description: t.description,
                parameters_json: t.parameters_json,
            })
            .collect(),
        temperature: r.temperature,
        max_tokens: r.max_tokens,
        speak: r.speak,
        interruptible: r.interruptible,
    }
}

/// The event as a 0.2.0 plugin sees it (every event exists in 0.2.0).
pub(crate) fn event_to_wit(event: Event) -> types::Event {
    match event {
        Event::CallStarted(ctx) => types::Event::CallStarted(caller_context_to_wit(ctx)),
        Event::Dtmf(key) => types::Event::Dtmf(key.to_string()),
        Event::SpeechStarted { media_ms } => types::Event::SpeechStarted(media_ms),
        Event::SpeechStopped { duration_ms } => types::Event::SpeechStopped(duration_ms),
        Event::TranscriptPartial(u) => types::Event::TranscriptPartial(utterance_to_wit(u)),
        Event::TranscriptFinal(u) => types::Event::TranscriptFinal(utterance_to_wit(u)),
        Event::SilenceTimeout(ms) => types::Event::SilenceTimeout(ms),
        Event::BargeIn(i) => types::Event::BargeIn(types::Interruption {
            playback: i.playback,
            heard_ms: i.heard_ms,
            heard_text: i.heard_text,
        }),
        Event::PlaybackFinished(id) => types::Event::PlaybackFinished(id),
        Event::TimerFired(tag) => types::Event::TimerFired(tag),
        Event::GenerationFinished { id, outcome } => {
            types::Event::GenerationFinished(types::GenerationResult {
                id,
                outcome: match outcome {
                    GenerationOutcome::Completed(g) => {
                        types::GenerationOutcome::Completed(types::Generation {
                            text: g.text,
                            tool_calls: g.tool_calls.into_iter().map(tool_call_to_wit).collect(),
                            prompt_tokens: g.prompt_tokens,
                            completion_tokens: g.completion_tokens,
                        })
                    }
                    GenerationOutcome::Cancelled => types::GenerationOutcome::Cancelled,
                    GenerationOutcome::Failed(m) => types::GenerationOutcome::Failed(m),
                },
            })
        }
        Event::FetchFinished { id, outcome } => types::Event::FetchFinished(types::FetchResult {
            id,
            outcome: match outcome {
                FetchOutcome::Response(r) => types::FetchOutcome::Response(types::FetchResponse {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                }),
                FetchOutcome::Failed(m) => types::FetchOutcome::Failed(m),
            },
        }),
        Event::CallEnded(reason) => types::Event::CallEnded(match reason {
            EndReason::CallerHangup => types::EndReason::CallerHangup,
            EndReason::PluginHangup => types::EndReason::PluginHangup,
            EndReason::MediaTimeout => types::EndReason::MediaTimeout,
            EndReason::PluginFailure => types::EndReason::PluginFailure,
            EndReason::HostShutdown => types::EndReason::HostShutdown,
            EndReason::NoAck => types::EndReason::NoAck,
            EndReason::MaxDuration => types::EndReason::MaxDuration,
        }),
    }
}

fn past_call_to_wit(call: PastCall) -> types::PastCall {
    types::PastCall {
        call_id: call.call_id,
        started_at_unix_ms: call.started_at_unix_ms,
        duration_secs: call.duration_secs,
        summary: call.summary,
        extractions: call
            .extractions
            .into_iter()
            .map(|e: PastExtraction| types::PastExtraction {
                schema_id: e.schema_id,
                data_json: e.data_json,
            })
            .collect(),
    }
}

fn caller_context_to_wit(ctx: CallerContext) -> types::CallerContext {
    types::CallerContext {
        call_id: ctx.call_id,
        tenant_id: ctx.tenant_id,
        direction: match ctx.direction {
            Direction::Inbound => types::Direction::Inbound,
            Direction::Outbound => types::Direction::Outbound,
        },
        caller: ctx.caller,
        dialled: ctx.dialled,
        caller_name: ctx.caller_name,
        memory_json: ctx.memory_json,
        previous_calls: ctx.previous_calls,
        recent_calls: ctx
            .recent_calls
            .into_iter()
            .take(MAX_RECENT_CALLS)
            .map(past_call_to_wit)
            .collect(),
        config_json: ctx.config_json,
        started_at_unix_ms: ctx.started_at_unix_ms,
        llm_available: ctx.llm_available,
        external_id: ctx.external_id,
        sip_headers: ctx.sip_headers,
    }
}

/// Most recent calls handed to a plugin (the WIT documents "at most 5").
const MAX_RECENT_CALLS: usize = 5;

fn utterance_to_wit(u: Utterance) -> types::Utterance {
    types::Utterance {
        text: u.text,
        confidence: u.confidence,
        start_ms: u.start_ms,
        end_ms: u.end_ms,
    }
}
