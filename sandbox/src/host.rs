//! The process-wide plugin host: engine, epoch ticker, lean linker and the
//! compiled-plugin cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, WasmFeatures};

use crate::config::{
    HostConfig, InstanceAllocation, MAX_COMPONENT_BYTES, POOL_MAX_MEMORY_BYTES, PluginLimits,
};
use crate::error::{FailureKind, LoadError, PluginFailure, SandboxError};
use crate::extraction::{ExtractionSchemas, SchemaInfo};
use crate::kv::{KvError, KvStore};
use crate::state::HostState;
use crate::world::{self, AgentPre, RawInfo, RawSchema, WorldVersion};

/// Wasm stack available to guest code.
const MAX_WASM_STACK: usize = 256 << 10;
/// Fiber stack for async calls: the wasm stack plus room for host functions
/// (JSON Schema validation runs here).
const ASYNC_STACK: usize = 1 << 20;
/// Extra wall time allowed to `describe()` beyond its budget before the backstop.
const DESCRIBE_BACKSTOP_MARGIN: Duration = Duration::from_millis(20);
/// World versions of `vaani:agent` this host serves.
pub const SUPPORTED_WORLD_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0"];
/// Custom section in which the SDK records the world version.
pub const WORLD_VERSION_SECTION: &str = "vaani:agent-version";
/// Most extraction schemas one plugin may declare.
const MAX_SCHEMAS: usize = 32;
/// Longest plugin name, version or schema id.
const MAX_NAME_BYTES: usize = 64;
/// Largest serialized JSON Schema.
const MAX_SCHEMA_BYTES: usize = 64 << 10;

/// What a plugin's `describe()` reported, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Declared extraction schemas (all compiled successfully).
    pub schemas: Vec<SchemaInfo>,
}

/// A compiled, linked and described plugin, ready to instantiate per call.
/// Shared (`Arc`) between all calls of all tenants that use the same bytes.
pub struct LoadedPlugin {
    /// What `describe()` reported.
    pub info: PluginInfo,
    /// Lowercase hex SHA-256 of the component bytes.
    pub content_hash: String,
    /// The `vaani:agent` version the component targets (one of
    /// [`SUPPORTED_WORLD_VERSIONS`]), read from the interfaces it exports and
    /// imports; the SDK's `vaani:agent-version` section, when present, must agree.
    pub world_version: String,
    pub(crate) pre: AgentPre,
    pub(crate) schemas: Arc<ExtractionSchemas>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .field("content_hash", &self.content_hash)
            .field("world_version", &self.world_version)
            .finish_non_exhaustive()
    }
}

/// A plugin compiled ahead of time by [`PluginHost::precompile`]: the native
/// artifact and what is known about it. Store it beside the component it came
/// from and load it with [`PluginHost::load_precompiled`].
#[derive(Clone, PartialEq)]
pub struct PrecompiledPlugin {
    /// What the artifact is and which engine made it.
    pub manifest: ArtifactManifest,
    /// The engine's serialized compilation of the component (an ELF image with
    /// native code): what [`Engine::precompile_component`] produces.
    pub artifact: Vec<u8>,
}

impl fmt::Debug for PrecompiledPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrecompiledPlugin")
            .field("manifest", &self.manifest)
            .field("artifact_bytes", &self.artifact.len())
            .finish()
    }
}

/// Metadata of a [`PrecompiledPlugin`]; plain data, serializable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    /// What `describe()` reported when the component was compiled.
    pub info: PluginInfo,
    /// Lowercase hex SHA-256 of the component (wasm) bytes the artifact was made from.
    pub content_hash: String,
    /// The `vaani:agent` version the component targets.
    pub world_version: String,
    /// [`PluginHost::compatibility_hash`] of the engine that made the artifact.
    pub compatibility_hash: String,
    /// Lowercase hex SHA-256 of the artifact bytes, as produced.
    pub artifact_hash: String,
}

