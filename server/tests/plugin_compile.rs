//! Compiling uploads in a `vaani compile-plugin` child: valid plugins come back
//! as artifacts that load; refusals come back with their code and exact
//! message; a compile bomb is stopped by the CPU limit, the memory limit or the
//! wall clock without harming this (the parent) process.

// The module under test lives in the binary crate; include its source.
#[allow(dead_code)]
#[path = "../src/plugin_compile.rs"]
mod plugin_compile;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_compile::{CompileError, CompileLimits, PluginCompiler, ResourceLimit};
use vaani_sandbox::{
    Action, CallerContext, Direction, Event, HostConfig, LoadedPlugin, MAX_COMPONENT_BYTES,
    MemoryKv, PluginHost, PluginLimits, PrecompiledPlugin,
};

fn vaani() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vaani"))
}

fn compiler(limits: CompileLimits) -> PluginCompiler {
    PluginCompiler::with_executable(vaani(), limits)
}

/// Reads `plugins/dist/<name>.wasm`; fails (never skips) if it is missing.
fn wasm(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. Build the plugins first: run plugins/build.sh",
            path.display()
        )
    })
}

fn server_host() -> PluginHost {
    PluginHost::new(HostConfig {
        max_instances: 4,
        ..HostConfig::default()
    })
    .expect("plugin host")
}

fn load(host: &PluginHost, precompiled: &PrecompiledPlugin) -> Arc<LoadedPlugin> {
    // SAFETY: the artifact was made by a `vaani compile-plugin` child of the
    // binary built with this test, came back through its stdout pipe and its
    // content and artifact hashes were checked by `PluginCompiler::compile`.
    unsafe { host.load_precompiled(precompiled) }.expect("load the artifact")
}

/// A component wrapping one core function of `additions` chained `i32.add`s:
/// 3 bytes of wasm per instruction, about 50 µs of CPU and 5 KiB of compiler
/// memory each in Cranelift (100 000 of them: 300 KB, ~5 s, ~500 MiB).
fn compile_bomb(additions: usize) -> Vec<u8> {
    let mut text = String::with_capacity(additions * 20 + 100);
    text.push_str(
        "(component (core module (func (export \"f\") (param i32) (result i32) local.get 0\n",
    );
    for _ in 0..additions {
        text.push_str("i32.const 1 i32.add\n");
    }
    text.push_str(")))");
    wat::parse_str(&text).expect("bomb WAT")
}

/// A minimal component exporting `vaani:agent/handler` of a version this host does not serve
/// (the sandbox tests' fixture).
const FUTURE_WORLD: &str = include_str!("../../sandbox/tests/common/future_world.wat");

