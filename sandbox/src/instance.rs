//! One plugin instance per call: creation under limits, serial event handling,
//! failure classification and poisoning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::config::PluginLimits;
use crate::error::{FailureKind, PluginFailure};
use crate::event::{Action, Event, LogLevel};
use crate::extraction::{ExtractionSchemas, truncate};
use crate::host::{LoadedPlugin, PluginHost};
use crate::kv::KvStore;
use crate::state::{HostState, MemoryLimitTrap, QuotaTrap};
use crate::world::{Agent, GuestError};

/// Extra wall time the backstop timeout allows beyond the event budget.
const BACKSTOP_MARGIN: Duration = Duration::from_millis(20);
/// Longest failure message kept.
const MAX_FAILURE_MESSAGE_BYTES: usize = 2048;

/// Counters for one instance (for metrics and billing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceStats {
    /// Events delivered (including failed ones).
    pub events: u64,
    /// Fuel consumed by all events so far.
    pub fuel_consumed: u64,
    /// Largest linear memory size reached, in bytes.
    pub peak_memory_bytes: usize,
}

/// A plugin instance bound to one call. Events are handled one at a time, in
/// order. After any failure the instance is poisoned: every later call to
/// [`handle`](Self::handle) returns a [`FailureKind::Poisoned`] failure.
pub struct PluginInstance {
    store: Store<HostState>,
    agent: Agent,
    plugin: Arc<LoadedPlugin>,
    poisoned: Option<PluginFailure>,
    in_flight: bool,
    stats: InstanceStats,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.plugin.info.name)
            .field("poisoned", &self.poisoned)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Creates a store with the limiter, hostcall fuel and epoch callback installed.
