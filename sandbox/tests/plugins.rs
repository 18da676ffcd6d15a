//! The host against the real first-party plugins and the probe fixture.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use vaani_sandbox::*;

#[test]
fn describe_echo() {
    let host = host();
    let echo = load(&host, "echo");
    assert_eq!(echo.info.name, "echo");
    assert_eq!(echo.info.version, "0.1.0");
    assert!(echo.info.schemas.is_empty());
    assert_eq!(echo.world_version, "0.3.0");
    assert_eq!(echo.content_hash.len(), 64);
}

#[test]
fn describe_clinic_declares_the_appointment_schema() {
    let host = host();
    let clinic = load(&host, "clinic");
    assert_eq!(clinic.info.name, "clinic");
    assert_eq!(clinic.info.schemas.len(), 2);
    assert_eq!(clinic.info.schemas[1].id, "symptoms");
    let schema = &clinic.info.schemas[0];
    assert_eq!(schema.id, "appointment");
    assert_eq!(
        schema.json_schema["required"],
        json!(["day", "slot", "time", "caller"])
    );
}

#[tokio::test]
async fn echo_reads_back_keys_and_hangs_up_on_hash() {
    let host = host();
    let echo = load(&host, "echo");
    let mut call = instance(&host, &echo).await;

    let actions = start(&mut call).await;
    assert_eq!(
        said(&actions),
        vec!["Hello, this is the vaani echo line. Press some keys, then hash to hang up."]
    );
    assert!(matches!(
        actions[0],
        Action::Say {
            id: 1,
            interruptible: true,
            ..
        }
    ));

    let actions = key(&mut call, '5').await;
    assert_eq!(said(&actions), vec!["You pressed 5"]);
    assert!(matches!(actions[0], Action::Say { id: 2, .. }));

    let actions = call
        .handle(Event::SpeechStarted { media_ms: 4000 })
        .await
        .unwrap();
    assert_eq!(actions, vec![Action::StopPlayback(None)]);

    let actions = key(&mut call, '#').await;
    assert_eq!(said(&actions), vec!["Goodbye."]);
    assert_eq!(actions.last(), Some(&Action::Hangup { reason: None }));

    let actions = call
        .handle(Event::CallEnded(EndReason::PluginHangup))
        .await
        .unwrap();
    assert!(actions.is_empty());
    assert_eq!(call.stats().events, 5);
    assert!(call.stats().fuel_consumed > 0);
}

#[tokio::test]
async fn echo_transfers_on_zero_and_eight_and_sends_keys_on_seven() {
    let host = host();
    let echo = load(&host, "echo");
    let mut call = instance(&host, &echo).await;
    start(&mut call).await;

    let actions = key(&mut call, '0').await;
    assert_eq!(said(&actions), vec!["Transferring you to the front desk."]);
    assert_eq!(
        actions.last(),
        Some(&Action::Transfer {
            target: "frontdesk".into(),
            mode: TransferMode::Blind,
            summary: None,
        })
    );

    let actions = call
        .handle(Event::TransferFailed(TransferFailure {
            target: "frontdesk".into(),
            status: Some(603),
            reason: "declined".into(),
        }))
        .await
        .unwrap();
    assert_eq!(said(&actions), vec!["The transfer did not go through."]);

    let actions = key(&mut call, '7').await;
    assert_eq!(said(&actions), vec!["You pressed 7", "Sent one two three"]);
    assert!(actions.contains(&Action::SendDtmf {
        digits: "123".into()
    }));

    let actions = key(&mut call, '8').await;
    assert_eq!(
        actions,
        vec![Action::Transfer {
            target: "frontdesk".into(),
            mode: TransferMode::Bridged,
            summary: Some("A caller from the echo line.".into()),
        }]
    );
    let actions = call
        .handle(Event::CallEnded(EndReason::Transferred))
        .await
        .unwrap();
    assert!(actions.is_empty());
    assert!(!call.is_poisoned());
}