fn rejection(result: Result<plugin_compile::CompiledPlugin, CompileError>) -> (String, String) {
    match result {
        Err(CompileError::Rejected { code, message }) => (code, message),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_plugins_compile_in_the_child_and_load_in_the_server() {
    let compiler = compiler(CompileLimits::default());
    let host = server_host();
    for name in ["echo", "clinic"] {
        let bytes = wasm(name);
        let compiled = compiler.compile(&bytes).await.expect("compiles");
        let in_process = Instant::now();
        let reference = PluginHost::new(HostConfig::compile_only())
            .unwrap()
            .precompile(&bytes)
            .unwrap();
        let in_process = in_process.elapsed();
        eprintln!(
            "{name}: child {:?} (spawn, compile, describe, transfer), in-process precompile {in_process:?}, \
             wasm {} bytes, artifact {} bytes",
            compiled.elapsed,
            bytes.len(),
            compiled.precompiled.artifact.len()
        );
        assert_eq!(compiled.precompiled.manifest, reference.manifest);
        assert_eq!(compiled.precompiled.manifest.info.name, name);
        assert_eq!(
            compiled.precompiled.manifest.compatibility_hash,
            host.compatibility_hash()
        );

        let plugin = load(&host, &compiled.precompiled);
        assert_eq!(
            plugin.content_hash,
            compiled.precompiled.manifest.content_hash
        );
        let mut call = host
            .instantiate(&plugin, PluginLimits::default(), Arc::new(MemoryKv::new()))
            .await
            .expect("instantiate");
        let actions = call
            .handle(Event::CallStarted(CallerContext {
                call_id: "call-1".into(),
                tenant_id: "tenant-1".into(),
                direction: Direction::Inbound,
                caller: "+919800000001".into(),
                dialled: "+918000000001".into(),
                caller_name: None,
                memory_json: None,
                previous_calls: 0,
                config_json: "{}".into(),
                started_at_unix_ms: 1_700_000_000_000,
                recent_calls: vec![],
                llm_available: false,
                external_id: None,
                sip_headers: vec![],
            }))
            .await
            .expect("call-started");
        assert!(
            actions.iter().any(|a| matches!(a, Action::Say { .. })),
            "{name} said nothing: {actions:?}"
        );
    }
}

#[tokio::test]
async fn refusals_come_back_with_their_code_and_exact_message() {
    let compiler = compiler(CompileLimits::default());

    let (code, message) = rejection(compiler.compile(FUTURE_WORLD.as_bytes()).await);
    assert_eq!(code, "not_a_component");
    assert_eq!(
        message,
        "not a binary WebAssembly component: the WebAssembly text format is not accepted; \
         upload the binary .wasm component"
    );

    let future = wat::parse_str(FUTURE_WORLD).unwrap();
    let (code, message) = rejection(compiler.compile(&future).await);
    assert_eq!(code, "unsupported_world");
    assert_eq!(
        message,
        "component was built for vaani:agent 0.9.0, which this host does not serve"
    );

    let (code, message) = rejection(compiler.compile(&wasm("fsreader")).await);
    assert_eq!(code, "link_failed");
    assert!(message.contains("wasi:filesystem"), "{message}");

    let (code, message) = rejection(compiler.compile(&wasm("lazy")).await);
    assert_eq!(code, "describe_timeout");
    assert!(
        message.starts_with("describe() failed: plugin timeout: "),
        "{message}"
    );

    // Refused by the parent without starting a child.
    let huge = vec![0u8; MAX_COMPONENT_BYTES + 1];
    let (code, message) = rejection(compiler.compile(&huge).await);
    assert_eq!(code, "too_large");
    assert_eq!(
        message,
        format!(
            "component is {} bytes; the limit is {MAX_COMPONENT_BYTES}",
            MAX_COMPONENT_BYTES + 1
        )
    );
    assert_eq!(CompileError::Rejected { code, message }.code(), "too_large");
}

#[test]
fn the_child_reports_the_real_size_of_an_oversized_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(vaani())
        .arg("compile-plugin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let size = MAX_COMPONENT_BYTES + 12_345;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&vec![0u8; size]));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let header_len = u32::from_be_bytes(output.stdout[8..12].try_into().unwrap()) as usize;
    assert_eq!(&output.stdout[..8], plugin_compile::PROTOCOL_MAGIC);
    let header: serde_json::Value =
        serde_json::from_slice(&output.stdout[12..12 + header_len]).unwrap();
    assert_eq!(header["status"], "rejected");
    assert_eq!(header["error"]["code"], "too_large");
    assert_eq!(
        header["error"]["message"],
        format!("component is {size} bytes; the limit is {MAX_COMPONENT_BYTES}")
    );
    assert_eq!(output.stdout.len(), 12 + header_len);
}

#[tokio::test]
async fn a_compile_bomb_is_stopped_by_the_cpu_limit_and_the_parent_carries_on() {
    let bomb = compile_bomb(100_000);
    let limits = CompileLimits {
        cpu_seconds: 1,
        ..CompileLimits::default()
    };
    let compiler = compiler(limits);
    let started = Instant::now();
    let err = compiler.compile(&bomb).await.unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        CompileError::KilledByLimit { limit, status, .. } => {
            assert_eq!(*limit, Some(ResourceLimit::Cpu), "{err}");
            assert_eq!(status, "killed by SIGXCPU");
        }
        other => panic!("expected the CPU limit, got {other:?}"),
    }
    assert_eq!(err.code(), "resource_limit");
    assert_eq!(
        err.to_string(),
        "plugin compilation was stopped by the CPU time limit: killed by SIGXCPU"
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    // The same compiler still works.
    let echo = compiler
        .compile(&wasm("echo"))
        .await
        .expect("echo compiles");
    assert_eq!(echo.precompiled.manifest.info.name, "echo");
}

#[tokio::test]
async fn a_compile_bomb_is_stopped_by_the_memory_limit() {
    let bomb = compile_bomb(100_000);
    let limits = CompileLimits {
        data_bytes: 160 << 20,
        ..CompileLimits::default()
    };
    let started = Instant::now();
    let err = compiler(limits).compile(&bomb).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.code(), "resource_limit", "{err:?}");
    match &err {
        CompileError::KilledByLimit { limit, stderr, .. } => {
            assert_eq!(*limit, Some(ResourceLimit::Memory), "{err}");
            assert!(stderr.contains("memory allocation of"), "{stderr}");
        }
        // wasmtime could not map memory and said so.
        CompileError::Rejected { message, .. } => {
            assert!(message.contains("Cannot allocate memory"), "{message}")
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[tokio::test]
async fn a_compile_bomb_is_killed_at_the_wall_clock_timeout() {
    let bomb = compile_bomb(100_000);
    let limits = CompileLimits {
        wall_timeout: Duration::from_millis(700),
        ..CompileLimits::default()
    };
    let started = Instant::now();
    let err = compiler(limits).compile(&bomb).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, CompileError::TimedOut { after } if after == Duration::from_millis(700)),
        "{err:?}"
    );
    assert_eq!(err.code(), "resource_limit");
    assert_eq!(
        err.to_string(),
        "plugin compilation ran past its 0.7 s wall-clock limit"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn a_missing_executable_is_an_io_error() {
    let compiler = PluginCompiler::with_executable(
        PathBuf::from("/nonexistent/vaani"),
        CompileLimits::default(),
    );
    let err = compiler.compile(&wasm("echo")).await.unwrap_err();
    assert!(matches!(err, CompileError::Io { .. }), "{err:?}");
    assert_eq!(err.code(), "internal");
}