/// A component compiled in memory, linked and described.
struct CheckedComponent {
    component: Component,
    version: WorldVersion,
    pre: AgentPre,
    info: PluginInfo,
    schemas: Arc<ExtractionSchemas>,
}

/// Counters of the compiled-plugin cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Components compiled (cache misses that got as far as compiling).
    pub compiled: u64,
    /// Loads answered from the cache.
    pub hits: u64,
}

/// The plugin host. Create one per process and clone it freely (it is an `Arc`).
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<String, Weak<LoadedPlugin>>>,
    compiled: AtomicU64,
    hits: AtomicU64,
    _ticker: EpochTicker,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("cache", &self.cache_stats())
            .finish_non_exhaustive()
    }
}

/// Increments the engine epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Result<Self, SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let tick = tick.max(Duration::from_micros(100));
        let thread = thread::Builder::new()
            .name("vaani-plugin-epoch".to_string())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(SandboxError::Ticker)?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wasm proposals a Rust plugin does not need; each is attack surface (§6.1).
fn disabled_features() -> WasmFeatures {
    WasmFeatures::THREADS
        | WasmFeatures::SHARED_EVERYTHING_THREADS
        | WasmFeatures::GC
        | WasmFeatures::FUNCTION_REFERENCES
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::LEGACY_EXCEPTIONS
        | WasmFeatures::MEMORY64
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::STACK_SWITCHING
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::RELAXED_SIMD
        | WasmFeatures::WIDE_ARITHMETIC
        | WasmFeatures::CUSTOM_PAGE_SIZES
        | WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_THREADING
        | WasmFeatures::CM_ERROR_CONTEXT
        | WasmFeatures::CM_GC
}

/// Feeds a `Hash` implementation into SHA-256, for a digest that is the same in
/// every process running this binary (unlike `DefaultHasher`, it is also stable
/// across Rust releases, so stored artifacts survive a rebuild with a new toolchain
/// as long as the engine is the same).
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

fn engine_config(config: &HostConfig) -> Config {
    let n = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_core_instances_per_component(16)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_memory_size(POOL_MAX_MEMORY_BYTES)
        .table_elements(10_000);

    // Everything that shapes compiled code must be the same for both allocation
    // strategies, or artifacts from the compile child would not load here.
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .wasm_component_model(true)
        .wasm_features(disabled_features(), false)
        .allocation_strategy(match config.allocation {
            InstanceAllocation::Pooling => InstanceAllocationStrategy::Pooling(pool),
            InstanceAllocation::OnDemand => InstanceAllocationStrategy::OnDemand,
        });
    cfg
}

/// Links only what a plugin may use: `wasi:io`, `wasi:cli`, `wasi:clocks`,
/// `wasi:random`, and the `vaani:agent` imports. Anything else a component
/// imports (filesystem, sockets, http) makes it fail to link at load.
fn lean_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

    let mut linker = Linker::<HostState>::new(engine);
    let l = &mut linker;
    wasmtime_wasi_io::add_to_linker_async(l)?;
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    random::random::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    world::add_to_linker(l)?;
    Ok(linker)
}

/// The `KvStore` used while running `describe()`: there is no tenant yet.
struct NoKv;

impl KvStore for NoKv {
    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError::Unavailable(
            "no key-value store during describe()".into(),
        ))
    }
    fn set(&self, _key: &str, _value: &[u8]) -> Result<(), KvError> {
        Err(KvError::Unavailable(
            "no key-value store during describe()".into(),
        ))
    }
    fn delete(&self, _key: &str) -> Result<(), KvError> {
        Err(KvError::Unavailable(
            "no key-value store during describe()".into(),
        ))
    }
}