#[tokio::test]
async fn clinic_books_by_dtmf_with_a_validated_extraction() {
    let host = host();
    let clinic = load(&host, "clinic");
    let mut call = instance(&host, &clinic).await;

    let actions = call
        .handle(Event::CallStarted(context(Some("Asha"))))
        .await
        .unwrap();
    assert_eq!(
        said(&actions),
        vec![
            "Welcome back to our clinic, Asha.",
            "Press 1 to book an appointment, or tell me what you need."
        ]
    );

    // A wrong key re-prompts.
    let actions = key(&mut call, '7').await;
    assert_eq!(
        said(&actions),
        vec![
            "Sorry, that is not one of the options.",
            "Press 1 to book an appointment, or tell me what you need."
        ]
    );

    assert!(said(&key(&mut call, '1').await)[0].starts_with("Which day"));
    assert!(said(&key(&mut call, '2').await)[0].starts_with("Which time"));
    assert!(said(&key(&mut call, '3').await)[0].starts_with("You chose tomorrow evening at 18:00"));

    let actions = key(&mut call, '1').await;
    let expected = json!({
        "day": "tomorrow",
        "slot": "evening",
        "time": "18:00",
        "caller": "+919800000001",
        "patient_name": "Asha"
    });
    assert_eq!(
        actions[0],
        Action::Extraction {
            schema_id: "appointment".into(),
            data: expected.clone()
        }
    );
    match &actions[1] {
        Action::SetMemory(memory) => {
            let memory: serde_json::Value = serde_json::from_str(memory).unwrap();
            assert_eq!(memory, json!({ "last_booking": expected }));
        }
        other => panic!("expected SetMemory, got {other:?}"),
    }
    assert_eq!(
        said(&actions),
        vec!["Your appointment is booked for tomorrow evening at 18:00. Goodbye."]
    );
    assert_eq!(actions.last(), Some(&Action::Hangup { reason: None }));
}

#[tokio::test]
async fn schema_violations_reach_the_guest_as_a_path_list() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    start(&mut call).await;

    let actions = key(&mut call, '1').await;
    assert_eq!(said(&actions), vec!["violations: /age,/name"]);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Extraction { .. }))
    );

    assert_eq!(said(&key(&mut call, '2').await), vec!["unknown schema"]);

    let actions = key(&mut call, '3').await;
    assert_eq!(
        actions[0],
        Action::Extraction {
            schema_id: "person".into(),
            data: json!({"name": "Asha", "age": 31})
        }
    );
}

#[tokio::test]
async fn extraction_quota_is_an_error_to_the_guest() {
    let host = host();
    let probe = load(&host, "probe");
    let limits = PluginLimits {
        max_extractions_per_call: 1,
        ..PluginLimits::default()
    };
    let mut call = instance_with(&host, &probe, limits).await;
    key(&mut call, '3').await;
    // The second valid extraction is refused; the probe's `?` turns that into a
    // plugin error, which is logged, not a failure.
    let actions = key(&mut call, '3').await;
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Extraction { .. }))
    );
    assert!(
        actions.iter().any(|a| matches!(a,
            Action::Log { level: LogLevel::Error, message } if message.contains("quota"))),
        "{actions:?}"
    );
    assert!(!call.is_poisoned());
}

#[tokio::test]
async fn plugin_returned_errors_are_logged_and_the_instance_lives_on() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    let actions = key(&mut call, '*').await;
    assert_eq!(
        actions,
        vec![Action::Log {
            level: LogLevel::Error,
            message: "plugin error (invalid state): star is not a choice".into()
        }]
    );
    assert_eq!(said(&key(&mut call, '9').await), vec!["count 1 1"]);
}

#[tokio::test]
async fn guest_stdout_and_stderr_become_log_actions() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    let actions = key(&mut call, '0').await;
    assert!(actions.contains(&Action::Log {
        level: LogLevel::Info,
        message: "hello from stdout".into()
    }));
    assert!(actions.contains(&Action::Log {
        level: LogLevel::Warn,
        message: "hello from stderr".into()
    }));
}

#[tokio::test]
async fn oversized_say_is_refused_to_the_guest() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    assert_eq!(said(&key(&mut call, '4').await), vec!["say refused"]);
}

