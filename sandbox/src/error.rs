//! Error types of the sandbox.

use std::fmt;

/// The host could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The wasmtime engine rejected the configuration.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// Host functions could not be added to the linker.
    #[error("cannot set up the plugin linker: {0}")]
    Linker(String),
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
}

/// An uploaded plugin was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The component is larger than the host accepts.
    #[error("component is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// Largest accepted size.
        max: usize,
    },
    /// The bytes are a precompiled artifact, which is never accepted from tenants.
    #[error("precompiled artifacts are not accepted; upload the .wasm component")]
    Precompiled,
    /// The bytes are not a binary WebAssembly component: text format (WAT), a
    /// core module, or not WebAssembly at all.
    #[error("not a binary WebAssembly component: {0}")]
    NotAComponent(String),
    /// The bytes are not a valid WebAssembly component, or compilation failed.
    #[error("component does not compile: {0}")]
    Compile(String),
    /// The component imports something the host does not provide (e.g. `wasi:filesystem`),
    /// or mixes `vaani:agent` versions.
    #[error("component does not fit the vaani:agent world: {0}")]
    Link(String),
    /// The component does not export `vaani:agent/handler`, or its exports do
    /// not match the functions and types of its world version.
    #[error("component does not fit the vaani:agent world: {0}")]
    MissingExport(String),
    /// The component was built against a world version this host does not serve.
    #[error("component was built for vaani:agent {0}, which this host does not serve")]
    UnsupportedWorldVersion(String),
    /// `describe()` trapped, overran its budget or could not run.
    #[error("describe() failed: {0}")]
    Describe(#[source] PluginFailure),
    /// `describe()` returned an unusable name, version or schema list.
    #[error("describe() returned invalid plugin info: {0}")]
    InvalidInfo(String),
    /// A declared extraction schema is not a valid JSON Schema.
    #[error("extraction schema {id:?} is invalid: {message}")]
    InvalidSchema {
        /// Schema id.
        id: String,
        /// What is wrong with it.
        message: String,
    },
    /// A precompiled artifact was made by an engine with other settings (another
    /// wasmtime version, target or configuration): recompile it from the component.
    #[error(
        "precompiled artifact was built for engine {artifact}, this engine is {engine}; recompile it"
    )]
    IncompatibleArtifact {
        /// Compatibility hash recorded with the artifact.
        artifact: String,
        /// Compatibility hash of this engine.
        engine: String,
    },
    /// A precompiled artifact does not match what was recorded when it was made
    /// (its SHA-256, or the component it claims to come from), or does not deserialize.
    #[error("precompiled artifact is damaged: {0}")]
    CorruptArtifact(String),
}

impl LoadError {
    /// A stable, machine-readable code for this refusal (for API answers and the
    /// `vaani compile-plugin` protocol). Codes never change meaning; new ones may be added.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::TooLarge { .. } => "too_large",
            LoadError::Precompiled => "precompiled_artifact",
            LoadError::NotAComponent(_) => "not_a_component",
            LoadError::Compile(_) => "compile_failed",
            LoadError::Link(_) => "link_failed",
            LoadError::MissingExport(_) => "missing_export",
            LoadError::UnsupportedWorldVersion(_) => "unsupported_world",
            LoadError::Describe(failure) => match failure.kind {
                FailureKind::Timeout | FailureKind::OutOfFuel => "describe_timeout",
                _ => "describe_trapped",
            },
            LoadError::InvalidInfo(_) => "invalid_info",
            LoadError::InvalidSchema { .. } => "invalid_schema",
            LoadError::IncompatibleArtifact { .. } => "incompatible_artifact",
            LoadError::CorruptArtifact(_) => "corrupt_artifact",
        }
    }
}

/// How a plugin instance failed. Every failure poisons the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The guest trapped (panic, `unreachable`, bad memory access, exit, …).
    Trap,
    /// The event ran past its wall-clock budget (epoch interruption or the backstop timeout).
    Timeout,
    /// The event used up its fuel.
    OutOfFuel,
    /// The guest tried to grow its memory past the limit.
    MemoryLimit,
    /// The guest exhausted its wasm stack.
    StackOverflow,
    /// The guest broke a host quota through an import that cannot return an error
    /// (log bytes, actions per event, hostcall data size).
    QuotaExceeded,
    /// A new instance could not be created (pool exhausted, start-up trap, …).
    Instantiate,
    /// The instance failed earlier (or an earlier call was cancelled) and cannot run again.
    Poisoned,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfFuel => "out of fuel",
            FailureKind::MemoryLimit => "memory limit",
            FailureKind::StackOverflow => "stack overflow",
            FailureKind::QuotaExceeded => "quota exceeded",
            FailureKind::Instantiate => "instantiation failed",
            FailureKind::Poisoned => "poisoned",
        })
    }
}

/// A plugin instance failed; the call should go to the tenant's fallback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {kind}: {message}")]
pub struct PluginFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Details for logs (trap message, budget, guest stderr tail).
    pub message: String,
}

impl PluginFailure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        PluginFailure {
            kind,
            message: message.into(),
        }
    }
}