impl PluginHost {
    /// Creates the engine (pooling allocator sized by `max_instances`, epoch
    /// interruption, fuel, hardened feature set), the lean linker and the epoch
    /// ticker thread.
    pub fn new(config: HostConfig) -> Result<PluginHost, SandboxError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let linker = lean_linker(&engine).map_err(|e| SandboxError::Linker(format!("{e:#}")))?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        Ok(PluginHost {
            inner: Arc::new(HostInner {
                engine,
                linker,
                cache: Mutex::new(HashMap::new()),
                compiled: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                _ticker: ticker,
            }),
        })
    }

    /// Compiles, links and describes a plugin component, or returns the cached
    /// one for identical bytes (by SHA-256). Runs `describe()` under the default
    /// limits and compiles every declared JSON Schema.
    ///
    /// Compilation happens in this process, so only use it for components the
    /// operator supplied (the configuration file, tests). It also accepts the
    /// WebAssembly text format. Tenant uploads go through [`precompile`](Self::precompile)
    /// in a resource-limited child process instead.
    ///
    /// This blocks for the compilation (100 ms+ for a real plugin) and for
    /// `describe()` (run on a short-lived thread of its own): call it from
    /// `spawn_blocking` or a dedicated thread, never on the media path.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedPlugin>, LoadError> {
        check_size_and_kind(wasm)?;
        let wasm = wat::parse_bytes(wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        check_binary_component(&wasm)?;
        let content_hash = hex(&Sha256::digest(&wasm));
        if let Some(plugin) = self.cached(&content_hash) {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(plugin);
        }
        self.inner.compiled.fetch_add(1, Ordering::Relaxed);
        let checked = self.compile_and_check(&wasm)?;
        Ok(self.insert(LoadedPlugin {
            info: checked.info,
            content_hash,
            world_version: checked.version.as_str().to_string(),
            pre: checked.pre,
            schemas: checked.schemas,
        }))
    }

    /// Checks and compiles an uploaded component the way [`load`](Self::load)
    /// does (size limit, world version, imports and exports, `describe()` under
    /// the default limits, every JSON Schema), and returns the compiled artifact
    /// with what `describe()` reported instead of a loaded plugin.
    ///
    /// Stricter than `load`: only binary components are accepted (no text
    /// format, no core modules, no precompiled artifacts).
    ///
    /// Compile-time resource exhaustion is outside wasmtime's threat model, so a
    /// server runs this in a child process with resource limits (`vaani
    /// compile-plugin`), on a host made with [`HostConfig::compile_only`]. It
    /// does not touch the cache.
    pub fn precompile(&self, wasm: &[u8]) -> Result<PrecompiledPlugin, LoadError> {
        check_size_and_kind(wasm)?;
        check_binary_component(wasm)?;
        let content_hash = hex(&Sha256::digest(wasm));
        self.inner.compiled.fetch_add(1, Ordering::Relaxed);
        let checked = self.compile_and_check(wasm)?;
        // The in-memory compilation serialized is exactly what
        // `Engine::precompile_component` returns for these bytes; reusing it
        // saves compiling twice.
        let artifact = checked.component.serialize().map_err(|e| {
            LoadError::Compile(format!("serializing the compiled component: {e:#}"))
        })?;
        Ok(PrecompiledPlugin {
            manifest: ArtifactManifest {
                info: checked.info,
                content_hash,
                world_version: checked.version.as_str().to_string(),
                compatibility_hash: self.compatibility_hash(),
                artifact_hash: hex(&Sha256::digest(&artifact)),
            },
            artifact,
        })
    }

    /// Loads a plugin from an artifact made by [`precompile`](Self::precompile),
    /// or returns the cached plugin with the same content hash. Checks that
    /// this engine can run the artifact (compatibility hash), that the artifact
    /// is intact (its SHA-256), links it and compiles its schemas again;
    /// `describe()` is not run again: the manifest's info is used (validated again).
    ///
    /// No code is generated, so this is far cheaper than compiling (tens of
    /// milliseconds for a real plugin in a debug build).
    ///
    /// # Safety
    ///
    /// The artifact is native code that runs in this process without further
    /// verification (wasmtime's `Component::deserialize` only checks its format
    /// and engine settings). The caller must make sure that `plugin` was made by
    /// `precompile` of this program (in this process, or in a `vaani
    /// compile-plugin` child of the same executable) and reached here only through
    /// channels and storage tenants cannot write: never artifact bytes from an
    /// upload or an API caller. The checks here catch a different wasmtime
    /// version or engine configuration (compatibility hash, which wasmtime checks
    /// again itself) and accidental truncation or corruption (artifact SHA-256);
    /// they cannot catch deliberate tampering by someone who can also rewrite
    /// the manifest.
    pub unsafe fn load_precompiled(
        &self,
        plugin: &PrecompiledPlugin,
    ) -> Result<Arc<LoadedPlugin>, LoadError> {
        let manifest = &plugin.manifest;
        let engine_hash = self.compatibility_hash();
        if manifest.compatibility_hash != engine_hash {
            return Err(LoadError::IncompatibleArtifact {
                artifact: manifest.compatibility_hash.clone(),
                engine: engine_hash,
            });
        }
        let artifact_hash = hex(&Sha256::digest(&plugin.artifact));
        if manifest.artifact_hash != artifact_hash {
            return Err(LoadError::CorruptArtifact(format!(
                "its SHA-256 is {artifact_hash}, {} was recorded",
                manifest.artifact_hash
            )));
        }
        if !is_sha256_hex(&manifest.content_hash) {
            return Err(LoadError::CorruptArtifact(format!(
                "content hash {:?} is not a SHA-256",
                manifest.content_hash
            )));
        }
        if let Some(loaded) = self.cached(&manifest.content_hash) {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(loaded);
        }
        // SAFETY: the caller guarantees (see `# Safety`) that the artifact was
        // produced by `precompile` of this program and kept where tenants cannot
        // write; the SHA-256 above shows it is the same bytes, and the
        // compatibility hash that this engine has the settings it was made for.
        let component = unsafe { Component::deserialize(&self.inner.engine, &plugin.artifact) }
            .map_err(|e| LoadError::CorruptArtifact(format!("{e:#}")))?;
        let version = world::detect(&self.inner.engine, &component, None)?;
        if version.as_str() != manifest.world_version {
            return Err(LoadError::CorruptArtifact(format!(
                "the manifest says vaani:agent {}, the artifact exports {}",
                manifest.world_version,
                version.as_str()
            )));
        }
        let pre = self.link(&component, version)?;
        let info = validate_info(raw_info(&manifest.info))?;
        let schemas = Arc::new(ExtractionSchemas::compile(&info.schemas)?);
        Ok(self.insert(LoadedPlugin {
            info,
            content_hash: manifest.content_hash.clone(),
            world_version: manifest.world_version.clone(),
            pre,
            schemas,
        }))
    }

    /// Identifies everything about this engine that shapes compiled code
    /// (target, compiler flags, wasm features, tunables, wasmtime version):
    /// lowercase hex SHA-256 of `Engine::precompile_compatibility_hash`. An
    /// artifact loads only into an engine with the same hash. The allocation
    /// strategy is not part of it, so a [`HostConfig::compile_only`] host and
    /// a pooling host agree.
    pub fn compatibility_hash(&self) -> String {
        use std::hash::Hash;
        let mut hasher = Sha256Hasher(Sha256::new());
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        hex(&hasher.0.finalize())
    }

    /// Compiles a binary component in memory, checks its world, links it, runs
    /// `describe()` and compiles the declared schemas.
    fn compile_and_check(&self, wasm: &[u8]) -> Result<CheckedComponent, LoadError> {
        let recorded_version = world_version(wasm)?;
        if let Some(version) = &recorded_version
            && !SUPPORTED_WORLD_VERSIONS.contains(&version.as_str())
        {
            return Err(LoadError::UnsupportedWorldVersion(version.clone()));
        }
        let component = Component::from_binary(&self.inner.engine, wasm)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let version = world::detect(&self.inner.engine, &component, recorded_version.as_deref())?;
        let pre = self.link(&component, version)?;
        let raw = self.describe_on_own_thread(&pre)?;
        let info = validate_info(raw)?;
        let schemas = Arc::new(ExtractionSchemas::compile(&info.schemas)?);
        Ok(CheckedComponent {
            component,
            version,
            pre,
            info,
            schemas,
        })
    }

    /// Resolves the component's imports against the lean linker and checks its
    /// exports against the bindings of `version`.
    fn link(&self, component: &Component, version: WorldVersion) -> Result<AgentPre, LoadError> {
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        AgentPre::new(version, instance_pre).map_err(|e| LoadError::MissingExport(format!("{e:#}")))
    }

    /// Caches a freshly loaded plugin, or returns the copy another thread
    /// cached for the same bytes meanwhile.
    fn insert(&self, plugin: LoadedPlugin) -> Arc<LoadedPlugin> {
        let plugin = Arc::new(plugin);
        let mut cache = self.lock_cache();
        cache.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = cache.get(&plugin.content_hash).and_then(Weak::upgrade) {
            return existing;
        }
        cache.insert(plugin.content_hash.clone(), Arc::downgrade(&plugin));
        plugin
    }

    /// Cache counters (compilations and hits).
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.inner.compiled.load(Ordering::Relaxed),
            hits: self.inner.hits.load(Ordering::Relaxed),
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<LoadedPlugin>>> {
        // The cache holds only weak references: a poisoned lock still holds a usable map.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self, content_hash: &str) -> Option<Arc<LoadedPlugin>> {
        self.lock_cache().get(content_hash).and_then(Weak::upgrade)
    }

    /// Runs [`describe`](Self::describe) on a short-lived thread with its own
    /// current-thread tokio runtime, so `load` works from any context (inside a
    /// tokio worker or not), WASI host calls that await timers work, and a guest
    /// that blocks in a host call is cut off by the backstop timeout.
    fn describe_on_own_thread(&self, pre: &AgentPre) -> Result<RawInfo, LoadError> {
        let budget = PluginLimits::default().lifecycle_budget;
        let describe_failure = |message: String| {
            LoadError::Describe(PluginFailure::new(FailureKind::Instantiate, message))
        };
        thread::scope(|scope| {
            let describing = thread::Builder::new()
                .name("vaani-plugin-describe".to_string())
                .spawn_scoped(scope, || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .map_err(|e| describe_failure(format!("cannot start a runtime: {e}")))?;
                    runtime.block_on(async {
                        match tokio::time::timeout(
                            budget + DESCRIBE_BACKSTOP_MARGIN,
                            self.describe(pre),
                        )
                        .await
                        {
                            Ok(result) => result.map_err(LoadError::Describe),
                            Err(_) => Err(LoadError::Describe(PluginFailure::new(
                                FailureKind::Timeout,
                                format!(
                                    "describe() ran past its {} ms budget (wall-clock backstop)",
                                    budget.as_millis()
                                ),
                            ))),
                        }
                    })
                })
                .map_err(|e| describe_failure(format!("cannot start a thread: {e}")))?;
            describing
                .join()
                .unwrap_or_else(|_| Err(describe_failure("describe thread panicked".to_string())))
        })
    }

    /// Instantiates once with the default limits and calls `describe()`.
    async fn describe(&self, pre: &AgentPre) -> Result<RawInfo, PluginFailure> {
        let limits = PluginLimits::default();
        let budget = limits.lifecycle_budget;
        let mut store = crate::instance::new_store(
            &self.inner.engine,
            &limits,
            Arc::new(ExtractionSchemas::empty()),
            Arc::new(NoKv),
        )?;
        store.data_mut().begin_event(budget, false);
        crate::instance::arm_event(&mut store, &limits)?;
        let agent = match pre.instantiate_async(&mut store).await {
            Ok(agent) => agent,
            Err(e) => {
                let failure = crate::instance::classify(e, store.data_mut());
                return Err(PluginFailure::new(
                    FailureKind::Instantiate,
                    format!("{}: {}", failure.kind, failure.message),
                ));
            }
        };
        store.data_mut().begin_event(budget, false);
        crate::instance::arm_event(&mut store, &limits)?;
        agent
            .describe(&mut store)
            .await
            .map_err(|e| crate::instance::classify(e, store.data_mut()))
    }
}

