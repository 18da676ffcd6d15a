//! The upload path split in two: `precompile` (checks, compiles, describes and
//! serializes; what the `vaani compile-plugin` child runs) and `load_precompiled`
//! (deserializes an artifact this program made). Every refusal has its variant,
//! its stable code and its exact message.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};
use vaani_sandbox::*;

/// The host the compile child uses.
fn compile_host() -> PluginHost {
    PluginHost::new(HostConfig::compile_only()).expect("compile-only host")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads an artifact made by `precompile` in this test.
fn load_own(
    host: &PluginHost,
    plugin: &PrecompiledPlugin,
) -> Result<std::sync::Arc<LoadedPlugin>, LoadError> {
    // SAFETY: every artifact passed here was made by `precompile` in this test
    // process (or is a deliberately damaged copy whose damage the checks refuse
    // before deserializing).
    unsafe { host.load_precompiled(plugin) }
}

/// A component of the real `vaani:agent@<version>` world, built from the WIT
/// in plugin-sdk with a core module in which every export (`describe` too) is
/// `unreachable`.
fn component_whose_describe_traps(version: &str) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

    let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugin-sdk/wit")
        .join(version);
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(&wit).expect("parse the WIT");
    let world = resolve
        .select_world(&[package], Some("agent"))
        .expect("world agent");
    let mut module =
        wit_component::dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("embed metadata");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode the component")
}

#[tokio::test]
async fn echo_and_clinic_round_trip_from_a_compile_only_host_to_a_pooling_host() {
    let compiler = compile_host();
    let server = host();
    assert_eq!(compiler.compatibility_hash(), server.compatibility_hash());
    assert_eq!(server.compatibility_hash().len(), 64);

    let mut kept = Vec::new();
    for name in ["echo", "clinic"] {
        let wasm = wasm(name);
        let started = Instant::now();
        let precompiled = compiler.precompile(&wasm).unwrap();
        let compile_time = started.elapsed();
        let manifest = &precompiled.manifest;
        assert_eq!(manifest.content_hash, sha256_hex(&wasm));
        assert_eq!(manifest.artifact_hash, sha256_hex(&precompiled.artifact));
        assert_eq!(manifest.compatibility_hash, server.compatibility_hash());
        assert_eq!(manifest.world_version, "0.3.0");
        // The artifact is a wasmtime artifact, not wasm.
        assert!(wasmtime::Engine::detect_precompiled(&precompiled.artifact).is_some());

        let started = Instant::now();
        let loaded = load_own(&server, &precompiled).unwrap();
        let load_time = started.elapsed();
        eprintln!(
            "{name}: {} wasm bytes, artifact {} bytes, precompile {compile_time:?}, load_precompiled {load_time:?}",
            wasm.len(),
            precompiled.artifact.len()
        );
        assert_eq!(loaded.content_hash, manifest.content_hash);
        assert_eq!(loaded.info, manifest.info);
        assert_eq!(loaded.world_version, "0.3.0");

        // The same bytes loaded in-process describe identically.
        let reference = compile_host().load(&wasm).unwrap();
        assert_eq!(reference.info, loaded.info);
        assert_eq!(reference.content_hash, loaded.content_hash);

        // And the deserialized plugin runs a call.
        let mut call = instance(&server, &loaded).await;
        let greeting = said(&start(&mut call).await);
        assert!(!greeting.is_empty(), "{name} said nothing at call start");
        kept.push(loaded);
    }
    let clinic = server.load(&wasm("clinic")).unwrap();
    assert_eq!(clinic.info.name, "clinic");
    assert!(!clinic.info.schemas.is_empty());
    // The second load of clinic's bytes came from the cache (filled by load_precompiled).
    assert_eq!(server.cache_stats().compiled, 0);
    assert_eq!(server.cache_stats().hits, 1);
}

#[test]
fn text_format_core_modules_and_artifacts_are_not_components() {
    let host = compile_host();

    let err = host
        .precompile(common::FUTURE_WORLD.as_bytes())
        .unwrap_err();
    assert!(matches!(err, LoadError::NotAComponent(_)), "{err:?}");
    assert_eq!(err.code(), "not_a_component");
    assert_eq!(
        err.to_string(),
        "not a binary WebAssembly component: the WebAssembly text format is not accepted; \
         upload the binary .wasm component"
    );

    let core_module = wat::parse_str("(module)").unwrap();
    let err = host.precompile(&core_module).unwrap_err();
    assert_eq!(err.code(), "not_a_component");
    assert_eq!(
        err.to_string(),
        "not a binary WebAssembly component: this is a core module; build a component (target wasm32-wasip2)"
    );

    let err = host
        .precompile(b"MZ\x90\0 definitely not wasm")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a binary WebAssembly component: the bytes do not start with the WebAssembly preamble"
    );

    let artifact = host.precompile(&wasm("echo")).unwrap().artifact;
    let err = host.precompile(&artifact).unwrap_err();
    assert!(matches!(err, LoadError::Precompiled), "{err:?}");
    assert_eq!(err.code(), "precompiled_artifact");

    // `load` still takes text, for operator-supplied files and tests.
    let err = host.load(common::FUTURE_WORLD.as_bytes()).unwrap_err();
    assert_eq!(err.code(), "unsupported_world");
}

