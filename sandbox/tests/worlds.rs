//! Both served world versions side by side: a 0.1.0 component (the legacy
//! fixture, built without the SDK) and 0.2.0 components (the probe fixture),
//! the mapping of the internal event model down to 0.1.0, and the host checks
//! on the 0.2.0 imports (llm, http, expect-input, set-summary).

mod common;

use common::*;
use vaani_sandbox::*;

/// Info-level log lines of the actions.
fn logs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log {
                level: LogLevel::Info,
                message,
            } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A probe instance started with or without an LLM.
async fn probe(host: &PluginHost, limits: PluginLimits, llm: bool) -> PluginInstance {
    let plugin = load(host, "probe");
    let mut call = instance_with(host, &plugin, limits).await;
    let ctx = CallerContext {
        llm_available: llm,
        ..context(None)
    };
    let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
    assert_eq!(said(&actions), vec!["probe ready"]);
    call
}

/// Sends one key and returns the info log lines.
async fn key_logs(call: &mut PluginInstance, k: char) -> Vec<String> {
    logs(&key(call, k).await)
}

#[test]
fn a_0_1_and_a_0_2_component_both_load_and_describe() {
    let host = host();
    let legacy = load(&host, "legacy");
    assert_eq!(legacy.world_version, "0.1.0");
    assert_eq!(legacy.info.name, "legacy");
    assert!(legacy.info.schemas.is_empty());
    let probe = load(&host, "probe");
    assert_eq!(probe.world_version, "0.2.0");
    assert_eq!(probe.info.name, "probe");
    assert_eq!(probe.info.schemas[0].id, "person");
    assert_eq!(SUPPORTED_WORLD_VERSIONS, &["0.1.0", "0.2.0"]);
}

#[tokio::test]
async fn legacy_gets_barge_in_as_a_playback_id_and_never_sees_generation_events() {
    let host = host();
    let legacy = load(&host, "legacy");
    let mut call = instance(&host, &legacy).await;
    let ctx = CallerContext {
        llm_available: true,
        recent_calls: vec![PastCall {
            call_id: "old".into(),
            summary: Some("booked".into()),
            ..PastCall::default()
        }],
        ..context(None)
    };
    let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
    assert_eq!(said(&actions), vec!["legacy ready for +919800000001"]);

    let actions = call
        .handle(Event::BargeIn(Interruption {
            playback: 7,
            heard_ms: 640,
            heard_text: Some("Hello th".into()),
        }))
        .await
        .unwrap();
    assert_eq!(said(&actions), vec!["barge-in on 7"]);
    let delivered = call.stats().events;

    let actions = call
        .handle(Event::GenerationFinished {
            id: 1,
            outcome: GenerationOutcome::Cancelled,
        })
        .await
        .unwrap();
    assert!(actions.is_empty());
    let actions = call
        .handle(Event::FetchFinished {
            id: 1,
            outcome: FetchOutcome::Failed("no".into()),
        })
        .await
        .unwrap();
    assert!(actions.is_empty());
    assert_eq!(call.stats().events, delivered, "not delivered to the guest");

    let actions = call
        .handle(Event::CallEnded(EndReason::MaxDuration))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: EndReason::HostShutdown"]);
    assert!(!call.is_poisoned());
}

#[tokio::test]
async fn a_0_2_plugin_sees_the_external_id_and_the_trunks_headers() {
    let host = host();
    let plugin = load(&host, "probe");
    let mut call = instance(&host, &plugin).await;
    let ctx = CallerContext {
        external_id: Some("CA708d85d118aacfcc794b730fa02bc40c".into()),
        sip_headers: vec![
            ("X-Twilio-AccountSid".into(), "AC58f2".into()),
            ("X-Twilio-CallSid".into(), "CA708d".into()),
        ],
        ..context(None)
    };
    let actions = call.handle(Event::CallStarted(ctx)).await.unwrap();
    assert_eq!(
        logs(&actions),
        vec![
            "context external_id=CA708d85d118aacfcc794b730fa02bc40c \
             headers=X-Twilio-AccountSid=AC58f2,X-Twilio-CallSid=CA708d"
        ]
    );
}

