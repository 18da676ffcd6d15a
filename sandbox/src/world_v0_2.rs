//! Host side of `vaani:agent@0.2.0`: bindings, the shared imports plus `llm`,
//! `http` and the 0.2.0 `call` functions, and the internal event model mapped
//! down to what 0.2.0 plugins understand.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/0.2.0",
    world: "agent",
    imports: { default: trappable },
    exports: { default: async },
});

use self::vaani::agent::{call, extraction, http, kv, llm, log, timers, types};
use crate::event::{EndReason, Event, ExpectedInput};
use crate::state::{HostState, impl_shared_imports};

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

impl_v0_2_imports!();

/// The event as a 0.2.0 plugin sees it, or `None` for `transfer-failed`, which
/// 0.2.0 cannot express and such a plugin cannot have caused (it has no
/// `call.transfer`). `transferred` becomes `caller-hangup` (see
/// [`EndReason::Transferred`]).
pub(crate) fn event_to_wit(event: Event) -> Option<types::Event> {
    Some(match event {
        Event::CallStarted(ctx) => types::Event::CallStarted(caller_context_to_wit(ctx)),
        Event::Dtmf(key) => types::Event::Dtmf(key.to_string()),
        Event::SpeechStarted { media_ms } => types::Event::SpeechStarted(media_ms),
        Event::SpeechStopped { duration_ms } => types::Event::SpeechStopped(duration_ms),
        Event::TranscriptPartial(u) => types::Event::TranscriptPartial(utterance_to_wit(u)),
        Event::TranscriptFinal(u) => types::Event::TranscriptFinal(utterance_to_wit(u)),
        Event::SilenceTimeout(ms) => types::Event::SilenceTimeout(ms),
        Event::BargeIn(i) => types::Event::BargeIn(interruption_to_wit(i)),
        Event::PlaybackFinished(id) => types::Event::PlaybackFinished(id),
        Event::TimerFired(tag) => types::Event::TimerFired(tag),
        Event::GenerationFinished { id, outcome } => {
            types::Event::GenerationFinished(generation_result_to_wit(id, outcome))
        }
        Event::FetchFinished { id, outcome } => {
            types::Event::FetchFinished(fetch_result_to_wit(id, outcome))
        }
        Event::TransferFailed(_) => return None,
        Event::CallEnded(reason) => types::Event::CallEnded(match reason {
            EndReason::CallerHangup | EndReason::Transferred => types::EndReason::CallerHangup,
            EndReason::PluginHangup => types::EndReason::PluginHangup,
            EndReason::MediaTimeout => types::EndReason::MediaTimeout,
            EndReason::PluginFailure => types::EndReason::PluginFailure,
            EndReason::HostShutdown => types::EndReason::HostShutdown,
            EndReason::NoAck => types::EndReason::NoAck,
            EndReason::MaxDuration => types::EndReason::MaxDuration,
        }),
    })
}

/// Most recent calls handed to a plugin (the WIT documents "at most 5").
pub(crate) const MAX_RECENT_CALLS: usize = 5;

/// Implements what 0.2.0 added and later versions keep unchanged, for
/// [`HostState`]: the `llm` and `http` imports, and conversions of the event
/// payloads 0.2.0 defined (caller context with recent calls, utterance,
/// barge-in, generation and fetch results). Invoked inside a `world_v0_*`
/// module of 0.2.0 or later, where `types`, `llm` and `http` name that
/// version's generated interface modules.
macro_rules! impl_v0_2_imports {
    () => {
        impl llm::Host for HostState {
            fn generate(
                &mut self,
                request: llm::GenerateRequest,
            ) -> wasmtime::Result<Result<llm::GenerationHandle, llm::LlmError>> {
                use crate::state::LlmRefusal;
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
                use crate::event::{FetchRequest, HttpMethod};
                use crate::state::FetchRefusal;
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

        fn tool_call_from_wit(c: types::ToolCall) -> crate::event::ToolCall {
            crate::event::ToolCall {
                id: c.id,
                name: c.name,
                arguments_json: c.arguments_json,
            }
        }

        fn tool_call_to_wit(c: crate::event::ToolCall) -> types::ToolCall {
            types::ToolCall {
                id: c.id,
                name: c.name,
                arguments_json: c.arguments_json,
            }
        }

        fn llm_request_from_wit(r: llm::GenerateRequest) -> crate::event::LlmRequest {
            use crate::event::{LlmMessage, LlmRequest, LlmRole, LlmTool};
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

        fn interruption_to_wit(i: crate::event::Interruption) -> types::Interruption {
            types::Interruption {
                playback: i.playback,
                heard_ms: i.heard_ms,
                heard_text: i.heard_text,
            }
        }

        fn generation_result_to_wit(
            id: u64,
            outcome: crate::event::GenerationOutcome,
        ) -> types::GenerationResult {
            use crate::event::GenerationOutcome;
            types::GenerationResult {
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
            }
        }

        fn fetch_result_to_wit(id: u64, outcome: crate::event::FetchOutcome) -> types::FetchResult {
            use crate::event::FetchOutcome;
            types::FetchResult {
                id,
                outcome: match outcome {
                    FetchOutcome::Response(r) => {
                        types::FetchOutcome::Response(types::FetchResponse {
                            status: r.status,
                            headers: r.headers,
                            body: r.body,
                        })
                    }
                    FetchOutcome::Failed(m) => types::FetchOutcome::Failed(m),
                },
            }
        }

        fn past_call_to_wit(call: crate::event::PastCall) -> types::PastCall {
            types::PastCall {
                call_id: call.call_id,
                started_at_unix_ms: call.started_at_unix_ms,
                duration_secs: call.duration_secs,
                summary: call.summary,
                extractions: call
                    .extractions
                    .into_iter()
                    .map(|e| types::PastExtraction {
                        schema_id: e.schema_id,
                        data_json: e.data_json,
                    })
                    .collect(),
            }
        }

        fn caller_context_to_wit(ctx: crate::event::CallerContext) -> types::CallerContext {
            use crate::event::Direction;
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
                    .take(crate::world_v0_2::MAX_RECENT_CALLS)
                    .map(past_call_to_wit)
                    .collect(),
                config_json: ctx.config_json,
                started_at_unix_ms: ctx.started_at_unix_ms,
                llm_available: ctx.llm_available,
                external_id: ctx.external_id,
                sip_headers: ctx.sip_headers,
            }
        }

        fn utterance_to_wit(u: crate::event::Utterance) -> types::Utterance {
            types::Utterance {
                text: u.text,
                confidence: u.confidence,
                start_ms: u.start_ms,
                end_ms: u.end_ms,
            }
        }
    };
}

pub(crate) use impl_v0_2_imports;
