//! WASM plugin host for vaani.
//!
//! Tenants upload plugins as WebAssembly components of the `vaani:agent` world
//! (see `plugin-sdk/wit/agent.wit`). The server creates one [`PluginHost`] per
//! process, [`load`](PluginHost::load)s each uploaded component once (compiled,
//! linked against a lean import set, described, cached by content hash), and for
//! every call [`instantiate`](PluginHost::instantiate)s a fresh
//! [`PluginInstance`] that turns call [`Event`]s into [`Action`]s under
//! per-tenant [`PluginLimits`].
//!
//! Isolation: pooling allocator with a 32 MiB memory cap, 256 KiB wasm stack,
//! epoch interruption with per-tick yields (a looping plugin cannot stall other
//! calls on the same runtime), fuel per event, hostcall data caps, per-call
//! quotas, and no WASI capabilities beyond cli/io/clocks/random (no filesystem,
//! sockets, http or environment).

mod bindings;
mod config;
mod error;
mod event;
mod extraction;
mod host;
mod instance;
mod kv;
mod state;
mod stdio;

pub use config::{
    HostConfig, MAX_ACTIONS_PER_EVENT, MAX_COMPONENT_BYTES, MAX_EXTRACTION_BYTES, MAX_KV_KEY_BYTES,
    MAX_KV_VALUE_BYTES, MAX_LOG_MESSAGE_BYTES, MAX_MEMORY_JSON_BYTES, POOL_MAX_MEMORY_BYTES,
    PluginLimits, TIMER_RANGE_MS,
};
pub use error::{FailureKind, LoadError, PluginFailure, SandboxError};
pub use event::{Action, CallerContext, Direction, EndReason, Event, LogLevel, Utterance};
pub use extraction::{
    ExtractionRejection, ExtractionSchemas, MAX_JSON_DEPTH, MAX_VIOLATIONS, SchemaInfo, Violation,
};
pub use host::{
    CacheStats, LoadedPlugin, PluginHost, PluginInfo, SUPPORTED_WORLD_VERSIONS,
    WORLD_VERSION_SECTION,
};
pub use instance::{InstanceStats, PluginInstance};
pub use kv::{KvError, KvStore, MemoryKv, MemoryKvLimits};