#[test]
fn a_component_of_another_world_is_refused_with_its_code() {
    let host = compile_host();
    let future = wat::parse_str(common::FUTURE_WORLD).unwrap();
    let err = host.precompile(&future).unwrap_err();
    assert!(
        matches!(&err, LoadError::UnsupportedWorldVersion(v) if v == "0.9.0"),
        "{err:?}"
    );
    assert_eq!(err.code(), "unsupported_world");
    assert_eq!(
        err.to_string(),
        "component was built for vaani:agent 0.9.0, which this host does not serve"
    );

    let other = wat::parse_str(
        common::FUTURE_WORLD.replace("vaani:agent/handler@0.9.0", "acme:other/handler"),
    )
    .unwrap();
    let err = host.precompile(&other).unwrap_err();
    assert_eq!(err.code(), "missing_export");
    assert_eq!(
        err.to_string(),
        "component does not fit the vaani:agent world: the component does not export vaani:agent/handler"
    );

    let err = host.precompile(&wasm("fsreader")).unwrap_err();
    assert_eq!(err.code(), "link_failed");
    assert!(err.to_string().contains("wasi:filesystem"), "{err}");
}

#[test]
fn a_component_whose_describe_traps_is_refused() {
    let host = compile_host();
    for version in ["0.1.0", "0.3.0"] {
        let trapping = component_whose_describe_traps(version);
        let err = host.precompile(&trapping).unwrap_err();
        match &err {
            LoadError::Describe(failure) => {
                assert_eq!(failure.kind, FailureKind::Trap, "{err}")
            }
            other => panic!("expected a describe failure, got {other:?}"),
        }
        assert_eq!(err.code(), "describe_trapped");
        assert!(
            err.to_string()
                .starts_with("describe() failed: plugin trap: "),
            "{err}"
        );
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}

#[test]
fn a_describe_that_never_returns_is_a_describe_timeout() {
    let host = compile_host();
    let started = Instant::now();
    let err = host.precompile(&wasm("lazy")).unwrap_err();
    assert_eq!(err.code(), "describe_timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_oversized_upload_is_refused_before_anything_else() {
    let host = compile_host();
    let mut huge = wasm("echo");
    huge.resize(MAX_COMPONENT_BYTES + 1, 0);
    let err = host.precompile(&huge).unwrap_err();
    assert_eq!(err.code(), "too_large");
    assert_eq!(
        err.to_string(),
        format!(
            "component is {} bytes; the limit is {MAX_COMPONENT_BYTES}",
            MAX_COMPONENT_BYTES + 1
        )
    );
    assert_eq!(host.cache_stats().compiled, 0);
}

#[test]
fn damaged_or_foreign_artifacts_are_refused_before_deserializing() {
    let compiler = compile_host();
    let server = host();
    let good = compiler.precompile(&wasm("echo")).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.artifact.len() / 2;
    flipped.artifact[middle] ^= 0x01;
    let err = load_own(&server, &flipped).unwrap_err();
    assert_eq!(err.code(), "corrupt_artifact", "{err}");

    let mut truncated = good.clone();
    truncated.artifact.truncate(100);
    assert_eq!(
        load_own(&server, &truncated).unwrap_err().code(),
        "corrupt_artifact"
    );

    let mut foreign = good.clone();
    foreign.manifest.compatibility_hash = "0".repeat(64);
    let err = load_own(&server, &foreign).unwrap_err();
    assert!(
        matches!(err, LoadError::IncompatibleArtifact { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "incompatible_artifact");

    let mut wrong_world = good.clone();
    wrong_world.manifest.world_version = "0.1.0".into();
    let err = load_own(&server, &wrong_world).unwrap_err();
    assert_eq!(err.code(), "corrupt_artifact", "{err}");
    assert!(err.to_string().contains("exports 0.3.0"), "{err}");

    let mut bad_schema = good.clone();
    bad_schema.manifest.info.name = String::new();
    assert_eq!(
        load_own(&server, &bad_schema).unwrap_err().code(),
        "invalid_info"
    );

    assert_eq!(server.cache_stats(), CacheStats::default());
    // The intact one still loads.
    assert_eq!(load_own(&server, &good).unwrap().info.name, "echo");
}

#[test]
fn the_manifest_is_plain_json() {
    let precompiled = compile_host().precompile(&wasm("clinic")).unwrap();
    let json = serde_json::to_string(&precompiled.manifest).unwrap();
    let back: ArtifactManifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, precompiled.manifest);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["info"]["name"], "clinic");
    assert!(value["info"]["schemas"][0]["json_schema"].is_object());
}
