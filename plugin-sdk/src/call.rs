//! The `Call` handle: everything a plugin can ask the host to do on its call.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::requests::{
    FetchId, FetchRequest, GenerationHandle, GenerationId, HttpError, LlmError, LlmRequest,
};
use crate::transfer::TransferOptions;
use crate::types::{
    ExpectedInput, ExtractionError, KvError, LogLevel, PlaybackId, SayOptions, Sentiment, TimerId,
};

/// The host side of the contract as the SDK sees it. On wasm it is the real
/// host (the WIT imports); on native targets it is [`crate::testing::MockHost`].
#[doc(hidden)]
pub trait HostApi {
    fn say(&mut self, text: &str, options: &SayOptions) -> Result<u64, String>;
    fn play_asset(&mut self, asset_id: &str, interruptible: bool) -> Result<u64, String>;
    fn stop_playback(&mut self, id: Option<u64>);
    fn hangup(&mut self, reason: Option<&str>);
    fn set_memory(&mut self, memory_json: &str) -> Result<(), String>;
    fn set_caller_name(&mut self, name: &str) -> Result<(), String>;
    fn submit_extraction(
        &mut self,
        schema_id: &str,
        data_json: &str,
    ) -> Result<(), ExtractionError>;
    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn kv_delete(&mut self, key: &str) -> Result<(), KvError>;
    fn log(&mut self, level: LogLevel, message: &str);
    fn set_timer(&mut self, after_ms: u32, tag: &str) -> Result<u64, String>;
    fn cancel_timer(&mut self, id: u64);
    fn generate(&mut self, request: &LlmRequest) -> Result<(u64, Option<u64>), LlmError>;
    fn cancel_generation(&mut self, id: u64);
    fn fetch(&mut self, request: &FetchRequest) -> Result<u64, HttpError>;
    fn expect_input(&mut self, kind: ExpectedInput);
    fn set_summary(&mut self, summary: &str, sentiment: Option<&str>) -> Result<(), String>;
    fn transfer(&mut self, target: &str, options: &TransferOptions) -> Result<(), String>;
    fn send_dtmf(&mut self, digits: &str) -> Result<(), String>;
}

/// Handle to the current call, passed to every [`Plugin`](crate::Plugin) event
/// method. Every method queues work and returns at once; completion comes back
/// later as an event (playback finished, barge-in, timer fired, transfer failed,
/// call ended).
pub struct Call<'h> {
    host: &'h mut dyn HostApi,
}

impl<'h> Call<'h> {
    #[doc(hidden)]
    pub fn __new(host: &'h mut dyn HostApi) -> Self {
        Call { host }
    }

    /// Speaks `text` with default options (interruptible, tenant default voice).
    pub fn say(&mut self, text: impl AsRef<str>) -> Result<PlaybackId> {
        self.say_with(text, SayOptions::default())
    }

    /// Speaks `text` with explicit voice, language and interruptibility.
    pub fn say_with(&mut self, text: impl AsRef<str>, options: SayOptions) -> Result<PlaybackId> {
        self.host
            .say(text.as_ref(), &options)
            .map(PlaybackId)
            .map_err(Error::internal)
    }

    /// Plays a tenant-uploaded audio asset by id.
    pub fn play_asset(&mut self, asset_id: &str, interruptible: bool) -> Result<PlaybackId> {
        self.host
            .play_asset(asset_id, interruptible)
            .map(PlaybackId)
            .map_err(Error::internal)
    }

    /// Stops one playback, or everything queued when `id` is `None`.
    pub fn stop_playback(&mut self, id: Option<PlaybackId>) {
        self.host.stop_playback(id.map(|p| p.0));
    }

    /// Ends the call once queued playback has finished.
    pub fn hangup(&mut self) {
        self.host.hangup(None);
    }

    /// Ends the call, recording why.
    pub fn hangup_with_reason(&mut self, reason: &str) {
        self.host.hangup(Some(reason));
    }

    /// Replaces the caller memory the host saves when the call ends (≤ 16 KiB of JSON).
    /// It comes back in [`CallerContext::memory_json`](crate::CallerContext) on the
    /// caller's next call.
    pub fn set_memory(&mut self, memory: &impl Serialize) -> Result {
        let json = serde_json::to_string(memory)?;
        self.host.set_memory(&json).map_err(Error::internal)
    }

    /// Remembers the caller's name with their profile.
    pub fn set_caller_name(&mut self, name: &str) -> Result {
        self.host.set_caller_name(name).map_err(Error::internal)
    }

