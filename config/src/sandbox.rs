//! `[sandbox]`: limits for tenant plugins, and per-tenant overrides that may only lower them.

use serde::{Deserialize, Serialize};

use crate::checker::Checker;
use crate::error::ConfigError;

/// Limits that apply to one plugin instance (one call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxLimits {
    /// Linear memory cap, MiB. Default 32.
    pub memory_mib: u32,
    /// Wall-clock budget for handling one real-time event, ms. Default 50.
    pub event_budget_ms: u64,
    /// Wall-clock budget for lifecycle calls (`describe`, call start/end), ms. Default 200.
    pub lifecycle_budget_ms: u64,
    /// Fuel (roughly, wasm instructions) per event. Default 100 000 000.
    pub fuel_per_event: u64,
    /// Fuel charged for data crossing a host call, per KiB (`hostcall_fuel`). Default 128.
    pub hostcall_fuel_kib: u32,
    /// Most `say` actions a plugin may issue in one call. Default 200.
    pub max_says_per_call: u32,
    /// Most timers a plugin may have pending at once. Default 16.
    pub max_timers: u32,
}

/// `[sandbox]`: server-wide plugin limits. Tenants may lower the per-instance
/// limits in `[tenants.sandbox]`, never raise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxConfig {
    /// Most plugin instances alive at once across all calls (pooling allocator size).
    /// Default 1000.
    pub max_instances: u32,
    /// Linear memory cap, MiB. Default 32.
    pub memory_mib: u32,
    /// Wall-clock budget for handling one real-time event, ms. Default 50.
    pub event_budget_ms: u64,
    /// Wall-clock budget for lifecycle calls, ms. Default 200.
    pub lifecycle_budget_ms: u64,
    /// Fuel per event. Default 100 000 000.
    pub fuel_per_event: u64,
    /// Fuel charged per KiB crossing a host call. Default 128.
    pub hostcall_fuel_kib: u32,
    /// Most `say` actions per call. Default 200.
    pub max_says_per_call: u32,
    /// Most pending timers per call. Default 16.
    pub max_timers: u32,
    /// CPU seconds one plugin upload's compilation may use. Default 30.
    pub compile_cpu_secs: u64,
    /// Memory (heap) one plugin upload's compilation may use, MiB. Default 1024.
    pub compile_memory_mib: u64,
    /// Wall-clock time one plugin upload's compilation may take, seconds. Default 60.
    pub compile_timeout_secs: u64,
}

impl SandboxConfig {
    /// The per-instance limits (everything except `max_instances`).
    pub fn limits(&self) -> SandboxLimits {
        SandboxLimits {
            memory_mib: self.memory_mib,
            event_budget_ms: self.event_budget_ms,
            lifecycle_budget_ms: self.lifecycle_budget_ms,
            fuel_per_event: self.fuel_per_event,
            hostcall_fuel_kib: self.hostcall_fuel_kib,
            max_says_per_call: self.max_says_per_call,
            max_timers: self.max_timers,
        }
    }
}

/// `[sandbox]` as written.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSandbox {
    max_instances: u32,
    memory_mib: u32,
    event_budget_ms: u64,
    lifecycle_budget_ms: u64,
    fuel_per_event: u64,
    hostcall_fuel_kib: u32,
    max_says_per_call: u32,
    max_timers: u32,
    compile_cpu_secs: u64,
    compile_memory_mib: u64,
    compile_timeout_secs: u64,
}

impl Default for RawSandbox {
    fn default() -> Self {
        RawSandbox {
            max_instances: 1000,
            memory_mib: 32,
            event_budget_ms: 50,
            lifecycle_budget_ms: 200,
            fuel_per_event: 100_000_000,
            hostcall_fuel_kib: 128,
            max_says_per_call: 200,
            max_timers: 16,
            compile_cpu_secs: 30,
            compile_memory_mib: 1024,
            compile_timeout_secs: 60,
        }
    }
}