/// Refuses inputs that are too large or are precompiled artifacts.
fn check_size_and_kind(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() > MAX_COMPONENT_BYTES {
        return Err(LoadError::TooLarge {
            size: wasm.len(),
            max: MAX_COMPONENT_BYTES,
        });
    }
    if Engine::detect_precompiled(wasm).is_some() {
        return Err(LoadError::Precompiled);
    }
    Ok(())
}

/// Accepts only the binary encoding of a component (preamble `\0asm`, version
/// 0x0d, layer 1); says what the bytes are otherwise.
fn check_binary_component(wasm: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        let text = wasm
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'(' || *b == b';');
        return Err(LoadError::NotAComponent(if text {
            "the WebAssembly text format is not accepted; upload the binary .wasm component"
                .to_string()
        } else {
            "the bytes do not start with the WebAssembly preamble".to_string()
        }));
    }
    match &wasm[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(LoadError::NotAComponent(
            "this is a core module; build a component (target wasm32-wasip2)".to_string(),
        )),
        other => Err(LoadError::NotAComponent(format!(
            "unknown WebAssembly version and layer {other:02x?}"
        ))),
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Turns validated info back into what `describe()` returns, to validate info
/// that was stored with an artifact the same way as fresh output.
fn raw_info(info: &PluginInfo) -> RawInfo {
    RawInfo {
        name: info.name.clone(),
        version: info.version.clone(),
        schemas: info
            .schemas
            .iter()
            .map(|schema| RawSchema {
                id: schema.id.clone(),
                description: schema.description.clone(),
                json_schema: schema.json_schema.to_string(),
            })
            .collect(),
    }
}

fn validate_info(raw: RawInfo) -> Result<PluginInfo, LoadError> {
    let name_ok = |s: &str| {
        !s.trim().is_empty() && s.len() <= MAX_NAME_BYTES && !s.chars().any(char::is_control)
    };
    if !name_ok(&raw.name) {
        return Err(LoadError::InvalidInfo(format!(
            "name must be 1-{MAX_NAME_BYTES} printable bytes"
        )));
    }
    if !name_ok(&raw.version) {
        return Err(LoadError::InvalidInfo(format!(
            "version must be 1-{MAX_NAME_BYTES} printable bytes"
        )));
    }
    if raw.schemas.len() > MAX_SCHEMAS {
        return Err(LoadError::InvalidInfo(format!(
            "{} schemas declared; the limit is {MAX_SCHEMAS}",
            raw.schemas.len()
        )));
    }
    let mut schemas = Vec::with_capacity(raw.schemas.len());
    for schema in raw.schemas {
        if !name_ok(&schema.id) {
            return Err(LoadError::InvalidInfo(format!(
                "schema id must be 1-{MAX_NAME_BYTES} printable bytes"
            )));
        }
        if schemas.iter().any(|s: &SchemaInfo| s.id == schema.id) {
            return Err(LoadError::InvalidInfo(format!(
                "schema id {:?} declared twice",
                schema.id
            )));
        }
        if schema.json_schema.len() > MAX_SCHEMA_BYTES {
            return Err(LoadError::InvalidSchema {
                id: schema.id,
                message: format!("larger than {MAX_SCHEMA_BYTES} bytes"),
            });
        }
        let json_schema =
            serde_json::from_str(&schema.json_schema).map_err(|e| LoadError::InvalidSchema {
                id: schema.id.clone(),
                message: format!("not JSON: {e}"),
            })?;
        schemas.push(SchemaInfo {
            id: schema.id,
            description: crate::extraction::truncate(schema.description, 1024),
            json_schema,
        });
    }
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        schemas,
    })
}

