//! Shared helpers: a small host and the real plugin components from plugins/dist.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vaani_sandbox::*;

/// A minimal component exporting `vaani:agent/handler` of a version this host does not serve.
pub const FUTURE_WORLD: &str = include_str!("future_world.wat");

/// Reads `plugins/dist/<name>.wasm`; fails the test (never skips) if it is missing.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../plugins/dist")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. Build the plugins first: run plugins/build.sh",
            path.display()
        )
    })
}

/// A host with a small pool, suitable for one test.
pub fn host() -> PluginHost {
    host_with(16)
}

/// A host with a pool of `max_instances`.
pub fn host_with(max_instances: u32) -> PluginHost {
    PluginHost::new(HostConfig {
        max_instances,
        epoch_tick: Duration::from_millis(1),
        ..HostConfig::default()
    })
    .expect("plugin host")
}

/// Loads a fixture or first-party plugin by name.
pub fn load(host: &PluginHost, name: &str) -> Arc<LoadedPlugin> {
    host.load(&wasm(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A caller context for an inbound test call.
pub fn context(caller_name: Option<&str>) -> CallerContext {
    CallerContext {
        call_id: "call-1".into(),
        tenant_id: "tenant-1".into(),
        direction: Direction::Inbound,
        caller: "+919800000001".into(),
        dialled: "+918000000001".into(),
        caller_name: caller_name.map(str::to_string),
        memory_json: None,
        previous_calls: 0,
        config_json: "{}".into(),
        started_at_unix_ms: 1_700_000_000_000,
        recent_calls: vec![],
        llm_available: false,
        external_id: None,
        sip_headers: vec![],
    }
}

/// A fresh instance with default limits and its own key-value store.
pub async fn instance(host: &PluginHost, plugin: &Arc<LoadedPlugin>) -> PluginInstance {
    instance_with(host, plugin, PluginLimits::default()).await
}

/// A fresh instance with these limits and its own key-value store.
pub async fn instance_with(
    host: &PluginHost,
    plugin: &Arc<LoadedPlugin>,
    limits: PluginLimits,
) -> PluginInstance {
    host.instantiate(plugin, limits, Arc::new(MemoryKv::new()))
        .await
        .expect("instantiate")
}

/// Texts of the `Say` actions.
pub fn said(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Starts the call and returns the actions.
pub async fn start(instance: &mut PluginInstance) -> Vec<Action> {
    instance
        .handle(Event::CallStarted(context(None)))
        .await
        .expect("call-started")
}

/// Sends one key and returns the actions.
pub async fn key(instance: &mut PluginInstance, key: char) -> Vec<Action> {
    instance
        .handle(Event::Dtmf(key))
        .await
        .unwrap_or_else(|e| panic!("dtmf {key}: {e}"))
}