#[tokio::test]
async fn generate_takes_its_playback_id_from_the_say_counter() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;

    let actions = key(&mut call, 'g').await;
    assert_eq!(logs(&actions), vec!["generate id=1 playback=2"]);
    let Action::Generate {
        id,
        playback,
        request,
    } = &actions[0]
    else {
        panic!("expected a Generate first: {actions:?}");
    };
    assert_eq!((*id, *playback), (1, Some(2)));
    assert!(request.speak && request.interruptible);
    assert_eq!(request.messages.len(), 2);
    assert_eq!(request.messages[0].role, LlmRole::System);
    assert_eq!(request.messages[1].content, "hi");

    assert_eq!(
        key_logs(&mut call, 'n').await,
        vec!["generate id=2 playback=none"]
    );
    // The next say continues the shared playback counter.
    let actions = key(&mut call, '9').await;
    assert!(
        matches!(actions[0], Action::Say { id: 3, .. }),
        "{actions:?}"
    );
}

#[tokio::test]
async fn generate_is_not_configured_without_an_llm() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    let actions = key(&mut call, 'g').await;
    assert_eq!(logs(&actions), vec!["generate error: NotConfigured"]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Generate { .. })));
}

#[tokio::test]
async fn generate_quota_and_size_are_enforced() {
    let host = host();
    let limits = PluginLimits {
        max_llm_requests_per_call: 3,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, true).await;
    assert_eq!(
        key_logs(&mut call, 'q').await,
        vec!["generated 3 then: LLM quota exceeded"]
    );

    let mut call = probe(&host, PluginLimits::default(), true).await;
    assert_eq!(
        key_logs(&mut call, 'b').await,
        vec!["generate error: TooLarge"]
    );

    // A spoken generation needs a playback: "probe ready" used the only one.
    let limits = PluginLimits {
        max_says_per_call: 1,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, true).await;
    assert_eq!(
        key_logs(&mut call, 'g').await,
        vec!["generate error: QuotaExceeded"]
    );
    assert_eq!(
        key_logs(&mut call, 'n').await,
        vec!["generate id=1 playback=none"]
    );
}

#[tokio::test]
async fn fetch_checks_url_and_size_at_call_time() {
    let host = host();
    let limits = PluginLimits {
        max_http_requests_per_call: 1,
        ..PluginLimits::default()
    };
    let mut call = probe(&host, limits, false).await;

    let actions = key(&mut call, 'f').await;
    assert_eq!(logs(&actions), vec!["fetch id=1"]);
    assert_eq!(
        actions[0],
        Action::Fetch {
            id: 1,
            request: FetchRequest {
                method: HttpMethod::Get,
                url: "https://api.example.com/slots?day=mon".into(),
                headers: vec![("accept".into(), "application/json".into())],
                body: None,
                timeout_ms: None,
            },
        }
    );
    let refused = key_logs(&mut call, 'u').await;
    assert!(
        refused[0].starts_with("fetch error: InvalidUrl("),
        "{refused:?}"
    );
    assert!(refused[0].contains("ftp"), "{refused:?}");
    let refused = key_logs(&mut call, 'v').await;
    assert!(
        refused[0].starts_with("fetch error: InvalidUrl("),
        "{refused:?}"
    );
    assert_eq!(
        key_logs(&mut call, 'p').await,
        vec!["fetch error: TooLarge"]
    );
    assert_eq!(
        key_logs(&mut call, 'f').await,
        vec!["fetch error: QuotaExceeded"]
    );
}