#[tokio::test]
async fn timers_are_capped_with_an_error_to_the_guest() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    let actions = key(&mut call, '8').await;
    let timers: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer {
                id,
                after_ms: 500,
                tag,
            } if tag == "t" => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(timers, (1..=16).collect::<Vec<u64>>());
    assert_eq!(
        said(&actions),
        vec!["timers 16 then: at most 16 timers may be active"]
    );
    // A fired timer frees its slot.
    call.handle(Event::TimerFired("t".into())).await.unwrap();
    let actions = key(&mut call, '8').await;
    assert_eq!(
        said(&actions),
        vec!["timers 1 then: at most 16 timers may be active"]
    );
}

#[tokio::test]
async fn hostcall_data_cap_stops_a_huge_say() {
    let host = host();
    let probe = load(&host, "probe");
    let mut call = instance(&host, &probe).await;
    let failure = call.handle(Event::Dtmf('5')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::QuotaExceeded, "{failure}");
}

#[tokio::test]
async fn log_flood_hits_the_log_quota() {
    let host = host();
    let probe = load(&host, "probe");
    let limits = PluginLimits {
        max_logs_bytes_per_call: 50_000,
        ..PluginLimits::default()
    };
    let mut call = instance_with(&host, &probe, limits).await;
    let failure = call.handle(Event::Dtmf('6')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::QuotaExceeded, "{failure}");
    assert!(failure.message.contains("log quota"), "{failure}");
}

#[tokio::test]
async fn action_flood_in_one_event_is_stopped() {
    let host = host();
    let probe = load(&host, "probe");
    // Default log quota (1 MiB) is not reached first: the per-event action cap is.
    let mut call = instance(&host, &probe).await;
    let failure = call.handle(Event::Dtmf('6')).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::QuotaExceeded, "{failure}");
    assert!(
        failure.message.contains("actions in one event"),
        "{failure}"
    );
}

#[tokio::test]
async fn two_instances_of_one_plugin_share_no_state() {
    let host = host();
    let probe = load(&host, "probe");
    let mut first = instance(&host, &probe).await;
    let mut second = instance(&host, &probe).await;
    assert_eq!(said(&key(&mut first, '9').await), vec!["count 1 1"]);
    assert_eq!(said(&key(&mut first, '9').await), vec!["count 2 2"]);
    // Neither the plugin struct nor a `static` carries over.
    assert_eq!(said(&key(&mut second, '9').await), vec!["count 1 1"]);
    drop(first);
    // A recycled pool slot starts clean too.
    let mut third = instance(&host, &probe).await;
    assert_eq!(said(&key(&mut third, '9').await), vec!["count 1 1"]);
}

#[tokio::test]
async fn tenant_kv_is_shared_by_the_tenants_calls_only() {
    let host = host();
    let probe = load(&host, "probe");
    let tenant_a: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let tenant_b: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let mut a1 = host
        .instantiate(&probe, PluginLimits::default(), tenant_a.clone())
        .await
        .unwrap();
    assert_eq!(said(&key(&mut a1, '7').await), vec!["visits 1"]);
    let mut a2 = host
        .instantiate(&probe, PluginLimits::default(), tenant_a.clone())
        .await
        .unwrap();
    assert_eq!(said(&key(&mut a2, '7').await), vec!["visits 2"]);
    let mut b1 = host
        .instantiate(&probe, PluginLimits::default(), tenant_b)
        .await
        .unwrap();
    assert_eq!(said(&key(&mut b1, '7').await), vec!["visits 1"]);
    assert_eq!(tenant_a.get("visits").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn second_load_of_the_same_bytes_hits_the_cache() {
    let host = host();
    let bytes = wasm("echo");
    let first = host.load(&bytes).unwrap();
    let second = host.load(&bytes).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(
        host.cache_stats(),
        CacheStats {
            compiled: 1,
            hits: 1
        }
    );
    // Different bytes compile separately.
    let clinic = load(&host, "clinic");
    assert_ne!(clinic.content_hash, first.content_hash);
    assert_eq!(host.cache_stats().compiled, 2);
}

#[test]
fn a_plugin_importing_wasi_filesystem_is_rejected_at_load() {
    let host = host();
    let err = host.load(&wasm("fsreader")).unwrap_err();
    match &err {
        LoadError::Link(message) => {
            assert!(message.contains("wasi:filesystem"), "{message}")
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}