/// Reads the `vaani:agent-version` custom section, wherever it is nested.
fn world_version(wasm: &[u8]) -> Result<Option<String>, LoadError> {
    Ok(find_custom_section(wasm, WORLD_VERSION_SECTION, 0)
        .map(|data| String::from_utf8_lossy(data).trim().to_string()))
}

/// Finds a custom section by name in a core module or component binary,
/// descending into nested core modules (section 1) and components (section 4)
/// of a component. Malformed input yields `None` (compilation reports it).
fn find_custom_section<'a>(wasm: &'a [u8], name: &str, depth: u32) -> Option<&'a [u8]> {
    const MAGIC: &[u8] = b"\0asm";
    if depth > 4 || wasm.len() < 8 || &wasm[..4] != MAGIC {
        return None;
    }
    // Bytes 4..8: version and layer; layer 1 is a component.
    let is_component = wasm[6] == 1 && wasm[7] == 0;
    let mut rest = &wasm[8..];
    while !rest.is_empty() {
        let id = rest[0];
        let (size, len_bytes) = read_leb_u32(&rest[1..])?;
        let start = 1 + len_bytes;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        let contents = rest.get(start..end)?;
        match id {
            0 => {
                let (name_len, n) = read_leb_u32(contents)?;
                let name_end = n.checked_add(usize::try_from(name_len).ok()?)?;
                if contents.get(n..name_end)? == name.as_bytes() {
                    return Some(&contents[name_end..]);
                }
            }
            1 | 4 if is_component => {
                if let Some(found) = find_custom_section(contents, name, depth + 1) {
                    return Some(found);
                }
            }
            _ => {}
        }
        rest = &rest[end..];
    }
    None
}

