//! Misbehaving plugins are stopped, classified and poisoned, and the host and
//! other calls keep working.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use vaani_sandbox::*;

/// Limits that leave the wall-clock budget as the only CPU bound.
fn unlimited_fuel(event_budget: Duration) -> PluginLimits {
    PluginLimits {
        fuel_per_event: u64::MAX,
        event_budget,
        ..PluginLimits::default()
    }
}

#[tokio::test]
async fn looper_is_interrupted_at_its_budget() {
    let host = host();
    let looper = load(&host, "looper");
    let budget = Duration::from_millis(50);
    let mut call = instance_with(&host, &looper, unlimited_fuel(budget)).await;
    assert_eq!(said(&start(&mut call).await), vec!["looper ready"]);

    let started = Instant::now();
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert!(elapsed >= budget, "stopped before its budget: {elapsed:?}");
    // Containment, not performance: it must not run on indefinitely.
    assert!(elapsed < Duration::from_secs(2), "ran for {elapsed:?}");
    assert!(call.is_poisoned());
}

#[tokio::test]
async fn looper_runs_out_of_fuel_when_fuel_is_the_tighter_limit() {
    let host = host();
    let looper = load(&host, "looper");
    let limits = PluginLimits {
        fuel_per_event: 5_000_000,
        event_budget: Duration::from_secs(5),
        ..PluginLimits::default()
    };
    let mut call = instance_with(&host, &looper, limits).await;
    start(&mut call).await;
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::OutOfFuel, "{failure}");
}

#[tokio::test]
async fn allocator_hits_the_memory_limit_and_the_host_survives() {
    let host = host();
    let allocator = load(&host, "allocator");
    // A generous budget: touching 32 MiB on a busy machine must not time out first.
    let mut call = instance_with(&host, &allocator, unlimited_fuel(Duration::from_secs(5))).await;
    assert_eq!(said(&start(&mut call).await), vec!["allocator ready"]);
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::MemoryLimit, "{failure}");
    assert!(call.stats().peak_memory_bytes <= 32 << 20);
    drop(call);

    // The host and the pool slot are fine: new instances work.
    let mut again = instance(&host, &allocator).await;
    assert_eq!(said(&start(&mut again).await), vec!["allocator ready"]);
    let echo = load(&host, "echo");
    let mut other = instance(&host, &echo).await;
    assert_eq!(said(&key(&mut other, '3').await), vec!["You pressed 3"]);
}

#[tokio::test]
async fn lower_memory_limit_is_enforced() {
    let host = host();
    let allocator = load(&host, "allocator");
    let limits = PluginLimits {
        memory_bytes: 8 << 20,
        ..unlimited_fuel(Duration::from_secs(5))
    };
    let mut call = instance_with(&host, &allocator, limits).await;
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::MemoryLimit, "{failure}");
    assert!(call.stats().peak_memory_bytes <= 8 << 20);
}

#[tokio::test]
async fn recursor_overflows_its_stack() {
    let host = host();
    let recursor = load(&host, "recursor");
    let mut call = instance(&host, &recursor).await;
    assert_eq!(said(&start(&mut call).await), vec!["recursor ready"]);
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::StackOverflow, "{failure}");
}

#[tokio::test]
async fn trapper_traps_with_its_panic_message_and_is_poisoned() {
    let host = host();
    let trapper = load(&host, "trapper");
    let mut call = instance(&host, &trapper).await;
    assert_eq!(said(&start(&mut call).await), vec!["trapper ready"]);
    let failure = call.handle(Event::Dtmf('4')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Trap, "{failure}");
    assert!(
        failure.message.contains("trapper fixture panics on key 4"),
        "{failure}"
    );

    let again = call.handle(Event::Dtmf('5')).await.unwrap_err();
    assert_eq!(again.kind, FailureKind::Poisoned);
    let ended = call
        .handle(Event::CallEnded(EndReason::PluginFailure))
        .await
        .unwrap_err();
    assert_eq!(ended.kind, FailureKind::Poisoned);
    assert_eq!(call.failure().map(|f| f.kind), Some(FailureKind::Trap));
}

#[tokio::test]
async fn a_cancelled_event_poisons_the_instance() {
    let host = host();
    let looper = load(&host, "looper");
    let mut call = instance_with(&host, &looper, unlimited_fuel(Duration::from_secs(5))).await;
    start(&mut call).await;
    let cut_short =
        tokio::time::timeout(Duration::from_millis(20), call.handle(Event::Dtmf('1'))).await;
    assert!(cut_short.is_err(), "the looper returned on its own");
    let failure = call.handle(Event::Dtmf('2')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Poisoned, "{failure}");
}

#[tokio::test]
async fn an_exhausted_pool_refuses_new_instances_gracefully() {
    let host = host_with(2);
    let echo = load(&host, "echo");
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let first = host
        .instantiate(&echo, PluginLimits::default(), kv.clone())
        .await
        .unwrap();
    let _second = host
        .instantiate(&echo, PluginLimits::default(), kv.clone())
        .await
        .unwrap();
    let failure = host
        .instantiate(&echo, PluginLimits::default(), kv.clone())
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Instantiate, "{failure}");
    drop(first);
    let mut third = host
        .instantiate(&echo, PluginLimits::default(), kv)
        .await
        .unwrap();
    assert_eq!(said(&key(&mut third, '1').await), vec!["You pressed 1"]);
}

#[tokio::test]
async fn a_guest_blocked_in_a_host_call_is_cut_off_by_the_backstop() {
    let host = host();
    let sleeper = load(&host, "sleeper");
    let mut call = instance(&host, &sleeper).await;
    assert_eq!(said(&start(&mut call).await), vec!["sleeper ready"]);
    let started = Instant::now();
    let failure = call.handle(Event::Dtmf('1')).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    assert!(failure.message.contains("backstop"), "{failure}");
    assert!(elapsed < Duration::from_secs(5), "blocked for {elapsed:?}");
    assert_eq!(
        call.handle(Event::Dtmf('2')).await.unwrap_err().kind,
        FailureKind::Poisoned
    );
}

#[test]
fn a_describe_that_never_returns_fails_the_load() {
    let host = host();
    let started = Instant::now();
    let err = host.load(&wasm("lazy")).unwrap_err();
    match &err {
        LoadError::Describe(failure) => assert_eq!(failure.kind, FailureKind::Timeout, "{err}"),
        other => panic!("expected a describe timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn load_works_from_inside_a_tokio_runtime() {
    let host = host();
    // Loading blocks, but must not panic or deadlock when called on a runtime thread.
    let echo = host.load(&wasm("echo")).unwrap();
    assert_eq!(echo.info.name, "echo");
}

#[test]
fn host_types_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<PluginHost>();
    send_sync::<LoadedPlugin>();
    send::<PluginInstance>();
    send_sync::<PluginFailure>();
}
