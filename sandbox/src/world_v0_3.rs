//! Host side of `vaani:agent@0.3.0`: bindings, the imports of 0.2.0 plus the
//! 0.3.0 `call` functions (`transfer`, `send-dtmf`), and the internal event
//! model (which is the 0.3.0 model) converted to the generated types.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/0.3.0",
    world: "agent",
    imports: { default: trappable },
    exports: { default: async },
});

use self::vaani::agent::{call, extraction, http, kv, llm, log, timers, types};
use crate::event::{EndReason, Event, ExpectedInput, TransferFailure, TransferMode};
use crate::state::{HostState, impl_shared_imports};
use crate::world_v0_2::impl_v0_2_imports;

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

    fn transfer(
        &mut self,
        target: String,
        options: call::TransferOptions,
    ) -> wasmtime::Result<Result<(), String>> {
        let mode = match options.mode {
            call::TransferMode::Blind => TransferMode::Blind,
            call::TransferMode::Bridged => TransferMode::Bridged,
        };
        HostState::transfer(self, target, mode, options.summary)
    }

    fn send_dtmf(&mut self, digits: String) -> wasmtime::Result<Result<(), String>> {
        HostState::send_dtmf(self, digits)
    }
}

impl_v0_2_imports!();

/// The event as a 0.3.0 plugin sees it (every event exists in 0.3.0).
pub(crate) fn event_to_wit(event: Event) -> types::Event {
    match event {
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
        Event::TransferFailed(TransferFailure {
            target,
            status,
            reason,
        }) => types::Event::TransferFailed(types::TransferFailure {
            target,
            status,
            reason,
        }),
        Event::CallEnded(reason) => types::Event::CallEnded(match reason {
            EndReason::CallerHangup => types::EndReason::CallerHangup,
            EndReason::PluginHangup => types::EndReason::PluginHangup,
            EndReason::MediaTimeout => types::EndReason::MediaTimeout,
            EndReason::PluginFailure => types::EndReason::PluginFailure,
            EndReason::HostShutdown => types::EndReason::HostShutdown,
            EndReason::NoAck => types::EndReason::NoAck,
            EndReason::MaxDuration => types::EndReason::MaxDuration,
            EndReason::Transferred => types::EndReason::Transferred,
        }),
    }
}
