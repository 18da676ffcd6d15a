//! WASM plugin host for vaani.
//!
//! Tenants upload plugins as WebAssembly components of the `vaani:agent` world
//! (`plugin-sdk/wit/0.3.0/agent.wit`; components of `0.1.0` and `0.2.0` are
//! still served, with events mapped down to what their version can express:
//! events it has no variant for are not delivered, end reasons it lacks become
//! the nearest one it has). The server creates one [`PluginHost`] per
//! process, [`load`](PluginHost::load)s each uploaded component once (compiled,
//! linked against a lean import set, described, cached by content hash), and for
//! every call [`instantiate`](PluginHost::instantiate)s a fresh
//! [`PluginInstance`] that turns call [`Event`]s into [`Action`]s under
//! per-tenant [`PluginLimits`].
//!
//! Uploads are compiled out of process: a child with resource limits runs
//! [`PluginHost::precompile`] on a [`HostConfig::compile_only`] host (size,
//! binary-component, world, link, `describe()` and schema checks, then the
//! serialized native artifact), and the server loads the result with
//! [`PluginHost::load_precompiled`] (no code generation).
//!
//! Isolation: pooling allocator with a 32 MiB memory cap, 256 KiB wasm stack,
//! epoch interruption with per-tick yields (a looping plugin cannot stall other
//! calls on the same runtime), fuel per event, hostcall data caps, per-call
//! quotas, and no WASI capabilities beyond cli/io/clocks/random (no filesystem,
//! sockets, http or environment).

mod config;
mod error;
mod event;
mod extraction;
mod host;
mod instance;
mod kv;
mod state;
mod stdio;
mod world;
mod world_v0_1;
mod world_v0_2;
mod world_v0_3;

pub use config::{
    HostConfig, InstanceAllocation, MAX_ACTIONS_PER_EVENT, MAX_COMPONENT_BYTES, MAX_DTMF_DIGITS,
    MAX_EXTRACTION_BYTES, MAX_FETCH_BODY_BYTES, MAX_FETCH_URL_BYTES, MAX_KV_KEY_BYTES,
    MAX_KV_VALUE_BYTES, MAX_LLM_REQUEST_BYTES, MAX_LOG_MESSAGE_BYTES, MAX_MEMORY_JSON_BYTES,
    MAX_SUMMARY_BYTES, MAX_TRANSFER_SUMMARY_BYTES, MAX_TRANSFER_TARGET_BYTES,
    POOL_MAX_MEMORY_BYTES, PluginLimits, TIMER_RANGE_MS,
};
pub use error::{FailureKind, LoadError, PluginFailure, SandboxError};
pub use event::{
    Action, CallerContext, Direction, EndReason, Event, ExpectedInput, FetchOutcome, FetchRequest,
    FetchResponse, Generation, GenerationOutcome, HttpMethod, Interruption, LlmMessage, LlmRequest,
    LlmRole, LlmTool, LogLevel, PastCall, PastExtraction, ToolCall, TransferFailure, TransferMode,
    Utterance,
};
pub use extraction::{
    ExtractionRejection, ExtractionSchemas, MAX_JSON_DEPTH, MAX_VIOLATIONS, SchemaInfo, Violation,
};
pub use host::{
    ArtifactManifest, CacheStats, LoadedPlugin, PluginHost, PluginInfo, PrecompiledPlugin,
    SUPPORTED_WORLD_VERSIONS, WORLD_VERSION_SECTION,
};
pub use instance::{InstanceStats, PluginInstance};
pub use kv::{KvError, KvStore, MemoryKv, MemoryKvLimits};
