//! The `Plugin` trait and the event fan-out.

use crate::call::Call;
use crate::error::Result;
use crate::requests::{FetchResult, GenerationResult};
use crate::transfer::TransferFailure;
use crate::types::{
    CallerContext, EndReason, Event, Interruption, PlaybackId, PluginInfo, Schema, Utterance,
};

/// A vaani plugin: the conversation logic of one tenant's phone agent.
///
/// The host creates one instance per call (with `Default`), delivers the call's
/// events in order, and drops it when the call ends. Every method has a default
/// that does nothing, so implement only what the plugin needs. Returning an
/// `Err` is logged and the call continues; a panic ends the plugin for the call.
#[allow(unused_variables)]
pub trait Plugin: Default + 'static {
    /// Plugin name reported by `describe()`.
    fn name() -> &'static str {
        "unnamed-plugin"
    }

    /// Plugin version reported by `describe()`.
    fn version() -> &'static str {
        "0.0.0"
    }

    /// Extraction schemas the plugin may submit data against.
    fn schemas() -> Vec<Schema> {
        Vec::new()
    }

    /// Everything `describe()` reports; by default built from
    /// [`name`](Self::name), [`version`](Self::version) and [`schemas`](Self::schemas).
    fn info() -> PluginInfo {
        PluginInfo {
            name: Self::name().to_string(),
            version: Self::version().to_string(),
            schemas: Self::schemas(),
        }
    }

    /// The call was answered.
    fn on_call_started(&mut self, call: &mut Call, ctx: &CallerContext) -> Result {
        Ok(())
    }

    /// The caller pressed a key (0-9 * # A-D).
    fn on_dtmf(&mut self, call: &mut Call, digit: char) -> Result {
        Ok(())
    }

    /// The caller started speaking (voice activity), at `media_ms` from call start.
    fn on_speech_started(&mut self, call: &mut Call, media_ms: u32) -> Result {
        Ok(())
    }

    /// The caller stopped speaking after `duration_ms` of speech.
    fn on_speech_stopped(&mut self, call: &mut Call, duration_ms: u32) -> Result {
        Ok(())
    }

    /// A transcript arrived; `is_final` is false for interim results.
    fn on_transcript(&mut self, call: &mut Call, utterance: &Utterance, is_final: bool) -> Result {
        Ok(())
    }

    /// No speech or key for `silence_ms` after the agent finished speaking.
    fn on_silence(&mut self, call: &mut Call, silence_ms: u32) -> Result {
        Ok(())
    }

    /// The caller spoke over a playback and the host stopped it; the
    /// interruption says which and how much of it the caller heard.
    fn on_barge_in(&mut self, call: &mut Call, interruption: &Interruption) -> Result {
        Ok(())
    }

    /// `playback` played to the end.
    fn on_playback_finished(&mut self, call: &mut Call, playback: PlaybackId) -> Result {
        Ok(())
    }

    /// A timer set with [`Call::set_timer`] fired.
    fn on_timer(&mut self, call: &mut Call, tag: &str) -> Result {
        Ok(())
    }

    /// A generation started with [`Call::generate`] finished (completed,
    /// cancelled or failed).
    fn on_generation(&mut self, call: &mut Call, result: &GenerationResult) -> Result {
        Ok(())
    }

    /// A request started with [`Call::fetch`] finished.
    fn on_fetch(&mut self, call: &mut Call, result: &FetchResult) -> Result {
        Ok(())
    }

    /// A transfer asked for with [`Call::transfer`] did not happen (the tenant
    /// does not allow the target, it was busy, declined or unanswered); the call
    /// goes on and another transfer may be asked for.
    fn on_transfer_failed(&mut self, call: &mut Call, failure: &TransferFailure) -> Result {
        Ok(())
    }

    /// The call ended; the last event the plugin sees.
    fn on_call_ended(&mut self, call: &mut Call, reason: EndReason) -> Result {
        Ok(())
    }
}

/// Routes one event to the matching [`Plugin`] method.
pub(crate) fn dispatch<P: Plugin>(plugin: &mut P, call: &mut Call, event: Event) -> Result {
    match event {
        Event::CallStarted(ctx) => plugin.on_call_started(call, &ctx),
        Event::Dtmf(digit) => plugin.on_dtmf(call, digit),
        Event::SpeechStarted { media_ms } => plugin.on_speech_started(call, media_ms),
        Event::SpeechStopped { duration_ms } => plugin.on_speech_stopped(call, duration_ms),
        Event::TranscriptPartial(u) => plugin.on_transcript(call, &u, false),
        Event::TranscriptFinal(u) => plugin.on_transcript(call, &u, true),
        Event::SilenceTimeout(ms) => plugin.on_silence(call, ms),
        Event::BargeIn(interruption) => plugin.on_barge_in(call, &interruption),
        Event::PlaybackFinished(id) => plugin.on_playback_finished(call, id),
        Event::TimerFired(tag) => plugin.on_timer(call, &tag),
        Event::GenerationFinished(result) => plugin.on_generation(call, &result),
        Event::FetchFinished(result) => plugin.on_fetch(call, &result),
        Event::TransferFailed(failure) => plugin.on_transfer_failed(call, &failure),
        Event::CallEnded(reason) => plugin.on_call_ended(call, reason),
    }
}