/// Reads an unsigned LEB128 `u32`, returning it and the bytes it took.
fn read_leb_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_sections_are_found_in_nested_modules() {
        // A component (layer 1) holding one core module with a custom section.
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        let mut custom = vec![WORLD_VERSION_SECTION.len() as u8];
        custom.extend_from_slice(WORLD_VERSION_SECTION.as_bytes());
        custom.extend_from_slice(b"0.1.0");
        module.push(0);
        module.push(custom.len() as u8);
        module.extend_from_slice(&custom);
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.push(1);
        component.push(module.len() as u8);
        component.extend_from_slice(&module);
        assert_eq!(world_version(&component).unwrap().as_deref(), Some("0.1.0"));
        assert_eq!(find_custom_section(&component, "other", 0), None);
        // Truncated input is not a panic.
        assert_eq!(
            find_custom_section(&component[..component.len() - 3], "x", 0),
            None
        );
        assert_eq!(read_leb_u32(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_leb_u32(&[0x80, 0x80]), None);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn engine_config_is_accepted() {
        let host = PluginHost::new(HostConfig {
            max_instances: 4,
            epoch_tick: Duration::from_millis(1),
            ..HostConfig::default()
        });
        assert!(host.is_ok(), "{:?}", host.err());
    }

    #[test]
    fn garbage_is_a_compile_error_and_oversize_is_refused() {
        let host = PluginHost::new(HostConfig {
            max_instances: 2,
            epoch_tick: Duration::from_millis(1),
            ..HostConfig::default()
        })
        .unwrap();
        assert!(matches!(
            host.load(b"not wasm at all"),
            Err(LoadError::Compile(_))
        ));
        let huge = vec![0u8; MAX_COMPONENT_BYTES + 1];
        assert!(matches!(host.load(&huge), Err(LoadError::TooLarge { .. })));
    }

    #[test]
    fn a_core_module_is_not_a_plugin() {
        let host = PluginHost::new(HostConfig {
            max_instances: 2,
            epoch_tick: Duration::from_millis(1),
            ..HostConfig::default()
        })
        .unwrap();
        let empty_core_module = b"\0asm\x01\0\0\0";
        let err = host.load(empty_core_module).unwrap_err();
        assert!(matches!(err, LoadError::NotAComponent(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "not a binary WebAssembly component: this is a core module; build a component (target wasm32-wasip2)"
        );
    }
}