    /// Submits a structured record against a schema declared in
    /// [`Plugin::schemas`](crate::Plugin::schemas). The host validates it and
    /// returns the violations if it does not match.
    pub fn extract(
        &mut self,
        schema_id: &str,
        data: &impl Serialize,
    ) -> Result<(), ExtractionError> {
        let json =
            serde_json::to_string(data).map_err(|e| ExtractionError::InvalidJson(e.to_string()))?;
        self.host.submit_extraction(schema_id, &json)
    }

    /// Reads a value from the tenant's key-value store.
    pub fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.host.kv_get(key)
    }

    /// Writes a value to the tenant's key-value store.
    pub fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.host.kv_set(key, value)
    }

    /// Deletes a key from the tenant's key-value store.
    pub fn kv_delete(&mut self, key: &str) -> Result<(), KvError> {
        self.host.kv_delete(key)
    }

    /// Sets a one-shot timer; `on_timer(tag)` runs when it fires. Durations above
    /// `u32::MAX` ms are clamped (the host enforces its own maximum).
    pub fn set_timer(&mut self, after: Duration, tag: &str) -> Result<TimerId> {
        let after_ms = u32::try_from(after.as_millis()).unwrap_or(u32::MAX);
        self.host
            .set_timer(after_ms, tag)
            .map(TimerId)
            .map_err(Error::internal)
    }

    /// Cancels a timer; cancelling one that already fired does nothing.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.host.cancel_timer(id.0);
    }

    /// Writes a log line stored with the call.
    pub fn log(&mut self, level: LogLevel, message: impl AsRef<str>) {
        self.host.log(level, message.as_ref());
    }

    /// Starts a chat completion with the tenant's model. The result arrives in
    /// [`Plugin::on_generation`](crate::Plugin::on_generation); a spoken request
    /// (`speak(true)`) is also spoken as it streams, as the returned playback.
    pub fn generate(&mut self, request: &LlmRequest) -> Result<GenerationHandle, LlmError> {
        self.host
            .generate(request)
            .map(|(id, playback)| GenerationHandle {
                id: GenerationId(id),
                playback: playback.map(PlaybackId),
            })
    }

    /// Cancels a generation (and its speech); `on_generation` follows with
    /// `Cancelled` unless it already finished.
    pub fn cancel_generation(&mut self, id: GenerationId) {
        self.host.cancel_generation(id.0);
    }

    /// Starts an HTTP request; the result (or the tenant policy's refusal)
    /// arrives in [`Plugin::on_fetch`](crate::Plugin::on_fetch).
    pub fn fetch(&mut self, request: &FetchRequest) -> Result<FetchId, HttpError> {
        self.host.fetch(request).map(FetchId)
    }

    /// Says what input comes next, until called again (turn-taking waits
    /// longer for digits and numbers).
    pub fn expect_input(&mut self, kind: ExpectedInput) {
        self.host.expect_input(kind);
    }

    /// Sets the summary (≤ 2 KiB) and sentiment stored with the call; it comes
    /// back in [`PastCall::summary`](crate::PastCall) on the caller's next calls.
    pub fn set_summary(&mut self, summary: &str, sentiment: Option<Sentiment>) -> Result {
        self.host
            .set_summary(summary, sentiment.map(Sentiment::as_str))
            .map_err(Error::internal)
    }

    /// Hands the caller over to `target`: a name from the tenant's configured
    /// transfer targets (e.g. `"frontdesk"`) or one of their URIs (`sip:`,
    /// `sips:`, `tel:`).
    ///
    /// Returns at once. An error means the host refused the request itself: a
    /// target that is empty, longer than 256 bytes or holds whitespace or
    /// control characters, a summary on a blind transfer or one that is blank
    /// or over 2 KiB, or another transfer of this call still pending. Whether the
    /// tenant allows the target is decided afterwards: a refusal, like a busy or
    /// declined target, arrives in
    /// [`Plugin::on_transfer_failed`](crate::Plugin::on_transfer_failed) and the
    /// call goes on; a transfer that succeeds ends the call with
    /// [`EndReason::Transferred`](crate::EndReason::Transferred).
    pub fn transfer(&mut self, target: impl AsRef<str>, options: TransferOptions) -> Result {
        self.host
            .transfer(target.as_ref(), &options)
            .map_err(Error::internal)
    }

    /// Sends DTMF keys to the far end (e.g. to drive a phone menu): 1-32 of
    /// `0-9 * # A-D`, letters in either case (they are sent upper case).
    pub fn send_dtmf(&mut self, digits: impl AsRef<str>) -> Result {
        self.host
            .send_dtmf(digits.as_ref())
            .map_err(Error::internal)
    }
}
