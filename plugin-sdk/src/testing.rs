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
use crate::types::{
    CallerContext, EndReason, Event, ExtractionError, KvError, LogLevel, PlaybackId, SayOptions,
    TimerId, Utterance,
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
}

/// Records what a plugin asks for and answers like the real host would.
#[derive(Debug, Default)]
pub struct MockHost {
    actions: Vec<MockAction>,
    next_playback: u64,
    next_timer: u64,
    active_timers: BTreeMap<u64, String>,
    declared_schemas: BTreeSet<String>,
    kv: BTreeMap<String, Vec<u8>>,
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

    /// Delivers any event.
    pub fn send(&mut self, event: Event) -> Result {
        let mut call = Call::__new(&mut self.host);
        dispatch(&mut self.plugin, &mut call, event)
    }

    /// `call-started` with [`default_context`](Self::default_context).
    pub fn start(&mut self) -> Result {
        self.send(Event::CallStarted(Self::default_context()))
    }

    /// `call-started` with the given context.
    pub fn start_with(&mut self, ctx: CallerContext) -> Result {
        self.send(Event::CallStarted(ctx))
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