#[tokio::test]
async fn finished_generations_fetches_and_barge_ins_reach_a_0_2_plugin() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;
    key(&mut call, 'g').await;
    key(&mut call, 'f').await;

    let actions = call
        .handle(Event::GenerationFinished {
            id: 1,
            outcome: GenerationOutcome::Completed(Generation {
                text: "Hello".into(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "slots".into(),
                    arguments_json: r#"{"day":"mon"}"#.into(),
                }],
                prompt_tokens: 12,
                completion_tokens: 3,
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec![r#"generation 1 completed: Hello tools=slots({"day":"mon"})"#]
    );
    // Finished: cancelling it now is a no-op.
    assert!(key(&mut call, 'c').await.is_empty());

    let actions = call
        .handle(Event::FetchFinished {
            id: 1,
            outcome: FetchOutcome::Response(FetchResponse {
                status: 200,
                headers: vec![],
                body: b"[\"10:00\"]".to_vec(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec![r#"fetch 1 status=200 body=["10:00"]"#]);
    let actions = call
        .handle(Event::FetchFinished {
            id: 2,
            outcome: FetchOutcome::Failed("not on the allow-list".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec!["fetch 2 failed: not on the allow-list"]
    );

    let actions = call
        .handle(Event::BargeIn(Interruption {
            playback: 2,
            heard_ms: 640,
            heard_text: Some("Hel".into()),
        }))
        .await
        .unwrap();
    assert_eq!(
        logs(&actions),
        vec![r#"barge-in playback=2 heard_ms=640 heard_text=Some("Hel")"#]
    );
    let actions = call
        .handle(Event::CallEnded(EndReason::MaxDuration))
        .await
        .unwrap();
    assert_eq!(logs(&actions), vec!["ended: MaxDuration"]);
}

#[tokio::test]
async fn cancel_applies_to_running_generations_only() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), true).await;
    assert!(key(&mut call, 'c').await.is_empty(), "nothing started yet");
    key(&mut call, 'n').await;
    assert_eq!(key(&mut call, 'c').await, vec![Action::CancelGeneration(1)]);
    assert!(key(&mut call, 'c').await.is_empty(), "already cancelled");
}

#[tokio::test]
async fn expect_input_and_set_summary_are_checked() {
    let host = host();
    let mut call = probe(&host, PluginLimits::default(), false).await;
    assert_eq!(
        key(&mut call, 'e').await,
        vec![Action::ExpectInput(ExpectedInput::Digits)]
    );
    let actions = key(&mut call, 's').await;
    assert_eq!(
        actions[0],
        Action::SetSummary {
            summary: "Booked a slot".into(),
            sentiment: Some("positive".into()),
        }
    );
    assert_eq!(logs(&actions), vec!["summary ok"]);
    let too_long = key_logs(&mut call, 'x').await;
    assert!(too_long[0].contains("the limit is 2048"), "{too_long:?}");
    let bad_sentiment = key_logs(&mut call, 'y').await;
    assert!(
        bad_sentiment[0].contains("sentiment must be one of positive, neutral, negative"),
        "{bad_sentiment:?}"
    );
}

/// A minimal component that exports `vaani:agent/handler` of a version this
/// host does not serve.
const FUTURE_WORLD: &str = r#"
(component
  (core module $m
    (func (export "describe") (result i32) unreachable))
  (core instance $i (instantiate $m))
  (func $describe (result u32) (canon lift (core func $i "describe")))
  (instance $h (export "describe" (func $describe)))
  (export "vaani:agent/handler@0.9.0" (instance $h)))
"#;

#[test]
fn a_component_of_an_unknown_world_version_is_refused_at_load() {
    let host = host();
    let err = host.load(FUTURE_WORLD.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, LoadError::UnsupportedWorldVersion(v) if v == "0.9.0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "component was built for vaani:agent 0.9.0, which this host does not serve"
    );

    let not_an_agent = FUTURE_WORLD.replace("vaani:agent/handler@0.9.0", "acme:other/handler");
    let err = host.load(not_an_agent.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, LoadError::Link(m) if m.contains("does not export vaani:agent/handler")),
        "{err:?}"
    );
}
