//! Host-wide configuration and per-tenant plugin limits.

use std::time::Duration;

/// Process-wide plugin host settings (one [`PluginHost`](crate::PluginHost) per process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Size of the pooling allocator: the most plugin instances (calls) alive at once.
    pub max_instances: u32,
    /// Epoch tick; the granularity at which running plugins are time-sliced and
    /// their wall-clock budget is checked.
    pub epoch_tick: Duration,
    /// How instance memory is allocated.
    pub allocation: InstanceAllocation,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_instances: 1000,
            epoch_tick: Duration::from_millis(1),
            allocation: InstanceAllocation::Pooling,
        }
    }
}

impl HostConfig {
    /// The tenant-independent configuration of a process that only compiles and
    /// describes uploads (`vaani compile-plugin`): one instance at a time,
    /// allocated on demand. Its engine produces artifacts any pooling host loads:
    /// the allocation strategy is not part of the engine's compatibility hash.
    pub fn compile_only() -> HostConfig {
        HostConfig {
            max_instances: 1,
            allocation: InstanceAllocation::OnDemand,
            ..HostConfig::default()
        }
    }
}

/// How a host allocates instance memories, tables and stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceAllocation {
    /// Slots preallocated for [`HostConfig::max_instances`] instances: fast
    /// instantiation, but it reserves terabytes of address space up front
    /// (each memory slot is a 4 GiB reservation plus guards). For servers.
    #[default]
    Pooling,
    /// Each instance maps its memory when it is created. For a short-lived
    /// process under an address-space limit, such as the compile child.
    OnDemand,
}

/// Largest linear memory any plugin may have: the pooling allocator's slot size.
/// [`PluginLimits::memory_bytes`] above this is capped to it.
pub const POOL_MAX_MEMORY_BYTES: usize = 32 << 20;

/// Largest component accepted by [`PluginHost::load`](crate::PluginHost::load).
pub const MAX_COMPONENT_BYTES: usize = 10 << 20;

/// Largest JSON accepted by `extraction.submit`.
pub const MAX_EXTRACTION_BYTES: usize = 64 << 10;

/// Largest caller memory accepted by `call.set-memory`.
pub const MAX_MEMORY_JSON_BYTES: usize = 16 << 10;

/// Longest key-value key.
pub const MAX_KV_KEY_BYTES: usize = 256;

/// Largest key-value value.
pub const MAX_KV_VALUE_BYTES: usize = 64 << 10;

/// Longest single log message; longer ones are truncated.
pub const MAX_LOG_MESSAGE_BYTES: usize = 1024;

/// Largest `llm.generate` request: message, tool and schema bytes together.
pub const MAX_LLM_REQUEST_BYTES: usize = 64 << 10;

/// Largest `http.fetch` request body.
pub const MAX_FETCH_BODY_BYTES: usize = 64 << 10;

/// Longest `http.fetch` URL.
pub const MAX_FETCH_URL_BYTES: usize = 4 << 10;

/// Longest summary accepted by `call.set-summary`.
pub const MAX_SUMMARY_BYTES: usize = 2 << 10;

/// Longest `call.transfer` target (a transfer-target name or URI), in bytes.
pub const MAX_TRANSFER_TARGET_BYTES: usize = 256;

/// Longest summary `call.transfer` speaks to the person who answers a bridged transfer.
pub const MAX_TRANSFER_SUMMARY_BYTES: usize = 2 << 10;

/// Most keys one `call.send-dtmf` sends.
pub const MAX_DTMF_DIGITS: usize = 32;

/// Shortest and longest timer delay, in ms.
pub const TIMER_RANGE_MS: std::ops::RangeInclusive<u32> = 100..=600_000;

/// Most actions (says, stops, logs, …) one event may produce before the plugin is
/// stopped; guards against floods through imports that have no error type.
pub const MAX_ACTIONS_PER_EVENT: usize = 256;

/// Per-tenant sandbox limits for one plugin instance (one call). Defaults follow
/// DESIGN.md; tenants may lower them, only operator config raises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory cap (capped at [`POOL_MAX_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// Wall-clock budget for a real-time event (DTMF, transcript, speech, silence, …).
    pub event_budget: Duration,
    /// Wall-clock budget for `call-started`, `call-ended` and instantiation.
    pub lifecycle_budget: Duration,
    /// Fuel (≈ wasm instructions) per event: a deterministic CPU cap.
    pub fuel_per_event: u64,
    /// Most bytes the guest may pass to one host call (`Store::set_hostcall_fuel`).
    pub hostcall_fuel: usize,
    /// Most `say` + `play-asset` calls per call.
    pub max_says_per_call: u32,
    /// Longest `say` text, in bytes.
    pub max_say_bytes: usize,
    /// Most log bytes (including captured stdout/stderr) per call; past it the plugin traps.
    pub max_logs_bytes_per_call: usize,
    /// Most timers active at once.
    pub max_timers: u32,
    /// Most key-value writes (set + delete) per call.
    pub max_kv_writes_per_call: u32,
    /// Most accepted extractions per call.
    pub max_extractions_per_call: u32,
    /// Most accepted `llm.generate` requests per call.
    pub max_llm_requests_per_call: u32,
    /// Most accepted `http.fetch` requests per call.
    pub max_http_requests_per_call: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 32 << 20,
            event_budget: Duration::from_millis(50),
            lifecycle_budget: Duration::from_millis(200),
            fuel_per_event: 100_000_000,
            hostcall_fuel: 128 << 10,
            max_says_per_call: 500,
            max_say_bytes: 4 << 10,
            max_logs_bytes_per_call: 1 << 20,
            max_timers: 16,
            max_kv_writes_per_call: 100,
            max_extractions_per_call: 32,
            max_llm_requests_per_call: 50,
            max_http_requests_per_call: 20,
        }
    }
}