pub(crate) fn new_store(
    engine: &Engine,
    limits: &PluginLimits,
    schemas: Arc<ExtractionSchemas>,
    kv: Arc<dyn KvStore>,
) -> Result<Store<HostState>, PluginFailure> {
    let mut store = Store::new(engine, HostState::new(limits.clone(), schemas, kv));
    store.limiter(|state| &mut state.limiter);
    store.set_hostcall_fuel(limits.hostcall_fuel);
    store.epoch_deadline_callback(|mut ctx| {
        let clock = &mut ctx.data_mut().clock;
        if Instant::now() >= clock.deadline {
            clock.timed_out = true;
            Ok(UpdateDeadline::Interrupt)
        } else if clock.yield_to_tokio {
            // Give other tasks on this runtime a turn at every tick.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    Ok(store)
}

/// Refills fuel and re-arms the epoch deadline before guest code runs.
pub(crate) fn arm_event(
    store: &mut Store<HostState>,
    limits: &PluginLimits,
) -> Result<(), PluginFailure> {
    store
        .set_fuel(limits.fuel_per_event)
        .map_err(|e| PluginFailure::new(FailureKind::Trap, format!("cannot set fuel: {e}")))?;
    store.set_epoch_deadline(1);
    Ok(())
}

/// Turns a wasmtime error from a guest call into a classified failure. The
/// message is the cause, then the guest's stderr (panic text), then the wasm
/// backtrace.
pub(crate) fn classify(error: wasmtime::Error, state: &mut HostState) -> PluginFailure {
    let stderr = state.stderr.drain();
    let trap = error.downcast_ref::<Trap>().copied();
    let cause = error.root_cause().to_string();
    let (kind, summary) = if state.clock.timed_out || trap == Some(Trap::Interrupt) {
        (
            FailureKind::Timeout,
            format!(
                "event ran past its {} ms budget",
                state.clock.budget.as_millis()
            ),
        )
    } else if state.limiter.memory_limit_hit || error.downcast_ref::<MemoryLimitTrap>().is_some() {
        (FailureKind::MemoryLimit, cause)
    } else if let Some(what) = state.quota_breach.take() {
        (FailureKind::QuotaExceeded, what)
    } else if let Some(quota) = error.downcast_ref::<QuotaTrap>() {
        (FailureKind::QuotaExceeded, quota.0.clone())
    } else if cause.contains("fuel allocated for hostcalls") {
        (
            FailureKind::QuotaExceeded,
            "the guest passed more data to one host call than hostcall_fuel allows".to_string(),
        )
    } else {
        let kind = match trap {
            Some(Trap::OutOfFuel) => FailureKind::OutOfFuel,
            Some(Trap::StackOverflow) => FailureKind::StackOverflow,
            Some(Trap::CannotEnterComponent) => FailureKind::Poisoned,
            _ => FailureKind::Trap,
        };
        (kind, cause)
    };
    let mut message = summary;
    let stderr = stderr.trim();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(stderr);
    }
    if let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        message.push('\n');
        message.push_str(&backtrace.to_string());
    }
    PluginFailure::new(kind, truncate(message, MAX_FAILURE_MESSAGE_BYTES))
}

impl PluginHost {
    /// Creates a fresh instance of `plugin` for one call, with its own memory,
    /// quotas and counters, and the tenant's key-value store. Instantiation runs
    /// under the lifecycle budget.
    pub async fn instantiate(
        &self,
        plugin: &Arc<LoadedPlugin>,
        limits: PluginLimits,
        kv: Arc<dyn KvStore>,
    ) -> Result<PluginInstance, PluginFailure> {
        let budget = limits.lifecycle_budget;
        let mut store = new_store(&self.inner.engine, &limits, plugin.schemas.clone(), kv)?;
        store.data_mut().begin_event(budget, true);
        arm_event(&mut store, &limits)?;
        let instantiated = tokio::time::timeout(
            budget + BACKSTOP_MARGIN,
            plugin.pre.instantiate_async(&mut store),
        )
        .await;
        let agent = match instantiated {
            Ok(Ok(agent)) => agent,
            Ok(Err(e)) => {
                let failure = classify(e, store.data_mut());
                return Err(PluginFailure::new(
                    FailureKind::Instantiate,
                    format!("{}: {}", failure.kind, failure.message),
                ));
            }
            Err(_) => {
                return Err(PluginFailure::new(
                    FailureKind::Instantiate,
                    format!("instantiation ran past {} ms", budget.as_millis()),
                ));
            }
        };
        Ok(PluginInstance {
            store,
            agent,
            plugin: plugin.clone(),
            poisoned: None,
            in_flight: false,
            stats: InstanceStats::default(),
        })
    }
}

impl PluginInstance {
    /// Delivers one event and returns the actions the plugin took, in order.
    ///
    /// Real-time events get `event_budget`, `call-started`/`call-ended` get
    /// `lifecycle_budget`; both are enforced by epoch interruption (the guest
    /// yields to tokio every tick, so a looping plugin never stalls other tasks)
    /// with a `tokio::time::timeout` backstop, plus fuel. A trap, timeout or quota
    /// breach returns `Err` and poisons the instance; actions of the failed event
    /// are discarded. An error *returned* by the plugin is not a failure: it is
    /// reported as an `Action::Log` at error level and the instance stays usable.
    ///
    /// Must run inside a tokio runtime with the time driver enabled.
    pub async fn handle(&mut self, event: Event) -> Result<Vec<Action>, PluginFailure> {
        if let Some(failure) = &self.poisoned {
            return Err(PluginFailure::new(
                FailureKind::Poisoned,
                format!("instance failed earlier ({failure})"),
            ));
        }
        if self.in_flight {
            return Err(self.poison(PluginFailure::new(
                FailureKind::Poisoned,
                "an earlier event was cancelled while the plugin was running",
            )));
        }
        let limits = &self.store.data().limits;
        let budget = if event.is_lifecycle() {
            limits.lifecycle_budget
        } else {
            limits.event_budget
        };
        let limits = limits.clone();
        self.store.data_mut().observe(&event);
        let Some(wit_event) = self.agent.convert(event) else {
            // The plugin's world has no such event (and it cannot have caused one).
            return Ok(Vec::new());
        };
        self.store.data_mut().begin_event(budget, true);
        arm_event(&mut self.store, &limits)?;

        self.in_flight = true;
        let outcome = tokio::time::timeout(
            budget + BACKSTOP_MARGIN,
            self.agent.on_event(&mut self.store, &wit_event),
        )
        .await;
        self.in_flight = false;

        self.stats.events += 1;
        let remaining = self.store.get_fuel().unwrap_or(0);
        self.stats.fuel_consumed += limits.fuel_per_event.saturating_sub(remaining);
        self.stats.peak_memory_bytes = self.store.data().limiter.peak_memory_bytes;

        match outcome {
            Ok(Ok(Ok(()))) => Ok(self.store.data_mut().take_actions()),
            Ok(Ok(Err(plugin_error))) => {
                let message = match plugin_error {
                    GuestError::InvalidState(m) => {
                        format!("plugin error (invalid state): {m}")
                    }
                    GuestError::Internal(m) => format!("plugin error: {m}"),
                };
                let state = self.store.data_mut();
                state.push_host_log(LogLevel::Error, message);
                Ok(state.take_actions())
            }
            Ok(Err(error)) => {
                let failure = classify(error, self.store.data_mut());
                Err(self.poison(failure))
            }
            Err(_elapsed) => {
                let failure = PluginFailure::new(
                    FailureKind::Timeout,
                    format!(
                        "event ran past its {} ms budget (wall-clock backstop)",
                        budget.as_millis()
                    ),
                );
                Err(self.poison(failure))
            }
        }
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// The failure that poisoned this instance, if any.
    pub fn failure(&self) -> Option<&PluginFailure> {
        self.poisoned.as_ref()
    }

    /// Whether the instance can still handle events.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Event, fuel and memory counters.
    pub fn stats(&self) -> InstanceStats {
        self.stats
    }

    fn poison(&mut self, failure: PluginFailure) -> PluginFailure {
        self.poisoned = Some(failure.clone());
        failure
    }
}