impl RawSandbox {
    pub(crate) fn check(self, c: &mut Checker) -> SandboxConfig {
        c.in_range("sandbox.max_instances", self.max_instances, 1, 100_000);
        c.in_range("sandbox.memory_mib", self.memory_mib, 1, 4096);
        c.in_range("sandbox.event_budget_ms", self.event_budget_ms, 1, 60_000);
        c.in_range(
            "sandbox.lifecycle_budget_ms",
            self.lifecycle_budget_ms,
            1,
            60_000,
        );
        c.in_range("sandbox.fuel_per_event", self.fuel_per_event, 1, u64::MAX);
        c.in_range(
            "sandbox.hostcall_fuel_kib",
            self.hostcall_fuel_kib,
            1,
            u32::MAX,
        );
        c.in_range(
            "sandbox.max_says_per_call",
            self.max_says_per_call,
            1,
            u32::MAX,
        );
        c.in_range("sandbox.max_timers", self.max_timers, 1, 10_000);
        c.in_range("sandbox.compile_cpu_secs", self.compile_cpu_secs, 1, 3600);
        c.in_range(
            "sandbox.compile_memory_mib",
            self.compile_memory_mib,
            64,
            64 * 1024,
        );
        c.in_range(
            "sandbox.compile_timeout_secs",
            self.compile_timeout_secs,
            1,
            3600,
        );
        SandboxConfig {
            max_instances: self.max_instances,
            memory_mib: self.memory_mib,
            event_budget_ms: self.event_budget_ms,
            lifecycle_budget_ms: self.lifecycle_budget_ms,
            fuel_per_event: self.fuel_per_event,
            hostcall_fuel_kib: self.hostcall_fuel_kib,
            max_says_per_call: self.max_says_per_call,
            max_timers: self.max_timers,
            compile_cpu_secs: self.compile_cpu_secs,
            compile_memory_mib: self.compile_memory_mib,
            compile_timeout_secs: self.compile_timeout_secs,
        }
    }
}

/// `[tenants.sandbox]` as written: optional lower limits for one tenant.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTenantSandbox {
    memory_mib: Option<u32>,
    event_budget_ms: Option<u64>,
    lifecycle_budget_ms: Option<u64>,
    fuel_per_event: Option<u64>,
    hostcall_fuel_kib: Option<u32>,
    max_says_per_call: Option<u32>,
    max_timers: Option<u32>,
}

impl RawTenantSandbox {
    /// The tenant's effective limits: the server limits with this tenant's
    /// overrides applied; an override above the server limit is an error.
    pub(crate) fn check(self, c: &mut Checker, key: &str, server: &SandboxLimits) -> SandboxLimits {
        fn lower<T: Copy + Into<u64>>(
            c: &mut Checker,
            key: &str,
            field: &str,
            value: Option<T>,
            limit: T,
        ) -> T {
            let Some(value) = value else {
                return limit;
            };
            let field_key = format!("{key}.{field}");
            if value.into() == 0 {
                c.push(ConfigError::OutOfRange {
                    key: field_key,
                    value: "0".to_owned(),
                    expected: format!("1..={}", limit.into()),
                });
                limit
            } else if value.into() > limit.into() {
                c.push(ConfigError::LimitRaised {
                    key: field_key,
                    value: value.into(),
                    limit: limit.into(),
                });
                limit
            } else {
                value
            }
        }
        SandboxLimits {
            memory_mib: lower(c, key, "memory_mib", self.memory_mib, server.memory_mib),
            event_budget_ms: lower(
                c,
                key,
                "event_budget_ms",
                self.event_budget_ms,
                server.event_budget_ms,
            ),
            lifecycle_budget_ms: lower(
                c,
                key,
                "lifecycle_budget_ms",
                self.lifecycle_budget_ms,
                server.lifecycle_budget_ms,
            ),
            fuel_per_event: lower(
                c,
                key,
                "fuel_per_event",
                self.fuel_per_event,
                server.fuel_per_event,
            ),
            hostcall_fuel_kib: lower(
                c,
                key,
                "hostcall_fuel_kib",
                self.hostcall_fuel_kib,
                server.hostcall_fuel_kib,
            ),
            max_says_per_call: lower(
                c,
                key,
                "max_says_per_call",
                self.max_says_per_call,
                server.max_says_per_call,
            ),
            max_timers: lower(c, key, "max_timers", self.max_timers, server.max_timers),
        }
    }
}
