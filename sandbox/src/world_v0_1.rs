//! Host side of `vaani:agent@0.1.0`: bindings, the shared imports, and the
//! internal event model mapped down to what 0.1.0 plugins understand.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/0.1.0",
    world: "agent",
    imports: { default: trappable },
    exports: { default: async },
});

use self::vaani::agent::{call, extraction, kv, log, timers, types};
use crate::event::{CallerContext, Direction, EndReason, Event, Utterance};
use crate::state::{HostState, impl_shared_imports};

impl_shared_imports!();

/// The event as a 0.1.0 plugin sees it, or `None` for events that 0.1.0 has
/// no way to express and that such a plugin cannot have caused
/// (`generation-finished`, `fetch-finished`, `transfer-failed`). Barge-in keeps
/// only the playback id; `max-duration` becomes `host-shutdown` and
/// `transferred` becomes `caller-hangup` (see [`EndReason::Transferred`]);
/// recent calls and the LLM flag are dropped from the caller context.
pub(crate) fn event_to_wit(event: Event) -> Option<types::Event> {
    Some(match event {
        Event::CallStarted(ctx) => types::Event::CallStarted(caller_context_to_wit(ctx)),
        Event::Dtmf(key) => types::Event::Dtmf(key.to_string()),
        Event::SpeechStarted { media_ms } => types::Event::SpeechStarted(media_ms),
        Event::SpeechStopped { duration_ms } => types::Event::SpeechStopped(duration_ms),
        Event::TranscriptPartial(u) => types::Event::TranscriptPartial(utterance_to_wit(u)),
        Event::TranscriptFinal(u) => types::Event::TranscriptFinal(utterance_to_wit(u)),
        Event::SilenceTimeout(ms) => types::Event::SilenceTimeout(ms),
        Event::BargeIn(interruption) => types::Event::BargeIn(interruption.playback),
        Event::PlaybackFinished(id) => types::Event::PlaybackFinished(id),
        Event::TimerFired(tag) => types::Event::TimerFired(tag),
        Event::GenerationFinished { .. }
        | Event::FetchFinished { .. }
        | Event::TransferFailed(_) => return None,
        Event::CallEnded(reason) => types::Event::CallEnded(match reason {
            EndReason::CallerHangup | EndReason::Transferred => types::EndReason::CallerHangup,
            EndReason::PluginHangup => types::EndReason::PluginHangup,
            EndReason::MediaTimeout => types::EndReason::MediaTimeout,
            EndReason::PluginFailure => types::EndReason::PluginFailure,
            EndReason::HostShutdown | EndReason::MaxDuration => types::EndReason::HostShutdown,
            EndReason::NoAck => types::EndReason::NoAck,
        }),
    })
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
        config_json: ctx.config_json,
        started_at_unix_ms: ctx.started_at_unix_ms,
    }
}

fn utterance_to_wit(u: Utterance) -> types::Utterance {
    types::Utterance {
        text: u.text,
        confidence: u.confidence,
        start_ms: u.start_ms,
        end_ms: u.end_ms,
    }
}
